"""zoo_core.resolve: what each kind of model reference means, and where its folder is.

The toy plugin's recipes stand in for the real ones: ``toy-fit`` is both a recipe and a catalogue id
(not published, like ganqp-mnist), ``toy-control`` a recipe whose catalogue id of the same name has
pinned Hub weights (like lenet-mnist), ``toy-sparse`` a recipe whose catalogue entry has another id,
and ``toy-gan`` a recipe with no catalogue entry at all (like ganqp-celebahq128).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zoo_core.errors import UnknownNameError, ZooError


def _entry(entry_id, recipe=None, pin=None):
    hub = "null"
    if pin is not None:
        files = ", ".join(f'{{path: {f.path}, sha256: "{f.sha256}", size: {f.size}}}' for f in pin.files)
        hub = f'{{repo_id: {pin.repo_id}, revision: "{pin.revision}", files: [{files}]}}'
    weights = "" if pin is not None else \
        f'\n    weights: {{status: not-published, how: train, instructions: "zoo train {recipe}"}}'
    return f"""  - id: {entry_id}
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: a toy model for the resolver's tests
    links: {{source: "https://example.org/toy"}}
    license: MIT
    metrics: []
    hub: {hub}{weights}{f"{chr(10)}    recipe: {recipe}" if recipe else ""}
"""


@pytest.fixture
def zoo(zoo_plugins, tmp_path, monkeypatch):
    """The toy plugin, a registry of toy entries, an empty local store, and a working folder for runs/."""
    from zoo_core.registry import catalogue

    registry = tmp_path / "registry.yaml"
    registry.write_text("version: 1\nmodels:\n" + _entry("toy-fit", "toy-fit")
                        + _entry("toy-sparse-model", "toy-sparse"))
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    catalogue.cache_clear()
    yield registry
    catalogue.cache_clear()


def _model_folder(folder: Path) -> Path:
    """A folder that passes for a complete model folder (what has_local_model checks)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architecture": "toy-mlp"}))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


def _store(model_id: str) -> Path:
    from zoo_core.store import local_model_dir

    return _model_folder(local_model_dir(model_id))


# --- each kind of reference ---------------------------------------------------------------------------


def test_a_folder_is_itself(zoo, tmp_path):
    from zoo_core import resolve_folder
    from zoo_core.resolve import parse

    folder = _model_folder(tmp_path / "m")
    assert parse(str(folder)).kind == "folder"
    assert resolve_folder(folder) == folder and resolve_folder(str(folder)) == folder
    _model_folder(Path("toy-fit"))  # a folder in the working folder comes before the catalogue id it spells
    assert resolve_folder("toy-fit") == Path("toy-fit")


@pytest.mark.parametrize("spelling", ["hf-hub:", "hf_hub:"])
def test_an_hf_hub_reference_is_pulled_at_its_revision(zoo, local_hub, spelling):
    from zoo_core import resolve_folder
    from zoo_core.resolve import parse

    commit = local_hub.publish("someone/unlisted", {"config.json": b'{"architecture": "toy-mlp"}',
                                                   "model.safetensors": b"not read here"})
    found = parse(f"{spelling}someone/unlisted@{commit}")
    assert (found.kind, found.repo_id, found.revision) == ("hub-repo", "someone/unlisted", commit)
    assert parse(f"{spelling}someone/unlisted").revision == "main"
    folder = resolve_folder(f"{spelling}someone/unlisted@{commit}")
    assert folder.name == commit and (folder / "model.safetensors").read_bytes() == b"not read here"
    assert resolve_folder(f"{spelling}someone/unlisted") == folder  # main is that commit


def test_a_catalogue_id_with_a_pin_is_pulled_even_when_its_recipe_ran_here(zoo, local_hub):
    from zoo_core import resolve_folder
    from zoo_core.registry import catalogue
    from zoo_core.resolve import parse, recipe_folder

    commit = local_hub.publish("zoo-test/toy-control", {"config.json": b'{"architecture": "toy-mlp"}',
                                                       "model.safetensors": b"published"})
    with open(zoo, "a") as f:
        f.write(_entry("toy-control", pin=local_hub.pin("zoo-test/toy-control", commit)))
    catalogue.cache_clear()
    run = _model_folder(Path("runs/toy-control/model"))
    assert parse("toy-control").kind == "catalogue"  # a catalogue id wins over the recipe of that name
    folder = resolve_folder("toy-control")
    assert folder.name == commit and (folder / "model.safetensors").read_bytes() == b"published"
    assert recipe_folder("toy-control") == run  # what `zoo eval toy-control` scores: the model trained here


def test_a_catalogue_id_in_the_local_store(zoo):
    from zoo_core import resolve_folder

    _model_folder(Path("runs/toy-fit/model"))
    installed = _store("toy-fit")
    assert resolve_folder("toy-fit") == installed  # the installed model before the run folder


# --- recipe names: the local store, then runs/NAME/model, then an error naming `zoo train NAME` -------


