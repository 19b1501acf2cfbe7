"""`zoo release` end to end: train tiny recipes, publish them to the loopback Hub with the real client,
then pull and load them in a fresh home. No mocks: faults are the Hub's own (a revoked token)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fake_dists import make_plugin_dist, run_zoo

HERE = Path(__file__).parent
ORG = "zoo-test"

# A plugin that only brings catalogue entries for the toy plugin's recipes, as zoo-ganqp's hooks do
# for its own: each not published, trained by its recipe.
CATALOGUE_PLUGIN = '''
from zoo_core import hookimpl

def _entry(entry_id, recipe, license="Apache-2.0", **weights):
    return {"id": entry_id, "architecture": "toy-gan" if recipe == "toy-gan" else "toy-mlp", "plugin": "toy",
            "task": "regression", "summary": f"toy model trained by {recipe}", "license": license,
            "links": {"source": "https://example.org/toy"}, "metrics": [], "hub": None, "recipe": recipe,
            "weights": {"status": "not-published", "how": "train", "instructions": f"zoo train {recipe}", **weights}}

@hookimpl
def register_registry_entries(register):
    register(_entry("toy-fit-model", "toy-fit", license="MIT"))
    register(_entry("toy-gan-model", "toy-gan"))
    register(_entry("toy-secret", "toy-control", no_redistribution="trained on a research-only corpus"))
    register(_entry("toy-odd-licence", "toy-sparse", license="LicenseRef-research-only"))
'''
REGISTRY = "# published by zoo release\nversion: 1\nmodels: []\n# end of file\n"


@pytest.fixture
def release_env(local_hub, tmp_path, monkeypatch):
    """The toy recipes with their catalogue entries (in-process and for `zoo` subprocesses), a registry
    file the catalogue reads, and a write token for the loopback Hub."""
    from zoo_core import plugins
    from zoo_core.registry import catalogue

    site = tmp_path / "site"
    make_plugin_dist(site, "zoo-toy", "toy_plugin", None, "toy")
    make_plugin_dist(site, "zoo-toycat", "toycat_plugin", CATALOGUE_PLUGIN, "toycat")
    registry = tmp_path / "published.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", f"{site}{os.pathsep}{HERE}")
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "toy,toycat")
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("HF_TOKEN", local_hub.token)
    plugins.reset()
    plugins.load_plugins()
    catalogue.cache_clear()
    yield {"hub": local_hub, "registry": registry, "tmp": tmp_path}
    plugins.reset()
    catalogue.cache_clear()


def train(recipe: str, out: Path, seed: int = 0) -> Path:
    """A short run of a toy recipe; `zoo train` installs the best model in the local store."""
    from zoo_core import train as run

    return run(recipe, out=str(out), epochs=1, progress=False, seed=seed, log_every=100)


def release_cli(*args: str, env: dict | None = None):
    """`zoo release --org zoo-test ARGS` in a subprocess that loads the plugins this test loaded."""
    return run_zoo(["release", "--org", ORG, *args], env={"ZOO_LOAD_PLUGINS": os.environ["ZOO_LOAD_PLUGINS"],
                                                          **(env or {})})


def fresh_home(tmp: Path, name: str) -> dict:
    """Environment of a user who has never pulled anything: empty ZOO_HOME and HF_HOME."""
    home = tmp / name
    return {"ZOO_HOME": str(home / "zoo"), "HF_HOME": str(home / "hf"), "HF_HUB_CACHE": str(home / "hf" / "hub"),
            "HF_TOKEN": "", "ZOO_LOAD_PLUGINS": os.environ["ZOO_LOAD_PLUGINS"]}


def list_rows(env: dict) -> dict:
    r = run_zoo(["list", "--json"], env=env)
    assert r.returncode == 0, r.stderr
    return {row["id"]: row for row in json.loads(r.stdout)}


def load_in_subprocess(name: str, expected: Path, env: dict) -> None:
    """`load_model(name)` in a fresh process and home: its tensors equal the trained model's."""
    script = (
        "import sys, torch\n"
        "from safetensors.torch import load_file\n"
        "from zoo_core import load_model\n"
        f"model = load_model({name!r})\n"
        f"trained = load_file({str(expected / 'model.safetensors')!r})\n"
        "state = model.state_dict()\n"
        "assert set(trained) <= set(state), sorted(set(trained) - set(state))\n"
        "assert all(torch.equal(v, state[k]) for k, v in trained.items())\n"
        "print('loaded', type(model).__name__)\n")
    r = subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "loaded" in r.stdout


