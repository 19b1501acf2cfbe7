import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_dists import make_plugin_dist, run_zoo

HERE = Path(__file__).parent


def test_help_and_list_import_no_torch():
    code = ("import sys\nfrom zoo_core.cli import cli\n"
            "for args in (['--help'], ['list'], ['list', '--json'], ['plugins'], ['info', 'gpt2-ml']):\n"
            "    try:\n        cli(args, standalone_mode=False)\n    except SystemExit:\n        pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "assert 'numpy' not in sys.modules, 'numpy was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "gpt2-ml" in r.stdout


def test_list_json_joins_registry_plugins_and_state(tmp_path):
    r = run_zoo(["list", "--json"], env={"ZOO_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["gpt2-ml"]["state"] == "not published" and rows["gpt2-ml"]["hub"] is None
    assert rows["nice-mnist"]["task"] == "density-estimation"
    r = run_zoo(["list", "gpt2", "--json"], env={"ZOO_HOME": str(tmp_path)})
    assert {row["id"] for row in json.loads(r.stdout)} == {"gpt2-ml", "gpt2-ml-legacy"}
    r = run_zoo(["list", "--task", "density-estimation", "--json"], env={"ZOO_HOME": str(tmp_path)})
    assert [row["id"] for row in json.loads(r.stdout)] == ["nice-mnist"]


def test_unknown_name_is_one_clear_line_with_a_suggestion():
    r = run_zoo(["info", "gpt2-m"])
    assert r.returncode == 1
    assert "unknown model 'gpt2-m'" in r.stderr and "did you mean 'gpt2-ml'?" in r.stderr
    assert "Traceback" not in r.stderr


def test_info_says_when_the_data_forbid_publishing_the_weights(tmp_path):
    # models trained on research-only data (Zhidao, SogouQA, People's Daily) say so, and zoo release skips them
    pytest.importorskip("zoo_nce")
    r = run_zoo(["info", "sgns-peoples-daily"], env={"ZOO_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "not redistributable: trained on People's Daily 1998-01" in r.stdout
    r = run_zoo(["info", "nice-mnist"], env={"ZOO_HOME": str(tmp_path)})
    assert r.returncode == 0 and "not redistributable" not in r.stdout


def test_malformed_user_registry_is_reported_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nmodels:\n  - id: Bad Id\n")
    r = run_zoo(["--registry", str(bad), "list"])
    assert r.returncode == 1
    assert f"{bad}:3" in r.stderr and "Traceback" not in r.stderr


def test_train_and_eval_through_the_cli(tmp_path):
    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-toy", "toy_plugin", None, "toy")
    env = {"PYTHONPATH": f"{site}:{HERE}", "ZOO_LOAD_PLUGINS": "toy"}
    out = tmp_path / "run"
    r = run_zoo(["train", "toy-fit", "--epochs", "2", "--out", str(out), "--no-progress", "--set", "noise=0",
                 "--model-set", "hidden=5"], env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "model" / "config.json").read_text())["hidden"] == 5  # --model-set reached the model
    r = run_zoo(["eval", "toy-fit", "--model", str(out / "model"), "--split", "test", "--json"], env=env)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["split"] == "test" and metrics["mse"] > 0


def test_new_plugin_scaffold_passes_its_own_tests(tmp_path):
    r = run_zoo(["new-plugin", "demo-net", "--dir", str(tmp_path)])
    assert r.returncode == 0, r.stderr
    plugin = tmp_path / "zoo-demo-net"
    site = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(plugin)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {"PYTHONPATH": str(site)}
    r = run_zoo(["plugins", "--json"], env=env)
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["demo-net"]["models"] == ["demo-net"]
    import os

    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin / "tests")],
                          env=dict(os.environ, PYTHONPATH=str(site)), capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert test.returncode == 0, test.stdout[-3000:]
    assert " passed" in test.stdout and "failed" not in test.stdout
    if importlib.util.find_spec("gradio") is not None:  # the [serve] extra: the template's demo.py is checked too
        assert "skipped" not in test.stdout, test.stdout[-3000:]
    r = run_zoo(["new-plugin", "demo-net", "--dir", str(tmp_path)])
    assert r.returncode == 1 and "already exists" in r.stderr


def test_root_option_sets_the_datasets_folder_on_top_of_set(zoo_plugins):
    from zoo_core.cli import _train_config

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    config = _train_config(recipe, {"root": "/data/mine", "sets": ['dataset_options={"a": 1}']})
    assert config.extra["dataset_options"] == {"a": 1, "root": "/data/mine"}
    assert "dataset_options" not in _train_config(recipe, {}).extra or \
        "root" not in _train_config(recipe, {}).extra["dataset_options"]


REGISTRY = """version: 1
models:
  - id: extra-nice
    architecture: nice
    plugin: nice
    task: density-estimation
    summary: {summary}
    license: MIT
    links: {{source: "https://example.org"}}
    metrics: []
    hub: null
    weights: {{status: not-published, how: convert, instructions: x}}
"""

LIST_AND_SAY_IF_YAML = ("import sys\nfrom zoo_core.cli import cli\n"
                        "try:\n    cli(['list', '--json'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
                        "print('yaml imported:', 'yaml' in sys.modules, file=sys.stderr)\n")


def test_a_registry_validated_once_is_read_back_without_yaml_and_an_edit_is_parsed_again(tmp_path):
    registry = tmp_path / "extra.yaml"
    registry.write_text(REGISTRY.format(summary="first words"))
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home"), "ZOO_REGISTRY": str(registry)}
    env.pop("ZOO_LOAD_PLUGINS", None)

    def listed():
        r = subprocess.run([sys.executable, "-c", LIST_AND_SAY_IF_YAML], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        return {row["id"]: row for row in json.loads(r.stdout)}, "yaml imported: True" in r.stderr

    first, parsed = listed()
    assert parsed and first["extra-nice"]["summary"] == "first words"
    again, parsed = listed()
    assert again == first and not parsed  # main registry, plugin entries and the user's file: all kept
    registry.write_text(REGISTRY.format(summary="other words"))
    edited, parsed = listed()
    assert parsed and edited["extra-nice"]["summary"] == "other words"
    for kept in (tmp_path / "home" / "validated").iterdir():
        kept.write_text('{"models": [{"id": "half')  # damaged: parsed again, never trusted
    damaged, parsed = listed()
    assert parsed and damaged == edited
