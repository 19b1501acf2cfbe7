"""Training through the core's Trainer: it learns, resumes exactly, DDP matches one process, and
``train`` installs the best model where ``load_model("nice-mnist")`` finds it."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from zoo_core import load_model, train
from zoo_core.model import load_folder
from zoo_core.trainer import Trainer, evaluate, seed_everything
from zoo_nice.train import bits_per_dim


def _last_params(out):
    ckpt = Trainer.latest_checkpoint(out)
    assert ckpt is not None, f"no checkpoint under {out}"
    return load_folder(ckpt / "model").state_dict(), ckpt


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


def test_resume_continues_exactly(small_recipe, tmp_path, small_config):
    # 8 steps per epoch; the interrupted run stops mid-epoch 0 and resumes across the epoch boundary
    Trainer(small_recipe, small_config(tmp_path / "straight", max_steps=12)).fit()
    Trainer(small_recipe, small_config(tmp_path / "resumed", max_steps=5)).fit()
    first, ckpt = _last_params(tmp_path / "resumed")
    assert ckpt.name.endswith("5")
    Trainer(small_recipe, small_config(tmp_path / "resumed", max_steps=12)).fit()
    straight, _ = _last_params(tmp_path / "straight")
    resumed, ckpt = _last_params(tmp_path / "resumed")
    assert ckpt.name.endswith("12")
    assert any(not torch.equal(first[k], resumed[k]) for k in first)  # it did train after resuming
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


DDP_SCRIPT = textwrap.dedent("""
    import dataclasses, json, sys
    from zoo_core.plugins import get_recipe_spec
    from zoo_core.trainer import TrainConfig, Trainer
    recipe = dataclasses.replace(get_recipe_spec("nice-mnist"), model_config={{"hidden": 32, "hidden_layers": 2}})
    Trainer(recipe, TrainConfig.from_dict(json.loads({config!r}))).fit()
""")


def test_ddp_two_processes_match_one(small_recipe, tmp_path, small_config):
    script = tmp_path / "ddp_train.py"
    config = small_config(tmp_path / "ddp", max_steps=10)
    script.write_text(DDP_SCRIPT.format(config=json.dumps(dataclasses.asdict(config))))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
         str(script)],
        env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    Trainer(small_recipe, small_config(tmp_path / "single", max_steps=10)).fit()
    ddp, _ = _last_params(tmp_path / "ddp")
    single, _ = _last_params(tmp_path / "single")
    start = Trainer(small_recipe, small_config(tmp_path / "unused"))
    seed_everything(0)
    init = start.build_model().state_dict()
    assert any(not torch.allclose(init[k], single[k]) for k in single)  # 10 steps moved the weights
    for key in single:
        assert torch.allclose(ddp[key], single[key], rtol=1e-5, atol=1e-6), (key, (ddp[key] - single[key]).abs().max())


def test_train_installs_the_best_model_for_load_model(small_recipe, tmp_path, small_config, zoo_home, monkeypatch):
    # The decoded MNIST stays in the session's cache; the model goes to a private ZOO_HOME.
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    config = small_config(tmp_path / "run", max_steps=4,
                          dataset_options={"root": str(zoo_home / "datasets" / "mnist")})
    installed = train(small_recipe, config)
    assert installed == tmp_path / "home" / "models" / "nice-mnist"
    best = load_folder(tmp_path / "run" / "model").state_dict()
    model = load_model("nice-mnist")  # no path: the catalogue entry (hub: null) resolves to the local store
    assert model.architecture == "nice"
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key]), key
    card = (installed / "README.md").read_text()
    assert "4 steps" in card