def test_a_recipe_name_finds_the_store_then_the_run_folder_then_says_train_it(zoo):
    from zoo_core import resolve_folder
    from zoo_core.resolve import parse

    assert parse("toy-sparse").kind == "recipe"
    run = _model_folder(Path("runs/toy-sparse/model"))
    installed = _store("toy-sparse-model")  # the catalogue entry `zoo train toy-sparse` installs
    assert resolve_folder("toy-sparse") == installed
    import shutil

    shutil.rmtree(installed)
    assert resolve_folder("toy-sparse") == run
    shutil.rmtree(run)
    with pytest.raises(ZooError) as err:
        resolve_folder("toy-sparse")
    assert "no trained model here" in err.value.what and err.value.where == str(Path("runs/toy-sparse/model"))
    assert "`zoo train toy-sparse`" in err.value.hint


def test_a_recipe_without_a_catalogue_entry_is_its_run_folder(zoo):
    """What zoo-ganqp's `zoo sample ganqp-celebahq128` relies on: the recipe name is the default --model."""
    from zoo_core import resolve_folder

    with pytest.raises(ZooError, match="zoo train toy-gan"):
        resolve_folder("toy-gan")
    run = _model_folder(Path("runs/toy-gan/model"))
    assert resolve_folder("toy-gan") == run


def test_an_id_that_is_also_a_recipe_falls_back_to_the_run_folder_then_says_train_it(zoo):
    from zoo_core import resolve_folder
    from zoo_core.resolve import parse

    assert parse("toy-fit").kind == "catalogue"
    with pytest.raises(ZooError) as err:
        resolve_folder("toy-fit")
    assert "not published on the Hub and none were produced here" in err.value.what
    assert err.value.hint.count("zoo train toy-fit") == 1 and str(zoo) in err.value.where
    run = _model_folder(Path("runs/toy-fit/model"))  # trained with --no-install
    assert resolve_folder("toy-fit") == run


def test_load_model_by_recipe_name(zoo):
    import torch

    from zoo_core import build_model, load_model

    torch.manual_seed(0)
    model = build_model("toy-gan", hidden=4)
    model.save_pretrained("runs/toy-gan/model")
    loaded = load_model("toy-gan", architecture="toy-gan")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


# --- what is not a model ------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["./nowhere", "no/such/folder", "~/no-such-zoo-model-folder", "~no-such-user-here/m",
                                 "toy-fit/"])
def test_a_path_that_does_not_exist_is_never_looked_up_in_the_catalogue(zoo, ref):
    from zoo_core import resolve_folder

    with pytest.raises(ZooError) as err:
        resolve_folder(ref)
    assert err.value.what == "no such model folder" and err.value.where == ref
    assert not isinstance(err.value, UnknownNameError)


def test_a_missing_run_folder_says_which_recipe_to_train(zoo):
    from zoo_core import resolve_folder

    with pytest.raises(ZooError) as err:
        resolve_folder("./runs/toy-gan/model")
    assert err.value.what == "no such model folder" and "`zoo train toy-gan`" in err.value.hint


def test_a_file_is_not_a_model_folder(zoo):
    from zoo_core import resolve_folder

    Path("model.safetensors").write_bytes(b"")
    for ref in ("model.safetensors", "./model.safetensors"):
        with pytest.raises(ZooError, match="is a file, not a model folder") as err:
            resolve_folder(ref)
        assert "config.json" in err.value.hint


def test_an_unknown_name_suggests_an_id_or_a_recipe(zoo):
    from zoo_core import resolve_folder

    with pytest.raises(UnknownNameError) as err:
        resolve_folder("toy-fitt")
    assert err.value.what == "unknown model 'toy-fitt'" and err.value.hint == "did you mean 'toy-fit'?"
    with pytest.raises(UnknownNameError, match="did you mean 'toy-gan'"):
        resolve_folder("toy-gann")


def test_pull_does_not_count_a_run_folder_as_the_catalogue_model(zoo):
    from zoo_core import pull
    from zoo_core.registry import get_entry

    _model_folder(Path("runs/toy-fit/model"))
    with pytest.raises(ZooError, match="not published on the Hub"):
        pull("toy-fit")
    installed = _store("toy-fit")
    assert pull("toy-fit") == installed and pull(get_entry("toy-fit")) == installed  # an id or its entry


# --- no torch ------------------------------------------------------------------------------------------


def test_resolving_and_pulling_a_hub_repo_imports_no_torch(zoo, local_hub):
    commit = local_hub.publish("someone/light", {"config.json": b"{}", "model.safetensors": b"x"})
    code = ("import sys\nimport zoo_core\nfrom zoo_core import weights\n"
            f"print(weights.pull('hf-hub:someone/light@{commit}'))\n"
            f"print(zoo_core.resolve_folder('hf_hub:someone/light@{commit}'))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split()
    assert first == second and Path(first).name == commit


def test_zoo_eval_without_model_scores_what_training_produced_or_says_train_it(zoo):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    result = CliRunner().invoke(cli, ["eval", "toy-gan"])
    assert result.exit_code == 1 and not isinstance(result.exception, (AttributeError, TypeError))
    assert "recipe 'toy-gan' has no trained model here" in result.output
    assert result.output.count("zoo train toy-gan") == 1
    _model_folder(Path("runs/toy-gan/model"))  # a toy-mlp folder: the architecture check proves it was found
    result = CliRunner().invoke(cli, ["eval", "toy-gan"])
    assert result.exit_code == 1 and "runs/toy-gan/model is a toy-mlp model, not toy-gan" in result.output
