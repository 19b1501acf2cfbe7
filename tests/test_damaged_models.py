"""Damaged model folders: every one is a ZooError naming the file, never a traceback, a hang or a wrong model.

A seeded fuzz over folders of five real plugins (NICE, GAN-QP, GPT2_ML sharded, DGCNN, word2vec)
runs byte flips, truncations and structured mutations of config.json, the
safetensors headers and the index through ``load_model``, and the NICE ones
also through ``zoo sample nice-mnist --model F``. A mutation that still loads
must give exactly the original tensors and the config the file says; anything
else counts as a silent wrong load.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import struct
from pathlib import Path

import pytest
import torch

from zoo_core.errors import ZooError
from zoo_core.testing import only_plugins

zoo = only_plugins("nice,ganqp,images,gpt2ml,dgcnn,nce")

FOLDERS = {  # name -> (architecture, config, max_shard_size)
    "nice": ("nice", {"dim": 784, "num_couplings": 2, "hidden": 8, "hidden_layers": 1}, None),
    "ganqp": ("ganqp", {"img_size": 16, "channels": 1, "z_dim": 8, "max_channels": 16}, None),
    "gpt2ml": ("gpt2-ml", {"vocab_size": 40, "max_position_embeddings": 16, "hidden_size": 16,
                           "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32}, 6000),
    "dgcnn": ("dgcnn", {"vocab": list("的一是了我不人在"), "dim": 16, "question_rates": [1, 2],
                        "passage_rates": [1, 2, 1]}, None),
    "word2vec": ("word2vec", {"dim": 8, "words": ["中国", "人民", "北京", "上海"], "counts": [9, 7, 5, 5]}, None),
}
CASES_PER_FOLDER = 80  # random mutations per folder, on top of the structured ones
SEED = 20261206


@pytest.fixture
def originals(zoo, tmp_path):
    from zoo_core import build_model

    out = {}
    torch.manual_seed(0)
    for name, (arch, config, shard) in FOLDERS.items():
        model = build_model(arch, **config)
        folder = tmp_path / "originals" / name
        model.save_pretrained(folder, **({"max_shard_size": shard} if shard else {}))
        out[name] = (folder, model.config_dict(), {k: v.clone() for k, v in model.state_dict().items()})
    assert (out["gpt2ml"][0] / "model.safetensors.index.json").is_file()  # the index is fuzzed too
    return out


# --- mutations: each takes a fresh copy of a folder and damages it in place ---------------------


def _weights(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.safetensors"))


def _header(path: Path) -> tuple[int, dict, bytes]:
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    return n, json.loads(data[8:8 + n]), data[8 + n:]


def _write_header(path: Path, header: dict, body: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)


def _edit_config(folder, fn):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    path.write_text(json.dumps(fn(config)))


def _edit_header(folder, fn, which=0):
    path = _weights(folder)[which]
    _, header, body = _header(path)
    result = fn(header, body)
    if isinstance(result, tuple):
        header, body = result
    _write_header(path, header, body)


def _tensors(header):
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])


def _first_int_field(config):
    return next(k for k, v in config.items() if isinstance(v, int) and not isinstance(v, bool) and k != "architecture")


def _set(key_fn, value):
    def fn(config):
        config[key_fn(config)] = value
        return config
    return fn


def _to_f64(header, body):
    """One float32 tensor rewritten as a valid float64 one: a file of mixed dtypes."""
    name = next(k for k in _tensors(header) if header[k]["dtype"] == "F32")
    b, e = header[name]["data_offsets"]
    wide = torch.frombuffer(bytearray(body[b:e]), dtype=torch.float32).double().numpy().tobytes()
    shift = len(wide) - (e - b)
    for k in _tensors(header):
        kb, ke = header[k]["data_offsets"]
        if kb >= e:
            header[k]["data_offsets"] = [kb + shift, ke + shift]
    header[name] = {"dtype": "F64", "shape": header[name]["shape"], "data_offsets": [b, e + shift]}
    return header, body[:b] + wide + body[e:]


def _overlap(header, body):
    names = _tensors(header)
    header[names[1]]["data_offsets"] = [0, header[names[1]]["data_offsets"][1] - header[names[1]]["data_offsets"][0]]
    return header


def _past_end(header, body):
    last = _tensors(header)[-1]
    b, e = header[last]["data_offsets"]
    header[last]["data_offsets"] = [b + 64, e + 64]
    return header


def _reshape(header, body):
    name = next(k for k in _tensors(header) if len(header[k]["shape"]) == 2 and header[k]["shape"][0] > 1)
    r, c = header[name]["shape"]
    header[name]["shape"] = [c, r] if r != c else [r * c, 1]
    if header[name]["shape"] == [r, c]:
        header[name]["shape"] = [1, r * c]
    return header


def _rename(header, body):
    name = _tensors(header)[0]
    header[name + "_x"] = header.pop(name)
    return header


def _drop_tensor(header, body):
    names = _tensors(header)
    last = names[-1]
    b, _ = header.pop(last)["data_offsets"]
    return header, body[:b]


def _extra_tensor(header, body):
    header["stray.weight"] = {"dtype": "F32", "shape": [2], "data_offsets": [len(body), len(body) + 8]}
    return header, body + bytes(8)


def _raw(fn):
    """A mutation of a weights file's bytes."""
    def mutate(folder):
        path = _weights(folder)[0]
        path.write_bytes(fn(path.read_bytes()))
    return mutate


