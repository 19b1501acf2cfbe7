"""zoo-ganqp's commands: ``zoo sample ganqp-mnist`` (and one per recipe): sample grids and interpolations.

Importing this module costs only click: torch and the model are imported inside the command body
(hooks.py attaches the commands while ``zoo --help`` runs).
"""

from __future__ import annotations

import click



def attach(commands) -> None:
    """``zoo sample RECIPE`` for every GAN-QP recipe (``commands``: the core's PluginCommands)."""
    for recipe in commands.recipes():
        commands.add(make_sample_command(recipe), to="sample")


def make_sample_command(name: str) -> click.Command:
    """``zoo sample NAME``: by default the model of recipe NAME (``zoo_core.resolve_folder`` finds it)."""
    @click.command(name)
    @click.option("--model", "model_name", default=name, show_default=True,
                  help="catalogue id, model folder or hf-hub:org/repo@rev (default: the model `zoo train "
                       f"{name}` made: installed, else runs/{name}/model)")
    @click.option("-n", "n", type=click.IntRange(1, 10_000), default=None,
                  help="images in the grid (default 64), or strips with --interpolate (default 8)")
    @click.option("-o", "--out", default="grid.png", show_default=True, type=click.Path(dir_okay=False),
                  help="picture to write (its suffix picks the format: .png, .jpg, ...)")
    @click.option("--seed", default=0, show_default=True, type=int, help="seed of the latents z")
    @click.option("--device", default="cpu", show_default=True)
    @click.option("--interpolate", "steps", type=click.IntRange(2, 100), default=None, metavar="STEPS",
                  help="write interpolation strips of STEPS images between pairs of random latents instead")
    def command(model_name, n, out, seed, device, steps):
        """Sample a GAN-QP generator into a grid, or interpolate between random latents."""
        written = sample_to_file(model_name, out, n=n, seed=seed, device=device, steps=steps)
        click.echo(written)

    command.help = f"Sample the GAN-QP generator of {name} into a picture (or interpolation strips)."
    return command


def load_generator(model_name: str, device: str = "cpu"):
    """The GAN-QP model behind ``model_name`` in eval mode; a ZooError for a model of another kind."""
    from zoo_core import load_model

    return load_model(model_name, device=device, architecture="ganqp")


def sample_to_file(model_name: str, out, *, n: int | None = None, seed: int = 0, device: str = "cpu",
                   steps: int | None = None) -> str:
    """Write a grid of ``n`` samples (or ``n`` interpolation strips of ``steps``) to ``out``; return a summary."""
    import torch

    from zoo_images.gan import interpolation_latents
    from zoo_images.pictures import save_grid, save_interpolation

    model = load_generator(model_name, device)
    gen = torch.Generator().manual_seed(seed)
    size = model.config.img_size
    with torch.no_grad():
        if steps is None:
            n = n or 64
            images = model.sample(n, generator=gen, device=device).float().cpu()
            path = save_grid(images, out)
            return f"wrote {n} samples ({size} px) to {path}"
        rows = n or 8
        z0, z1 = model.noise(rows, generator=gen, device="cpu"), model.noise(rows, generator=gen, device="cpu")
        images = model(interpolation_latents(z0, z1, steps).to(device)).float().cpu()
        path = save_interpolation(images, out, steps=steps)
        return f"wrote {rows} interpolation strips of {steps} images ({size} px) to {path}"
