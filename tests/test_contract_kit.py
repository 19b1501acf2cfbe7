"""The contract kit passes a well-behaved plugin and catches broken ones."""

import os
import subprocess
import sys
from pathlib import Path

from fake_dists import make_plugin_dist

HERE = Path(__file__).parent

BAD = '''
from dataclasses import dataclass
import torch
from torch import nn
from zoo_core import hookimpl
from zoo_core.model import ZooModel
from zoo_core.specs import ModelSpec


@dataclass
class Cfg:
    dim: int = 4


class Leaky(ZooModel):
    """Keeps a tensor outside its state dict, so a reload cannot reproduce it, and returns NaN."""
    config_class = Cfg
    architecture = "leaky"

    def __init__(self, config):
        super().__init__(config)
        self.fc = nn.Linear(self.config.dim, 1)
        self.secret = torch.randn(1)

    def forward(self, x):
        return self.fc(x) * float("nan")

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)


@hookimpl
def register_models(register):
    register(ModelSpec(name="leaky", target="zoo_bad_mod:Leaky", task="regression", summary="broken on purpose"))
'''


def _run_kit(tmp_path, plugin):
    test = tmp_path / f"test_contract_{plugin}.py"
    (tmp_path / "conftest.py").write_text("from zoo_core.testing.pytest_plugin import *  # noqa: F403\n")
    test.write_text("from zoo_core.testing.contract import ContractTests\n\n\n"
                    f"class TestContract(ContractTests):\n    plugin = {plugin!r}\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path / 'site'}:{HERE}")
    env.pop("ZOO_LOAD_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_kit_passes_a_good_plugin_and_fails_a_bad_one(tmp_path):
    make_plugin_dist(tmp_path / "site", "zoo-toy", "toy_plugin", None, "toy")
    make_plugin_dist(tmp_path / "site", "zoo-bad", "zoo_bad_mod", BAD, "bad")
    good = _run_kit(tmp_path, "toy")
    assert good.returncode == 0, good.stdout[-3000:]
    assert "6 passed" in good.stdout
    bad = _run_kit(tmp_path, "bad")
    assert bad.returncode == 1
    assert "FAILED" in bad.stdout and "test_models_build_tiny_and_run_forward" in bad.stdout
    assert "leaky: non-finite output" in bad.stdout
    missing = _run_kit(tmp_path, "not-installed")
    assert "no plugin 'not-installed'" in missing.stdout


# --- the recipe contract (RecipeContract) -------------------------------------------------------------

RECIPES = '''
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import (DatasetSpec, ModelSpec, RecipeSpec, TrainStep, ZooDataset, ZooError, ZooModel, hookimpl,
                      shard_draw)


@dataclass
class KitConfig:
    dim: int = 4
    hidden: int = 8


class KitMLP(ZooModel):
    config_class = KitConfig
    architecture = "kit-mlp"

    def __init__(self, config):
        super().__init__(config)
        self.fc1 = nn.Linear(self.config.dim, self.config.hidden)
        self.fc2 = nn.Linear(self.config.hidden, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x))).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)


class KitData(ZooDataset):
    name = "kit-data"

    def split(self, name):
        self.check_split(name)
        g = torch.Generator().manual_seed(self.splits.index(name) + 1)
        x = torch.randn(128, 4, generator=g)
        return torch.utils.data.TensorDataset(x, x.sum(-1).sin())


class GoodStep(TrainStep):
    """Noise from the global RNG (which checkpoints keep) drawn for the global batch, a mean loss."""

    monitor = "mse"

    def training_step(self, model, batch):
        x, y = batch
        return {"loss": F.mse_loss(model(x), y + 0.01 * shard_draw(torch.randn, len(y)))}

    @torch.no_grad()
    def evaluate(self, model, loader):
        return {"mse": sum(float(F.mse_loss(model(x), y, reduction="sum")) for x, y in loader) / 64}


class BadStep(GoodStep):
    """Noise from a generator of its own that no checkpoint keeps, and a loss summed over the process's
    share of the batch (DDP averages over processes: two take half the step one takes)."""

    def __init__(self, model, config):
        super().__init__(model, config)
        self.noise = torch.Generator().manual_seed(0)

    def training_step(self, model, batch):
        x, y = batch
        noise = torch.randn(y.shape, generator=self.noise)
        return {"loss": F.mse_loss(model(x), y + noise, reduction="sum")}


class SoloStep(GoodStep):
    def __init__(self, model, config):
        import os

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ZooError("the kit's solo recipe runs in one process", hint="run it without torchrun")
        super().__init__(model, config)


@hookimpl
def register_models(register):
    register(ModelSpec(name="kit-mlp", target="zoo_kit_recipes:KitMLP", task="regression", summary="an MLP",
                       tiny_config={"dim": 4, "hidden": 8}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="kit-data", target="zoo_kit_recipes:KitData", summary="sin of a sum"))


@hookimpl
def register_recipes(register):
    for name, step in (("kit-good", "GoodStep"), ("kit-bad", "BadStep"), ("kit-solo", "SoloStep")):
        register(RecipeSpec(name=name, model="kit-mlp", dataset="kit-data", step=f"zoo_kit_recipes:{step}",
                            summary="a test recipe", defaults={"batch_size": 16, "lr": 0.01}))


@hookimpl
def register_registry_entries(register):
    register({"id": "kit-good", "architecture": "kit-mlp", "plugin": "kit", "task": "regression",
              "summary": "kit-good trained here", "license": "Apache-2.0", "links": {"source": "https://example.org"},
              "metrics": [], "hub": None, "recipe": "kit-good",
              "weights": {"status": "not-published", "how": "train", "instructions": "zoo train kit-good"}})
'''

RECIPE_TESTS = '''
from zoo_core.testing import RecipeContract


class Tiny(RecipeContract):
    plugins = "kit"
    tiny = {"max_steps": 6, "batch_size": 16, "limit_train": 64, "limit_eval": 64, "eval_every_steps": 2,
            "ema_decay": 0.9}
    model_set = {"hidden": 6}


class TestGood(Tiny):
    recipe = "kit-good"


class TestBad(Tiny):
    recipe = "kit-bad"


class TestSolo(Tiny):
    recipe = "kit-solo"
    torchrun_refusal = "runs in one process"
'''


def test_recipe_contract_passes_a_good_recipe_and_catches_a_bad_one(tmp_path):
    site, tests = tmp_path / "site", tmp_path / "tests"
    make_plugin_dist(site, "zoo-kit", "zoo_kit_recipes", RECIPES, "kit")
    tests.mkdir()
    (tests / "conftest.py").write_text("from zoo_core.testing.pytest_plugin import *  # noqa: F403\n")
    (tests / "test_recipes.py").write_text(RECIPE_TESTS)
    env = dict(os.environ, PYTHONPATH=str(site), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tests)],
                       env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    results = {line.split(" ")[1].split("::", 1)[1]: line.split(" ")[0] for line in r.stdout.splitlines()
               if line.startswith(("PASSED ", "FAILED ", "ERROR ", "SKIPPED "))}
    good = {f"TestGood::test_{t}" for t in ("resume_is_bit_identical", "torchrun_two_processes_match_one",
                                            "train_installs_what_load_model_loads")}
    assert {k: v for k, v in results.items() if k in good} == dict.fromkeys(good, "PASSED"), r.stdout[-6000:]
    assert results["TestBad::test_resume_is_bit_identical"] == "FAILED", r.stdout[-6000:]
    assert results["TestBad::test_torchrun_two_processes_match_one"] == "FAILED"
    assert results["TestBad::test_train_installs_what_load_model_loads"] == "PASSED"  # no catalogue id: OUT/model
    assert results["TestSolo::test_torchrun_two_processes_match_one"] == "PASSED"  # refused, with the reason
    assert "tensor(s) differ after the resume" in r.stdout and "2 processes differ from 1" in r.stdout
