"""Reading a model folder: every file checked before anything is built or assigned.

A model folder holds ``config.json``, ``model.safetensors`` (or shards named by
``model.safetensors.index.json``) and ``README.md``. Everything here reads
those files as untrusted input: strict JSON (no duplicate keys, no NaN, a size
limit), safetensors headers checked field by field against the file, index
entries that stay inside the folder, no link leading out of it, and no pickle
anywhere. Damage is a ZooError naming the file, raised before any tensor is
read. Building the model from what was read is :func:`zoo_core.model.load_folder`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import torch

from .dtypes import from_safetensors
from .errors import UnsafeFileError, ZooError
from .pins import is_pickle
from .typed import short

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
CARD_NAME = "README.md"

MAX_JSON_BYTES = 16 << 20  # config.json and the index; real ones are a few kB
MAX_HEADER_BYTES = 100 << 20  # the safetensors library's own limit
DAMAGED_HINT = "the model folder is damaged: pull, convert or train it again (or save it again with save_pretrained)"


def _inside(folder: Path, path: Path) -> None:
    """Refuse a file that is a link leading out of the model folder (a Hub snapshot may link into its blobs)."""
    if not path.is_symlink():
        return
    target = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(folder))]
    if folder.parent.name == "snapshots":  # the Hugging Face cache: snapshots/<commit>/f -> ../../blobs/<hash>
        roots.append(Path(os.path.realpath(folder.parent.parent / "blobs")))
    if not any(target == root or root in target.parents for root in roots):
        raise UnsafeFileError(f"{path.name} is a link to {target}, outside the model folder", where=str(path),
                              hint="copy the file into the folder instead of linking to it")


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: Path, what: str, *, limit: int = MAX_JSON_BYTES):
    """Parse a small JSON file strictly (UTF-8, no duplicate keys, no NaN), or raise a ZooError naming it."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ZooError(f"{what} is {size} bytes, far more than any real one", where=str(path), hint=DAMAGED_HINT)
        data = path.read_bytes()
    except OSError as exc:
        raise ZooError(f"cannot read {what}: {exc.strerror or exc}", where=str(path), hint=DAMAGED_HINT) from None
    return parse_json(data, what, str(path))


def parse_json(data: bytes, what: str, where: str):
    """Strict JSON from bytes (see :func:`read_json`); errors say where in the text the damage is."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZooError(f"{what} is not UTF-8 text (bad byte at offset {exc.start})", where=where,
                       hint=DAMAGED_HINT) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ZooError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       where=where, hint=DAMAGED_HINT) from None
    except RecursionError:
        raise ZooError(f"{what} is nested too deeply to be real", where=where, hint=DAMAGED_HINT) from None
    except ValueError as exc:  # a duplicate key, NaN, an integer of thousands of digits
        raise ZooError(f"{what} is not valid: {exc}", where=where, hint=DAMAGED_HINT) from None


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a safetensors header, checked against the file."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    begin: int  # byte offsets into the data section
    end: int


def read_header(path: Path) -> tuple[dict[str, TensorInfo], int]:
    """The tensors of a safetensors file and where its data section starts, with every field checked.

    The checks are the format's own: a header length that fits the file, a
    JSON object of ``{dtype, shape, data_offsets}`` entries whose byte ranges
    match their shapes and tile the data section exactly (no gap, no overlap,
    nothing missing at the end).
    """
    where = str(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise ZooError(f"{path.name} is {size} bytes, too short for a safetensors file", where=where,
                               hint=DAMAGED_HINT)
            n = int.from_bytes(f.read(8), "little")
            if n == 0 or n > size - 8 or n > MAX_HEADER_BYTES:
                raise ZooError(f"{path.name} is not a safetensors file: its header length {n} does not fit "
                               f"its {size} bytes", where=where, hint=DAMAGED_HINT)
            raw = f.read(n)
    except OSError as exc:
        raise ZooError(f"cannot read {path.name}: {exc.strerror or exc}", where=where, hint=DAMAGED_HINT) from None
    header = parse_json(raw.rstrip(b" "), f"the header of {path.name}", where)
    if not isinstance(header, dict):
        raise ZooError(f"the header of {path.name} is a JSON {type(header).__name__}, not an object",
                       where=where, hint=DAMAGED_HINT)
    body = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ZooError(f"the __metadata__ of {path.name} is not a map of strings", where=where,
                               hint=DAMAGED_HINT)
            continue
        tensors[name] = _tensor_info(name, info, path)
    end = 0
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin != end:
            problem = "overlaps the tensor before it" if t.begin < end else f"leaves a gap at byte {end}"
            raise ZooError(f"tensor {t.name!r} of {path.name} {problem} (bytes {t.begin}-{t.end})", where=where,
                           hint=DAMAGED_HINT)
        end = t.end
    if end != body:
        problem = (f"is truncated: its tensors need {end} bytes of data, the file has {body}" if end > body
                   else f"has {body - end} bytes after its last tensor")
        raise ZooError(f"{path.name} {problem}", where=where, hint=DAMAGED_HINT)
    return tensors, 8 + n


def _tensor_info(name: str, info, path: Path) -> TensorInfo:
    where = f"{path} (tensor {name!r})"

    def bad(what: str):
        return ZooError(f"tensor {name!r} of {path.name}: {what}", where=where, hint=DAMAGED_HINT)

    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad("its entry is not {dtype, shape, data_offsets}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str):
        raise bad(f"dtype {short(code)} is not a string")
    dtype = from_safetensors(code, where=where)
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise bad(f"shape {short(shape)} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise bad(f"data_offsets {short(offsets)} are not [begin, end]")
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if offsets[1] - offsets[0] != nbytes:
        raise bad(f"shape {shape} of {code} needs {nbytes} bytes, its offsets span {offsets[1] - offsets[0]}")
    return TensorInfo(name, dtype, tuple(shape), offsets[0], offsets[1])


def refuse_pickles(folder: Path) -> None:
    """Raise if a folder holds weight files in a pickle-based format."""
    for root, dirs, names in os.walk(folder):  # links to folders are not followed
        dirs.sort()
        for name in sorted(names):
            if is_pickle(name):
                path = Path(root) / name
                raise UnsafeFileError(
                    f"refusing to load {path.name}: pickle-based weight files can run arbitrary code",
                    where=str(path),
                    hint="convert the weights to safetensors (safetensors.torch.save_file) and remove the pickle file",
                )


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder, in index order (every one checked to exist inside it)."""
    return list(_weight_map(folder))


