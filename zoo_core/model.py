"""The Model interface: a torch module with a JSON config, saved in the Hugging Face layout.

A model folder holds ``config.json`` (the config plus ``"architecture"``, the
registered ModelSpec name), ``model.safetensors`` (or shards named by
``model.safetensors.index.json`` once the weights pass 2 GB) and ``README.md``,
the model card. Nothing else is needed to load it, and nothing pickled is ever read.

Saving goes through huggingface_hub's ``save_torch_model`` (sharding, shared
tensors) and the card through its ``ModelCard``. Loading is ours rather than
``PyTorchModelHubMixin.from_pretrained``: the mixin falls back to
``pytorch_model.bin`` (pickle) and materialises a randomly initialised model
before copying weights in, where we build on the meta device and assign.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .dtypes import from_safetensors
from .errors import UnsafeFileError, ZooError
from .files import atomic_dir
from .pins import is_pickle

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
CARD_NAME = "README.md"
MAX_SHARD_SIZE = "2GB"


class ZooModel(nn.Module):
    """Base class of every zoo model.

    Subclasses set ``config_class`` (a dataclass of JSON-serialisable fields)
    and ``architecture`` (the name they are registered under), and take the
    config as their only constructor argument.
    """

    config_class: ClassVar[type]
    architecture: ClassVar[str]

    def __init__(self, config):
        super().__init__()
        if isinstance(config, dict):
            config = self.config_class(**config)
        self.config = config

    @classmethod
    def from_config(cls, config: dict | Any | None = None, **overrides) -> ZooModel:
        """Build an untrained model from a config (dataclass or dict) plus overrides."""
        if config is None:
            config = cls.config_class()
        elif isinstance(config, dict):
            config = make_config(cls, config)
        if overrides:
            values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
            config = make_config(cls, {**values, **overrides})
        return cls(config)

    def config_dict(self) -> dict:
        """The config as written to ``config.json``."""
        return {"architecture": self.architecture, **dataclasses.asdict(self.config)}

    def example_inputs(self, batch_size: int = 2) -> tuple:
        """Positional arguments for one forward call on a small batch (used by the contract tests)."""
        raise NotImplementedError(f"{type(self).__name__} must implement example_inputs() for the contract tests")

    def tie_weights(self) -> None:
        """Re-tie shared parameters after loading; models with tied weights override this."""

    def init_non_persistent_buffers(self) -> None:
        """Recompute buffers that are not saved (masks, tables) after a meta-device load."""

    def num_parameters(self) -> int:
        """Number of distinct parameters (tied ones counted once)."""
        return sum(p.numel() for p in self.parameters())

    def save_pretrained(self, folder: str | os.PathLike, *, card: str | None = None,
                        max_shard_size: int | str = MAX_SHARD_SIZE) -> Path:
        """Write config, safetensors weights (sharded past ``max_shard_size``) and model card.

        The folder appears complete or not at all: everything is written to a
        temporary sibling first and then moved into place.
        """
        from huggingface_hub import save_torch_model

        if card is None:
            from .card import model_card

            card = model_card(self.config_dict())
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            save_torch_model(self, tmp, max_shard_size=max_shard_size, metadata={"architecture": self.architecture})
            (tmp / CONFIG_NAME).write_text(json.dumps(self.config_dict(), indent=2) + "\n", encoding="utf-8")
            (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        return folder


def make_config(cls: type[ZooModel], values: dict, *, where: str | None = None):
    """Build ``cls.config_class`` from a dict, naming unknown keys and values of the wrong type clearly.

    ``where`` names the source in errors (a config.json path); the default
    says the values were passed in code.
    """
    fields = {f.name: f for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(values) - set(fields))
    where = where or f"{cls.architecture} config"
    if unknown:
        raise ZooError(
            f"unknown config key(s) for {cls.architecture}: {', '.join(unknown)}", where=where,
            hint=f"valid keys: {', '.join(sorted(fields))}",
        )
    try:
        hints = typing.get_type_hints(cls.config_class)
    except Exception:  # noqa: BLE001 - an annotation that does not resolve: check nothing rather than fail
        hints = {}
    for key, value in values.items():
        expected = hints.get(key)
        if expected is not None and _type_ok(value, expected) is False:
            raise ZooError(f"config key {key!r} of {cls.architecture} must be {_type_name(expected)}, "
                           f"got {type(value).__name__} {_short(value)}", where=where,
                           hint=f"write {key} as {_type_name(expected)}")
    try:
        return cls.config_class(**values)
    except (TypeError, ValueError, AssertionError, ArithmeticError) as exc:  # the config's own __post_init__ checks
        raise ZooError(f"invalid {cls.architecture} config: {exc}", where=where,
                       hint="fix the value it names") from None


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_ok(value, tp) -> bool | None:
    """Whether ``value`` (as read from JSON) fits the annotation ``tp``; None for annotations not checked."""
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return True
    if tp is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        results = [_type_ok(value, arg) for arg in typing.get_args(tp)]
        return True if any(r is not False for r in results) else False
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if tp in (list, tuple) or origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if len(args) == 1:
            return all(_type_ok(v, args[0]) is not False for v in value)
        return True
    if tp is dict or origin is dict:
        return isinstance(value, dict)
    return None


def _type_name(tp) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


# --- reading a model folder: every file checked before anything is built or assigned ---------------

MAX_JSON_BYTES = 16 << 20  # config.json and the index; real ones are a few kB
MAX_HEADER_BYTES = 100 << 20  # the safetensors library's own limit
_NEXT = "the model folder is damaged: pull, convert or train it again (or save it again with save_pretrained)"


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
            raise ZooError(f"{what} is {size} bytes, far more than any real one", where=str(path), hint=_NEXT)
        data = path.read_bytes()
    except OSError as exc:
        raise ZooError(f"cannot read {what}: {exc.strerror or exc}", where=str(path), hint=_NEXT) from None
    return parse_json(data, what, str(path))


def parse_json(data: bytes, what: str, where: str):
    """Strict JSON from bytes (see :func:`read_json`); errors say where in the text the damage is."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ZooError(f"{what} is not UTF-8 text (bad byte at offset {exc.start})", where=where,
                       hint=_NEXT) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ZooError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       where=where, hint=_NEXT) from None
    except RecursionError:
        raise ZooError(f"{what} is nested too deeply to be real", where=where, hint=_NEXT) from None
    except ValueError as exc:  # a duplicate key, NaN, an integer of thousands of digits
        raise ZooError(f"{what} is not valid: {exc}", where=where, hint=_NEXT) from None


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
                               hint=_NEXT)
            n = int.from_bytes(f.read(8), "little")
            if n == 0 or n > size - 8 or n > MAX_HEADER_BYTES:
                raise ZooError(f"{path.name} is not a safetensors file: its header length {n} does not fit "
                               f"its {size} bytes", where=where, hint=_NEXT)
            raw = f.read(n)
    except OSError as exc:
        raise ZooError(f"cannot read {path.name}: {exc.strerror or exc}", where=where, hint=_NEXT) from None
    header = parse_json(raw.rstrip(b" "), f"the header of {path.name}", where)
    if not isinstance(header, dict):
        raise ZooError(f"the header of {path.name} is a JSON {type(header).__name__}, not an object",
                       where=where, hint=_NEXT)
    body = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ZooError(f"the __metadata__ of {path.name} is not a map of strings", where=where, hint=_NEXT)
            continue
        tensors[name] = _tensor_info(name, info, path)
    end = 0
    for t in sorted(tensors.values(), key=lambda t: (t.begin, t.end)):
        if t.begin != end:
            problem = "overlaps the tensor before it" if t.begin < end else f"leaves a gap at byte {end}"
            raise ZooError(f"tensor {t.name!r} of {path.name} {problem} (bytes {t.begin}-{t.end})", where=where,
                           hint=_NEXT)
        end = t.end
    if end != body:
        problem = (f"is truncated: its tensors need {end} bytes of data, the file has {body}" if end > body
                   else f"has {body - end} bytes after its last tensor")
        raise ZooError(f"{path.name} {problem}", where=where, hint=_NEXT)
    return tensors, 8 + n