def published_entries(registry: Path) -> dict:
    from zoo_core.registry import load_registry_file

    return {e.id: e for e in load_registry_file(registry)}


def commits(hub) -> list:
    return [r for r in hub.requests if r[0] == "POST" and r[1].endswith("/commit/main")]


def test_release_publishes_what_was_trained_and_a_fresh_home_pulls_it(release_env):
    from zoo_core import evaluate, load_model
    from zoo_core.store import local_model_dir

    hub, registry, tmp = release_env["hub"], release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-gan", tmp / "runs/gan")
    train("toy-control", tmp / "runs/control")  # trained, but its entry forbids redistribution

    r = release_cli("--registry-file", str(registry))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "published  toy-fit-model" in out and "published  toy-gan-model" in out
    assert "toy-secret: not redistributable: trained on a research-only corpus" in out
    assert "toy-odd-licence: licence 'LicenseRef-research-only' is not one known to allow redistribution" in out
    assert {path for _, path in commits(hub)} == {f"/api/models/{ORG}/toy-fit-model/commit/main",
                                                  f"/api/models/{ORG}/toy-gan-model/commit/main"}

    text = registry.read_text()
    assert text.startswith("# published by zoo release\n") and text.endswith("# end of file\n")
    entries = published_entries(registry)
    assert sorted(entries) == ["toy-fit-model", "toy-gan-model"]
    for name, recipe, metric in (("toy-fit-model", "toy-fit", "mse"), ("toy-gan-model", "toy-gan", "mean_gap")):
        e = entries[name]
        assert e.hub.repo_id == f"{ORG}/{name}" and e.hub.revision == hub.resolve(f"{ORG}/{name}")
        served = hub.files(f"{ORG}/{name}", e.hub.revision)
        assert {f.path for f in e.hub.files} == set(served) - {".gitattributes"}
        import hashlib

        assert all(hashlib.sha256(served[f.path]).hexdigest() == f.sha256 for f in e.hub.files)
        assert e.license == ("MIT" if name == "toy-fit-model" else "Apache-2.0") and e.recipe == recipe
        # the figures are the model's own on the test split, and the card on the Hub says the same
        expected = evaluate(recipe, load_model(local_model_dir(name)), split="test")[metric]
        (m,) = [m for m in e.metrics if m["name"] == metric]
        assert m["split"] == "test" and m["value"] == pytest.approx(expected, rel=1e-5)
        card = served["README.md"].decode()
        assert "## Release check" in card and f"| {metric} | {expected:.6g} |" in card
        # the trained weights are what was pushed
        assert served["model.safetensors"] == (local_model_dir(name) / "model.safetensors").read_bytes()

    env = fresh_home(tmp, "user")
    rows = list_rows(env)
    for name in ("toy-fit-model", "toy-gan-model"):
        assert rows[name]["hub"] == f"{ORG}/{name}@{entries[name].hub.revision[:7]}"
        assert rows[name]["state"] == "absent"  # on the Hub, not yet pulled
    assert rows["toy-secret"]["hub"] is None and rows["toy-secret"]["state"] == "not published"
    for name in ("toy-fit-model", "toy-gan-model"):
        load_in_subprocess(name, local_model_dir(name), env)
    rows = list_rows(env)
    assert rows["toy-fit-model"]["state"] == rows["toy-gan-model"]["state"] == "verified"
    r = run_zoo(["pull", "toy-fit-model"], env=env)
    assert r.returncode == 0 and "verified" in r.stdout, r.stderr


