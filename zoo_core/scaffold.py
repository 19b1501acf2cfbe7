"""``zoo new-plugin NAME``: write a plugin package that passes its own tests as generated."""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from .errors import ZooError
from .files import atomic_dir

FILES = {
    "pyproject.toml": '''\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "zoo-$name"
version = "0.1.0"
description = "$title for the zoo"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["zoo-core"]

[project.optional-dependencies]
test = ["pytest"]

# This line is what makes the zoo find the plugin.
[project.entry-points.zoo]
$name = "zoo_$pkg.hooks"

[tool.setuptools.packages.find]
include = ["zoo_$pkg*"]
''',
    "zoo_$pkg/__init__.py": '''\
"""$title: a zoo plugin."""
''',
    "zoo_$pkg/hooks.py": """\
\"\"\"What this plugin adds to the zoo: registration only.

No torch import here: `zoo --help` and `zoo list` import this module and must
stay fast. Code is named by "module:Name" strings and imported when used.
\"\"\"

from zoo_core import DatasetSpec, ModelSpec, RecipeSpec, hookimpl

TINY_CONFIG = {"dim": 16, "hidden": 8}  # small enough for the contract tests to run in milliseconds
# What this recipe changes from TrainConfig's and the step's Settings' defaults (those are the one place
# for a default). `zoo train $name --set KEY=VALUE` changes any of them for one run.
RECIPE_DEFAULTS = {"epochs": 20, "batch_size": 32, "lr": 3e-3, "eval_batch_size": 256}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="$name", target="zoo_$pkg.model:$cls", task="regression",
        summary="$title: a two-layer MLP to start from", tiny_config=dict(TINY_CONFIG)))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="$name-synthetic", target="zoo_$pkg.data:${cls}Data",
        summary="y = sin(x0) + x1 / 2 on Gaussian x, fixed splits (replace with your data)"))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="$name", model="$name", dataset="$name-synthetic", step="zoo_$pkg.train:${cls}Step",
        summary="fit the MLP with Adam, keep the best validation MSE", defaults=dict(RECIPE_DEFAULTS)))


@hookimpl
def register_registry_entries(register):
    # The catalogue entry that `zoo train $name` fills: afterwards load_model("$name") finds it.
    register({
        "id": "$name", "architecture": "$name", "plugin": "$name", "task": "regression",
        "summary": "$title trained here on its synthetic data", "license": "Apache-2.0",
        "links": {"source": "https://example.org/zoo-$name"},  # change me: the paper, the code
        "metrics": [], "hub": None, "recipe": "$name",
        "weights": {"status": "not-published", "how": "train", "instructions": "Run `zoo train $name`."},
    })


@hookimpl
def register_commands(commands):
    # `commands` attaches to the core's shared verbs (zoo sample, zoo export, ...) or to `zoo $name ...`
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    # The model's tab in `zoo serve` (zoo_$pkg/demo.py, imported only when serving; needs zoo-core[serve]).
    register("$name", "zoo_$pkg.demo:build")
""",
    "zoo_$pkg/demo.py": """\
\"\"\"$title's tab in `zoo serve`: numbers in, the model's prediction out. Imported only by `zoo serve`.\"\"\"

from functools import partial

import gradio as gr


def build(tab):
    \"\"\"A box of numbers and a button; the prediction (endpoint `<model>_predict`).\"\"\"
    values = gr.Textbox(label="input: numbers separated by spaces", value=" ".join(["0"] * 16))
    button = gr.Button("Predict")
    answer = gr.Number(label="prediction")
    tab.on([button.click], partial(predict, tab), [values], answer, name="predict",
           description="numbers separated by spaces -> the model's prediction")


def predict(tab, text):
    \"\"\"The model's output for the numbers in ``text``; a ZooError (shown in the page) for bad input.\"\"\"
    import torch

    from zoo_core import ZooError

    model = tab.model()  # loaded on first use, with a status line in the page
    try:
        values = [float(v) for v in (text or "").split()]
    except ValueError:
        raise ZooError("the input must be numbers separated by spaces") from None
    if len(values) != model.config.dim:
        raise ZooError(f"got {len(values)} numbers, the model takes {model.config.dim}")
    with torch.no_grad():
        return float(model(torch.tensor([values]))[0])
""",
    "zoo_$pkg/model.py": """\
\"\"\"$title. Replace this MLP with your model; keep the config a dataclass.\"\"\"

from dataclasses import dataclass

import torch
from torch import nn

from zoo_core import ZooModel


@dataclass
class ${cls}Config:
    dim: int = 16  # the input width: the dataset sets it for training (data.py, model_config)
    hidden: int = 64


class $cls(ZooModel):
    config_class = ${cls}Config
    architecture = "$name"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.fc1 = nn.Linear(c.dim, c.hidden)
        self.fc2 = nn.Linear(c.hidden, 1)

    def forward(self, x):  # x: (B, dim) -> (B,)
        return self.fc2(torch.relu(self.fc1(x))).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.randn(batch_size, self.config.dim),)
""",
    "zoo_$pkg/data.py": """\
\"\"\"The data of $title. Replace the synthetic regression with a loader for your dataset.\"\"\"

import torch

from zoo_core import ZooDataset

SIZES = {"train": 2048, "validation": 256, "test": 256}


class ${cls}Data(ZooDataset):
    \"\"\"y = sin(x0) + x1 / 2 on Gaussian x, ``features`` wide (``--set 'dataset_options={"features": 8}'``).\"\"\"

    name = "$name-synthetic"

    def __init__(self, features: int = 16, **options):
        super().__init__(**options)
        self.features = int(features)
        self._splits = {}  # made once per run: the Trainer asks for the splits, model_config and init_model

    def split(self, name):
        self.check_split(name)
        if name not in self._splits:
            # Fixed per split, not per run seed: every run must be scored on the same test set.
            g = torch.Generator().manual_seed(self.splits.index(name) + 1)
            x = torch.randn(SIZES[name], self.features, generator=g)
            y = torch.sin(x[:, 0]) + 0.5 * x[:, 1]
            self._splits[name] = torch.utils.data.TensorDataset(x, y)
        return self._splits[name]

    def model_config(self, settings):
        \"\"\"What the data decides in the model's config, before the model is built: it is born the right size.\"\"\"
        return {"dim": self.features}

    def init_model(self, model, settings):
        \"\"\"Data-derived starting values for a fresh model (never on resume): predict the mean target at first.\"\"\"
        with torch.no_grad():
            model.fc2.bias.fill_(float(self.split("train").tensors[1].mean()))
""",
    "zoo_$pkg/train.py": """\
\"\"\"How $title trains: the loss of one batch and the validation metric; the core owns the loop.\"\"\"

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo_core import TrainStep, ZooError, shard_draw


@dataclass
class ${cls}Settings:
    \"\"\"The step's own settings: these defaults, then the recipe's, then `zoo train $name --set KEY=VALUE`.\"\"\"

    noise: float = 0.0  # standard deviation of Gaussian noise added to the training targets

    def __post_init__(self):
        if self.noise < 0:
            raise ZooError(f"noise must be 0 or more, got {self.noise}", where="--set noise=...",
                           hint="e.g. --set noise=0.1")


class ${cls}Step(TrainStep):
    Settings = ${cls}Settings  # the core builds self.settings from the run's settings, typed and checked
    monitor = "mse"  # the validation metric that picks the best model (lower is better)

    def training_step(self, model, batch):
        x, y = batch
        if self.settings.noise:
            # drawn for the global batch and sharded: torchrun with N processes trains as one does
            y = y + self.settings.noise * shard_draw(torch.randn, len(y))
        return {"loss": F.mse_loss(model(x), y)}

    @torch.no_grad()
    def evaluate(self, model, loader):
        total, n = 0.0, 0
        for x, y in loader:
            total += float(F.mse_loss(model(x), y, reduction="sum"))
            n += len(y)
        return {"mse": total / n}
""",
    "zoo_$pkg/cli.py": """\
\"\"\"The plugin's commands: `zoo $name predict`.\"\"\"

import click


def attach(commands):
    \"\"\"Attach this plugin's commands (called from hooks.register_commands).

    ``commands.add(cmd)`` makes ``zoo $name CMD``; ``commands.add(cmd, to="sample", name="$name")``
    would attach to one of the core's shared verbs (``zoo sample $name``).
    \"\"\"
    commands.describe("$title: predict with the model `zoo train $name` installed.")

    @click.command("predict")
    @click.argument("values", nargs=-1, type=float, required=True)
    @click.option("--model", "model_ref", default="$name", show_default=True,
                  help="catalogue id, recipe name or model folder")
    def predict(values, model_ref):
        \"\"\"Predict y for one input vector of VALUES.\"\"\"
        import torch

        from zoo_core import ZooError, load_model

        model = load_model(model_ref)
        if len(values) != model.config.dim:
            raise ZooError(f"got {len(values)} values, the model takes {model.config.dim}",
                           hint=f"pass {model.config.dim} numbers")
        with torch.no_grad():
            click.echo(f"{float(model(torch.tensor([values]))[0]):.6g}")

    commands.add(predict)
""",
    "tests/conftest.py": '''\
"""The zoo's test kit for these tests: the local_hub, hf_cache and zoo_home fixtures, and a session whose
ZOO_HOME, HF_HOME and XDG_CACHE_HOME are a temporary folder (so no test writes into your real caches)."""

from zoo_core.testing.pytest_plugin import *  # noqa: F403
''',
    "tests/test_contract.py": """\
\"\"\"The zoo's contracts: the plugin's (hooks, catalogue, tiny model, Hub round trip, demo) and the recipe's
(resume is bit-identical, torchrun with 2 processes trains as 1, train -> load_model gives the trained model).\"\"\"

from zoo_core.testing import ContractTests, RecipeContract


class TestContract(ContractTests):
    plugin = "$name"


class TestRecipe(RecipeContract):
    recipe = "$name"
    plugins = "$name"  # the runs load this plugin only
    tiny = {"max_steps": 6, "batch_size": 16, "limit_train": 64, "limit_eval": 32, "noise": 0.1}
    model_set = {"hidden": 8}
""",
    "tests/test_model.py": """\
import torch

from zoo_$pkg.model import $cls


def test_forward_shape():
    model = $cls.from_config({"dim": 4, "hidden": 8})
    assert model(torch.randn(3, 4)).shape == (3,)


def test_save_and_load_round_trip(tmp_path):
    from zoo_core import load_model

    model = $cls.from_config({"dim": 4, "hidden": 8})
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config
    x = torch.randn(2, 4)
    assert torch.equal(loaded(x), model.eval()(x))
""",
    "tests/test_train.py": """\
import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "$name")


def test_training_beats_the_untrained_model_and_lands_in_the_store(tmp_path, home):
    from zoo_core import Trainer, TrainConfig, evaluate, load_model, train

    train("$name", out=str(tmp_path / "run"), epochs=3, progress=False)
    trained = load_model("$name")  # no path: training installed it in the zoo's local store
    untrained = Trainer("$name", TrainConfig(out=str(tmp_path / "none"))).build_model()
    before = evaluate("$name", untrained, split="test")["mse"]
    after = evaluate("$name", trained, split="test")["mse"]
    assert after < 0.7 * before


def test_the_data_sizes_the_model(tmp_path, home):
    from zoo_core import load_model, train

    train("$name", out=str(tmp_path / "run"), max_steps=2, progress=False, dataset_options={"features": 8})
    assert load_model("$name").config.dim == 8


def test_a_bad_setting_is_refused_with_its_option(tmp_path, home):
    from zoo_core import ZooError, train

    with pytest.raises(ZooError, match="noise") as exc:
        train("$name", out=str(tmp_path / "run"), noise=-1.0, progress=False)
    assert exc.value.where == "--set noise=..."
""",
    "README.md": '''\
# zoo-$name

$title, packaged for the zoo.

## Model card

- Task: regression (change me)
- Paper / source: (link)
- Licence: (licence of the code and of the weights)
- Metrics: (value, dataset, protocol, where it came from)

## Use

```bash
zoo train $name                 # trains, then installs the best model in the zoo's local store
zoo $name predict 0.5 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0
zoo serve $name                 # the same in a browser tab (zoo_$pkg/demo.py), and as an HTTP endpoint
```

## Develop

```bash
pip install -e .[test]
pytest tests        # tests/conftest.py opts in to the zoo's test kit (private caches, local_hub, contracts)
```
''',
}


