import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


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
