"""Bad input other than model folders: training options, devices, registries, commands given the wrong model.

Every case is a ZooError (the CLI: three lines and exit 1) naming what, where and what next.
"""

from __future__ import annotations

import time

import pytest
import torch
from click.testing import CliRunner

from zoo_core.errors import RegistryError, ZooError
from zoo_core.testing import only_plugins

nice = only_plugins("nice,ganqp,images")

ENTRY = """\
version: 1
models:
  - id: demo
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: a demo
    links: {paper: "https://example.org/paper"}
    license: MIT
    metrics: []
    hub: null
    weights: {status: not-published, how: train}
    recipe: toy-fit
"""


def _zoo(*args):
    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, list(args))
    traceback = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not traceback, repr(result.exception)
    return result


# --- zoo train options -----------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--batch-size", "0"], "batch_size must be at least 1, got 0"),
    (["--lr", "-1"], "lr must be greater than 0, got -1.0"),
    (["--max-steps", "-5"], "max_steps must be at least 1, got -5"),
    (["--epochs", "0"], "epochs must be at least 1, got 0"),
    (["--set", "foo=bar"], "unknown setting(s) for recipe nice-mnist: foo"),
    (["--set", "grad_clip=lots"], "grad_clip must be a number or null, got 'lots'"),
])
def test_zoo_train_refuses_bad_options_before_anything_runs(nice, tmp_path, args, message):
    out = tmp_path / "run"
    result = _zoo("train", "nice-mnist", "--out", str(out), "--no-progress", *args)
    assert result.exit_code == 1
    assert message in result.output and "next:" in result.output
    assert not out.exists()  # no run folder, and no "best model: ..." line naming one


def test_unknown_setting_lists_the_valid_ones(nice, tmp_path):
    result = _zoo("train", "nice-mnist", "--out", str(tmp_path / "r"), "--set", "foo=bar")
    assert "valid settings:" in result.output
    assert "adam_beta1" in result.output and "batch_size" in result.output  # recipe's and the core's


