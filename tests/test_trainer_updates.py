"""The trainer's round-two features: several updates per step, EMA, gradient clipping, sparse gradients,
step-based validation, Control actions with exact resume, install into the local store, progress output."""

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from zoo_core.checkpoint import TrainState
from zoo_core.ema import EMA
from zoo_core.errors import ZooError
from zoo_core.model import load_folder
from zoo_core.progress import Progress
from zoo_core.trainer import (
    TrainConfig,
    Trainer,
    Update,
    clip_grad_norm,
    evaluate,
    seed_everything,
)
from zoo_core.updates import resolve_updates

HERE = Path(__file__).parent
FAST = {"batch_size": 32, "progress": False, "log_every": 1}


def _weights(folder):
    return load_file(Path(folder) / "model.safetensors")


def _ckpt(out, step):
    return Path(out) / "checkpoints" / f"step-{step:08d}"


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _fit(zoo_plugins, name, out, **cfg):
    values = dict(FAST, out=str(out))
    values.update(cfg)
    return Trainer(zoo_plugins.get_recipe_spec(name), TrainConfig.from_dict(values)).fit()


# --- several updates per step: a GAN --------------------------------------------------------


def test_gan_steps_the_critic_twice_per_generator_step_each_on_a_fresh_batch(zoo_plugins, tmp_path, monkeypatch):
    import toy_plugin

    trace = []
    monkeypatch.setattr(toy_plugin.GANStep, "trace", trace)
    # 256 examples / 32 = 8 batches per epoch; 3 batches per step -> 2 steps per epoch (2 batches left over)
    _fit(zoo_plugins, "toy-gan", tmp_path, epochs=2, lr=0.01)
    assert [name for name, _ in trace] == ["d_loss", "d_loss", "g_loss"] * 4
    for epoch in (trace[:6], trace[6:]):
        firsts = [first for _, first in epoch]
        assert len(set(firsts)) == 6, "every update of an epoch must get a batch of its own"
    assert [f for _, f in trace[:6]] != [f for _, f in trace[6:]]  # a new order in the next epoch

    tensors = load_file(_ckpt(tmp_path, 4) / "trainer_state.safetensors")
    assert int(tensors["optim.d.0.step"]) == 8 and int(tensors["optim.g.0.step"]) == 4
    state = json.loads((_ckpt(tmp_path, 4) / "trainer_state.json").read_text())["state"]
    assert state["step"] == 4 and state["epoch"] == 2 and state["batch_in_epoch"] == 0
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if "d_loss" in line]
    assert [line["step"] for line in train_lines] == [1, 2, 3, 4]
    assert all({"g_loss", "d_real"} <= set(line) and "loss" not in line for line in train_lines)


def test_gan_resume_mid_epoch_is_exact(zoo_plugins, tmp_path):
    common = {"epochs": 3, "lr": 0.01, "checkpoint_every": 1, "keep_checkpoints": 0}
    _fit(zoo_plugins, "toy-gan", tmp_path / "straight", **common)
    _fit(zoo_plugins, "toy-gan", tmp_path / "cut", max_steps=3, **common)  # step 3: 3 batches into epoch 1
    state = json.loads((_ckpt(tmp_path / "cut", 3) / "trainer_state.json").read_text())["state"]
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 3)
    _fit(zoo_plugins, "toy-gan", tmp_path / "cut", **common)
    _assert_same(_weights(_ckpt(tmp_path / "straight", 6) / "model"), _weights(_ckpt(tmp_path / "cut", 6) / "model"))


def test_updates_naming_unknown_optimizers_or_methods_are_refused():
    class Step:
        updates = (Update("d_loss", ("d", "critic")),)

        def d_loss(self, model, batch):
            return {}

    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ZooError, match="unknown optimizer.*critic"):
        resolve_updates(Step(), {"d": opt})
    Step.updates = (Update("nope"),)
    with pytest.raises(ZooError, match="no loss method 'nope'"):
        resolve_updates(Step(), {"d": opt})
    assert Update("x", "d").optimizers == ("d",) and Update("x", ["d", "g"]).optimizers == ("d", "g")


