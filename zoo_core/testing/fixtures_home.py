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


def loaded_plugins(monkeypatch, names: str | None):
    """Yield ``zoo_core.plugins`` with ``names`` (comma-separated entry-point names; None: every
    installed plugin) loaded afresh; the plugins and the catalogue are reset after."""
    from zoo_core import plugins
    from zoo_core.registry import catalogue

    if names is None:
        monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
    else:
        monkeypatch.setenv("ZOO_LOAD_PLUGINS", names)
    plugins.reset()
    plugins.load_plugins()
    catalogue.cache_clear()
    yield plugins
    plugins.reset()
    catalogue.cache_clear()


def only_plugins(names: str):
    """A fixture that yields ``zoo_core.plugins`` with only ``names`` (comma-separated entry-point
    names, e.g. ``"ganqp,images"``) loaded, in the session's ZOO_HOME; everything is reset after.

    In a plugin's conftest.py: ``zoo = only_plugins("ogan,images")``.
    """

    @pytest.fixture
    def fixture(monkeypatch, zoo_home):
        yield from loaded_plugins(monkeypatch, names)

    fixture.__doc__ = f"The plugin manager with only {names} loaded."
    return fixture
