"""zoo-ogan's commands: ``zoo sample ogan-*`` and ``zoo ogan encode | reconstruct | interpolate``.

Images come from files (PNG/JPEG, centre-cropped and resized to the model's size; averaged to grey
for a grey model) or from a dataset split (``--dataset mnist --split test``). Importing this module
costs only click: torch and the model are imported inside the command bodies.
"""

from __future__ import annotations

import click

DEFAULT_MODEL = "ogan-mnist"
GREY_DATASETS = ("mnist", "fashion-mnist")


def attach(commands) -> None:
    """``zoo sample RECIPE`` per O-GAN recipe and ``zoo ogan encode|reconstruct|interpolate``.

    ``commands`` is the core's PluginCommands (from hooks.register_commands).
    """
    for recipe in commands.recipes():
        commands.add(make_sample_command(recipe), to="sample")
    commands.describe("O-GAN: encode images, reconstruct them, interpolate between them (zoo-ogan).")
    for command in (encode_command, reconstruct_command, interpolate_command):
        commands.add(command)


def load_ogan(model_name: str, device: str = "cpu"):
    """The O-GAN model behind ``model_name`` in eval mode; a ZooError for a model of another kind."""
    from zoo_core import load_model

    return load_model(model_name, device=device, architecture="ogan")


def make_sample_command(name: str) -> click.Command:
    """``zoo sample NAME``: by default the model of recipe NAME (``zoo_core.resolve_folder`` finds it)."""
    @click.command(name)
    @click.option("--model", "model_name", default=name, show_default=True,
                  help="catalogue id, model folder or hf-hub:org/repo@rev (default: the model `zoo train "
                       f"{name}` made: installed, else runs/{name}/model)")
    @click.option("-n", "n", type=click.IntRange(1, 10_000), default=64, show_default=True, help="images in the grid")
    @click.option("-o", "--out", default="grid.png", show_default=True, type=click.Path(dir_okay=False),
                  help="picture to write (its suffix picks the format: .png, .jpg, ...)")
    @click.option("--seed", default=0, show_default=True, type=int, help="seed of the latents z")
    @click.option("--device", default="cpu", show_default=True)
    def command(model_name, n, out, seed, device):
        import torch

        from zoo_images.pictures import save_grid

        model = load_ogan(model_name, device)
        images = model.sample(n, generator=torch.Generator().manual_seed(seed), device=device).float().cpu()
        click.echo(f"wrote {n} samples ({model.config.img_size} px) to {save_grid(images, out)}")

    command.help = f"Sample the O-GAN generator of {name} into a grid."
    return command


# --- where the images come from ---------------------------------------------------------------------------


def load_images(model, files=(), *, dataset: str | None = None, split: str = "test", root: str | None = None,
                start: int = 0, n: int | None = None):
    """Images for ``model``: (x (N, C, S, S) in [-1, 1], labels (N,) or None, names).

    From ``files`` (pictures, centre-cropped and resized to the model's size, averaged to one channel
    for a grey model), or else from items ``start .. start + n`` of a zoo-images dataset split.
    """
    import torch

    from zoo_core import ZooError
    from zoo_images.data import load_picture, open_dataset

    size, channels = model.config.img_size, model.config.channels
    if files:
        pictures = [load_picture(f, size) for f in files]  # (3, S, S) each
        x = torch.stack(pictures)
        if channels == 1:
            x = x.mean(dim=1, keepdim=True)
        return x, None, [str(f) for f in files]
    if dataset is None:
        raise ZooError("no images given", hint="pass picture files, or --dataset mnist --split test")
    options = {"root": root} if root else {}
    if dataset in GREY_DATASETS:
        options.update(layout="image", size=size)
    elif dataset == "image-folder":
        options["size"] = size
    data = open_dataset(dataset, **options).split(split)
    if start < 0 or start >= len(data):
        raise ZooError(f"--start {start} is outside the {len(data):,} images of {dataset}/{split}",
                       where="--start", hint=f"use 0 .. {len(data) - 1}")
    stop = len(data) if n is None else min(len(data), start + n)
    if hasattr(data, "batch"):  # zoo-images' grey datasets: all items at once
        x, labels = data.batch(range(start, stop))
    else:
        items = [data[i] for i in range(start, stop)]
        x = torch.stack([item[0] for item in items])
        labels = torch.as_tensor([int(item[1]) for item in items]) if len(items[0]) > 1 else None
    if x.shape[1] != channels:
        raise ZooError(f"{dataset} has {x.shape[1]}-channel images, the model makes {channels}-channel ones",
                       where="--dataset", hint="pick a dataset of the kind the model was trained on")
    return x, labels, [f"{dataset}/{split}/{i}" for i in range(start, stop)]


