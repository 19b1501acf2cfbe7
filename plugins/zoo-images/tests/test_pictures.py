"""Grids, strips and pairs: exact layout, value mapping, suffix handling, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core import ZooError
from zoo_images import pictures as p


def _read(path):
    with Image.open(path) as im:
        return im.mode, np.asarray(im)


def test_grid_layout_is_pixel_exact(tmp_path):
    # three 1x2x2 images valued 0, 1, 2 (value_range (0, 2) -> bytes 0, 128, 255), 2 per row, padding 1 of 0.5
    images = torch.stack([torch.full((1, 2, 2), float(v)) for v in (0, 1, 2)])
    path = p.save_grid(images, tmp_path / "g.png", nrow=2, padding=1, pad_value=2.0, value_range=(0, 2))
    mode, got = _read(path)
    W, A, B, C = 255, 0, 128, 255  # pad white; tiles
    want = np.array([
        [W, W, W, W, W, W, W],
        [W, A, A, W, B, B, W],
        [W, A, A, W, B, B, W],
        [W, W, W, W, W, W, W],
        [W, C, C, W, W, W, W],
        [W, C, C, W, W, W, W],
        [W, W, W, W, W, W, W],
    ], np.uint8)
    assert mode == "L" and got.shape == (7, 7) and np.array_equal(got, want)
    assert path == tmp_path / "g.png" and [x.name for x in tmp_path.iterdir()] == ["g.png"]


def test_rgb_grid_default_layout_and_value_mapping(tmp_path):
    images = -torch.ones(5, 3, 4, 3)  # black in [-1, 1]
    images[:, 0] = 1.0  # red
    images[4, 1] = 0.0  # half green on the last: floor(127.5 + 0.5) = 128
    mode, got = _read(p.save_grid(images, tmp_path / "g.png"))  # ceil(sqrt(5)) = 3 per row, padding 2 white
    assert mode == "RGB" and got.shape == (2 * 6 + 2, 3 * 5 + 2, 3)
    assert (got[2:6, 2:5] == [255, 0, 0]).all()  # tile 0
    assert (got[8:12, 7:10] == [255, 128, 0]).all()  # tile 4: row 1, column 1
    assert (got[8:12, 12:15] == 255).all()  # no tile 5: padding colour
    assert (got[0:2] == 255).all() and (got[:, 5:7] == 255).all()
    assert np.array_equal(p.to_bytes(np.array([-2.0, -1.0, 0.0, 1.0, 3.0])), [0, 0, 128, 255, 255])


@pytest.mark.parametrize("name, fmt", [("g.jpg", "JPEG"), ("g.JPEG", "JPEG"), ("g.webp", "WEBP")])
def test_formats_follow_the_suffix(tmp_path, name, fmt):
    if fmt == "WEBP" and ".webp" not in p._supported():
        pytest.skip("this Pillow has no WebP")
    path = p.save_grid(torch.zeros(4, 3, 8, 8), tmp_path / name)
    with Image.open(path) as im:
        assert im.format == fmt and im.size == (2 * 10 + 2, 2 * 10 + 2)


def test_bad_suffix_is_refused_before_any_work(tmp_path):
    class Exploding:
        def __array__(self, *a, **k):
            raise AssertionError("the images were read before the suffix was checked")

    for name in ("g.gif", "grid", "g.png.bak"):
        with pytest.raises(ZooError) as err:
            p.save_grid(Exploding(), tmp_path / name)
        assert err.value.where == str(tmp_path / name) and ".png" in err.value.hint and ".jpg" in err.value.hint
    with pytest.raises(ZooError):
        p.save_pairs(Exploding(), Exploding(), tmp_path / "x.tiff")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "g.png"
    target.write_bytes(b"old picture")

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ZooError, match="cannot write g.png: disk full") as err:  # the core's writer names it
        p.save_grid(torch.zeros(1, 1, 2, 2), target)
    assert err.value.where == str(target)
    assert target.read_bytes() == b"old picture"
    assert [x.name for x in tmp_path.iterdir()] == ["g.png"]  # no temporary left


def test_bad_shapes(tmp_path):
    with pytest.raises(ZooError, match=r"\(N, C, H, W\)"):
        p.save_grid(torch.zeros(2, 4, 3, 3), tmp_path / "g.png")
    with pytest.raises(ZooError, match="strips of 3"):
        p.save_interpolation(torch.zeros(4, 1, 2, 2), tmp_path / "i.png", steps=3)
    with pytest.raises(ZooError, match="differ in shape"):
        p.save_pairs(torch.zeros(2, 1, 2, 2), torch.zeros(3, 1, 2, 2), tmp_path / "r.png")
    assert list(tmp_path.iterdir()) == []


def test_interpolation_rows_are_strips(tmp_path):
    steps, rows = 4, 2
    values = torch.linspace(-1, 1, rows * steps)
    images = values.view(-1, 1, 1, 1).expand(-1, 1, 3, 3)
    _, got = _read(p.save_interpolation(images, tmp_path / "i.png", steps=steps, padding=1))
    assert got.shape == (rows * 4 + 1, steps * 4 + 1)
    tiles = got[1::4, 1::4][:rows, :steps]  # one pixel of each tile
    assert np.array_equal(tiles.ravel(), p.to_bytes(values.numpy()))


def test_pairs_put_each_reconstruction_right_of_its_image(tmp_path):
    real = torch.stack([torch.full((1, 2, 2), -1.0 + 0.1 * i) for i in range(6)])
    recon = -real
    path = p.save_pairs(real, recon, tmp_path / "r.png", pairs_per_row=2, padding=0)
    _, got = _read(path)
    assert got.shape == (3 * 2, 4 * 2)
    tiles = got[::2, ::2]  # (3 rows, 4 columns): real0 recon0 real1 recon1 / real2 ...
    for i in range(6):
        row, k = divmod(i, 2)
        assert tiles[row, 2 * k] == p.to_bytes(real[i, 0, 0, 0].item())
        assert tiles[row, 2 * k + 1] == p.to_bytes(recon[i, 0, 0, 0].item())
    _, square = _read(p.save_pairs(torch.zeros(32, 3, 2, 2), torch.zeros(32, 3, 2, 2), tmp_path / "s.png",
                                   padding=0))
    assert square.shape[:2] == (16, 16)  # 32 pairs: 8 x 8 tiles, as O-GAN's sample_ae