def _weight_map(folder: Path) -> dict[Path, set[str] | None]:
    """Each weights file and the tensor names the index assigns to it (None: no index, any)."""
    index = folder / INDEX_NAME
    if index.is_file() or index.is_symlink():
        _inside(folder, index)
        data = read_json(index, INDEX_NAME)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ZooError(f"{INDEX_NAME} has no weight_map (tensor name -> shard file)", where=str(index),
                           hint=DAMAGED_HINT)
        shards: dict[str, set[str]] = {}
        for key, name in weight_map.items():
            if not isinstance(name, str):
                raise ZooError(f"{INDEX_NAME} maps {key!r} to {short(name)}, not a file name", where=str(index),
                               hint=DAMAGED_HINT)
            shards.setdefault(name, set()).add(key)
        out: dict[Path, set[str] | None] = {}
        for name in sorted(shards):
            if (Path(name).name != name or name in (".", "..") or "\\" in name or "\0" in name
                    or not name.endswith(".safetensors")):
                raise UnsafeFileError(f"index names a file outside the folder: {name!r}", where=str(index),
                                      hint="shard names are plain .safetensors file names in the model folder")
            path = folder / name
            if not path.is_file():
                raise ZooError(f"{INDEX_NAME} names shard {name!r}, which is not in the folder", where=str(index),
                               hint=DAMAGED_HINT)
            _inside(folder, path)
            out[path] = shards[name]
        return out
    single = folder / WEIGHTS_NAME
    if single.is_file():
        _inside(folder, single)
        return {single: None}
    raise ZooError(
        f"no {WEIGHTS_NAME} or {INDEX_NAME} in the model folder",
        where=str(folder),
        hint="a model folder is written by model.save_pretrained() or `zoo convert`",
    )


Headers = dict[Path, tuple[dict[str, TensorInfo], int]]  # weights file -> (its tensors, where its data starts)


def read_headers(folder: str | os.PathLike) -> Headers:
    """Every weights file of a model folder with its checked header; refuses pickles and files outside it."""
    folder = Path(folder)
    refuse_pickles(folder)
    out: Headers = {}
    owner: dict[str, Path] = {}
    for path, assigned in _weight_map(folder).items():
        tensors, start = read_header(path)
        if assigned is not None and set(tensors) != assigned:
            extra = sorted(set(tensors) - assigned)
            lost = sorted(assigned - set(tensors))
            what = (f"holds tensor {extra[0]!r}, which {INDEX_NAME} does not assign to it" if extra
                    else f"lacks tensor {lost[0]!r}, which {INDEX_NAME} says it holds")
            raise ZooError(f"{path.name} {what}", where=str(path), hint=DAMAGED_HINT)
        for name in tensors:
            if name in owner:
                raise ZooError(f"tensor {name!r} is in both {owner[name].name} and {path.name}", where=str(path),
                               hint=DAMAGED_HINT)
            owner[name] = path
        out[path] = (tensors, start)
    return out


