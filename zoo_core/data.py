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

    def check_split(self, name: str) -> None:
        """Raise a clear error for a split this dataset does not have."""
        if name not in self.splits:
            raise ZooError(f"dataset {self.name!r} has no split {name!r}",
                           hint=f"splits: {', '.join(self.splits)}")
