"""zoo-nice's plugin hooks: registration only (the specs and their data; the commands live in cli.py).

No torch import at module level: ``zoo --help`` and ``zoo list`` stay fast.
"""

from __future__ import annotations

from zoo_core import ModelSpec, RecipeSpec, hookimpl

# The paper's recipe (section 5.1). epochs = 1500 as in the paper; batch size is not reported
# for MNIST, 128 is Su's.
RECIPE_DEFAULTS = {
    "epochs": 1500,
    "batch_size": 128,
    "lr": 1e-3,  # Adam's betas and eps: NICESettings (train.py)
    "eval_batch_size": 1000,
    "checkpoint_every": 1000,
    "log_every": 50,
}

TINY_CONFIG = {"dim": 8, "num_couplings": 4, "hidden": 16, "hidden_layers": 2}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="nice", target="zoo_nice.model:NICE", task="density-estimation",
        summary="NICE flow (Dinh et al. 2014): additive couplings + diagonal scaling, exact log-likelihood",
        tiny_config=dict(TINY_CONFIG)))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="nice-mnist", model="nice", dataset="mnist", step="zoo_nice.train:NICEStep",
        summary="NICE on MNIST, the paper's recipe (logistic prior, Adam 1e-3, 1500 epochs, select on val LL)",
        defaults=dict(RECIPE_DEFAULTS)))


@hookimpl
def register_commands(commands):
    """``zoo sample nice-mnist`` (zoo_nice/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_nice/demo.py; imported only when serving)."""
    register("nice", "zoo_nice.demo:build")
