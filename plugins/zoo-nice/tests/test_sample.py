"""`zoo sample nice-mnist` writes a PNG grid of the right size."""

from __future__ import annotations

import os

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from zoo_nice.model import NICE, NICEConfig


def test_sample_command_writes_a_png_grid(tmp_path):
    from zoo_core.cli import cli

    torch.manual_seed(0)
    NICE(NICEConfig(hidden=16, hidden_layers=1)).save_pretrained(tmp_path / "model")
    out = tmp_path / "grids" / "grid.png"
    result = CliRunner().invoke(cli, ["sample", "nice-mnist", "--model", str(tmp_path / "model"),
                                      "--temperature", "0.75", "-n", "10", "-o", str(out)])
    assert result.exit_code == 0, result.output
    image = Image.open(out)
    assert image.format == "PNG" and image.mode == "L"
    assert image.size == (4 * 28, 3 * 28)  # 10 samples: 4 columns, 3 rows of 28x28
    pixels = torch.from_numpy(np.asarray(image).astype(np.float32))  # (84, 112)
    assert pixels[:28, :28].std() > 0  # a real sample, not a blank tile
    assert pixels[56:, 56:].max() == 0  # the two unused tiles stay black
    assert not list(out.parent.glob(".*"))  # no temporary file left behind


def test_sample_command_refuses_other_models(tmp_path):
    from zoo_core import build_model
    from zoo_core.cli import cli

    build_model("lenet").save_pretrained(tmp_path / "lenet")  # a real model folder, of zoo-images' LeNet
    result = CliRunner().invoke(cli, ["sample", "nice-mnist", "--model", str(tmp_path / "lenet"), "-o",
                                      str(tmp_path / "g.png")])
    assert result.exit_code == 1 and "is a lenet model, not nice" in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "g.png").exists()


def test_png_gets_the_umask_permissions(tmp_path):
    from zoo_nice.sample import sample_grid

    torch.manual_seed(0)
    model = NICE(NICEConfig(hidden=16, hidden_layers=1))
    old = os.umask(0o022)
    try:
        out = sample_grid(model, n=4, out=tmp_path / "grid.png")
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644  # not the 0600 of a bare temporary file
    assert Image.open(out).size == (2 * 28, 2 * 28)