# --- EMA ------------------------------------------------------------------------------------


def _debiased(sequence, decay):
    """TF's assign_moving_average(zero_debias=True) in closed form: (1 - d) * sum_i d^(t-i) w_i / (1 - d^t)."""
    t = len(sequence)
    total = sum(decay ** (t - i) * w for i, w in enumerate(sequence, start=1))
    return (1 - decay) * total / (1 - decay ** t)


def test_ema_is_the_zero_debiased_average_and_is_what_gets_evaluated_and_saved(zoo_plugins, tmp_path):
    decay = 0.8
    cfg = {"epochs": 1, "lr": 0.05, "ema_decay": decay, "checkpoint_every": 1, "keep_checkpoints": 0,
           "eval_every_steps": 4}
    best = _fit(zoo_plugins, "toy-fit", tmp_path, **cfg)
    seen = []
    for step in range(1, 9):
        seen.append({k: v.double() for k, v in _weights(_ckpt(tmp_path, step) / "model").items()})
        saved_ema = _weights(_ckpt(tmp_path, step) / "ema")
        for k in seen[0]:
            expected = _debiased([w[k] for w in seen], decay)
            torch.testing.assert_close(saved_ema[k].double(), expected, rtol=0, atol=1e-6)
    # step 1's average is step 1's weights: the initial weights are in no average
    _assert_same(_weights(_ckpt(tmp_path, 1) / "ema"), _weights(_ckpt(tmp_path, 1) / "model"))

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    best_step = metrics["best"]["step"]
    assert [h["step"] for h in metrics["history"]] == [4, 8]
    _assert_same(_weights(best), _weights(_ckpt(tmp_path, best_step) / "ema"))  # the EMA is the saved model
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    config = TrainConfig(**FAST)
    for h in metrics["history"]:
        ema_mse = evaluate(recipe, load_folder(_ckpt(tmp_path, h["step"]) / "ema"), "validation", config)["mse"]
        raw_mse = evaluate(recipe, load_folder(_ckpt(tmp_path, h["step"]) / "model"), "validation", config)["mse"]
        assert h["mse"] == pytest.approx(ema_mse, rel=1e-6) and h["mse"] != pytest.approx(raw_mse, rel=1e-4)


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.9999])
def test_ema_matches_the_closed_form_on_changing_weights_and_buffers(decay):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    initial = model[0].weight.detach().clone()
    ema = EMA(model, decay)
    weights, means = [], []
    for _ in range(7):
        model(torch.randn(16, 3, dtype=torch.float64))  # train mode: the running statistics move
        with torch.no_grad():
            model[0].weight.add_(torch.randn_like(model[0].weight))  # not a constant: each step differs
        weights.append(model[0].weight.detach().clone())
        means.append(model[1].running_mean.clone())
        ema.update(model)
        torch.testing.assert_close(ema.module[0].weight, _debiased(weights, decay), rtol=0, atol=1e-12)
        torch.testing.assert_close(ema.module[1].running_mean, _debiased(means, decay), rtol=0, atol=1e-12)
        assert torch.equal(ema.module[1].num_batches_tracked, model[1].num_batches_tracked)  # counted, not averaged
    assert ema.updates == 7
    if decay == 0.9999:  # the old average kept d^(t-1) of the initial weights; this one holds none of them
        assert not torch.allclose(ema.module[0].weight, initial, atol=0.5)


def test_ema_reset_restarts_the_debiased_average_from_the_next_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(model, 0.9)
    for _ in range(3):
        model(torch.randn(16, 3))
        ema.update(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.reset(model)
    assert ema.updates == 0
    assert torch.equal(ema.module[0].weight, model[0].weight)  # until the next update: the current weights
    assert torch.equal(ema.module[1].running_var, model[1].running_var)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)  # the first update after a reset is a first update: the average is those weights
    assert torch.equal(ema.module[0].weight, model[0].weight)