def check_tensors(headers: Headers, expected: dict[str, torch.Tensor],
                  *, cast: bool) -> None:
    """Check the weights' names, shapes and dtypes against a model's (meta) state dict before reading any.

    Without a cast, every floating tensor the model keeps in one dtype must be
    stored in one dtype (a float64 tensor among float32 ones would make a
    model that fails at its first forward pass); integer tensors always keep
    the model's dtype.
    """
    stored: dict[torch.dtype, tuple[torch.dtype, str, Path]] = {}
    for path, (tensors, _) in headers.items():
        for name, info in tensors.items():
            want = expected.get(name)
            if want is None:
                raise ZooError(f"unexpected tensor {name!r} in the weights", where=str(path),
                               hint="the weights and config.json do not belong to the same model")
            if tuple(want.shape) != info.shape:
                raise ZooError(f"tensor {name!r} has shape {list(info.shape)} in {path.name}, but config.json "
                               f"makes it {list(want.shape)}", where=str(path),
                               hint="the weights and config.json do not belong to the same model")
            if want.is_floating_point() != info.dtype.is_floating_point or (
                    not want.is_floating_point() and want.dtype != info.dtype):
                raise ZooError(f"tensor {name!r} is {info.dtype} in {path.name}, the model needs {want.dtype}",
                               where=str(path), hint=DAMAGED_HINT)
            if want.is_floating_point() and not cast:
                first = stored.setdefault(want.dtype, (info.dtype, name, path))
                if first[0] != info.dtype:
                    raise ZooError(f"tensor {name!r} is {info.dtype} in {path.name} but {first[1]!r} is "
                                   f"{first[0]} in {first[2].name}: a model of mixed dtypes", where=str(path),
                                   hint="load with dtype=... (--dtype) to cast them all to one, or save the "
                                        "weights again in one dtype")


def _read_cast(path: Path, tensors: dict[str, TensorInfo], start: int, dtype: torch.dtype | None,
               device: torch.device) -> dict[str, torch.Tensor]:
    """Read a safetensors file tensor by tensor with plain reads, casting each floating tensor on the way.

    safe_open maps the whole file, and the pages it touched stay resident until
    the file is closed; casting fp32 weights to bf16 that way peaks at the bf16
    model plus a whole fp32 shard. Plain reads into one tensor at a time keep
    the peak at the cast model plus its largest tensor.
    """
    with open(path, "rb") as f:
        # One read buffer, reused: fresh multi-MB allocations per tensor cost more in page faults than the copy.
        largest = max((t.end - t.begin for t in tensors.values()), default=0)
        buffer = torch.empty(largest, dtype=torch.uint8)
        out = {}
        for key, info in tensors.items():
            raw = buffer[: info.end - info.begin]
            f.seek(start + info.begin)
            if f.readinto(raw.numpy()) != info.end - info.begin:
                raise ZooError(f"tensor {key!r} is truncated", where=str(path), hint=DAMAGED_HINT)
            t = raw.view(info.dtype).view(info.shape)
            target = dtype if dtype is not None and t.is_floating_point() else t.dtype
            out[key] = t.to(device=device, dtype=target, copy=True)
    return out


def read_weights(folder: str | os.PathLike, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None,
                 expected: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Read every tensor of a model folder's safetensors files, refusing pickles, damage and foreign tensors.

    Every header is checked (and, with ``expected``, a model's state dict:
    every name, shape and dtype) before any tensor is read.
    """
    headers = read_headers(folder)
    if expected is not None:
        check_tensors(headers, expected, cast=dtype is not None)
    return read_tensors(headers, device=device, dtype=dtype)


def read_tensors(headers: Headers, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The tensors of checked headers. Without a cast, on the CPU, they come from safetensors' memory map;
    otherwise floating tensors are read and cast one at a time, so the peak stays at the cast weights plus
    one tensor."""
    from safetensors import safe_open

    device = torch.device(device)
    tensors: dict[str, torch.Tensor] = {}
    for path, (infos, start) in headers.items():
        try:
            if dtype is None and device.type == "cpu":
                with safe_open(path, framework="pt", device="cpu") as f:
                    tensors.update((key, f.get_tensor(key)) for key in infos)
            else:
                tensors.update(_read_cast(path, infos, start, dtype, device))
        except ZooError:
            raise
        except Exception as exc:  # noqa: BLE001 - the file changed under us, or the disk failed mid-read
            raise ZooError(f"cannot read the tensors of {path.name}: {exc}", where=str(path),
                           hint=DAMAGED_HINT) from None
    return tensors


def read_config(folder: str | os.PathLike) -> tuple[str, dict]:
    """(architecture, config values) from a model folder's config.json, checked to be a config at all."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise ZooError("no config.json in the model folder", where=str(folder),
                       hint="a model folder is written by model.save_pretrained() or `zoo convert`")
    _inside(folder, config_path)
    config = read_json(config_path, CONFIG_NAME)
    if not isinstance(config, dict):
        raise ZooError(f"config.json holds a JSON {type(config).__name__}, not an object", where=str(config_path),
                       hint=DAMAGED_HINT)
    architecture = config.pop("architecture", None)
    if not isinstance(architecture, str) or not architecture:
        got = "no" if architecture is None else f"the {type(architecture).__name__} {short(architecture)} as"
        raise ZooError(f"config.json has {got} \"architecture\" (the name of a registered model)",
                       where=str(config_path), hint=f"`zoo plugins` lists the architectures; {DAMAGED_HINT}")
    return architecture, config