def _installed(dist_name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist_name)
    except metadata.PackageNotFoundError:
        return None


def create_plugin(name: str, directory: str | Path = ".") -> Path:
    """Write ``zoo-<name>/`` under ``directory`` and return its path (atomically; never overwrites).

    ``name`` may be given with or without the ``zoo-`` prefix. A name whose
    distribution (``zoo-<name>``), package (``zoo_<name>``) or entry point is
    already installed is refused: the two would shadow each other.
    """
    name = name.removeprefix("zoo-")
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name) or name.endswith("-") or "--" in name:
        raise ZooError(f"plugin name {name!r} is not valid",
                       hint="use lower-case letters, digits and single '-', starting with a letter")
    pkg = name.replace("-", "_")
    if keyword.iskeyword(pkg):
        raise ZooError(f"plugin name {name!r} is a Python keyword", hint="choose another name")
    version = _installed(f"zoo-{name}")
    if version is None:
        import importlib.util

        if importlib.util.find_spec(f"zoo_{pkg}") is not None:
            version = "a package zoo_" + pkg
    else:
        version = f"zoo-{name} {version}"
    from .plugins import load_plugins, pm

    load_plugins()
    if version is None and pm.has_plugin(name):
        version = f"a plugin named {name!r}"
    if version is not None:
        raise ZooError(f"{version} is already installed; a new plugin called {name!r} would clash with it",
                       hint="choose another name (`zoo plugins` lists the installed ones)")
    cls = "".join(part.capitalize() for part in name.split("-"))
    target = Path(directory) / f"zoo-{name}"
    if target.exists():
        raise ZooError("the folder already exists", where=str(target), hint="choose another name or --dir")
    values = {"name": name, "pkg": pkg, "cls": cls, "title": cls}
    with atomic_dir(target) as tmp:
        for rel, text in FILES.items():
            path = tmp / Template(rel).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(text).substitute(values), encoding="utf-8")
    return target