def _tensor_info(name: str, info, path: Path) -> TensorInfo:
    where = f"{path} (tensor {name!r})"

    def bad(what: str):
        return ZooError(f"tensor {name!r} of {path.name}: {what}", where=where, hint=_NEXT)

    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad("its entry is not {dtype, shape, data_offsets}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(code, str):
        raise bad(f"dtype {_short(code)} is not a string")
    dtype = from_safetensors(code, where=where)
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise bad(f"shape {_short(shape)} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]):
        raise bad(f"data_offsets {_short(offsets)} are not [begin, end]")
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
                           hint=_NEXT)
        shards: dict[str, set[str]] = {}
        for key, name in weight_map.items():
            if not isinstance(name, str):
                raise ZooError(f"{INDEX_NAME} maps {key!r} to {_short(name)}, not a file name", where=str(index),
                               hint=_NEXT)
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
                               hint=_NEXT)
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
            raise ZooError(f"{path.name} {what}", where=str(path), hint=_NEXT)
        for name in tensors:
            if name in owner:
                raise ZooError(f"tensor {name!r} is in both {owner[name].name} and {path.name}", where=str(path),
                               hint=_NEXT)
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
                               where=str(path), hint=_NEXT)
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
                raise ZooError(f"tensor {key!r} is truncated", where=str(path), hint=_NEXT)
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
            raise ZooError(f"cannot read the tensors of {path.name}: {exc}", where=str(path), hint=_NEXT) from None
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
                       hint=_NEXT)
    architecture = config.pop("architecture", None)
    if not isinstance(architecture, str) or not architecture:
        got = "no" if architecture is None else f"the {type(architecture).__name__} {_short(architecture)} as"
        raise ZooError(f"config.json has {got} \"architecture\" (the name of a registered model)",
                       where=str(config_path), hint=f"`zoo plugins` lists the architectures; {_NEXT}")
    return architecture, config


