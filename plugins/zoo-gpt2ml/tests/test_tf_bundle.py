"""The TensorFlow-free checkpoint reader, on checkpoints written by TensorFlow (tests/fixtures).

clue-h16 was saved by TensorFlow 2's Saver (uncompressed index); legacy-h8's
index was re-encoded with snappy blocks the way TensorFlow 1.x wrote the
released checkpoints, and TensorFlow read it back (scripts/make_tf_fixtures.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo_core import IntegrityError, ZooError
from zoo_gpt2ml import tf_bundle
from zoo_gpt2ml.tf_bundle import TFBundle, mask_crc, masked_crc32c, resolve_prefix

FIXTURES = Path(__file__).parent / "fixtures"
CLUE = FIXTURES / "clue-h16" / "model.ckpt-220000"
LEGACY = FIXTURES / "legacy-h8" / "model.ckpt-100000"


def copy_fixture(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(FIXTURES / name, dst)
    return dst / json.loads((dst / "fixture.json").read_text())["prefix"]


def data_file(prefix: Path) -> Path:
    return Path(f"{prefix}.data-00000-of-00001")


# -- reading what TensorFlow wrote -------------------------------------------------------

@pytest.mark.parametrize("prefix", [CLUE, LEGACY], ids=["tf2-uncompressed", "tf1-snappy"])
def test_reads_header_and_every_entry(prefix):
    fx = json.loads((prefix.parent / "fixture.json").read_text())
    b = TFBundle(prefix)
    assert b.header.num_shards == 1 and b.header.endianness == "little" and b.header.producer == 1
    names = set(b.entries)
    slots = {n for n in names if n.rsplit("/", 1)[-1].startswith("adafactor_")}
    model = {n for n in names if n.startswith("newslm/") and n not in slots}
    assert len(model) == fx["model_tensors"] == 4 + 16 * fx["num_hidden_layers"]
    assert len(slots) == fx["slot_tensors"]
    assert names == model | slots | {"global_step"}
    H, V = fx["hidden_size"], fx["vocab_size"]
    assert b.entries["newslm/embeddings/word_embed"].shape == (V, H)
    assert b.entries["newslm/embeddings/word_embed"].dtype == "float32"
    assert b.entries["newslm/layer01/intermediate/kernel"].shape == (H, fx["intermediate_size"])
    assert b.entries["newslm/embeddings/word_embed/adafactor_vr"].shape == (V,)
    assert b.entries["global_step"].dtype == "int64" and b.entries["global_step"].shape == ()
    # Entries tile the data file exactly, in name order, as TensorFlow's Saver lays them out.
    order = b.file_order()
    assert [e.name for e in order] == sorted(names)
    assert order[0].offset == 0
    assert all(a.offset + a.size == c.offset for a, c in zip(order, order[1:]))
    assert order[-1].offset + order[-1].size == data_file(prefix).stat().st_size


def test_legacy_fixture_index_really_is_snappy_compressed(monkeypatch):
    import cramjam

    calls = []
    real = cramjam.snappy.decompress_raw
    monkeypatch.setattr(cramjam.snappy, "decompress_raw", lambda data: calls.append(len(data)) or real(data))
    TFBundle(LEGACY)
    assert len(calls) >= 3  # the index block and several data blocks
    calls.clear()
    TFBundle(CLUE)
    assert calls == []


def test_values_and_global_step():
    b = TFBundle(CLUE)
    assert int(b.read("global_step")) == 220000
    wte = b.read("newslm/embeddings/word_embed")
    assert wte.dtype == np.float32 and wte.shape == (8021, 16)
    raw = data_file(CLUE).read_bytes()
    e = b.entries["newslm/embeddings/word_embed"]
    np.testing.assert_array_equal(wte, np.frombuffer(raw[e.offset:e.offset + e.size], "<f4").reshape(8021, 16))
    gamma = b.read("newslm/layer00/LayerNorm_mlp_ln0/gamma")
    assert 0.3 < gamma.mean() < 1.7  # the fixture's gammas are drawn around 1, its betas around 0


def test_stream_hashes_the_whole_file_and_matches_read():
    b = TFBundle(LEGACY)
    seen = {}
    for e, arr in b.stream(sha256=True):
        seen[e.name] = arr.copy()
    assert list(seen) == [e.name for e in b.file_order()]
    assert b.sha256 == {data_file(LEGACY): hashlib.sha256(data_file(LEGACY).read_bytes()).hexdigest()}
    for name in ("newslm/layer01/value_layer/kernel", "global_step", "newslm/embeddings/word_embed/adafactor_vr"):
        np.testing.assert_array_equal(seen[name], b.read(name))
    subset = ["newslm/layer00/output/kernel", "global_step"]
    assert sorted(e.name for e, _ in b.stream(subset)) == sorted(subset)


@pytest.mark.parametrize("sha256", [False, True])
def test_stream_with_reused_buffers(sha256):
    b = TFBundle(CLUE)
    seen, buffers = {}, set()
    for e, arr in b.stream(sha256=sha256, reuse_buffers=True):
        buffers.add(arr.__array_interface__["data"][0])
        seen[e.name] = arr.copy()  # a view is only valid until the next item
    assert len(buffers) < len(b.entries) / 5  # a small ring, regrown a few times, not one buffer per tensor
    for name in b.entries:
        np.testing.assert_array_equal(seen[name], b.read(name))
    if sha256:
        assert b.sha256[data_file(CLUE)] == hashlib.sha256(data_file(CLUE).read_bytes()).hexdigest()


@pytest.mark.parametrize("module", ["crc32c", "google_crc32c"])
def test_either_crc32c_package_works(module, monkeypatch):
    pytest.importorskip(module)
    monkeypatch.setattr(tf_bundle, "_CRC32C", None)
    if module == "google_crc32c":  # hide the preferred package to take the fallback
        monkeypatch.setitem(sys.modules, "crc32c", None)
    assert masked_crc32c(bytearray(b"123456789")) == mask_crc(0xE3069283)
    n = sum(1 for _ in TFBundle(LEGACY).stream(sha256=True, reuse_buffers=True))
    assert n == 87


def test_crc32c_and_mask():
    assert masked_crc32c(b"123456789") == mask_crc(0xE3069283)  # the standard crc32c check value
    assert mask_crc(0) == 0xA282EAD8
    assert mask_crc(0x12345678) == ((((0x12345678 >> 15) | (0x12345678 << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def test_resolve_prefix_forms(tmp_path):
    assert resolve_prefix(CLUE) == CLUE
    assert resolve_prefix(f"{CLUE}.index") == CLUE
    assert resolve_prefix(data_file(CLUE)) == CLUE
    assert resolve_prefix(CLUE.parent) == CLUE  # via the `checkpoint` file
    moved = copy_fixture("clue-h16", tmp_path)
    (moved.parent / "checkpoint").unlink()
    assert resolve_prefix(moved.parent) == moved  # via the single *.index
    with pytest.raises(ZooError, match="no checkpoint index"):
        resolve_prefix(tmp_path / "model.ckpt-1")
    with pytest.raises(ZooError, match="cannot tell which checkpoint"):
        resolve_prefix(tmp_path)


# -- damage: each must fail clearly, naming the file and the tensor ------------------------

def test_flipped_byte_in_data_names_the_tensor(tmp_path):
    prefix = copy_fixture("clue-h16", tmp_path)
    b = TFBundle(prefix)
    e = b.entries["newslm/layer01/output/kernel"]
    data = bytearray(data_file(prefix).read_bytes())
    data[e.offset + e.size // 2] ^= 0x01
    data_file(prefix).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="newslm/layer01/output/kernel.*crc32c") as exc:
        b.read("newslm/layer01/output/kernel")
    assert str(data_file(prefix)) in str(exc.value)
    with pytest.raises(IntegrityError, match="newslm/layer01/output/kernel"):
        for _ in TFBundle(prefix).stream(["newslm/embeddings/word_embed"], sha256=True):  # checked even unasked
            pass
    np.testing.assert_array_equal(b.read("newslm/layer01/intermediate/kernel"),
                                  TFBundle(CLUE).read("newslm/layer01/intermediate/kernel"))


def test_truncated_data_file(tmp_path):
    prefix = copy_fixture("legacy-h8", tmp_path)
    last = TFBundle(prefix).file_order()[-1]
    with open(data_file(prefix), "r+b") as f:
        f.truncate(last.offset + 3)
    with pytest.raises(ZooError, match=f"truncated: tensor '{last.name}'") as exc:
        TFBundle(prefix)
    assert str(data_file(prefix)) in str(exc.value)


def test_missing_data_shard(tmp_path):
    prefix = copy_fixture("clue-h16", tmp_path)
    data_file(prefix).unlink()
    with pytest.raises(ZooError, match="data shard .*data-00000-of-00001 of the checkpoint is missing"):
        TFBundle(prefix)


@pytest.mark.parametrize("fixture", ["clue-h16", "legacy-h8"])
def test_corrupt_index_block(tmp_path, fixture):
    prefix = copy_fixture(fixture, tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    raw[40] ^= 0x10  # inside the first data block, whose crc then fails
    index.write_bytes(bytes(raw))
    with pytest.raises(ZooError, match="data block 0 of the index fails its crc32c check") as exc:
        TFBundle(prefix)
    assert str(index) in str(exc.value)


def test_random_file_is_not_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    prefix = tmp_path / "model.ckpt-5"
    Path(f"{prefix}.index").write_bytes(rng.bytes(5000))
    data_file(prefix).write_bytes(rng.bytes(5000))
    with pytest.raises(ZooError, match="not a TensorFlow checkpoint index"):
        TFBundle(prefix)
    Path(f"{prefix}.index").write_bytes(b"model_checkpoint_path: x\n")
    with pytest.raises(ZooError, match="only 25 bytes"):
        TFBundle(prefix)


def test_truncated_index(tmp_path):
    prefix = copy_fixture("legacy-h8", tmp_path)
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:-100])
    with pytest.raises(ZooError, match="not a TensorFlow checkpoint index"):
        TFBundle(prefix)


# -- dtypes, shards, byte order, slices: a minimal bundle writer ----------------------------
# TensorFlow would be the honest writer, but it is not a test dependency; this
# writer follows the same layout as the fixtures TensorFlow wrote.

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(payload)
    if wire == 5:
        return key + struct.pack("<I", payload)
    return key + _varint(len(payload)) + payload


def _block(pairs) -> bytes:
    out = bytearray()
    for key, value in pairs:  # no prefix sharing: restart at every entry
        out += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    restarts = [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def write_bundle(prefix: Path, tensors: dict, *, shards: int = 1, big_endian: bool = False, slices: set = ()):
    """tensors: name -> (dtype code, numpy array). Tensor i goes to shard i % shards."""
    datas = [bytearray() for _ in range(shards)]
    pairs = [(b"", _field(1, 0, shards) + _field(2, 0, int(big_endian)) + _field(3, 2, _field(1, 0, 1)))]
    for i, (name, (code, arr)) in enumerate(sorted(tensors.items())):
        raw = arr.astype(arr.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
        shard = i % shards
        shape = b"".join(_field(2, 2, _field(1, 0, d)) for d in arr.shape)
        entry = (_field(1, 0, code) + _field(2, 2, shape) + _field(3, 0, shard) + _field(4, 0, len(datas[shard]))
                 + _field(5, 0, len(raw)) + _field(6, 5, masked_crc32c(raw)))
        if name in slices:
            entry += _field(7, 2, b"")
        datas[shard] += raw
        pairs.append((name.encode(), entry))
    out = bytearray()

    def put(block: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(block))
        out.extend(block + b"\x00" + struct.pack("<I", masked_crc32c(block + b"\x00")))
        return handle

    data_handle = put(_block(pairs))
    meta = put(_block([]))
    index = put(_block([(pairs[-1][0], data_handle)]))
    out += (meta + index).ljust(40, b"\x00") + struct.pack("<Q", tf_bundle.TABLE_MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(out))
    for s, d in enumerate(datas):
        Path(f"{prefix}.data-{s:05d}-of-{shards:05d}").write_bytes(bytes(d))


def test_dtypes_byte_order_and_shards(tmp_path):
    rng = np.random.default_rng(1)
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    bf16_bits = (f32.view(np.uint32) >> 16).astype(np.uint16)
    tensors = {"a/f32": (1, f32), "b/f16": (19, f32.astype(np.float16)), "c/bf16": (14, bf16_bits),
               "d/i32": (3, np.arange(-3, 4, dtype=np.int32)), "e/i64": (9, np.array(2**40, dtype=np.int64)),
               "f/f64": (2, rng.standard_normal(4)), "g/u8": (4, np.arange(7, dtype=np.uint8)),
               "h/bool": (10, np.array([True, False]))}
    for big_endian in (False, True):
        prefix = tmp_path / f"be{int(big_endian)}" / "ckpt"
        prefix.parent.mkdir()
        write_bundle(prefix, tensors, shards=3, big_endian=big_endian)
        b = TFBundle(prefix)
        assert b.header.num_shards == 3 and b.header.endianness == ("big" if big_endian else "little")
        assert b.entries["c/bf16"].dtype == "bfloat16" and b.entries["b/f16"].dtype == "float16"
        for name, (_, arr) in tensors.items():
            got = b.read(name)
            assert got.shape == arr.shape and got.dtype.newbyteorder("=") == arr.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, arr)
        streamed = {e.name: a for e, a in b.stream(sha256=True)}
        assert set(streamed) == set(tensors) and len(b.sha256) == 3


def test_sliced_and_string_tensors_are_refused(tmp_path):
    prefix = tmp_path / "ckpt"
    write_bundle(prefix, {"part": (1, np.zeros(4, np.float32)), "ok": (1, np.ones(2, np.float32))}, slices={"part"})
    b = TFBundle(prefix)
    with pytest.raises(ZooError, match="'part' is saved in 1 slices"):
        b.read("part")
    np.testing.assert_array_equal(b.read("ok"), np.ones(2, np.float32))
    write_bundle(prefix, {"s": (7, np.zeros(3, np.uint8))})
    with pytest.raises(ZooError, match="tensor 's' has dtype string"):
        TFBundle(prefix).read("s")


def test_size_that_disagrees_with_shape(tmp_path):
    prefix = tmp_path / "ckpt"
    write_bundle(prefix, {"x": (1, np.zeros(6, np.uint8))})  # 6 bytes claimed as float32 [6]
    with pytest.raises(ZooError, match=r"shape \[6\] of float32 needs 24 bytes but the index says 6"):
        TFBundle(prefix).read("x")
