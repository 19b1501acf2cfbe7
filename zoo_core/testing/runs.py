"""Tiny training runs for a plugin's tests: one place that layers a test's settings over a recipe's."""

from __future__ import annotations

import os


def run_config(defaults: dict, small_run: dict, out: str | os.PathLike, **overrides):
    """A ``TrainConfig`` in ``out``: the recipe's ``defaults``, then the test suite's ``small_run``
    settings (a few steps on a slice of the data), then this test's ``overrides``."""
    from zoo_core import TrainConfig

    return TrainConfig.from_dict({**defaults, **small_run, "out": str(out), **overrides})
