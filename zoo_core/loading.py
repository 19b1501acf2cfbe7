"""``load_model`` and ``build_model``: the Python entry points of the zoo."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .dtypes import as_dtype
from .errors import ZooError
from .model import ZooModel, load_folder
from .weights import HF_PREFIXES



def resolve_folder(name_or_path: str | os.PathLike) -> Path:
    """Find (pulling when needed) the model folder for a catalogue id, a local folder or ``hf-hub:org/repo@rev``."""
    from .registry import get_entry
    from .store import has_local_model, local_model_dir

    text = str(name_or_path)
    for prefix in HF_PREFIXES:
        if text.startswith(prefix):
            from . import hub

            repo, _, revision = text[len(prefix):].partition("@")
            return hub.pull_repo(repo, revision=revision or "main")
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if os.sep in text or text.startswith("."):
        raise ZooError("no such model folder", where=text, hint="check the path, or give a catalogue id")
    entry = get_entry(text)
    if entry.hub is not None:
        from . import hub

        return hub.pull(entry.hub)
    if entry.package is not None:  # shipped inside an installed package: verified where it lies
        from .packaged import resolve

        return resolve(entry.package, entry.source)
    if has_local_model(entry.id):
        return local_model_dir(entry.id)
    how = entry.weights.get("instructions") or ""
    command = f"zoo train {entry.recipe or entry.id}"
    if entry.convert:
        hint = f"run `zoo pull {entry.id} --from SOURCE` to convert the official weights. {how}".strip()
    else:  # the entry's instructions alone when they already give the command: not the same thing twice
        hint = how if command in how else f"train it with `{command}`. {how}".strip()
    raise ZooError(f"the weights of {entry.id!r} are not published on the Hub and none were produced here",
                   where=entry.source, hint=hint)


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu",
               dtype: str | torch.dtype | None = None, architecture: str | None = None) -> ZooModel:
    """Load pretrained weights and return the model in eval mode.

    ``name_or_path`` is a catalogue id (pulled and sha256-verified on first use),
    a local model folder, or ``"hf-hub:org/repo@revision"``. Only safetensors
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