class _TooLarge(Exception):
    pass


@contextlib.contextmanager
def _bounded_build(max_tensors: int, max_numel: int):
    """Abort a model's construction once it registers far more than its weights hold.

    A damaged config (``"num_layers": 10**9``) would otherwise keep Python
    building modules for hours, even on the meta device.
    """
    counts = [0, 0]

    def hook(module, name, tensor):
        if tensor is not None:
            counts[0] += 1
            counts[1] += tensor.numel()
            if counts[0] > max_tensors or counts[1] > max_numel:
                raise _TooLarge

    from torch.nn.modules.module import (
        register_module_buffer_registration_hook,
        register_module_parameter_registration_hook,
    )

    handles = [register_module_parameter_registration_hook(hook), register_module_buffer_registration_hook(hook)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def load_folder(folder: str | os.PathLike, *, device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None) -> ZooModel:
    """Load a model folder: check every file, build on the meta device, then assign the safetensors tensors.

    Damage anywhere (config, headers, index, shapes, dtypes) is a ZooError
    naming the file before any tensor is read; no random initialisation runs
    and no second copy of the weights is made. The model comes back in eval mode.
    """
    from .plugins import get_model_spec

    folder = Path(folder)
    device = check_device(device)
    architecture, config = read_config(folder)
    config_path = str(folder / CONFIG_NAME)
    try:
        cls = get_model_spec(architecture).load()
    except ZooError as exc:  # an architecture no installed plugin registers: say which file names it
        raise type(exc)(f"config.json names architecture {architecture!r}: {exc.what}", where=config_path,
                        hint=f"{exc.hint}; `zoo plugins` lists the installed architectures" if exc.hint
                        else "`zoo plugins` lists the installed architectures") from None
    headers = read_headers(folder)
    infos = [t for tensors, _ in headers.values() for t in tensors.values()]
    numel = sum(math.prod(t.shape) for t in infos)
    try:
        with torch.device("meta"), _bounded_build(2 * len(infos) + 64, 4 * numel + (1 << 24)):
            model = cls(make_config(cls, config, where=config_path))
    except _TooLarge:
        raise ZooError(f"config.json describes a {architecture} model far larger than its weights "
                       f"({len(infos)} tensors, {numel} numbers)", where=config_path,
                       hint="the config and the weights do not belong together; " + _NEXT) from None
    except ZooError as exc:  # the config's own checks: point at the file they checked
        if exc.where == config_path:
            raise
        raise type(exc)(exc.what, where=config_path, hint=exc.hint or "fix the value it names") from None
    except Exception as exc:  # noqa: BLE001 - the model's own constructor rejected the config
        raise ZooError(f"config.json does not make a {architecture} model: {type(exc).__name__}: {exc}",
                       where=config_path, hint="fix the value it names; " + _NEXT) from None
    check_tensors(headers, model.state_dict(), cast=dtype is not None)
    tensors = read_tensors(headers, device=device, dtype=dtype)
    model.load_state_dict(tensors, strict=False, assign=True)
    del tensors
    model.tie_weights()
    missing = [n for n, t in model.state_dict().items() if t.is_meta]
    if missing:
        raise ZooError(f"{len(missing)} tensor(s) missing from the weights, e.g. {missing[0]!r}",
                       where=str(folder), hint="the weight files are incomplete; pull or convert again")
    model.to(device)
    model.init_non_persistent_buffers()
    leftovers = [n for n, b in model.named_buffers() if b.is_meta]
    if leftovers:
        raise ZooError(f"buffer {leftovers[0]!r} is still on the meta device after loading",
                       where=architecture, hint="the model must rebuild it in init_non_persistent_buffers()")
    return model.eval()


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a ZooError when it is not a device name or is not on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ZooError(f"{device!r} is not a device", hint="use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ZooError(f"device {device!r} asked for, but this machine has no CUDA GPU usable by torch "
                           f"{torch.__version__}", hint="use --device cpu (or install a CUDA build of torch)")
        if dev.index is not None and dev.index >= count:
            raise ZooError(f"device {device!r} asked for, but this machine has {count} CUDA GPU(s)",
                           hint=f"use cuda:0 to cuda:{count - 1}")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ZooError(f"device {device!r} asked for, but MPS is not available here", hint="use --device cpu")
    return dev
