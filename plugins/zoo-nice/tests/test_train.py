"""Training through the core's Trainer: it learns, and its model card says what it measured. Resume, torchrun
and install are the kit's recipe contract (test_contract.py)."""

from __future__ import annotations

import json
import math

import pytest

from zoo_core.model import load_folder
from zoo_core.trainer import Trainer, evaluate, seed_everything
from zoo_nice.train import bits_per_dim


def test_bits_per_dim_formula():
    # a uniform density on [0,1]^D (LL = 0) is 8 bits per 8-bit pixel; the paper's 1980.50 nats is 4.36
    assert bits_per_dim(0.0, 784) == pytest.approx(8.0)
    assert bits_per_dim(1980.50, 784) == pytest.approx(8 - 1980.50 / (784 * math.log(2)))
    assert bits_per_dim(1980.50, 784) == pytest.approx(4.3555, abs=1e-4)


def test_short_training_raises_validation_log_likelihood(small_recipe, tmp_path, small_config):
    config = small_config(tmp_path / "run", epochs=3)
    seed_everything(config.seed)
    untrained = Trainer(small_recipe, config).build_model()
    before = evaluate(small_recipe, untrained, split="validation", config=config)
    best = Trainer(small_recipe, config).fit()
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = [h["log_likelihood"] for h in after["history"]]
    assert len(history) == 3 and all(math.isfinite(v) for v in history)
    assert history[-1] > before["log_likelihood"] + 20, (before, history)  # nats, over 256 images
    # the best folder is a model folder whose card records the measured validation metric
    model = load_folder(best)
    again = evaluate(small_recipe, model, split="validation", config=config)
    assert again["log_likelihood"] == pytest.approx(after["best"]["value"], rel=1e-6)
    card = (best / "README.md").read_text()
    assert f"{round(after['best']['value'], 2)}" in card and "bits/dim" in card
    assert f"for {after['best']['step']:,} steps" in card