def test_ema_keeps_one_average_per_decay_and_refuses_bad_decays():
    torch.manual_seed(0)
    model = nn.Linear(2, 2).double()
    ema = EMA(model, [0.9, 0.99])
    seen = []
    for _ in range(5):
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        seen.append(model.weight.detach().clone())
        ema.update(model)
    assert ema.module is ema.modules[0.9]
    for d in (0.9, 0.99):
        torch.testing.assert_close(ema.modules[d].weight, _debiased(seen, d), rtol=0, atol=1e-12)
    for bad in (1.5, 1.0, -0.1, [], [0.9, 0.9], True):
        with pytest.raises(ZooError, match="ema_decay"):
            EMA(model, bad)
    for bad in (1.0, [0.9, 1.2], [0.99, 0.99], []):
        with pytest.raises(ZooError, match="ema_decay"):
            TrainConfig.from_dict({"ema_decay": bad})


def test_two_ema_decays_are_checkpointed_and_resume_bit_identical(zoo_plugins, tmp_path):
    cfg = {"epochs": 2, "lr": 0.05, "ema_decay": [0.8, 0.95], "checkpoint_every": 4, "keep_checkpoints": 0}
    _fit(zoo_plugins, "toy-fit", tmp_path / "straight", **cfg)
    _fit(zoo_plugins, "toy-fit", tmp_path / "cut", max_steps=8, **cfg)
    _fit(zoo_plugins, "toy-fit", tmp_path / "cut", **cfg)
    last = sorted((tmp_path / "straight" / "checkpoints").iterdir())[-1]
    for name in ("model", "ema", "ema-0.95"):
        _assert_same(_weights(last / name), _weights(tmp_path / "cut" / "checkpoints" / last.name / name))
    saved = json.loads((last / "trainer_state.json").read_text())["ema"]
    assert saved["decays"] == [0.8, 0.95] and saved["zero_debiased"] and saved["updates"] == int(last.name[5:])
    a, b = _weights(last / "ema"), _weights(last / "ema-0.95")
    assert any(not torch.equal(a[k], b[k]) for k in a)


# --- gradient clipping -----------------------------------------------------------------------


def test_grad_clip_bounds_the_first_update(zoo_plugins, tmp_path):
    # ToyStep's SGD: the first step with momentum moves the weights by exactly lr * gradient.
    lr, clip = 0.05, 1e-3
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    seed_everything(0)
    start = Trainer(recipe, TrainConfig()).build_model().state_dict()

    def moved(out, **extra):
        _fit(zoo_plugins, "toy-fit", out, max_steps=1, lr=lr, **extra)
        after = _weights(_ckpt(out, 1) / "model")
        return float(torch.sqrt(sum(((after[k] - start[k]) ** 2).sum() for k in start))) / lr

    assert moved(tmp_path / "free") > 10 * clip
    assert moved(tmp_path / "clipped", grad_clip=clip) == pytest.approx(clip, rel=1e-3)


def test_clip_grad_norm_counts_sparse_rows_once_and_matches_dense():
    def grads(sparse):
        torch.manual_seed(0)
        emb, lin = nn.Embedding(10, 4, sparse=sparse), nn.Linear(4, 1)
        lin(emb(torch.tensor([1, 1, 3, 7]))).pow(2).sum().backward()
        return [emb.weight, *lin.parameters()]

    sparse, dense = grads(True), grads(False)
    assert sparse[0].grad.is_sparse and not sparse[0].grad.is_coalesced()
    norm_sparse = clip_grad_norm(sparse, 0.5)
    norm_dense = clip_grad_norm(dense, 0.5)
    torch.testing.assert_close(norm_sparse, norm_dense)
    assert float(norm_dense) > 0.5
    torch.testing.assert_close(sparse[0].grad.to_dense(), dense[0].grad)
    for s, d in zip(sparse[1:], dense[1:]):
        torch.testing.assert_close(s.grad, d.grad)
    total = torch.sqrt(sum(p.grad.to_dense().pow(2).sum() for p in sparse))
    assert float(total) == pytest.approx(0.5, rel=1e-4)