def _symlink_out(folder):
    path = _weights(folder)[0]
    outside = folder.parent / f"outside-{folder.name}.safetensors"
    shutil.copy(path, outside)
    path.unlink()
    path.symlink_to(outside)


def _index(fn):
    def mutate(folder):
        path = folder / "model.safetensors.index.json"
        if not path.is_file():
            return "skip"
        path.write_text(json.dumps(fn(json.loads(path.read_text()), folder)))
    return mutate


def _index_missing_shard(index, folder):
    (folder / sorted(set(index["weight_map"].values()))[-1]).unlink()
    return index


def _index_moved(index, folder):
    shards = sorted(set(index["weight_map"].values()))
    key = next(k for k, v in index["weight_map"].items() if v == shards[0])
    index["weight_map"][key] = shards[1]
    return index


def _deep(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)


def _other_weights(folder):
    """The weights of another folder's model (cases live in tmp/cases/, originals in tmp/originals/)."""
    other = "nice" if "ganqp" in folder.name else "ganqp"
    shutil.copy(_weights(folder.parent.parent / "originals" / other)[0], _weights(folder)[0])


STRUCTURED = {
    # config.json
    "config not UTF-8": lambda f: (f / "config.json").write_bytes(b'{"architecture": "\xff\xfe"}'),
    "config a JSON list": lambda f: (f / "config.json").write_text("[1, 2]"),
    "config empty": lambda f: (f / "config.json").write_text(""),
    "architecture a number": lambda f: _edit_config(f, lambda c: {**c, "architecture": 7}),
    "architecture null": lambda f: _edit_config(f, lambda c: {**c, "architecture": None}),
    "architecture missing": lambda f: _edit_config(f, lambda c: {k: v for k, v in c.items() if k != "architecture"}),
    "architecture unknown": lambda f: _edit_config(f, lambda c: {**c, "architecture": "nicer"}),
    "architecture of another model": lambda f: _edit_config(
        f, lambda c: {**c, "architecture": "ganqp" if c["architecture"] != "ganqp" else "nice"}),
    "field a string": lambda f: _edit_config(f, _set(_first_int_field, "500")),
    "field a float": lambda f: _edit_config(f, _set(_first_int_field, 16.5)),
    "field null": lambda f: _edit_config(f, _set(_first_int_field, None)),
    "field a list": lambda f: _edit_config(f, _set(_first_int_field, [1])),
    "field absurd": lambda f: _edit_config(f, _set(_first_int_field, 10**12)),
    "field negative": lambda f: _edit_config(f, _set(_first_int_field, -3)),
    "field zero": lambda f: _edit_config(f, _set(_first_int_field, 0)),
    "every int field absurd": lambda f: _edit_config(
        f, lambda c: {k: (10**9 if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in c.items()}),
    "unknown field": lambda f: _edit_config(f, lambda c: {**c, "depth": 3}),
    "config 100k deep": _deep,
    "config duplicate key": lambda f: (f / "config.json").write_text(
        (f / "config.json").read_text().replace("{", '{"architecture": "nice", ', 1)),
    "config NaN": lambda f: (f / "config.json").write_text(
        (f / "config.json").read_text().rstrip().rstrip("}") + ', "x": NaN}'),
    "config a 5000-digit integer": lambda f: (f / "config.json").write_text(
        (f / "config.json").read_text().rstrip().rstrip("}") + ', "x": ' + "9" * 5000 + "}"),
    "config missing": lambda f: (f / "config.json").unlink(),
    # safetensors
    "weights empty": _raw(lambda b: b""),
    "weights zero-filled": _raw(lambda b: bytes(len(b))),
    "header length 2^63": _raw(lambda b: struct.pack("<Q", 2**63) + b[8:]),
    "header length past the end": _raw(lambda b: struct.pack("<Q", len(b)) + b[8:]),
    "header not JSON": _raw(lambda b: b[:8] + b"\x00" * struct.unpack("<Q", b[:8])[0] + b[8 + struct.unpack(
        "<Q", b[:8])[0]:]),
    "header a list": lambda f: _edit_header(f, lambda h, b: ([1], b)),
    "offsets past the end": lambda f: _edit_header(f, _past_end),
    "offsets overlapping": lambda f: _edit_header(f, _overlap),
    "body truncated": _raw(lambda b: b[:-5]),
    "trailing bytes": _raw(lambda b: b + b"junk"),
    "dtype unknown": lambda f: _edit_header(f, lambda h, b: {**h, _tensors(h)[0]: {**h[_tensors(h)[0]],
                                                                                   "dtype": "Q7"}}),
    "dtype an integer type": lambda f: _edit_header(f, lambda h, b: {**h, _tensors(h)[0]: {**h[_tensors(h)[0]],
                                                                                           "dtype": "I32"}}),
    "one tensor float64": lambda f: _edit_header(f, _to_f64),
    "wrong shape": lambda f: _edit_header(f, _reshape),
    "renamed tensor": lambda f: _edit_header(f, _rename),
    "tensor missing": lambda f: _edit_header(f, _drop_tensor),
    "extra tensor": lambda f: _edit_header(f, _extra_tensor),
    "weights a link out of the folder": _symlink_out,
    "a pickle file beside": lambda f: (f / "pytorch_model.bin").write_bytes(b"\x80\x04"),
    "weights of another model": _other_weights,
    "weights missing": lambda f: [p.unlink() for p in _weights(f)] and None,
    # the index
    "index without weight_map": _index(lambda i, f: {"metadata": i.get("metadata", {})}),
    "index weight_map a list": _index(lambda i, f: {"weight_map": list(i["weight_map"])}),
    "index with a missing shard": _index(_index_missing_shard),
    "index names ../": _index(lambda i, f: {"weight_map": {k: "../" + v for k, v in i["weight_map"].items()}}),
    "index names an absolute path": _index(lambda i, f: {"weight_map": {k: str(f / v)
                                                                        for k, v in i["weight_map"].items()}}),
    "index names a non-weights file": _index(lambda i, f: {"weight_map": {k: "config.json"
                                                                         for k in i["weight_map"]}}),
    "index moves a tensor": _index(_index_moved),
    "index not JSON": lambda f: (f / "model.safetensors.index.json").write_text("{")
    if (f / "model.safetensors.index.json").is_file() else "skip",
}


def _random_mutation(rng: random.Random, folder: Path) -> str:
    """A byte flip or truncation of config.json, a safetensors header (length or JSON) or the index."""
    targets = ["config", "header", "header", "length"]
    if (folder / "model.safetensors.index.json").is_file():
        targets.append("index")
    target = rng.choice(targets)
    kind = rng.choice(["flip", "flip", "flip", "truncate"])
    if target in ("config", "index"):
        path = folder / ("config.json" if target == "config" else "model.safetensors.index.json")
        data = bytearray(path.read_bytes())
        lo, hi = 0, len(data)
    else:
        path = rng.choice(_weights(folder))
        data = bytearray(path.read_bytes())
        n = struct.unpack("<Q", data[:8])[0]
        lo, hi = (0, 8) if target == "length" else (8, 8 + n)
        if kind == "truncate":
            lo, hi = 0, len(data)
    pos = rng.randrange(lo, hi)
    if kind == "flip":
        data[pos] ^= rng.choice([1 << rng.randrange(8), rng.randrange(1, 256)])
        path.write_bytes(bytes(data))
        return f"{target} flip at {pos} of {path.name}"
    path.write_bytes(bytes(data[:pos]))
    return f"truncate {path.name} to {pos}"


# --- the oracle -----------------------------------------------------------------------------------


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def _outcome(fn, seconds: int = 20):
    """("ok", value) | ("clean", ZooError) | ("traceback", exc) | ("hang", None)."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return "ok", fn()
    except _Hang:
        return "hang", None
    except ZooError as exc:
        return "clean", exc
    except Exception as exc:  # noqa: BLE001 - anything else would reach the user as a traceback
        return "traceback", exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _faithful(model, folder: Path, original_state: dict) -> bool:
    """The loaded model holds the original tensors and exactly the config the (mutated) file says."""
    state = model.state_dict()
    if set(state) != set(original_state):
        return False
    for k, v in original_state.items():
        if state[k].dtype != v.dtype or state[k].shape != v.shape or not torch.equal(state[k], v):
            return False
    said = json.loads((folder / "config.json").read_text())
    loaded = json.loads(json.dumps(model.config_dict()))  # tuples as lists, as JSON has them
    return all(loaded.get(k) == v for k, v in said.items())


def _names_the_file(err: ZooError, folder: Path) -> bool:
    text = f"{err.what} {err.where or ''}"
    return err.where is not None and (str(folder) in text or folder.name in text) and bool(err.hint)


def test_fuzzed_model_folders_give_clear_errors(originals, tmp_path):
    from click.testing import CliRunner

    from zoo_core import load_model
    from zoo_core.cli import cli

    rng = random.Random(SEED)
    plan = [(name, label, fn) for name in FOLDERS for label, fn in STRUCTURED.items()]
    plan += [(name, None, None) for name in FOLDERS for _ in range(CASES_PER_FOLDER)]
    tally = {"ok": 0, "clean": 0, "traceback": [], "hang": [], "wrong": [], "unnamed": [], "cli": []}
    tried = 0
    for i, (name, label, fn) in enumerate(plan):
        original, _, state = originals[name]
        folder = tmp_path / "cases" / f"{i:03d}-{name}"
        shutil.copytree(original, folder)
        if fn is None:
            label = _random_mutation(rng, folder)
        elif fn(folder) == "skip":
            continue
        tried += 1
        case = f"{name}: {label}"
        kind, value = _outcome(lambda folder=folder: load_model(folder))
        if kind == "ok":
            tally["ok"] += 1
            if not _faithful(value, folder, state):
                tally["wrong"].append(case)
        elif kind == "clean":
            tally["clean"] += 1
            if not _names_the_file(value, folder):
                tally["unnamed"].append(f"{case}: {value.render()}")
        else:
            tally[kind].append(f"{case}: {value!r}")
        if name == "nice":
            png = tmp_path / "png" / f"{i}.png"
            result = CliRunner().invoke(cli, ["sample", "nice-mnist", "--model", str(folder), "-n", "4",
                                              "-o", str(png)])
            clean_cli = result.exit_code == 1 and "Error:" in result.output and "Traceback" not in result.output
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                tally["cli"].append(f"{case}: traceback {result.exception!r}")
            elif (kind == "ok") != (result.exit_code == 0) or (kind != "ok" and not clean_cli):
                tally["cli"].append(f"{case}: exit {result.exit_code} {result.output[-300:]}")
            elif kind == "ok" and not png.is_file():
                tally["cli"].append(f"{case}: exit 0 without a picture")
        shutil.rmtree(folder)
    summary = {k: (v if isinstance(v, int) else len(v)) for k, v in tally.items()}
    print(f"fuzz: {tried} cases, {summary}")
    assert tried >= 200
    assert tally["traceback"] == [] and tally["hang"] == [] and tally["wrong"] == [], tally
    assert tally["unnamed"] == [] and tally["cli"] == [], "\n".join(tally["unnamed"] + tally["cli"])
    assert tally["clean"] >= 0.8 * tried  # nearly every mutation is damage the loader must see


def test_a_bit_flipped_float_in_the_header_is_caught_as_a_size_mismatch(originals, tmp_path):
    """F32 -> F16 in a header (one flipped byte) would reinterpret the bytes; the offsets no longer match."""
    from zoo_core import load_model

    folder = tmp_path / "m"
    shutil.copytree(originals["ganqp"][0], folder)
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"F32"', b'"F16"', 1))
    with pytest.raises(ZooError, match="needs .* bytes, its offsets span") as err:
        load_model(folder)
    assert err.value.where.startswith(str(path))


def test_config_sizes_that_disagree_with_the_weights_name_the_tensor_and_both_shapes(originals, tmp_path):
    from zoo_core import load_model

    folder = tmp_path / "m"
    shutil.copytree(originals["nice"][0], folder)
    _edit_config(folder, lambda c: {**c, "hidden": 9})
    with pytest.raises(ZooError) as err:
        load_model(folder)
    assert re.fullmatch(r"tensor 'couplings\.0\.m\.\d\.(weight|bias)' has shape \[8(, 392)?\] in "
                        r"model\.safetensors, but config\.json makes it \[9(, 392)?\]", err.value.what)
    assert err.value.where.endswith("model.safetensors")


def test_float64_tensor_among_float32_is_refused_unless_cast(originals, tmp_path):
    from zoo_core import load_model

    folder = tmp_path / "m"
    shutil.copytree(originals["nice"][0], folder)
    _edit_header(folder, _to_f64)
    with pytest.raises(ZooError, match="mixed dtypes"):
        load_model(folder)
    model = load_model(folder, dtype="float32")  # an explicit cast makes one dtype again
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    model.sample(2)  # and the forward pass works


def test_absurd_sizes_fail_fast_without_allocating(originals, tmp_path):
    import time

    from zoo_core import load_model

    folder = tmp_path / "m"
    shutil.copytree(originals["gpt2ml"][0], folder)
    _edit_config(folder, lambda c: {**c, "num_hidden_layers": 10**9})
    started = time.monotonic()
    with pytest.raises(ZooError, match="far larger than its weights"):
        load_model(folder)
    assert time.monotonic() - started < 5


def test_build_model_checks_types(zoo):
    from zoo_core import build_model

    with pytest.raises(ZooError, match="'hidden' of nice must be an integer, got str '500'"):
        build_model("nice", hidden="500")
    with pytest.raises(ZooError, match="invalid nice config: NICE needs an even dim"):
        build_model("nice", dim=7)
    assert build_model("nice", hidden=4, hidden_layers=1, dim=4).config.hidden == 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_error(originals):
    from zoo_core import load_model

    with pytest.raises(ZooError, match="no CUDA GPU") as err:
        load_model(originals["nice"][0], device="cuda")
    assert "--device cpu" in err.value.hint
    with pytest.raises(ZooError, match="is not a device"):
        load_model(originals["nice"][0], device="gpu")


def test_a_hub_snapshot_may_link_into_its_blobs(originals, tmp_path):
    """The Hugging Face cache layout links snapshots/<commit>/f to ../../blobs/<hash>: that is not leaving."""
    from zoo_core import load_model

    repo = tmp_path / "models--org--nice"
    snap = repo / "snapshots" / ("a" * 40)
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    for p in originals["nice"][0].iterdir():
        blob = repo / "blobs" / p.name
        shutil.copy(p, blob)
        (snap / p.name).symlink_to(os.path.relpath(blob, snap))
    model = load_model(snap)
    assert _faithful(model, snap, originals["nice"][2])


def test_damage_is_found_before_any_tensor_is_read(originals, tmp_path, monkeypatch):
    """Loading never leaves a half state: a bad last shard stops the load before the first is read."""
    import zoo_core.model as zm
    import zoo_core.reader as zr
    from zoo_core import load_model

    folder = tmp_path / "m"
    shutil.copytree(originals["gpt2ml"][0], folder)
    last = _weights(folder)[-1]
    last.write_bytes(last.read_bytes()[:-1])
    calls = []
    monkeypatch.setattr(zr, "_read_cast", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(zm, "read_tensors", lambda *a, **k: calls.append(a))
    with pytest.raises(ZooError, match="truncated"):
        load_model(folder)
    assert calls == []
