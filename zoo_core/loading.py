"""``load_model`` and ``build_model``: the Python entry points of the zoo."""

from __future__ import annotations

import os

import torch

from .dtypes import as_dtype
from .errors import ZooError
from .model import ZooModel, load_folder
from .resolve import resolve_folder  # also zoo_core.resolve_folder's old home


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu",
               dtype: str | torch.dtype | None = None, architecture: str | None = None) -> ZooModel:
    """Load pretrained weights and return the model in eval mode.

    ``name_or_path`` is a catalogue id (pulled and sha256-verified on first use),
    a local model folder, ``"hf-hub:org/repo@revision"`` or a training recipe's
    name (the model ``zoo train NAME`` produced): what ``resolve_folder``
    accepts (zoo_core/resolve.py). Only safetensors
    are read; a pickle file anywhere in the folder is refused. With
    ``architecture``, a model of another architecture is refused (before its
    weights are read) with an error that names the catalogue's models of the
    wanted one: what a plugin's command passes to accept only its own models.
    """
    from .model import check_device

    check_device(device)  # before a download, not after
    folder = resolve_folder(name_or_path)
    if architecture is not None:
        check_architecture(name_or_path, folder, architecture)
    return load_folder(folder, device=device, dtype=as_dtype(dtype))


def check_architecture(name_or_path, folder: str | os.PathLike, architecture: str) -> None:
    """Raise a ZooError unless the model folder's config.json names ``architecture``."""
    from .model import read_config
    from .registry import catalogue

    found, _ = read_config(folder)
    if found == architecture:
        return
    ids = sorted(e.id for e in catalogue().values() if e.architecture == architecture)
    known = f"{', '.join(ids)}, or " if ids else ""
    raise ZooError(f"{name_or_path} is a {found} model, not {architecture}", where=str(name_or_path),
                   hint=f"pass a {architecture} model: {known}a model folder whose config.json says "
                        f'"architecture": "{architecture}" (as `zoo train` and `zoo convert` write them)')


def build_model(name: str, **config_overrides) -> ZooModel:
    """A fresh, untrained model of a registered architecture (or of a catalogue entry's architecture)."""
    from .errors import UnknownNameError
    from .plugins import get_model_spec, models

    if name not in models():
        from .registry import catalogue

        entry = catalogue().get(name)
        if entry is None:
            get_model_spec(name)  # raises with a suggestion
            raise UnknownNameError(f"unknown model {name!r}")
        name = entry.architecture
    return get_model_spec(name).load().from_config(config_overrides)
