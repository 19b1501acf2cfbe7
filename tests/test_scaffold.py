"""`zoo new-plugin`: names, clashes with installed plugins, layout, permissions."""

import os
import stat

import pytest

from zoo_core import ZooError
from zoo_core.scaffold import create_plugin

LAYOUT = {"hooks.py", "model.py", "data.py", "train.py", "cli.py", "demo.py", "__init__.py"}


def test_the_layout_every_plugin_uses(tmp_path):
    folder = create_plugin("demo-x", tmp_path)
    assert {p.name for p in (folder / "zoo_demo_x").iterdir()} == LAYOUT
    assert (folder / "pyproject.toml").read_text().count('demo-x = "zoo_demo_x.hooks"') == 1


def test_the_zoo_prefix_is_not_doubled(tmp_path):
    assert create_plugin("zoo-demo-y", tmp_path) == tmp_path / "zoo-demo-y"
    assert not (tmp_path / "zoo-zoo-demo-y").exists()


@pytest.mark.parametrize("name", ["nice", "zoo-nice", "gpt2ml"])
def test_names_of_installed_plugins_are_refused(tmp_path, name):
    with pytest.raises(ZooError, match="already installed"):
        create_plugin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["Demo", "1x", "demo_x", "demo-", "a--b", "class"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ZooError):
        create_plugin(name, tmp_path)


def test_the_generated_folder_is_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        folder = create_plugin("demo-z", tmp_path)
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*")}
    assert modes == {0o644, 0o755}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
