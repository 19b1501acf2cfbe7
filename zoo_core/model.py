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

import dataclasses
import json
import os
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
            config = dataclasses.replace(config, **overrides)
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


def make_config(cls: type[ZooModel], values: dict):
    """Build ``cls.config_class`` from a dict, naming unknown keys clearly."""
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ZooError(
            f"unknown config key(s) for {cls.architecture}: {', '.join(unknown)}",
            hint=f"valid keys: {', '.join(sorted(fields))}",
        )
    return cls.config_class(**values)


def refuse_pickles(folder: Path) -> None:
    """Raise if a folder holds weight files in a pickle-based format."""
    for path in sorted(folder.rglob("*")):
        if is_pickle(path.name):
            raise UnsafeFileError(
                f"refusing to load {path.name}: pickle-based weight files can run arbitrary code",
                where=str(path),
                hint="convert the weights to safetensors (safetensors.torch.save_file) and remove the pickle file",
            )


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a model folder, in index order."""
    index = folder / INDEX_NAME
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
        for name in names:
            if Path(name).name != name:
                raise UnsafeFileError(f"index names a file outside the folder: {name!r}", where=str(index))
        return [folder / n for n in names]
    single = folder / WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise ZooError(
        f"no {WEIGHTS_NAME} or {INDEX_NAME} in the model folder",
        where=str(folder),
        hint="a model folder is written by model.save_pretrained() or `zoo convert`",
    )


def _read_cast(path: Path, keys, dtype: torch.dtype, device: torch.device) -> dict[str, torch.Tensor]:
    """Read a safetensors file tensor by tensor with plain reads, casting each floating tensor on the way.

    safe_open maps the whole file, and the pages it touched stay resident until
    the file is closed; casting fp32 weights to bf16 that way peaks at the bf16
    model plus a whole fp32 shard. Plain reads into one tensor at a time keep
    the peak at the cast model plus its largest tensor.
    """
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        # One read buffer, reused: fresh multi-MB allocations per tensor cost more in page faults than the copy.
        largest = max((header[k]["data_offsets"][1] - header[k]["data_offsets"][0] for k in keys), default=0)
        buffer = torch.empty(largest, dtype=torch.uint8)
        out = {}
        for key in keys:
            info = header[key]
            begin, end = info["data_offsets"]
            raw = buffer[: end - begin]
            f.seek(8 + n + begin)
            if f.readinto(raw.numpy()) != end - begin:
                raise ZooError(f"tensor {key!r} is truncated", where=str(path), hint="pull or convert again")
            t = raw.view(from_safetensors(info["dtype"], where=str(path))).view(info["shape"])
            target = dtype if t.is_floating_point() else t.dtype
            out[key] = t.to(device=device, dtype=target, copy=True)
    return out


def read_weights(folder: str | os.PathLike, *, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, expected: set[str] | None = None) -> dict[str, torch.Tensor]:
    """Read every tensor of a model folder's safetensors files, refusing pickles and foreign tensors.

    Without a cast, tensors come from safetensors' memory map; with ``dtype``,
    floating tensors are read and cast one at a time, so the peak stays at the
    cast weights plus one tensor.
    """
    from safetensors import safe_open

    folder = Path(folder)
    device = torch.device(device)
    refuse_pickles(folder)
    tensors: dict[str, torch.Tensor] = {}
    for path in weight_files(folder):
        # Opening validates the header (offsets, dtypes) before anything is read.
        with safe_open(path, framework="pt", device=str(device)) as f:
            keys = list(f.keys())
            for key in keys:
                if expected is not None and key not in expected:
                    raise ZooError(f"unexpected tensor {key!r} in the weights", where=str(path),
                                   hint="the weights and config.json do not belong to the same model")
            if dtype is None:
                tensors.update((key, f.get_tensor(key)) for key in keys)
                continue
        tensors.update(_read_cast(path, keys, dtype, device))
    return tensors


def read_config(folder: str | os.PathLike) -> tuple[str, dict]:
    """(architecture, config values) from a model folder's config.json."""
    config_path = Path(folder) / CONFIG_NAME
    if not config_path.is_file():
        raise ZooError("no config.json in the model folder", where=str(folder),
                       hint="a model folder is written by model.save_pretrained() or `zoo convert`")
    try:
        config = json.loads(config_path.read_text())
        return config.pop("architecture"), config
    except (json.JSONDecodeError, KeyError, AttributeError) as exc:
        raise ZooError(f"config.json is not a zoo model config ({exc})", where=str(config_path)) from None


def load_folder(folder: str | os.PathLike, *, device: str | torch.device = "cpu",
                dtype: torch.dtype | None = None) -> ZooModel:
    """Load a model folder: build on the meta device, then assign the safetensors tensors.

    No random initialisation runs and no second copy of the weights is made.
    The model comes back in eval mode.
    """
    from .plugins import get_model_spec

    folder = Path(folder)
    architecture, config = read_config(folder)
    cls = get_model_spec(architecture).load()
    with torch.device("meta"):
        model = cls(make_config(cls, config))
    device = torch.device(device)
    tensors = read_weights(folder, device=device, dtype=dtype, expected=set(model.state_dict()))
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