# --- sparse gradients: SparseAdam next to Adam ------------------------------------------------


def test_sparse_embeddings_train_and_resume_exactly(zoo_plugins, tmp_path):
    common = {"epochs": 3, "lr": 0.05, "checkpoint_every": 5, "keep_checkpoints": 0}
    _fit(zoo_plugins, "toy-sparse", tmp_path / "straight", **common)
    history = json.loads((tmp_path / "straight" / "metrics.json").read_text())["history"]
    assert history[-1]["mse"] < 0.8 * history[0]["mse"]
    _fit(zoo_plugins, "toy-sparse", tmp_path / "cut", max_steps=13, **common)
    _fit(zoo_plugins, "toy-sparse", tmp_path / "cut", **common)
    _assert_same(_weights(_ckpt(tmp_path / "straight", 24) / "model"), _weights(_ckpt(tmp_path / "cut", 24) / "model"))
    a = load_file(_ckpt(tmp_path / "straight", 24) / "trainer_state.safetensors")
    b = load_file(_ckpt(tmp_path / "cut", 24) / "trainer_state.safetensors")
    assert any(k.startswith("optim.sparse.") for k in a)
    for k in a:
        if k.startswith("optim."):
            assert torch.equal(a[k], b[k]), k
    # the dense optimizer's StepLR (halve every 5 steps) stepped once per step, across the resume too
    for run in ("straight", "cut"):
        saved = json.loads((_ckpt(tmp_path / run, 24) / "trainer_state.json").read_text())
        assert saved["optimizers"]["dense"]["param_groups"][0]["lr"] == pytest.approx(0.05 * 0.5 ** 4)
        assert saved["optimizers"]["sparse"]["param_groups"][0]["lr"] == 0.05
        assert saved["schedulers"]["dense"]["last_epoch"] == 24


# --- validation schedules ----------------------------------------------------------------------


def test_eval_every_steps_validates_at_those_steps_and_at_the_end(zoo_plugins, tmp_path, monkeypatch):
    import toy_plugin

    seen = []
    original = toy_plugin.ToyStep.evaluate

    def counting(self, model, loader):
        seen.append((len(loader), sum(1 for _ in loader), model.training))
        return original(self, model, loader)

    monkeypatch.setattr(toy_plugin.ToyStep, "evaluate", counting)
    _fit(zoo_plugins, "toy-fit", tmp_path, epochs=2, eval_every_steps=3, eval_batch_size=16, eval_max_batches=2,
         keep_checkpoints=2)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["step"] for h in history] == [3, 6, 9, 12, 15, 16]
    assert seen == [(2, 2, False)] * 6  # capped at 2 of the 4 validation batches, in eval mode
    ckpts = {p.name for p in (tmp_path / "checkpoints").iterdir()}
    assert {"step-00000015", "step-00000016"} <= ckpts  # a checkpoint at each validation (keep 2)


def test_epoch_schedule_every_two_epochs(zoo_plugins, tmp_path):
    _fit(zoo_plugins, "toy-fit", tmp_path, epochs=3, eval_every=2)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [(h["epoch"], h["step"]) for h in history] == [(1, 16), (2, 24)]


def test_max_steps_runs_over_epochs(zoo_plugins, tmp_path):
    _fit(zoo_plugins, "toy-fit", tmp_path, epochs=1, max_steps=20, eval_every=None)
    state = TrainState.from_json(json.loads((_ckpt(tmp_path, 20) / "trainer_state.json").read_text())["state"])
    assert (state.step, state.epoch, state.batch_in_epoch) == (20, 2, 4)
    assert state.epochs_done == 2.5
    assert [h["step"] for h in state.history] == [20]


# --- Control: reload the best weights, drop the learning rate, reset, stop ------------------------


CONTROL = {"epochs": 4, "lr": 0.05, "ema_decay": 0.9, "keep_checkpoints": 0, "checkpoint_every": 5,
               "extra": {"trigger_at": [2, 3]}}


