"""Sampling NICE into an image grid: the work of ``zoo sample nice-mnist`` (cli.py)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from zoo_core import atomic_file

SIDE = 28  # MNIST images are 28 x 28


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the grid for n images: ceil(sqrt(n)) columns."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def to_grid(images: torch.Tensor, side: int = SIDE) -> PIL.Image.Image:  # noqa: F821
    """(n, side*side) values in [0, 1] (clamped) -> one greyscale PIL image of rows x cols tiles."""
    from PIL import Image

    n = images.shape[0]
    rows, cols = grid_shape(n)
    tiles = images.detach().float().clamp(0, 1).reshape(n, side, side).cpu()
    canvas = torch.zeros(rows * cols, side, side)
    canvas[:n] = tiles
    canvas = canvas.reshape(rows, cols, side, side).permute(0, 2, 1, 3).reshape(rows * side, cols * side)
    pixels = (canvas * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(pixels)  # 2-D uint8 -> greyscale "L"


def sample_grid(model, n: int = 64, temperature: float = 0.75, seed: int | None = 0,
                out: str | os.PathLike = "grid.png") -> Path:
    """Draw n samples at ``temperature`` and write them as a picture grid to ``out`` (atomically).

    The format follows the suffix (.png, .jpg, .jpeg, .webp); another suffix is a ZooError.
    """
    from zoo_images.pictures import picture_format

    fmt = picture_format(out)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=model.s.device).manual_seed(int(seed))
    x = model.sample(n, temperature=temperature, generator=generator)  # (n, 784)
    image = to_grid(x)
    out = Path(out)
    with atomic_file(out, "wb") as f:  # a temporary sibling renamed into place, with the umask's permissions
        image.save(f, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return out
