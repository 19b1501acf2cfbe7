"""A private ZOO_HOME for a whole test session, so caches written by the tests never touch the user's."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def zoo_home(tmp_path_factory):
    """A ZOO_HOME for the whole session (set in os.environ, so torchrun children inherit it)."""
    home = tmp_path_factory.mktemp("zoo-home")
    old = os.environ.get("ZOO_HOME")
    os.environ["ZOO_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("ZOO_HOME", None)
    else:
        os.environ["ZOO_HOME"] = old
