"""The Model interface: a torch module with a JSON config, saved in the Hugging Face layout.

A model folder holds ``config.json`` (the config plus ``"architecture"``, the
registered ModelSpec name), ``model.safetensors`` (or shards named by
``model.safetensors.index.json`` once the weights pass 2 GB) and ``README.md``,
the model card. Nothing else is needed to load it, and nothing pickled is ever read.

Saving goes through huggingface_hub's ``save_torch_model`` (sharding, shared
tensors) and the card through its ``ModelCard``. Loading is ours rather than
``PyTorchModelHubMixin.from_pretrained``: the mixin falls back to
``pytorch_model.bin`` (pickle) and materialises a randomly initialised model
before copying weights in, where we build on the meta device and assign. Every
file is checked by :mod:`zoo_core.reader` before anything is built.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from .errors import ZooError
from .files import atomic_dir
from .reader import (
    CARD_NAME,
    CONFIG_NAME,
    DAMAGED_HINT,
    check_tensors,
    read_config,
    read_headers,
    read_tensors,
)
from .typed import field_types, short, type_name, type_ok

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
    hints = field_types(cls.config_class)
    for key, value in values.items():
        expected = hints.get(key)
        if expected is not None and type_ok(value, expected) is False:
            raise ZooError(f"config key {key!r} of {cls.architecture} must be {type_name(expected)}, "
                           f"got {type(value).__name__} {short(value)}", where=where,
                           hint=f"write {key} as {type_name(expected)}")
    try:
        return cls.config_class(**values)
    except (TypeError, ValueError, AssertionError, ArithmeticError) as exc:  # the config's own __post_init__ checks
        raise ZooError(f"invalid {cls.architecture} config: {exc}", where=where,
                       hint="fix the value it names") from None


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
                       hint="the config and the weights do not belong together; " + DAMAGED_HINT) from None
    except ZooError as exc:  # the config's own checks: point at the file they checked
        if exc.where == config_path:
            raise
        raise type(exc)(exc.what, where=config_path, hint=exc.hint or "fix the value it names") from None
    except Exception as exc:  # noqa: BLE001 - the model's own constructor rejected the config
        raise ZooError(f"config.json does not make a {architecture} model: {type(exc).__name__}: {exc}",
                       where=config_path, hint="fix the value it names; " + DAMAGED_HINT) from None
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
