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


def test_the_generated_plugin_passes_the_kits_contracts_as_generated(tmp_path):
    """Its tests (the plugin and recipe contracts among them) pass with nothing pip-installed: the package is on
    sys.path and a dist-info declares its entry point, as an editable install would."""
    import subprocess
    import sys

    folder = create_plugin("demo-kit", tmp_path)
    text = {rel: (folder / rel).read_text() for rel in ("tests/conftest.py", "tests/test_contract.py",
                                                       "zoo_demo_kit/train.py", "zoo_demo_kit/data.py",
                                                       "zoo_demo_kit/hooks.py")}
    assert "from zoo_core.testing.pytest_plugin import *" in text["tests/conftest.py"]  # the kit, opted in
    assert "RecipeContract" in text["tests/test_contract.py"] and "ContractTests" in text["tests/test_contract.py"]
    assert "Settings = DemoKitSettings" in text["zoo_demo_kit/train.py"]
    assert "def model_config(self, settings)" in text["zoo_demo_kit/data.py"]
    assert "def register_commands(commands)" in text["zoo_demo_kit/hooks.py"]
    site = tmp_path / "site" / "zoo_demo_kit-0.1.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-demo-kit\nVersion: 0.1\n")
    (site / "entry_points.txt").write_text("[zoo]\ndemo-kit = zoo_demo_kit.hooks\n")
    env = {k: v for k, v in os.environ.items() if k != "ZOO_LOAD_PLUGINS"}
    env.update(PYTHONPATH=f"{site.parent}{os.pathsep}{folder}", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "tests"], cwd=folder,
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    passed = {line.split("::", 1)[1] for line in r.stdout.splitlines() if line.startswith("PASSED ")}
    assert {"TestRecipe::test_resume_is_bit_identical", "TestRecipe::test_torchrun_two_processes_match_one",
            "TestRecipe::test_train_installs_what_load_model_loads",
            "TestContract::test_save_publish_pull_load_is_bit_exact",
            "test_the_data_sizes_the_model", "test_a_bad_setting_is_refused_with_its_option"} <= passed, passed