def _assert_same_after(straight, other, step):
    """Every checkpoint of ``straight`` after ``step`` (model and EMA) is in ``other``, bit for bit."""
    later = [p for p in (straight / "checkpoints").iterdir() if int(p.name.split("-")[1]) > step]
    assert len(later) >= 3
    for folder in later:
        for name in ("model", "ema"):
            _assert_same(_weights(folder / name), _weights(other / "checkpoints" / folder.name / name))
    _assert_same(_weights(straight / "model"), _weights(other / "model"))


def test_control_actions_take_effect_before_the_checkpoint(zoo_plugins, tmp_path):
    _fit(zoo_plugins, "toy-control", tmp_path, **CONTROL)
    at16 = _ckpt(tmp_path, 16)
    # validation 2 (step 16) reloaded the best weights (the EMA's, from step 8) and restarted the EMA on them
    assert json.loads((tmp_path / "metrics.json").read_text())["history"][0]["step"] == 8
    _assert_same(_weights(at16 / "model"), _weights(at16 / "best"))
    _assert_same(_weights(at16 / "ema"), _weights(at16 / "model"))
    saved = json.loads((at16 / "trainer_state.json").read_text())
    assert saved["optimizers"]["sgd"]["param_groups"][0]["lr"] == pytest.approx(0.005)
    assert saved["optimizers"]["sgd"]["scalars"] == {}  # fresh optimizer: no momentum buffers yet
    assert not any(k.startswith("optim.") for k in load_file(at16 / "trainer_state.safetensors"))
    assert saved["train_step"] == {"validations": 2}
    final = json.loads((_ckpt(tmp_path, 32) / "trainer_state.json").read_text())
    assert final["optimizers"]["sgd"]["param_groups"][0]["lr"] == pytest.approx(0.0005)  # and again at 3
    controls = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    controls = [(line["step"], line["control"]) for line in controls if "control" in line]
    assert [step for step, _ in controls] == [16, 24]
    assert controls[0][1][0] == "reload_best"


def test_control_run_stopped_at_the_trigger_and_resumed_is_bit_identical(zoo_plugins, tmp_path):
    _fit(zoo_plugins, "toy-control", tmp_path / "straight", **CONTROL)
    _fit(zoo_plugins, "toy-control", tmp_path / "cut", max_steps=16, **CONTROL)  # ends on validation 2
    _fit(zoo_plugins, "toy-control", tmp_path / "cut", **CONTROL)
    _assert_same_after(tmp_path / "straight", tmp_path / "cut", 16)


def test_resume_after_a_crash_restores_the_best_model_of_the_checkpoint(zoo_plugins, tmp_path):
    _fit(zoo_plugins, "toy-control", tmp_path / "straight", **CONTROL)
    crashed = tmp_path / "crashed"
    _fit(zoo_plugins, "toy-control", crashed, **CONTROL)
    # As if the run died after step 16's checkpoint having saved some later "best" model: the reload at
    # validation 3 must still use the best model as of the checkpoint, not what OUT/model holds now.
    for late in (p for p in (crashed / "checkpoints").iterdir() if int(p.name.split("-")[1]) > 16):
        shutil.rmtree(late)
    shutil.rmtree(crashed / "model")
    shutil.copytree(_ckpt(crashed, 8) / "model", crashed / "model")  # the raw weights of step 8: not the best
    with pytest.raises(AssertionError):
        _assert_same(_weights(crashed / "model"), _weights(_ckpt(crashed, 16) / "best"))
    _fit(zoo_plugins, "toy-control", crashed, **CONTROL)
    _assert_same_after(tmp_path / "straight", crashed, 16)


def test_stop_ends_the_run_and_resume_does_not_train_on(zoo_plugins, tmp_path):
    cfg = {"epochs": 4, "lr": 0.05, "extra": {"stop_at": 2}}
    _fit(zoo_plugins, "toy-control", tmp_path, **cfg)
    assert max(p.name for p in (tmp_path / "checkpoints").iterdir()) == "step-00000016"
    _fit(zoo_plugins, "toy-control", tmp_path, **cfg)
    assert max(p.name for p in (tmp_path / "checkpoints").iterdir()) == "step-00000016"
    assert len(json.loads((tmp_path / "metrics.json").read_text())["history"]) == 2


