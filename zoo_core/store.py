"""Where the zoo keeps what is not in the Hugging Face cache: converted and trained models.

``ZOO_HOME`` (default ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``) holds
``models/<id>/``, one model folder per catalogue id whose weights were produced
here (``zoo pull NAME --from`` or ``zoo train``), and plugins' data caches.
"""

from __future__ import annotations

import os
from pathlib import Path


def zoo_home() -> Path:
    """The zoo's own state folder."""
    env = os.environ.get("ZOO_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "zoo"


def local_model_dir(model_id: str) -> Path:
    """The folder a locally produced model ``model_id`` lives in (it may not exist)."""
    return zoo_home() / "models" / model_id


def has_local_model(model_id: str) -> bool:
    """Whether a complete local model folder exists for ``model_id``."""
    folder = local_model_dir(model_id)
    return (folder / "config.json").is_file() and (
        (folder / "model.safetensors").is_file() or (folder / "model.safetensors.index.json").is_file())
