"""What the CLI does with weights, done from Python: pull (Hub and --from), search, cached, remove."""

import pytest
import torch

import zoo_core
from test_pull_cli import _publish_toy, _registry, converter_registry


@pytest.fixture
def registry(monkeypatch):
    from zoo_core.registry import catalogue

    def use(path):
        monkeypatch.setenv("ZOO_REGISTRY", str(path))
        catalogue.cache_clear()

    yield use
    catalogue.cache_clear()


def test_pull_cached_remove_from_python(local_hub, tmp_path, zoo_plugins, registry):
    model, pin = _publish_toy(local_hub, tmp_path, zoo_plugins)
    registry(_registry(tmp_path, pin))
    assert zoo_core.model_state("toy-demo") == "absent"
    folder = zoo_core.pull("toy-demo")
    assert zoo_core.model_state("toy-demo") == "verified"
    assert torch.equal(zoo_core.load_model(folder).fc1.weight, model.fc1.weight)
    (copy,) = [c for c in zoo_core.cached() if c.id == "toy-demo"]
    assert (copy.revision, copy.verified, copy.pinned, copy.path) == (pin.revision, True, True, folder)
    assert zoo_core.remove("toy-demo") == copy.size > 0
    assert zoo_core.model_state("toy-demo") == "absent"
    assert [c for c in zoo_core.cached() if c.id == "toy-demo"] == []


def test_pull_from_source_and_remove_the_local_copy(tmp_path, zoo_plugins, registry, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    registry(converter_registry(tmp_path))
    src = tmp_path / "original"
    src.mkdir()
    original = zoo_core.build_model("toy-mlp", hidden=4)
    save_file(original.state_dict(), src / "weights.safetensors")
    with pytest.raises(zoo_core.ZooError, match="not published"):
        zoo_core.pull("toy-local")
    folder = zoo_core.pull("toy-local", source=src, options={"hidden": 4})
    assert folder == tmp_path / "home" / "models" / "toy-local"
    assert zoo_core.pull("toy-local") == folder  # now found in the local store
    assert zoo_core.model_state("toy-local") == "local"
    assert [c.id for c in zoo_core.cached()] == ["toy-local"]
    assert zoo_core.remove("toy-local") > 0
    assert not folder.exists() and list(folder.parent.iterdir()) == []
    assert zoo_core.model_state("toy-local") == "not published"


def test_search_matches_substring_glob_and_task(tmp_path, registry, zoo_plugins):
    reg = tmp_path / "reg.yaml"
    reg.write_text("""version: 1
models:
""" + "".join(f"""  - id: {mid}
    architecture: toy-mlp
    plugin: toy
    task: {task}
    summary: s
    links: {{source: "https://example.org/toy"}}
    license: MIT
    metrics: []
    hub: null
    weights: {{status: not-published, how: train}}
    recipe: toy-fit
""" for mid, task in [("alpha-small", "regression"), ("alpha-large", "regression"), ("beta", "other")]))
    registry(reg)
    ids = lambda *a, **k: sorted(e.id for e in zoo_core.search(*a, **k) if e.plugin == "toy")
    assert ids("alpha") == ["alpha-large", "alpha-small"]
    assert ids("*-small") == ["alpha-small"]
    assert ids(task="other") == ["beta"]
    assert ids("alpha", task="other") == []


def test_unknown_names_suggest_the_closest():
    with pytest.raises(zoo_core.UnknownNameError, match="did you mean 'nice-mnist'"):
        zoo_core.get_entry("nice-mnits")
