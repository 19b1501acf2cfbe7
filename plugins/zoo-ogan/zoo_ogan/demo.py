"""zoo-ogan's tab in ``zoo serve``: samples from a seed, a picture reconstructed, two pictures interpolated.

Uploaded pictures are checked by the tab (size in bytes and pixels, that they are pictures at all), then
centre-cropped and resized to the model's size like ``zoo ogan reconstruct`` does; a grey model sees their
mean over the colours. "invert" turns dark-on-light drawings into MNIST's light-on-dark.
"""

from __future__ import annotations

from functools import partial

import gradio as gr


def build(tab) -> None:
    """Three endpoints: ``<model>_sample`` (zoo-images' generator grid), ``<model>_reconstruct`` and
    ``<model>_interpolate``."""
    from zoo_images.demo import add_sample_grid

    add_sample_grid(tab, "O-GAN samples G(z), z from a seed: (seed, samples 1-100) -> grid")

    gr.Markdown("#### Reconstruct a picture: G(E(x)), through the encoder the discriminator learned")
    with gr.Row():
        picture = gr.Image(label="your picture", type="filepath", sources=["upload", "clipboard"], height=240)
        pair = gr.Image(label="picture -> reconstruction", type="numpy", format="png", interactive=False, height=240)
    with gr.Row():
        invert = gr.Checkbox(False, label="invert (a dark drawing on light paper)")
        mse = gr.Number(label="reconstruction MSE (pixels in [-1, 1])", interactive=False)
    tab.on([picture.upload, invert.input], partial(reconstruct, tab), [picture, invert], [pair, mse],
           name="reconstruct", uploads=True, description="(picture, invert) -> (picture and its reconstruction, MSE)")

    gr.Markdown("#### Interpolate between two pictures through their codes")
    with gr.Row():
        first = gr.Image(label="first picture", type="filepath", sources=["upload", "clipboard"], height=200)
        second = gr.Image(label="second picture", type="filepath", sources=["upload", "clipboard"], height=200)
    steps = gr.Slider(2, 16, value=8, step=1, label="steps")
    go = gr.Button("Interpolate", variant="primary")
    strip = gr.Image(label="interpolation", type="numpy", format="png", interactive=False)
    tab.on([go.click], partial(interpolate, tab), [first, second, steps, invert], strip, name="interpolate",
           uploads=True, description="(first picture, second picture, steps 2-16, invert) -> a strip of pictures")


def _device(model):
    return next(model.parameters()).device


def _tensor(tab, model, value, what: str, invert: bool):
    """An upload as a (1, C, S, S) tensor in [-1, 1] for ``model``: checked, cropped, resized."""
    from zoo_images.data import load_picture

    x = load_picture(tab.picture_file(value, what=what), model.config.img_size)  # (3, S, S)
    if model.config.channels == 1:
        x = x.mean(dim=0, keepdim=True)
    if invert:
        x = -x
    return x[None].to(_device(model))


def reconstruct(tab, picture, invert):
    """(the picture next to its reconstruction as a uint8 array, the mean squared error)."""
    import torch

    from zoo_images.pictures import grid_array

    model = tab.model()
    x = _tensor(tab, model, picture, "the picture", bool(invert))
    recon = model.reconstruct(x).float().cpu()
    x = x.float().cpu()
    pair = grid_array(torch.cat([x, recon]), nrow=2)
    return (pair[:, :, 0] if pair.shape[2] == 1 else pair), round(float((recon - x).square().mean()), 6)


def interpolate(tab, first, second, steps, invert):
    """The strip of ``steps`` images from the first picture's code to the second's."""
    from zoo_core import ZooError
    from zoo_images.pictures import grid_array

    steps = int(steps or 0)
    if not 2 <= steps <= 16:
        raise ZooError(f"steps must be between 2 and 16, got {steps}")
    model = tab.model()
    x0 = _tensor(tab, model, first, "the first picture", bool(invert))
    x1 = _tensor(tab, model, second, "the second picture", bool(invert))
    strip = grid_array(model.interpolate(x0, x1, steps).float().cpu(), nrow=steps)
    return strip[:, :, 0] if strip.shape[2] == 1 else strip
