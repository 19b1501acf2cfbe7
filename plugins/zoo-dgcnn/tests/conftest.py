"""Shared fixtures: a private ZOO_HOME, only this plugin loaded, tiny models and runs."""

from __future__ import annotations

import dataclasses

import pytest

from zoo_core.testing import only_plugins, run_config
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

PLUGINS = "dgcnn"
# A small reader: 32-d, question rates 1, 2, passage rates 1, 2, 4, 1.
TINY_MODEL = {"dim": 32, "question_rates": [1, 2], "passage_rates": [1, 2, 4, 1]}
SMALL_RUN = dict(batch_size=32, limit_train=256, limit_eval=120, max_steps=4, eval_every=None,
                 eval_every_steps=None, eval_batch_size=64, progress=False, log_every=1, checkpoint_every=1000,
                 device="cpu", threads=1, min_count=2, ema_decay=0.9, word_vectors="")

zoo = only_plugins(PLUGINS)


@pytest.fixture
def tiny_recipe(zoo):
    """dgcnn-cloze with the tiny reader."""
    recipe = zoo.get_recipe_spec("dgcnn-cloze")
    return dataclasses.replace(recipe, model_config=dict(TINY_MODEL))


def make_config(out, **overrides):
    """The dgcnn-cloze defaults with SMALL_RUN and ``overrides`` on top, as a TrainConfig."""
    from zoo_dgcnn.hooks import CLOZE_DEFAULTS

    return run_config(CLOZE_DEFAULTS, SMALL_RUN, out, **overrides)


@pytest.fixture
def small_config():
    """make_config(out, **overrides) -> TrainConfig."""
    return make_config