def _image_options(f):
    f = click.option("--dataset", help="mnist, fashion-mnist or image-folder (instead of picture files)")(f)
    f = click.option("--split", default="test", show_default=True)(f)
    f = click.option("--root", type=click.Path(file_okay=False), help="the dataset's folder")(f)
    f = click.option("--start", default=0, show_default=True, type=click.IntRange(0, None),
                     help="first dataset item used")(f)
    f = click.option("--model", "model_name", default=DEFAULT_MODEL, show_default=True,
                     help="catalogue id, model folder or hf-hub:org/repo@rev")(f)
    f = click.option("--device", default="cpu", show_default=True)(f)
    return click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))(f)


@click.command("encode")
@_image_options
@click.option("-n", "n", type=click.IntRange(1, None), default=None, help="dataset images encoded (default: all)")
@click.option("-o", "--out", default="codes.safetensors", show_default=True, type=click.Path(dir_okay=False))
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, None))
def encode_command(files, dataset, split, root, start, model_name, device, n, out, batch_size):
    """Encode images into codes z = E(x): OUT holds "z" (N, z_dim), "labels" for a labelled dataset."""
    written = encode_to_file(model_name, out, files, dataset=dataset, split=split, root=root, start=start, n=n,
                             device=device, batch_size=batch_size)
    click.echo(written)


def encode_to_file(model_name: str, out, files=(), *, device: str = "cpu", batch_size: int = 500, **source) -> str:
    """Write E(x) of the images (see :func:`load_images`) to ``out`` as safetensors; return a summary."""
    import json

    import torch
    from safetensors.torch import save

    from zoo_core import write_bytes

    model = load_ogan(model_name, device)
    x, labels, names = load_images(model, files, **source)
    with torch.no_grad():
        z = torch.cat([model.encode(x[i:i + batch_size].to(device)).float().cpu()
                       for i in range(0, x.shape[0], batch_size)])
    tensors = {"z": z.contiguous()}
    if labels is not None:
        tensors["labels"] = labels.contiguous()
    metadata = {"model": str(model_name), "images": json.dumps(names if files else [names[0], names[-1]])}
    path = write_bytes(out, save(tensors, metadata=metadata))
    return f"wrote codes {tuple(z.shape)} of {len(names)} images to {path}"


@click.command("reconstruct")
@_image_options
@click.option("-n", "n", type=click.IntRange(1, 1000), default=32, show_default=True, help="dataset images")
@click.option("-o", "--out", default="recon.png", show_default=True, type=click.Path(dir_okay=False))
def reconstruct_command(files, dataset, split, root, start, model_name, device, n, out):
    """Write real images next to their reconstructions G(0.9 N(E(x))) as a picture of pairs."""
    from zoo_images.pictures import save_pairs

    model = load_ogan(model_name, device)
    x, _, names = load_images(model, files, dataset=dataset, split=split, root=root, start=start, n=n)
    recon = model.reconstruct(x.to(device)).float().cpu()
    mse = float((recon - x).square().mean())
    click.echo(f"wrote {len(names)} pairs to {save_pairs(x, recon, out)} (reconstruction MSE {mse:.4f})")


@click.command("interpolate")
@_image_options
@click.option("-n", "rows", type=click.IntRange(1, 100), default=8, show_default=True,
              help="strips (pairs of dataset images start, start+1, ...)")
@click.option("--steps", type=click.IntRange(2, 100), default=10, show_default=True, help="images per strip")
@click.option("-o", "--out", default="interpolation.png", show_default=True, type=click.Path(dir_okay=False))
def interpolate_command(files, dataset, split, root, start, model_name, device, rows, steps, out):
    """Interpolate between pairs of real images through their codes: two picture files, or dataset pairs."""
    from zoo_core import ZooError
    from zoo_images.pictures import save_interpolation

    model = load_ogan(model_name, device)
    if files and len(files) % 2:
        raise ZooError(f"interpolation needs pairs of pictures, got {len(files)}", where="FILES",
                       hint="pass an even number of files: each two make one strip")
    x, _, _ = load_images(model, files, dataset=dataset, split=split, root=root, start=start, n=2 * rows)
    if x.shape[0] < 2:
        raise ZooError("interpolation needs at least two images", where="--start")
    x = x[: x.shape[0] // 2 * 2].to(device)
    images = model.interpolate(x[0::2], x[1::2], steps).float().cpu()
    path = save_interpolation(images, out, steps=steps)
    click.echo(f"wrote {x.shape[0] // 2} interpolation strips of {steps} images to {path}")
