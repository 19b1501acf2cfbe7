"""The lenet-mnist training step: shifts, losses, evaluation, and a few real steps."""

from __future__ import annotations

import torch

from zoo_core import TrainConfig
from zoo_images.model import LeNet
from zoo_images.train import LeNetStep, random_shift


def test_random_shift_moves_whole_images_within_the_bound():
    torch.manual_seed(0)
    x = torch.full((64, 1, 10, 10), -1.0)
    x[:, :, 4:6, 4:6] = 1.0  # a 2x2 blob at (4, 4)
    y = random_shift(x, 2)
    assert y.shape == x.shape and torch.equal(random_shift(x, 0), x)
    offsets = set()
    for img in y[:, 0]:
        rows, cols = torch.nonzero(img > 0, as_tuple=True)
        assert len(rows) == 4 and (img[img <= 0] == -1).all()  # the blob moved whole, border is background
        offsets.add((int(rows.min()) - 4, int(cols.min()) - 4))
    assert offsets <= {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)} and len(offsets) > 10


def test_step_learns_a_few_mnist_batches_and_evaluates(mnist):
    torch.manual_seed(0)
    model = LeNet.from_config({})
    step = LeNetStep(model, TrainConfig(lr=1e-3, extra={"shift": 1, "lr_halflife_steps": 100}))
    (opt,) = step.configure_optimizers().values()
    (sched,) = step.configure_schedulers({"adam": opt}).values()
    data = mnist.split("train")
    losses = []
    for i in range(30):
        x, y = data.batch(range(64 * i, 64 * (i + 1)))
        opt.zero_grad()
        out = step.training_step(model, (x, y))
        out["loss"].backward()
        opt.step()
        sched.step()
        losses.append(out["loss"].item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert opt.param_groups[0]["lr"] < 1e-3 * 0.5 ** (30 / 100) * 1.0001
    test = mnist.split("test")
    loader = [test.batch(range(i, i + 250)) for i in range(0, 1000, 250)]
    model.eval()
    metrics = step.evaluate(model, loader)
    assert metrics["examples"] == 1000 and 0.5 < metrics["accuracy"] <= 1 and metrics["loss"] > 0
    assert LeNetStep.monitor == "accuracy" and LeNetStep.monitor_mode == "max"


def test_features_are_the_penultimate_layer():
    torch.manual_seed(0)
    model = LeNet.from_config({}).eval()
    (x,) = model.example_inputs(3)
    feats = model.features(x)
    assert feats.shape == (3, 128) and torch.allclose(model(x), model.fc2(feats))
