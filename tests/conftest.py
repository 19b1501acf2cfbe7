import os
import sys
from pathlib import Path

import pytest
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


@pytest.fixture
def zoo_plugins(monkeypatch):
    """Only the in-repo toy plugin: installed plugins are not loaded."""
    from zoo_core import plugins

    import toy_plugin

    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")
    plugins.reset()
    plugins.load_plugins()
    plugins.pm.register(toy_plugin, name="toy")
    yield plugins
    plugins.reset()


@pytest.fixture
def toy_env(tmp_path):
    """Environment for a `zoo` subprocess that sees only the toy plugin (installed as a fake distribution)."""
    from fake_dists import make_plugin_dist

    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-toy", "toy_plugin", None, "toy")
    return {"PYTHONPATH": f"{site}{os.pathsep}{HERE}", "ZOO_LOAD_PLUGINS": "toy"}
