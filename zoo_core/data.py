"""The Dataset interface: a named dataset with fixed splits and offline-capable sources."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from .errors import ZooError


class ZooDataset:
    """Base class of every zoo dataset.

    A subclass sets ``name`` and ``splits`` and implements :meth:`split`, which
    returns a ``torch.utils.data.Dataset`` yielding tensors or tuples of
    tensors. ``source`` picks where the data comes from (a plugin documents
    its sources; ``"offline"`` must work with no network) and ``root`` is a
    folder the user points at for data that no package ships. ``seed`` is the
    run's seed (the Trainer passes ``--seed``), for any randomness the dataset
    owns, such as dequantisation noise or crops.

    A dataset whose contents decide part of the model (a vocabulary) says so
    in :meth:`model_config`, and may put data-derived starting values into a
    fresh model in :meth:`init_model`.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    sources: ClassVar[tuple[str, ...]] = ("offline",)

    def __init__(self, source: str | None = None, root: str | os.PathLike | None = None, seed: int = 0,
                 **options):
        self.source = source or self.sources[0]
        self.seed = int(seed)
        if self.source not in self.sources:
            raise ZooError(f"dataset {self.name!r} has no source {self.source!r}",
                           hint=f"choose one of: {', '.join(self.sources)}")
        self.root = Path(root) if root else None
        self.options = options

    def split(self, name: str):
        """Return the torch Dataset for split ``name``."""
        raise NotImplementedError

    def model_config(self, settings) -> dict:
        """The part of the model's config that the data decides: a vocabulary, its size, a word list.

        The Trainer builds the dataset before the model and merges this over
        the recipe's model config (and ``--model-set``), so the model is born
        the right size; a ``--model-set`` value this contradicts is refused.
        ``settings`` is the training step's typed ``Settings`` (None when the
        step has none), e.g. for a ``min_count``. Default: nothing (``{}``).
        """
        return {}

    def init_model(self, model, settings) -> None:
        """Fill data-derived initial values into a freshly built model (pretrained word vectors, say).

        Called once, on a fresh start, after the model is built and before the
        training step is; never on resume, where the checkpoint holds the
        values. It must not resize anything: sizes come from :meth:`model_config`.
        Default: nothing.
        """

    def check_split(self, name: str) -> None:
        """Raise a clear error for a split this dataset does not have."""
        if name not in self.splits:
            raise ZooError(f"dataset {self.name!r} has no split {name!r}",
                           hint=f"splits: {', '.join(self.splits)}")
