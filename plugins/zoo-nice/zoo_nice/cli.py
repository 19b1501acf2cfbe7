"""zoo-nice's commands: ``zoo sample nice-mnist``.

Importing this module costs only click: torch and the model are imported inside
the command body (hooks.py attaches the command while ``zoo --help`` runs).
"""

from __future__ import annotations

import click


def attach(commands) -> None:
    """``zoo sample nice-mnist`` (``commands``: the core's PluginCommands, from hooks.register_commands)."""
    commands.add(sample_command, to="sample", name="nice-mnist")


@click.command("nice-mnist")
@click.option("--model", "model_name", default="nice-mnist", show_default=True,
              help="catalogue id (the model `zoo train nice-mnist` installed) or model folder")
@click.option("--temperature", default=0.75, show_default=True, type=float,
              help="scale of the prior sample (Su uses 0.75)")
@click.option("-n", "n", default=64, show_default=True, type=click.IntRange(1, 10_000), help="number of samples")
@click.option("-o", "--out", default="grid.png", show_default=True, type=click.Path(dir_okay=False),
              help="picture to write; its suffix picks the format (.png, .jpg, .jpeg, .webp)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--device", default="cpu", show_default=True)
def sample_command(model_name, temperature, n, out, seed, device):
    """Sample NICE digits into a PNG grid of ceil(sqrt(n)) columns of 28x28 tiles."""
    from zoo_core import load_model
    from zoo_images.pictures import picture_format

    from .sample import grid_shape, sample_grid

    picture_format(out)  # a suffix it cannot write is refused before the model loads
    model = load_model(model_name, device=device, architecture="nice")
    path = sample_grid(model, n=n, temperature=temperature, seed=seed, out=out)
    rows, cols = grid_shape(n)
    click.echo(f"wrote {n} samples ({rows}x{cols} grid, {cols * 28}x{rows * 28} px) to {path}")