def test_rerun_pushes_nothing_and_a_retrained_model_is_published_again(release_env):
    hub, registry, tmp = release_env["hub"], release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-gan", tmp / "runs/gan")
    assert release_cli("--registry-file", str(registry)).returncode == 0
    before, first = registry.read_bytes(), published_entries(registry)
    hub.clear_requests()

    r = release_cli("--registry-file", str(registry))
    assert r.returncode == 0, r.stderr
    assert "up to date  toy-fit-model: already published at" in r.stdout
    assert "up to date  toy-gan-model" in r.stdout and "nothing published" in r.stdout
    assert commits(hub) == [] and registry.read_bytes() == before

    train("toy-fit", tmp / "runs/fit-2", seed=7)  # new weights for one of them
    r = release_cli("--registry-file", str(registry))
    assert r.returncode == 0, r.stderr
    assert "published  toy-fit-model" in r.stdout and "up to date  toy-gan-model" in r.stdout
    second = published_entries(registry)
    assert second["toy-fit-model"].hub.revision != first["toy-fit-model"].hub.revision
    assert second["toy-fit-model"].hub.revision == hub.resolve(f"{ORG}/toy-fit-model")
    assert second["toy-gan-model"] == first["toy-gan-model"]
    assert sorted(second) == ["toy-fit-model", "toy-gan-model"]  # replaced in place, not added twice
    assert len([m for m in second["toy-fit-model"].metrics if m["name"] == "mse"]) == 1


def test_a_model_whose_evaluation_fails_is_not_published(release_env):
    from zoo_core import load_model
    from zoo_core.store import local_model_dir

    hub, registry, tmp = release_env["hub"], release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-gan", tmp / "runs/gan")
    broken = load_model(local_model_dir("toy-fit-model"))  # a run that diverged: NaN weights
    with torch.no_grad():
        broken.fc1.weight.fill_(float("nan"))
    broken.save_pretrained(local_model_dir("toy-fit-model"))

    r = release_cli("--registry-file", str(registry))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "failed  toy-fit-model: not published: the evaluation of toy-fit-model on the test split gave " \
           "mse = nan" in r.stdout
    assert "1 model(s) failed their check and were not published: toy-fit-model" in r.stderr
    assert "published  toy-gan-model" in r.stdout
    assert sorted(published_entries(registry)) == ["toy-gan-model"]
    assert not any("toy-fit-model" in path for _, path in hub.requests)


def test_a_push_that_fails_midway_leaves_the_registry_as_it_was(release_env):
    from zoo_core import ZooError
    from zoo_core.release import release

    hub, registry, tmp = release_env["hub"], release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-gan", tmp / "runs/gan")
    before = registry.read_bytes()
    seen = []

    def revoke_after_first_push(item):
        seen.append((item.id, item.action))
        if item.action == "published":
            hub.token = "revoked"  # the maintainer's token stops working between two pushes

    with pytest.raises(ZooError) as err:
        release(org=ORG, registry=registry, report=revoke_after_first_push)
    assert [s for s in seen if s[1] != "skip"] == [("toy-fit-model", "published")]
    assert "pushing toy-gan-model to zoo-test/toy-gan-model failed" in err.value.what
    assert "HTTP 401" in err.value.what
    assert "the registry was not changed" in err.value.hint and "zoo-test/toy-fit-model@" in err.value.hint
    assert registry.read_bytes() == before

    hub.token = os.environ["HF_TOKEN"]
    items = release(org=ORG, registry=registry)
    assert [(i.id, i.action) for i in items if i.action == "published"] == [
        ("toy-fit-model", "published"), ("toy-gan-model", "published")]
    entries = published_entries(registry)
    assert entries["toy-fit-model"].hub.revision == hub.resolve(f"{ORG}/toy-fit-model")


