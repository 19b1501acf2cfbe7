"""What plugins register: small frozen records that point at code by import string.

Nothing here imports torch; the targets are imported only when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from .errors import PluginError


def import_target(target: str) -> Any:
    """Import ``"package.module:Attr"`` and return the attribute."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise PluginError(
            f"bad import target {target!r}",
            hint='write it as "package.module:Name"',
        )
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginError(
            f"{module_name} has no attribute {attr!r}", where=target,
            hint="fix the target string the plugin registers",
        ) from None


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture.

    ``name`` is the architecture id (``build_model(name)``); ``target`` names
    the ZooModel subclass; ``tiny_config`` is a config small enough for the
    contract tests to build and run it in well under a second.
    """

    name: str
    target: str
    task: str
    summary: str = ""
    tiny_config: dict = field(default_factory=dict)
    plugin: str = ""

    def load(self):
        """Import and return the model class."""
        return import_target(self.target)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``target`` names a ZooDataset subclass."""

    name: str
    target: str
    summary: str = ""
    splits: tuple[str, ...] = ("train", "validation", "test")
    plugin: str = ""

    def load(self):
        """Import and return the dataset class."""
        return import_target(self.target)


@dataclass(frozen=True)
class RecipeSpec:
    """A training recipe: model + dataset + the plugin's TrainStep + defaults.

    ``defaults`` holds the recipe's hyper-parameters (the keys of
    :class:`zoo_core.trainer.TrainConfig` plus any the step reads from
    ``config.extra``). ``model_config`` overrides the architecture's defaults.
    """

    name: str
    model: str
    dataset: str
    step: str
    summary: str = ""
    defaults: dict = field(default_factory=dict)
    model_config: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    plugin: str = ""

    def load_step(self):
        """Import and return the TrainStep class."""
        return import_target(self.step)


@dataclass(frozen=True)
class ConverterSpec:
    """Turns weights from elsewhere (a TensorFlow checkpoint, say) into a zoo model folder.

    ``target`` names a function ``convert(source: str, out_dir: Path, **options) -> Path``
    that writes a complete model folder atomically. ``zoo pull NAME --from SOURCE``
    calls the converter whose ``name`` matches the registry entry's ``convert.converter``.

    ``fetch``, if set, names ``fetch(entry, work_dir: Path, *, out_dir: Path, timeout: float | None,
    options: dict) -> str``, which downloads and verifies the files the converter reads (from
    where the entry's ``weights.sources`` say) into ``work_dir`` and returns the SOURCE to
    convert; then a plain ``zoo pull NAME`` fetches and converts (``timeout``: ZOO_PULL_TIMEOUT).
    """

    name: str
    target: str
    summary: str = ""
    plugin: str = ""
    fetch: str = ""

    def load(self):
        """Import and return the convert function."""
        return import_target(self.target)