# --- train(): the best model lands in the zoo's local store -----------------------------------------


REGISTRY = """\
version: 1
models:
  - id: toy-local
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: "the toy regressor, trained here"
    links: {source: "https://example.org/toy"}
    license: MIT
    metrics: []
    hub: null
    weights: {status: not-published, how: train}
    recipe: toy-fit
"""


@pytest.fixture
def toy_catalogue(zoo_plugins, tmp_path, monkeypatch):
    from zoo_core.registry import catalogue

    (tmp_path / "toy.yaml").write_text(REGISTRY)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_REGISTRY", str(tmp_path / "toy.yaml"))
    catalogue.cache_clear()
    yield
    catalogue.cache_clear()


def test_train_installs_the_best_model_where_load_model_finds_it(toy_catalogue, tmp_path):
    from zoo_core import load_model, train
    from zoo_core.store import local_model_dir

    installed = train("toy-fit", out=str(tmp_path / "run"), epochs=1, progress=False, noise=0.0)
    assert installed == local_model_dir("toy-local") == tmp_path / "home" / "models" / "toy-local"
    _assert_same(_weights(installed), _weights(tmp_path / "run" / "model"))
    model = load_model("toy-local")
    x = torch.randn(3, 8)
    assert torch.equal(model(x), load_folder(tmp_path / "run" / "model")(x))
    cfg = json.loads((tmp_path / "run" / "checkpoints" / "step-00000008" / "trainer_state.json").read_text())
    assert cfg["state"]["step"] == 8  # epochs=1 overrode the recipe's default of 2


def test_train_without_install_or_catalogue_entry_keeps_the_run_folder(toy_catalogue, tmp_path, capsys):
    from zoo_core import train
    from zoo_core.store import local_model_dir

    best = train("toy-fit", TrainConfig(out=str(tmp_path / "a"), epochs=1, progress=False, install=False))
    assert best == tmp_path / "a" / "model" and not local_model_dir("toy-local").exists()
    best = train("toy-sparse", out=str(tmp_path / "b"), epochs=1, progress=False)
    assert best == tmp_path / "b" / "model" and (best / "config.json").is_file()
    assert "no catalogue entry names recipe 'toy-sparse'" in capsys.readouterr().err


def test_evaluate_stands_alone_with_a_recipe_name(zoo_plugins):
    seed_everything(0)
    model = Trainer(zoo_plugins.get_recipe_spec("toy-fit"), TrainConfig()).build_model().train()
    metrics = evaluate("toy-fit", model, split="test")
    assert set(metrics) == {"mse"} and metrics["mse"] > 0 and not model.training


# --- progress ------------------------------------------------------------------------------------


def test_progress_in_a_log_prints_a_line_per_tenth_and_after_30_seconds():
    stream = io.StringIO()
    bar = Progress(1000, desc="run", stream=stream)
    for _ in range(1000):
        bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in stream.getvalue()
    assert lines[0].startswith("run: 100/1000 steps (10%)") and lines[-1].startswith("run: 1000/1000 steps (100%)")

    now = [0.0]
    stream = io.StringIO()
    bar = Progress(1000, stream=stream, clock=lambda: now[0])
    for _ in range(3):
        now[0] += 31.0
        bar.update()
    bar.set_postfix({"loss": 0.25})
    bar.update()
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].endswith("loss=0.25")


def test_progress_in_a_terminal_redraws():
    stream = io.StringIO()
    bar = Progress(5, stream=stream, tty=True)
    for _ in range(5):
        bar.update()
    bar.close()
    assert "\r" in stream.getvalue()