def test_dry_run_prints_the_plan_and_changes_nothing(release_env):
    hub, registry, tmp = release_env["hub"], release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-control", tmp / "runs/control")
    hub.clear_requests()
    r = release_cli("--registry-file", str(registry), "--dry-run")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "publish  toy-fit-model -> zoo-test/toy-fit-model" in r.stdout
    assert any(line.strip().startswith("skip  toy-gan-model: not trained here: run `zoo train toy-gan` first")
               for line in lines)
    assert "skip  toy-secret: not redistributable" in r.stdout
    assert "1 to evaluate and publish" in r.stdout
    assert hub.requests == [] and registry.read_text() == REGISTRY

    from zoo_core.files import copy_dir
    from zoo_core.registry import MAIN_REGISTRY
    from zoo_core.store import local_model_dir

    copy_dir(local_model_dir("toy-fit-model"), local_model_dir("nice-mnist"))  # trained, but registry.yaml's
    r = release_cli("nice-mnist", "--registry-file", str(registry), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "skip  nice-mnist: its recipe 'nice-mnist' is not registered: install the plugin 'nice'" in r.stdout
    r = release_cli("nice-mnist", "--registry-file", str(registry), "--dry-run",
                    env={"ZOO_LOAD_PLUGINS": "toy,toycat,nice,images"})
    assert r.returncode == 0, r.stderr
    assert f"skip  nice-mnist: its entry is defined in {MAIN_REGISTRY}: release it with --registry-file" in r.stdout

    r = release_cli("toy-fit-model", "--registry-file", str(registry), "--dry-run")
    assert r.returncode == 0 and "toy-gan-model" not in r.stdout and "toy-fit-model" in r.stdout
    r = release_cli("toy-fit-modle", "--dry-run")
    assert r.returncode == 1 and "unknown model 'toy-fit-modle'" in r.stderr and "toy-fit-model" in r.stderr


def test_a_registry_file_the_catalogue_does_not_read_is_refused(release_env):
    other = release_env["tmp"] / "elsewhere.yaml"
    other.write_text(REGISTRY)
    r = release_cli("--registry-file", str(other), "--dry-run")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "is not a registry file the catalogue reads" in r.stderr and "ZOO_REGISTRY" in r.stderr


def test_writing_an_entry_keeps_the_rest_of_registry_yaml(tmp_path):
    from zoo_core import RegistryError
    from zoo_core.registry import MAIN_REGISTRY, load_registry_file
    from zoo_core.release import write_entries

    path = tmp_path / "registry.yaml"
    original = MAIN_REGISTRY.read_text()
    path.write_text(original)
    ids = [e.id for e in load_registry_file(path)]
    entry = {"id": "nice-mnist", "architecture": "nice", "plugin": "nice", "task": "density-estimation",
             "summary": "NICE on MNIST", "links": {"paper": "https://arxiv.org/abs/1410.8516"}, "license": "Apache-2.0",
             "metrics": [{"name": "log_likelihood", "value": 1915.2, "dataset": "mnist", "split": "test",
                          "protocol": "p", "source": "s"}],
             "hub": {"repo_id": "org/nice-mnist", "revision": "a" * 40,
                     "files": [{"path": "model.safetensors", "sha256": "b" * 64, "size": 3}]},
             "recipe": "nice-mnist"}
    write_entries(path, [entry, {**entry, "id": "nice-mnist-2"}])
    after = path.read_text()
    entries = {e.id: e for e in load_registry_file(path)}
    assert [e for e in entries] == ids + ["nice-mnist-2"]  # replaced where it stood, the new one appended
    assert entries["nice-mnist"].hub.revision == "a" * 40 and entries["nice-mnist"].weights == {}
    head = original[: original.index("  - id: nice-mnist")]
    assert after.startswith(head)  # comments and every other entry byte for byte
    with pytest.raises(RegistryError, match="invalid registry field"):
        write_entries(path, [{**entry, "hub": {"repo_id": "org/x", "revision": "not-a-commit", "files": []}}])
    assert path.read_text() == after  # an entry the schema refuses is never written


def test_a_real_recipe_is_released_and_the_catalogues_data_terms_hold(local_hub, tmp_path, monkeypatch):
    """ganqp-mnist trained for a few steps with a tiny G and D is published and loads in a fresh home;
    the entries whose data forbid redistribution (Zhidao, SogouQA/WebQA) are skipped with their reason."""
    import dataclasses

    pytest.importorskip("zoo_ganqp")
    from zoo_core import plugins
    from zoo_core import train as run
    from zoo_core.registry import catalogue
    from zoo_core.store import local_model_dir

    registry = tmp_path / "published.yaml"
    registry.write_text(REGISTRY)
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "ganqp,images,nce,dgcnn")
    monkeypatch.setenv("ZOO_REGISTRY", str(registry))
    monkeypatch.setenv("HF_TOKEN", local_hub.token)
    plugins.reset()
    catalogue.cache_clear()
    try:
        from zoo_images.data import MNIST

        MNIST(layout="image", size=32).tensors()
    except Exception as exc:  # noqa: BLE001 - the offline MNIST wheel is optional
        pytest.skip(f"offline MNIST unavailable: {exc}")
    try:
        recipe = dataclasses.replace(plugins.get_recipe_spec("ganqp-mnist"),
                                     model_config={"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64})
        run(recipe, out=str(tmp_path / "runs/ganqp"), batch_size=32, limit_train=512, max_steps=4,
            eval_every_steps=None, eval_samples=200, fid_limit=2000, kid_subsets=2, eval_batch_size=200,
            grid_samples=16, progress=False, log_every=1, threads=1)
        r = release_cli("ganqp-mnist", "zhidao-tags", "dgcnn-sogou", "--registry-file", str(registry),
                        "--set", "eval_samples=200", "--set", "fid_limit=2000", "--set", "kid_subsets=2",
                        "--set", "eval_batch_size=200")
        assert r.returncode == 0, r.stderr
        assert "skip  zhidao-tags: not redistributable: trained on the Baidu Zhidao corpus" in r.stdout
        assert "skip  dgcnn-sogou: not redistributable: trained on SogouQA" in r.stdout
        (entry,) = published_entries(registry).values()
        assert entry.id == "ganqp-mnist" and entry.hub.repo_id == f"{ORG}/ganqp-mnist"
        assert {m["name"] for m in entry.metrics} >= {"fid", "kid"}
        assert all("eval_samples=200" in m["protocol"] for m in entry.metrics)  # a reduced evaluation says so

        env = fresh_home(tmp_path, "user")
        assert list_rows(env)["ganqp-mnist"]["hub"] == f"{ORG}/ganqp-mnist@{entry.hub.revision[:7]}"
        load_in_subprocess("ganqp-mnist", local_model_dir("ganqp-mnist"), env)
    finally:
        plugins.reset()
        catalogue.cache_clear()


def test_an_entry_of_the_registry_file_itself_is_replaced_where_it_stands(release_env):
    """As for nice-mnist in registry.yaml: the not-published entry becomes the published one in place,
    keeping the figures the release did not measure (a paper's) and the comments around it."""
    registry, tmp = release_env["registry"], release_env["tmp"]
    registry.write_text("""# catalogue head
version: 1
models:
  # trained here
  - id: toy-listed
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: "toy model listed in the registry file"
    links: {source: "https://example.org/toy"}
    license: Apache-2.0
    metrics:
      - {name: paper mse, value: 0.01, dataset: toy, protocol: "as reported", source: "a paper"}
    hub: null
    weights: {status: not-published, how: train, instructions: "zoo train toy-fit"}
    recipe: toy-fit
  # the end
""")
    train("toy-fit", tmp / "runs/fit")  # installs toy-listed (and toy-fit-model)
    r = release_cli("toy-listed", "--registry-file", str(registry))
    assert r.returncode == 0, r.stderr
    text = registry.read_text()
    assert text.startswith("# catalogue head\nversion: 1\nmodels:\n  # trained here\n  - id: toy-listed\n")
    assert text.endswith("    recipe: toy-fit\n  # the end\n")
    (entry,) = published_entries(registry).values()
    assert entry.hub is not None and entry.weights == {}
    assert [m["name"] for m in entry.metrics] == ["paper mse", "mse"]
    assert entry.metrics[1]["source"].startswith("measured by `zoo release` on ")
