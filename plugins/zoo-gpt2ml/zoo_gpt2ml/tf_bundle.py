"""Read TensorFlow checkpoints (the V2 "tensor bundle" format) without TensorFlow.

A checkpoint ``<prefix>`` is two kinds of file:

* ``<prefix>.index``: a LevelDB-format sorted table. Its data blocks map each
  tensor name to a ``BundleEntryProto`` (dtype, shape, shard, offset, size,
  masked crc32c); the empty key holds the ``BundleHeaderProto`` (number of
  shards, endianness, format version). Blocks may be snappy-compressed and each
  carries a masked crc32c of its stored bytes.
* ``<prefix>.data-NNNNN-of-MMMMM``: the raw tensor bytes, one shard per file.

Everything is decoded here with a few lines of wire-format parsing, so the
reader needs only numpy, ``crc32c`` (hardware crc32c; ``google-crc32c`` works
too) and ``cramjam`` (snappy). Every tensor is checked against its crc32c as it is read, and every
index block against its own, so a corrupt, truncated or foreign file fails
with a :class:`~zoo_core.errors.ZooError` that names the file and the tensor.

Memory stays bounded: :meth:`TFBundle.stream` reads the shards front to back
one tensor at a time, which also lets it hash the whole file in the same pass.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from zoo_core import IntegrityError, ZooError

# LevelDB table constants (table/format.h): a fixed-size footer ends the file,
# and every block is followed by a 1-byte compression type and a 4-byte crc.
TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
MAX_INDEX_BYTES = 1 << 30  # a real index is ~100 KB; refuse to slurp something absurd

# TensorFlow's types.proto DataType codes -> (name, numpy little-endian dtype).
# bfloat16 has no numpy dtype: its raw 16-bit patterns come back as uint16.
DTYPES: dict[int, tuple[str, str]] = {
    1: ("float32", "<f4"), 2: ("float64", "<f8"), 3: ("int32", "<i4"), 4: ("uint8", "|u1"),
    5: ("int16", "<i2"), 6: ("int8", "|i1"), 8: ("complex64", "<c8"), 9: ("int64", "<i8"),
    10: ("bool", "|b1"), 14: ("bfloat16", "<u2"), 17: ("uint16", "<u2"), 18: ("complex128", "<c16"),
    19: ("float16", "<f2"), 22: ("uint32", "<u4"), 23: ("uint64", "<u8"),
}
UNSUPPORTED_DTYPES = {7: "string", 20: "resource", 21: "variant", 11: "qint8", 12: "quint8",
                      13: "qint32", 15: "qint16", 16: "quint16"}

READ_HINT = "re-download or re-copy the checkpoint (.index and every .data-* file); " \
            "compare the .data sha256 with the one its publisher gives"


_CRC32C = None


def _crc32c():
    """The crc32c function: ``crc32c`` (any buffer, no copy), else ``google-crc32c`` (bytes only).

    ``crc32c`` checks the reader's reusable buffers in place; ``google-crc32c``
    accepts only immutable ``bytes``, so with it each tensor is copied once.
    Both use the CPU's crc32c instruction; a pure-Python fallback is refused.
    """
    global _CRC32C
    if _CRC32C is None:
        try:
            import crc32c

            _CRC32C = crc32c.crc32c
        except ImportError:
            try:
                import google_crc32c
            except ImportError:
                raise ZooError("no crc32c implementation is installed",
                               hint="pip install crc32c (or google-crc32c)") from None
            if google_crc32c.implementation != "c":  # its pure-Python fallback reads ~1 MB/s
                raise ZooError("google-crc32c is using its pure-Python fallback, far too slow for checkpoints",
                               hint="pip install crc32c, or reinstall google-crc32c from a binary wheel") from None
            _CRC32C = lambda data: google_crc32c.value(data if isinstance(data, bytes) else bytes(data))  # noqa: E731
    return _CRC32C


def masked_crc32c(data) -> int:
    """TensorFlow's masked crc32c: rotate right by 15 bits and add a constant.

    The mask keeps a crc stored inside data that is itself checksummed from
    degenerating (tsl/lib/hash/crc32c.h).
    """
    return mask_crc(_crc32c()(data))


def mask_crc(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------------
# Protocol-buffer wire format: just enough to read the two bundle messages.

class _WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError("varint runs past the end")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise _WireError("fixed64 runs past the end")
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise _WireError("length-delimited field runs past the end")
            value, pos = bytes(buf[pos:pos + n]), pos + n
        elif wire == 5:
            if pos + 4 > len(buf):
                raise _WireError("fixed32 runs past the end")
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise _WireError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


@dataclass(frozen=True)
class BundleHeader:
    """BundleHeaderProto: how many data shards, their byte order, the format version."""

    num_shards: int = 0
    endianness: str = "little"
    producer: int = 0
    min_consumer: int = 0
    bad_consumers: tuple[int, ...] = ()


@dataclass(frozen=True)
class TensorEntry:
    """BundleEntryProto of one tensor: where its bytes are and how to check them."""

    name: str
    dtype: str  # numpy-style name; "bfloat16" data comes back as uint16 bit patterns
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked, as stored; None if the writer stored none
    num_slices: int = 0
    dtype_code: int = 1

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def _parse_header(value: bytes) -> BundleHeader:
    h = {"num_shards": 0, "endianness": 0, "producer": 0, "min_consumer": 0, "bad": []}
    for number, wire, v in _fields(value):
        if number == 1 and wire == 0:
            h["num_shards"] = v
        elif number == 2 and wire == 0:
            h["endianness"] = v
        elif number == 3 and wire == 2:  # VersionDef
            for n2, w2, v2 in _fields(v):
                if n2 == 1 and w2 == 0:
                    h["producer"] = v2
                elif n2 == 2 and w2 == 0:
                    h["min_consumer"] = v2
                elif n2 == 3:
                    h["bad"] += list(_packed_varints(v2)) if w2 == 2 else [v2]
    if h["endianness"] not in (0, 1):
        raise _WireError(f"unknown endianness {h['endianness']}")
    return BundleHeader(h["num_shards"], "little" if h["endianness"] == 0 else "big",
                        h["producer"], h["min_consumer"], tuple(h["bad"]))


def _packed_varints(buf: bytes) -> Iterator[int]:
    pos = 0
    while pos < len(buf):
        v, pos = _varint(buf, pos)
        yield v


def _parse_entry(name: str, value: bytes) -> TensorEntry:
    dtype_code, dims, shard, offset, size, crc, slices = 0, [], 0, 0, 0, None, 0
    for number, wire, v in _fields(value):
        if number == 1 and wire == 0:
            dtype_code = v
        elif number == 2 and wire == 2:  # TensorShapeProto
            for n2, w2, v2 in _fields(v):
                if n2 == 2 and w2 == 2:  # Dim
                    size_ = 0
                    for n3, w3, v3 in _fields(v2):
                        if n3 == 1 and w3 == 0:
                            size_ = _signed64(v3)
                    dims.append(size_)
                elif n2 == 3 and w2 == 0 and v2:
                    raise _WireError("shape of unknown rank")
        elif number == 3 and wire == 0:
            shard = v
        elif number == 4 and wire == 0:
            offset = _signed64(v)
        elif number == 5 and wire == 0:
            size = _signed64(v)
        elif number == 6 and wire == 5:
            crc = v
        elif number == 7 and wire == 2:
            slices += 1
    if any(d < 0 for d in dims) or offset < 0 or size < 0:
        raise _WireError("negative dimension, offset or size")
    dtype = DTYPES.get(dtype_code, (UNSUPPORTED_DTYPES.get(dtype_code, f"dtype#{dtype_code}"), ""))[0]
    return TensorEntry(name, dtype, tuple(dims), shard, offset, size, crc, slices, dtype_code)


# ---------------------------------------------------------------------------
# LevelDB table: footer -> index block -> data blocks -> (key, value) pairs.

def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _varint(buf, pos)
    size, pos = _varint(buf, pos)
    return offset, size, pos


def _block_entries(block: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Decode a block's prefix-compressed (key, value) entries.

    A block is ``entries | restart offsets (uint32 each) | restart count (uint32)``;
    each entry stores how many leading bytes it shares with the previous key.
    """
    if len(block) < 4:
        raise _WireError("block shorter than its restart count")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise _WireError("restart array larger than the block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        non_shared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + non_shared + value_len > limit:
            raise _WireError("entry runs past the end of its block")
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


class TFBundle:
    """A TensorFlow V2 checkpoint opened for reading, without TensorFlow.

    ``prefix`` is what TensorFlow calls the checkpoint path (``model.ckpt-220000``);
    the ``.index`` file, a folder with a ``checkpoint`` file or a single
    ``*.index`` are accepted too (see :func:`resolve_prefix`).

    ``entries`` maps each tensor name to its :class:`TensorEntry`, in name
    order. Opening checks the index's structure and block checksums and that
    every data shard exists and is long enough for the tensors it should hold.
    """

    def __init__(self, prefix: str | os.PathLike):
        self.prefix = resolve_prefix(prefix)
        self.index_path = Path(f"{self.prefix}.index")
        self.header, self.entries, self.slice_keys = self._read_index()
        self.data_paths = [Path(f"{self.prefix}.data-{i:05d}-of-{self.header.num_shards:05d}")
                           for i in range(self.header.num_shards)]
        self._check_data_files()

    # -- index ---------------------------------------------------------------
    def _fail(self, what: str, hint: str | None = None) -> ZooError:
        return ZooError(what, where=str(self.index_path), hint=hint or READ_HINT)

    def _read_index(self) -> tuple[BundleHeader, dict[str, TensorEntry], list[bytes]]:
        path = self.index_path
        size = path.stat().st_size
        not_ckpt = "it is not a TensorFlow checkpoint index (or it is truncated)"
        if size < FOOTER_SIZE:
            raise self._fail(f"index file is only {size} bytes: {not_ckpt}")
        if size > MAX_INDEX_BYTES:
            raise self._fail(f"index file is {size} bytes, far larger than any checkpoint index: {not_ckpt}")
        buf = path.read_bytes()
        footer = buf[-FOOTER_SIZE:]
        magic = int.from_bytes(footer[-8:], "little")
        if magic != TABLE_MAGIC:
            raise self._fail(f"no table magic number at the end of the file: {not_ckpt}")
        try:
            _, _, pos = _block_handle(footer, 0)  # metaindex: TensorFlow leaves it empty
            index_off, index_size, _ = _block_handle(footer, pos)
        except _WireError as exc:
            raise self._fail(f"corrupt table footer ({exc})") from None
        index_block = self._read_block(buf, index_off, index_size, "index block")
        header: BundleHeader | None = None
        entries: dict[str, TensorEntry] = {}
        slice_keys: list[bytes] = []
        try:
            handles = [_block_handle(v, 0)[:2] for _, v in _block_entries(index_block)]
        except _WireError as exc:
            raise self._fail(f"corrupt index block ({exc})") from None
        for n, (off, sz) in enumerate(handles):
            block = self._read_block(buf, off, sz, f"data block {n}")
            try:
                for key, value in _block_entries(block):
                    if key == b"":
                        header = _parse_header(value)
                    elif key[:1] == b"\x00":  # ordered-code slice key of a partitioned tensor
                        slice_keys.append(key)
                    else:
                        name = key.decode("utf-8")
                        entries[name] = _parse_entry(name, value)
            except (_WireError, UnicodeDecodeError) as exc:
                raise self._fail(f"corrupt entry in data block {n} of the index ({exc})") from None
        if header is None:
            raise self._fail(f"the index has no bundle header: {not_ckpt}")
        if header.min_consumer > 1:
            raise self._fail(f"the checkpoint needs bundle format version ≥ {header.min_consumer}; "
                             "this reader knows version 1",
                             hint="re-save the checkpoint with TensorFlow 1.x/2.x's standard Saver")
        if header.num_shards < 1 and entries:
            raise self._fail("the bundle header says there are no data shards")
        for e in entries.values():
            if e.shard_id >= header.num_shards:
                raise self._fail(f"tensor {e.name!r} is in shard {e.shard_id}, "
                                 f"but the header says there are {header.num_shards}")
        return header, entries, slice_keys

    def _read_block(self, buf: bytes, offset: int, size: int, what: str) -> bytes:
        end = offset + size + BLOCK_TRAILER_SIZE
        if end > len(buf) - FOOTER_SIZE:
            raise self._fail(f"{what} at bytes [{offset}, {end}) runs past the end of the index")
        stored = buf[offset:offset + size]
        kind = buf[offset + size]
        (crc,) = struct.unpack_from("<I", buf, offset + size + 1)
        # The block crc covers the stored (possibly compressed) bytes plus the type byte.
        if mask_crc(_crc32c()(buf[offset:offset + size + 1])) != crc:
            raise self._fail(f"{what} of the index fails its crc32c check: the index file is corrupt")
        if kind == NO_COMPRESSION:
            return stored
        if kind == SNAPPY_COMPRESSION:
            import cramjam

            try:
                return bytes(cramjam.snappy.decompress_raw(stored))
            except cramjam.DecompressionError as exc:
                raise self._fail(f"{what} of the index does not decompress ({exc})") from None
        raise self._fail(f"{what} of the index uses compression type {kind}, which TensorFlow never writes")

    # -- data ----------------------------------------------------------------
    def _check_data_files(self) -> None:
        sizes = {}
        for i, p in enumerate(self.data_paths):
            if not p.is_file():
                raise ZooError(f"data shard {p.name} of the checkpoint is missing", where=str(p),
                               hint=f"put every {self.prefix.name}.data-* file next to {self.index_path.name}")
            sizes[i] = p.stat().st_size
        for e in self.file_order():
            if e.offset + e.size > sizes[e.shard_id]:
                p = self.data_paths[e.shard_id]
                raise ZooError(
                    f"data file is truncated: tensor {e.name!r} needs bytes [{e.offset}, {e.offset + e.size}) "
                    f"but the file has {sizes[e.shard_id]} bytes", where=str(p), hint=READ_HINT)

    def file_order(self) -> list[TensorEntry]:
        """All entries in the order their bytes lie in the data shards."""
        return sorted(self.entries.values(), key=lambda e: (e.shard_id, e.offset, e.name))

    def _check_readable(self, e: TensorEntry) -> np.dtype:
        where = f"{self.index_path} (tensor {e.name!r})"
        if e.num_slices:
            raise ZooError(f"tensor {e.name!r} is saved in {e.num_slices} slices (a partitioned variable), "
                           "which this reader does not support", where=where,
                           hint="re-save it unpartitioned from TensorFlow")
        if e.dtype_code not in DTYPES:
            raise ZooError(f"tensor {e.name!r} has dtype {e.dtype}, which this reader does not support",
                           where=where, hint="only numeric tensors can be read")
        dt = np.dtype(DTYPES[e.dtype_code][1])
        if self.header.endianness == "big":
            dt = dt.newbyteorder(">")
        if e.numel * dt.itemsize != e.size:
            raise ZooError(f"tensor {e.name!r}: shape {list(e.shape)} of {e.dtype} needs {e.numel * dt.itemsize} "
                           f"bytes but the index says {e.size}", where=where, hint=READ_HINT)
        return dt

    def _decode(self, e: TensorEntry, raw, dt: np.dtype) -> np.ndarray:
        if e.crc32c is not None and masked_crc32c(raw) != e.crc32c:
            raise IntegrityError(f"tensor {e.name!r} fails its crc32c check: its bytes in the data file are corrupt",
                                 where=f"{self.data_paths[e.shard_id]} (bytes {e.offset}..{e.offset + e.size})",
                                 hint=READ_HINT)
        arr = np.frombuffer(raw, dtype=dt).reshape(e.shape)
        if dt.byteorder == ">":
            arr = arr.astype(dt.newbyteorder("="))
        return arr

    def _short_read(self, e: TensorEntry, got: int) -> ZooError:
        return ZooError(f"data file ended early while reading tensor {e.name!r} ({got} of {e.size} bytes)",
                        where=str(self.data_paths[e.shard_id]), hint=READ_HINT)

    def read(self, name: str) -> np.ndarray:
        """Read one tensor by name, verifying its crc32c. bfloat16 comes back as uint16 bits."""
        if name not in self.entries:
            raise ZooError(f"no tensor {name!r} in the checkpoint", where=str(self.index_path),
                           hint="list the names with TFBundle(prefix).entries")
        e = self.entries[name]
        dt = self._check_readable(e)
        buf = memoryview(bytearray(e.size))
        with open(self.data_paths[e.shard_id], "rb", buffering=0) as f:
            f.seek(e.offset)
            got = _read_into(f, buf)
        if got != e.size:
            raise self._short_read(e, got)
        return self._decode(e, buf, dt)

    def stream(self, names: Iterable[str] | None = None, *, sha256: bool = False, reuse_buffers: bool = False,
               on_bytes: Callable[[int], None] | None = None) -> Iterator[tuple[TensorEntry, np.ndarray]]:
        """Read the shards front to back and yield ``(entry, array)`` for each tensor in ``names``.

        Tensors come in file order (see :meth:`file_order`), one at a time,
        each verified against its crc32c. Tensors not in ``names`` (default:
        all) are skipped with a seek, unless ``sha256`` is set: then every byte
        of every shard is read, checked and hashed on the way (in a helper
        thread), and :attr:`sha256` maps each shard's path to its hex digest
        once the stream is exhausted.

        With ``reuse_buffers`` the arrays are views into a few buffers that
        are recycled: each is valid only until the next item is requested.
        That keeps memory flat and saves the page faults of fresh allocations
        (about 3x faster reading); the converter uses it. bfloat16 comes back
        as uint16 bits, big-endian data as a converted copy.
        """
        wanted = set(self.entries) if names is None else set(names)
        unknown = wanted - set(self.entries)
        if unknown:
            raise ZooError(f"no tensor {sorted(unknown)[0]!r} in the checkpoint", where=str(self.index_path))
        self.sha256: dict[Path, str] = {}
        order = self.file_order()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") if sha256 else None
        # A buffer being hashed must not be refilled: keep a ring of them and
        # wait for a buffer's hash before reusing it.
        ring: list[bytearray] = [bytearray(0) for _ in range(3 if sha256 else 1)]
        busy: list[Future | None] = [None] * len(ring)
        slot = -1
        on_bytes = on_bytes or (lambda n: None)

        def next_buffer(n: int) -> memoryview:
            nonlocal slot
            if not reuse_buffers:
                return memoryview(bytearray(n))
            slot = (slot + 1) % len(ring)
            if busy[slot] is not None:
                busy[slot].result()
                busy[slot] = None
            if len(ring[slot]) < n:
                ring[slot] = bytearray(n)
            return memoryview(ring[slot])[:n]

        def fill(f, e: TensorEntry | None, n: int) -> memoryview:
            buf = next_buffer(n)
            got = _read_into(f, buf)
            if got != n and e is not None:
                raise self._short_read(e, got)
            return buf[:got]

        def hash_update(h, buf: memoryview) -> None:
            future = pool.submit(h.update, buf)
            if reuse_buffers:
                busy[slot] = future
            else:
                busy.append(future)
                while len(busy) > 3:  # bound the bytes held for hashing
                    item = busy.pop(0)
                    if item is not None:
                        item.result()

        try:
            for shard_id, path in enumerate(self.data_paths):
                h = hashlib.sha256() if sha256 else None
                with open(path, "rb", buffering=0) as f:
                    pos = 0
                    for e in (e for e in order if e.shard_id == shard_id):
                        if e.offset < pos:
                            raise ZooError(f"tensor {e.name!r} overlaps the previous tensor in the data file",
                                           where=str(self.index_path), hint=READ_HINT)
                        if e.name not in wanted and h is None:
                            continue
                        while h is not None and pos < e.offset:  # padding between tensors (data_alignment > 1)
                            gap = fill(f, None, min(e.offset - pos, 1 << 24))
                            if not gap:
                                raise self._short_read(e, 0)
                            hash_update(h, gap)
                            on_bytes(len(gap))
                            pos += len(gap)
                        f.seek(e.offset)
                        raw = fill(f, e, e.size)
                        pos = e.offset + e.size
                        arr = None
                        if e.name in wanted:
                            arr = self._decode(e, raw, self._check_readable(e))
                        elif e.dtype_code in DTYPES and not e.num_slices and e.crc32c is not None:
                            self._decode(e, raw, self._check_readable(e))  # read anyway: check it too
                        if h is not None:
                            hash_update(h, raw)
                        on_bytes(len(raw))
                        del raw
                        if e.name in wanted:
                            yield e, arr
                        del arr
                    if h is not None:
                        f.seek(pos)
                        while tail := fill(f, None, 1 << 24):  # whatever follows the last tensor
                            hash_update(h, tail)
                            on_bytes(len(tail))
                if h is not None:
                    for future in busy:
                        if future is not None:
                            future.result()
                    busy = [None] * len(ring)
                    self.sha256[path] = h.hexdigest()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __repr__(self) -> str:
        return f"TFBundle({str(self.prefix)!r}, {len(self.entries)} tensors, {self.header.num_shards} shard(s))"


def _read_into(f, buf: memoryview) -> int:
    """Fill ``buf`` from a raw file; returns the bytes read (fewer only at end of file)."""
    got = 0
    while got < len(buf):
        n = f.readinto(buf[got:])
        if not n:
            break
        got += n
    return got


def resolve_prefix(source: str | os.PathLike) -> Path:
    """Turn what a user typed into a checkpoint prefix.

    Accepts the prefix itself (``/x/model.ckpt-220000``), its ``.index`` or a
    ``.data-*`` file, or a folder holding a TensorFlow ``checkpoint`` file or a
    single ``*.index``.
    """
    p = Path(source).expanduser()
    if p.is_dir():
        ckpt_file = p / "checkpoint"
        if ckpt_file.is_file():
            for line in ckpt_file.read_text(errors="replace").splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "model_checkpoint_path":
                    name = Path(value.strip().strip('"'))
                    cand = name if name.is_absolute() else p / name
                    if Path(f"{cand}.index").is_file():
                        return cand
                    cand = p / name.name  # the folder was moved since the checkpoint was written
                    if Path(f"{cand}.index").is_file():
                        return cand
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        raise ZooError(f"cannot tell which checkpoint to use in this folder ({len(indexes)} *.index files)",
                       where=str(p), hint="pass the checkpoint prefix, e.g. /path/model.ckpt-220000")
    if p.suffix == ".index":
        p = p.with_suffix("")
    elif ".data-" in p.name:
        p = p.with_name(p.name.split(".data-")[0])
    if not Path(f"{p}.index").is_file():
        raise ZooError(f"no checkpoint index {p.name}.index", where=str(p.parent),
                       hint="pass the checkpoint prefix (the path without .index / .data-00000-of-00001)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m zoo_gpt2ml.tf_bundle PREFIX``: list a checkpoint's tensors."""
    argv = sys.argv[1:] if argv is None else argv
    b = TFBundle(argv[0])
    print(f"# {b!r}: {b.header}")
    for e in b.entries.values():
        print(f"{e.name}\t{e.dtype}\t{list(e.shape)}\tshard {e.shard_id}\t@{e.offset}+{e.size}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