def test_python_train_refuses_unknown_settings(nice, tmp_path):
    from zoo_core import train

    with pytest.raises(ZooError, match="unknown setting.*foo"):
        train("nice-mnist", out=str(tmp_path / "r"), foo=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_zoo_train_on_cuda_without_cuda(nice, tmp_path):
    result = _zoo("train", "nice-mnist", "--out", str(tmp_path / "r"), "--device", "cuda", "--limit-train", "64")
    assert result.exit_code == 1 and "no CUDA GPU" in result.output and "--device cpu" in result.output


# --- commands given another architecture's folder ----------------------------------------------------


def test_zoo_eval_refuses_another_architecture_before_reading_weights(nice, tmp_path, monkeypatch):
    import zoo_core.model
    from zoo_core import build_model

    folder = build_model("ganqp", img_size=16, channels=1, z_dim=8, max_channels=16).save_pretrained(tmp_path / "g")
    monkeypatch.setattr(zoo_core.model, "read_headers", lambda *a: pytest.fail("the weights were read"))
    result = _zoo("eval", "nice-mnist", "--model", str(folder))
    assert result.exit_code == 1
    assert f"{folder} is a ganqp model, not nice" in result.output


def test_zoo_sample_refuses_another_architecture(nice, tmp_path):
    from zoo_core import build_model

    folder = build_model("nice", dim=4, hidden=4, hidden_layers=1).save_pretrained(tmp_path / "n")
    result = _zoo("sample", "ganqp-mnist", "--model", str(folder), "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and "is a nice model, not ganqp" in result.output


# --- registries --------------------------------------------------------------------------------------


def test_registry_entry_with_how_train_needs_a_recipe():
    from zoo_core.registry import parse_registry

    with pytest.raises(RegistryError, match="'recipe' is a required property") as err:
        parse_registry(ENTRY.replace("    recipe: toy-fit\n", ""), "r.yaml")
    assert err.value.where == "r.yaml:3"


def test_registry_not_utf8_is_a_clear_error(tmp_path):
    from zoo_core.registry import load_registry_file

    path = tmp_path / "r.yaml"
    path.write_bytes(ENTRY.encode().replace(b"a demo", b"a d\xe9mo"))
    with pytest.raises(RegistryError, match=r"not UTF-8 text \(bad byte at offset \d+\)") as err:
        load_registry_file(path)
    assert err.value.where == str(path)


def test_registry_duplicate_keys_are_refused():
    from zoo_core.registry import parse_registry

    with pytest.raises(RegistryError, match=r"key 'license' appears twice in one mapping \(lines 9 and 10\)") as err:
        parse_registry(ENTRY.replace("    license: MIT\n", "    license: MIT\n    license: GPL\n"), "r.yaml")
    assert err.value.where == "r.yaml:10"


def test_registry_alias_bomb_is_refused_fast():
    from zoo_core.registry import parse_registry

    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]\n"
    started = time.monotonic()
    with pytest.raises(RegistryError, match="expands to more than"):
        parse_registry("version: 1\nmodels: []\n" + bomb, "bomb.yaml")
    assert time.monotonic() - started < 5


def test_registry_entry_naming_an_architecture_its_installed_plugin_lacks(zoo_plugins, tmp_path, monkeypatch):
    from zoo_core.registry import catalogue

    path = tmp_path / "r.yaml"
    path.write_text(ENTRY.replace("architecture: toy-mlp", "architecture: toy-mlp2"))
    monkeypatch.setenv("ZOO_REGISTRY", str(path))
    catalogue.cache_clear()
    with pytest.raises(RegistryError, match="names architecture 'toy-mlp2', which its plugin 'toy' "
                                            r"\(installed\) does not register") as err:
        catalogue()
    assert err.value.where == f"{path}:3" and "toy-mlp" in err.value.hint
    path.write_text(ENTRY.replace("plugin: toy", "plugin: toys"))
    catalogue.cache_clear()
    with pytest.raises(RegistryError, match="says plugin 'toys', but its architecture 'toy-mlp' comes from "
                                            "plugin 'toy'"):
        catalogue()
    path.write_text(ENTRY.replace("plugin: toy", "plugin: not-installed").replace("toy-mlp", "elsewhere"))
    catalogue.cache_clear()
    assert catalogue()["demo"].plugin == "not-installed"  # a plugin that is not installed: listed, not checked
    catalogue.cache_clear()


# --- zoo cache rm ---------------------------------------------------------------------------------------


def test_cache_rm_with_nothing_cached_does_not_ask(nice, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    result = _zoo("cache", "rm", "nice-mnist")  # no input: a confirmation prompt would abort
    assert result.exit_code == 0 and "nothing of nice-mnist is cached" in result.output


# --- hints that were wrong --------------------------------------------------------------------------------


def test_an_unpublished_model_says_next_once(nice, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    result = _zoo("sample", "nice-mnist", "-o", str(tmp_path / "g.png"))
    assert result.exit_code == 1
    assert result.output.count("next:") == 1 and result.output.count("zoo train nice-mnist") == 1


def test_sample_writes_the_format_its_suffix_names(nice, tmp_path):
    from zoo_core import build_model

    torch.manual_seed(0)
    folder = build_model("nice", hidden=8, hidden_layers=1).save_pretrained(tmp_path / "m")
    result = _zoo("sample", "nice-mnist", "--model", str(folder), "-n", "4", "-o", str(tmp_path / "x.jpg"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name
    result = _zoo("sample", "nice-mnist", "--model", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.txt"))
    assert result.exit_code == 1 and "suffix '.txt'" in result.output  # refused before any model is looked for


@pytest.mark.parametrize("setting", ["extra=5", "dataset_options=[1]"])
def test_settings_that_must_be_mappings(nice, tmp_path, setting):
    result = _zoo("train", "nice-mnist", "--out", str(tmp_path / "r"), "--set", setting)
    assert result.exit_code == 1 and "must be a mapping" in result.output
