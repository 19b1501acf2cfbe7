"""zoo: the models of kexue.fm in modern PyTorch.

This module is the whole public API, for users and for plugin authors alike:
plugins import what they need from ``zoo_core`` and nothing from its
submodules. Importing it is cheap; torch is imported only when a name that
needs it (``load_model``, ``ZooModel``, ``TrainStep``, ...) is first used.
"""

__version__ = "0.1.0"

from .errors import IntegrityError, PluginError, RegistryError, UnknownNameError, UnsafeFileError, ZooError
from .hookspecs import hookimpl
from .specs import ConverterSpec, DatasetSpec, ModelSpec, RecipeSpec

# name -> submodule that defines it, imported on first use (PEP 562)
_LAZY = {
    # using models
    "load_model": "loading", "build_model": "loading", "resolve_folder": "resolve",
    # the catalogue and the weights behind it
    "search": "registry", "get_entry": "registry",
    "pull": "weights", "remove": "weights", "verify": "weights", "cached": "weights", "model_state": "weights",
    "pull_pinned": "weights",
    "HubPin": "pins", "FilePin": "pins",
    # writing a plugin
    "ZooModel": "model", "ZooDataset": "data", "model_card": "card",
    "TrainStep": "step", "TrainConfig": "step", "Update": "step", "Control": "step", "Trainer": "trainer",
    "train": "trainer", "evaluate": "trainer", "TrainState": "checkpoint", "build_dataset": "recipe",
    # where things live, and how they are written
    "zoo_home": "store", "local_model_dir": "store", "has_local_model": "store",
    "atomic_file": "files", "atomic_dir": "files", "write_text": "files", "write_bytes": "files",
    "replace_dir": "files", "copy_dir": "files", "sha256_file": "files", "verify_sha256": "files",
    "did_you_mean": "errors", "parse_key_values": "options",
    "trained_here": "entries",  # the catalogue entry of a model trained here, not published
    # training under torchrun
    "shard_draw": "distributed",
}

__all__ = [
    "Control", "ConverterSpec", "DatasetSpec", "FilePin", "HubPin", "IntegrityError", "ModelSpec",
    "PluginError", "RecipeSpec", "RegistryError", "TrainConfig", "TrainState", "TrainStep", "Trainer",
    "UnknownNameError", "UnsafeFileError", "Update", "ZooDataset", "ZooError", "ZooModel", "atomic_dir",
    "atomic_file", "build_dataset", "build_model", "cached", "copy_dir", "did_you_mean", "evaluate", "get_entry",
    "has_local_model", "hookimpl", "load_model", "local_model_dir", "model_card", "model_state",
    "parse_key_values", "pull",
    "pull_pinned", "remove", "replace_dir", "resolve_folder", "search", "sha256_file", "shard_draw", "train",
    "trained_here", "verify", "verify_sha256", "write_bytes", "write_text", "zoo_home",
]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return __all__
