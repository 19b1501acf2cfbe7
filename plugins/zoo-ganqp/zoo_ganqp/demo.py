"""zoo-ganqp's tab in ``zoo serve``: a grid of generated images from a seed, drawn again on every change."""

from __future__ import annotations

from functools import partial

import gradio as gr


def build(tab) -> None:
    """Seed and number of samples in; the grid out (endpoint ``<model>_sample``)."""
    with gr.Row():
        seed = gr.Number(0, label="seed", precision=0, minimum=0, maximum=2**31 - 1)
        n = gr.Slider(1, 100, value=36, step=1, label="samples")
    grid = gr.Image(label="samples", type="numpy", format="png", interactive=False, height=360)
    tab.on([seed.change, n.release], partial(sample, tab), [seed, n], grid, name="sample", on_open=True,
           trigger_mode="always_last", description="GAN-QP samples G(z), z from a seed: (seed, samples 1-100) -> grid")


def sample(tab, seed, n):
    """The grid of ``n`` images G(z) with z drawn from ``seed``, as an (H, W, C) uint8 array."""
    import torch

    from zoo_core import ZooError
    from zoo_images.pictures import grid_array

    if seed is None or n is None:
        raise ZooError("seed and samples both need a value")
    n = int(n)
    if not 1 <= n <= 100:
        raise ZooError(f"samples must be between 1 and 100, got {n}")
    model = tab.model()
    device = next(model.parameters()).device
    images = model.sample(n, generator=torch.Generator().manual_seed(int(seed)), device=device)
    grid = grid_array(images.float().cpu())
    return grid[:, :, 0] if grid.shape[2] == 1 else grid  # (H, W) for grey
