"""zoo-nice's tab in ``zoo serve``: a grid of samples from a seed, drawn again whenever a setting changes."""

from __future__ import annotations

import math
from functools import partial

import gradio as gr


def build(tab) -> None:
    """Seed, number of samples and temperature in; the grid out (endpoint ``<model>_sample``)."""
    with gr.Row():
        seed = gr.Number(0, label="seed", precision=0, minimum=0, maximum=2**31 - 1)
        n = gr.Slider(1, 100, value=36, step=1, label="samples")
        temperature = gr.Slider(0.0, 1.5, value=0.75, step=0.05, label="temperature (Su uses 0.75)")
    grid = gr.Image(label="samples", type="numpy", format="png", interactive=False, height=360)
    tab.on([seed.change, n.release, temperature.release], partial(sample, tab), [seed, n, temperature], grid,
           name="sample", on_open=True, trigger_mode="always_last",
           description="NICE samples from a seed: (seed, samples 1-100, temperature) -> a grid picture")


def sample(tab, seed, n, temperature):
    """The grid of ``n`` samples at ``temperature`` drawn with ``seed``, as an (H, W, 1) uint8 array."""
    import torch

    from zoo_core import ZooError
    from zoo_images.pictures import grid_array

    if seed is None or n is None or temperature is None:
        raise ZooError("seed, samples and temperature all need a value")
    n = int(n)
    if not 1 <= n <= 100:
        raise ZooError(f"samples must be between 1 and 100, got {n}")
    model = tab.model()
    generator = torch.Generator(device=model.s.device).manual_seed(int(seed))
    x = model.sample(n, temperature=float(temperature), generator=generator).float().cpu()  # (n, D) in [0, 1]
    dim = x.shape[1]
    side = math.isqrt(dim)
    shape = (side, side) if side * side == dim else (1, dim)  # a square picture when D is one
    return grid_array(x.clamp(0, 1).reshape(n, 1, *shape), value_range=(0.0, 1.0))[:, :, 0]  # (H, W) grey