def test_trainer_progress_in_a_log_stays_short(zoo_plugins, tmp_path, capsys):
    _fit(zoo_plugins, "toy-fit", tmp_path, epochs=4, progress=True, log_every=1)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("toy-fit:")]
    assert 5 <= len(lines) <= 11 and lines[-1].startswith("toy-fit: 32/32 steps (100%)")


# --- torchrun: sparse gradients over gloo, and a GAN's alternating updates -----------------------------


DDP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import toy_plugin
from zoo_core import plugins
from zoo_core.trainer import TrainConfig, Trainer
plugins.pm.register(toy_plugin, name="toy")
for name in ("toy-sparse", "toy-gan"):
    cfg = TrainConfig(out={out!r} + "/" + name, epochs=2, max_steps=5, batch_size=32, lr=0.01, progress=False,
                      seed=3, grad_clip=1.0, device="cpu")
    Trainer(plugins.get_recipe_spec(name), cfg).fit()
"""


def test_torchrun_two_processes_match_one_with_sparse_gradients_and_gan_updates(zoo_plugins, tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(here=str(HERE), out=str(tmp_path / "two")))
    env = dict(os.environ, ZOO_LOAD_PLUGINS="", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                        str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("toy-sparse", "toy-gan"):
        _fit(zoo_plugins, name, tmp_path / "one" / name, epochs=2, max_steps=5, lr=0.01, seed=3, grad_clip=1.0,
             device="cpu")
        one = _weights(_ckpt(tmp_path / "one" / name, 5) / "model")
        two = _weights(_ckpt(tmp_path / "two" / name, 5) / "model")
        seed_everything(3)
        init = Trainer(zoo_plugins.get_recipe_spec(name), TrainConfig()).build_model().state_dict()
        assert all(not torch.allclose(init[k], one[k]) for k in one), name  # every tensor trained
        for k in one:
            torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6, msg=f"{name}: {k}")


# --- a training-time budget: methods compared at equal time -----------------------------------


def test_timed_run_stops_at_its_training_budget_and_validates_on_the_clock(zoo_plugins, tmp_path, monkeypatch):
    import time

    import toy_plugin

    step_seconds, eval_seconds, budget, period = 0.02, 0.15, 0.5, 0.2
    train_step, evaluate_step = toy_plugin.ToyStep.training_step, toy_plugin.ToyStep.evaluate

    def slow_step(self, model, batch):
        time.sleep(step_seconds)
        return train_step(self, model, batch)

    def slow_evaluate(self, model, loader):
        time.sleep(eval_seconds)
        return evaluate_step(self, model, loader)

    monkeypatch.setattr(toy_plugin.ToyStep, "training_step", slow_step)
    monkeypatch.setattr(toy_plugin.ToyStep, "evaluate", slow_evaluate)
    _fit(zoo_plugins, "toy-fit", tmp_path, epochs=1000, max_train_seconds=budget, eval_every_seconds=period,
         checkpoint_every=10**6)
    state = json.loads(sorted((tmp_path / "checkpoints").iterdir())[-1].joinpath("trainer_state.json")
                       .read_text())["state"]
    validations = [line for line in (json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines())
                   if line.get("split") == "validation"]
    # stopped by the clock: at the first step past the budget, each step costing at least step_seconds
    assert state["step"] <= budget / step_seconds + 1
    assert state["elapsed"] - state["eval_seconds"] >= budget
    # validation time is counted apart from training time
    assert state["eval_seconds"] >= eval_seconds * len(validations)
    assert validations[-1]["step"] == state["step"]  # the final validation
    # each timed validation falls in a new period of training time
    periods = [int(v["train_seconds"] // period) for v in validations[:-1]]
    assert len(periods) >= 1 and periods == sorted(set(periods)) and periods[0] >= 1
    assert all(v["time"] >= v["train_seconds"] for v in validations)


def test_shard_draw_without_a_process_group_is_the_plain_draw():
    from zoo_core import shard_draw

    torch.manual_seed(5)
    a = shard_draw(torch.randn, 6, 3)
    torch.manual_seed(5)
    assert torch.equal(a, torch.randn(6, 3))
