"""zoo-images' tab in ``zoo serve``: a digit drawn on a sketch pad (or a picture) classified by the LeNet.

What is drawn becomes an MNIST digit the way MNIST's were made: the ink's bounding box scaled to fit 20 x 20
pixels, placed in a 28 x 28 frame by its centre of mass, light on dark.
"""

from __future__ import annotations

from functools import partial

import gradio as gr

NOTHING = "nothing drawn yet"


def build(tab) -> None:
    """Endpoints ``<model>_classify`` (the sketch pad) and ``<model>_classify_picture`` (an upload)."""
    with gr.Row():
        pad = gr.Sketchpad(label="draw a digit (pick the brush on the left first)", type="pil", canvas_size=(280, 280),
                           image_mode="RGBA", brush=gr.Brush(default_size=18, colors=["#000000"], color_mode="fixed"),
                           layers=False, transforms=(), fixed_canvas=True, format="png", elem_classes=["zoo-sketchpad"])
        with gr.Column():
            label = gr.Label(num_top_classes=3, label="the LeNet says", elem_classes=["zoo-label"])
            seen = gr.Image(label="what the model sees (28 x 28)", type="numpy", format="png", interactive=False,
                            height=140)
    go = gr.Button("Classify", variant="primary")
    tab.on([go.click, pad.change], partial(classify_sketch, tab), [pad], [label, seen], name="classify",
           uploads=True, trigger_mode="always_last", description="a sketch-pad drawing -> the digit's probabilities")
    picture = gr.Image(label="or upload a picture of a digit", type="filepath", sources=["upload", "clipboard"],
                       height=200)
    tab.on([picture.upload], partial(classify_picture, tab), [picture], [label, seen], name="classify_picture",
           uploads=True, description="a picture of one digit (dark on light or light on dark) -> probabilities")


def to_mnist(ink):
    """(H, W) float array of ink in [0, 1] -> (28, 28) MNIST-style digit in [0, 1], or None when nothing is drawn."""
    import numpy as np
    from PIL import Image

    rows, cols = np.nonzero(ink > 0.1)
    if len(rows) == 0:
        return None
    box = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    h, w = box.shape
    scale = 20.0 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray((box * 255).astype(np.uint8)).resize(size, Image.Resampling.LANCZOS),
                       dtype=np.float32) / 255
    total = small.sum()
    ys, xs = np.indices(small.shape)
    cy, cx = (ys * small).sum() / total, (xs * small).sum() / total
    top, left = int(round(14 - cy)), int(round(14 - cx))
    top, left = min(max(top, 0), 28 - small.shape[0]), min(max(left, 0), 28 - small.shape[1])
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[top:top + small.shape[0], left:left + small.shape[1]] = small
    return digit.clip(0, 1)


def _ink(image, dark_on_light: bool | None = None):
    """A PIL picture -> ink in [0, 1]: transparent parts are paper; light-on-dark is detected unless told."""
    import numpy as np
    from PIL import Image

    rgba = image.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = np.asarray(Image.alpha_composite(paper, rgba).convert("L"), dtype=np.float32) / 255
    if dark_on_light is None:
        dark_on_light = float(np.median(grey)) > 0.5
    return 1 - grey if dark_on_light else grey


def _classify(tab, ink):
    import torch

    from zoo_core import ZooError

    digit = to_mnist(ink)
    if digit is None:
        raise ZooError("nothing is drawn", hint="draw a digit on the pad (or upload a picture of one)")
    model = tab.model()
    c = model.config
    x = torch.from_numpy(digit)[None, None] * 2 - 1  # (1, 1, 28, 28) in [-1, 1], background -1
    if c.image_size != 28:  # MNIST's 32 px layout: the 28 px digit centred on background
        pad = (c.image_size - 28) // 2
        x = torch.nn.functional.pad(x, (pad, c.image_size - 28 - pad) * 2, value=-1.0)
    x = x.repeat(1, c.in_channels, 1, 1).to(next(model.parameters()).device)
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)[0].cpu()
    return {str(k): float(p) for k, p in enumerate(probs)}, (digit * 255).astype("uint8")


def classify_sketch(tab, value):
    """The probability of each digit for what is drawn on the pad (a raw sketch-pad value)."""
    if not isinstance(value, dict) or value.get("composite") is None:
        return NOTHING, None
    ink = _ink(tab.picture(value["composite"], what="the drawing"), dark_on_light=True)
    if to_mnist(ink) is None:  # a cleared pad: say so in the label, not as an error
        return NOTHING, None
    return _classify(tab, ink)


def classify_picture(tab, value):
    """The probability of each digit for an uploaded picture of one digit."""
    return _classify(tab, _ink(tab.picture(value, what="the picture")))


def add_sample_grid(tab, description: str) -> None:
    """A generator's sample grid (zoo-ganqp, zoo-ogan): a seed and a number of samples in, a grid of G(z)
    out, drawn again on every change (endpoint ``<model>_sample``)."""
    with gr.Row():
        seed = gr.Number(0, label="seed", precision=0, minimum=0, maximum=2**31 - 1)
        n = gr.Slider(1, 100, value=36, step=1, label="samples")
    grid = gr.Image(label="samples", type="numpy", format="png", interactive=False, height=360)
    tab.on([seed.change, n.release], partial(sample_grid, tab), [seed, n], grid, name="sample", on_open=True,
           trigger_mode="always_last", description=description)


def sample_grid(tab, seed, n):
    """The grid of ``n`` images G(z) with z drawn from ``seed``, as an (H, W, C) uint8 array ((H, W) for grey)."""
    import torch

    from zoo_core import ZooError

    from .pictures import grid_array

    if seed is None or n is None:
        raise ZooError("seed and samples both need a value")
    n = int(n)
    if not 1 <= n <= 100:
        raise ZooError(f"samples must be between 1 and 100, got {n}")
    model = tab.model()
    device = next(model.parameters()).device
    images = model.sample(n, generator=torch.Generator().manual_seed(int(seed)), device=device)
    grid = grid_array(images.float().cpu())
    return grid[:, :, 0] if grid.shape[2] == 1 else grid
