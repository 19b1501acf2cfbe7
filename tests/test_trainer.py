import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from zoo_core.checkpoint import TrainState
from zoo_core.trainer import TrainConfig, Trainer

HERE = Path(__file__).parent


def _params(folder):
    return load_file(folder / "model.safetensors")


def test_fit_improves_validation_and_saves_best(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    cfg = TrainConfig(out=str(tmp_path), epochs=4, batch_size=32, lr=0.05, progress=False, log_every=1)
    best = Trainer(recipe, cfg).fit()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    history = [h["mse"] for h in metrics["history"]]
    assert len(history) == 4
    assert history[-1] < history[0]
    assert metrics["best"]["value"] == min(history)
    assert (best / "config.json").is_file() and (best / "model.safetensors").is_file()
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert any(l.get("split") == "validation" for l in lines)
    assert [l["step"] for l in lines if "loss" in l] == list(range(1, 33))


def test_resume_continues_identically(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    common = {"epochs": 3, "batch_size": 32, "lr": 0.05, "progress": False, "checkpoint_every": 5,
              "keep_checkpoints": 10}
    Trainer(recipe, TrainConfig(out=str(tmp_path / "full"), **common)).fit()
    # Interrupt after 13 steps (mid-epoch: 8 steps per epoch), then resume to the end.
    Trainer(recipe, TrainConfig(out=str(tmp_path / "cut"), max_steps=13, **common)).fit()
    ckpts = sorted((tmp_path / "cut" / "checkpoints").glob("step-*"))
    assert ckpts[-1].name == "step-00000013"
    Trainer(recipe, TrainConfig(out=str(tmp_path / "cut"), **common)).fit()
    full = _params(tmp_path / "full" / "checkpoints" / "step-00000024" / "model")
    cut = _params(tmp_path / "cut" / "checkpoints" / "step-00000024" / "model")
    assert full.keys() == cut.keys()
    for k in full:
        assert torch.equal(full[k], cut[k]), k


def test_dataset_gets_the_run_seed_and_the_card_gets_the_state(zoo_plugins, tmp_path, monkeypatch):
    import toy_plugin

    seen = {}
    def card(self, model, metrics, state):
        seen["state"] = dataclasses.replace(state)
        return f"steps {state.step}"

    monkeypatch.setattr(toy_plugin.ToyStep, "model_card", card)
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    trainer = Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, seed=7, progress=False))
    assert trainer.build_dataset().seed == 7
    trainer.fit()
    state = seen["state"]
    assert isinstance(state, TrainState)
    assert state.step == 8 and state.epoch == 1 and state.batch_in_epoch == 0 and state.epochs_done == 1.0
    assert state.elapsed >= 0 and state.best_step == 8
    assert (tmp_path / "model" / "README.md").read_text() == "steps 8"


def test_keeps_only_newest_checkpoints(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=2, batch_size=32, progress=False,
                                checkpoint_every=3, keep_checkpoints=2)).fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000015", "step-00000016"]


DDP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import toy_plugin
from zoo_core import plugins
from zoo_core.trainer import TrainConfig, Trainer
plugins.pm.register(toy_plugin, name="toy")
cfg = TrainConfig(out={out!r}, epochs=1, max_steps=6, batch_size=32, lr=0.05, progress=False, seed=3,
                  extra={{"noise": 0.0}})
Trainer(plugins.get_recipe_spec("toy-fit"), cfg).fit()
"""


def _run(args, env_extra, tmp_path):
    env = dict(os.environ, ZOO_LOAD_PLUGINS="", OMP_NUM_THREADS="1", **env_extra)
    return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)


def test_torchrun_two_processes_match_one(tmp_path):
    for name, nproc in (("one", 1), ("two", 2)):
        script = tmp_path / f"{name}.py"
        script.write_text(DDP_SCRIPT.format(here=str(HERE), out=str(tmp_path / name)))
        r = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                  str(script)], {}, tmp_path)
        assert r.returncode == 0, r.stderr[-3000:]
    one = _params(tmp_path / "one" / "checkpoints" / "step-00000006" / "model")
    two = _params(tmp_path / "two" / "checkpoints" / "step-00000006" / "model")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-5, atol=1e-6)


def test_resume_after_a_crash_drops_log_lines_past_the_checkpoint(zoo_plugins, tmp_path):
    import shutil

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    common = {"epochs": 2, "batch_size": 32, "lr": 0.05, "progress": False, "checkpoint_every": 5,
              "keep_checkpoints": 10, "log_every": 1}
    Trainer(recipe, TrainConfig(out=str(tmp_path), max_steps=13, **common)).fit()
    # As if the process died after step 13 but before its checkpoint was written.
    shutil.rmtree(tmp_path / "checkpoints" / "step-00000013")
    Trainer(recipe, TrainConfig(out=str(tmp_path), **common)).fit()
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [l["step"] for l in lines if "loss" in l]
    assert steps == list(range(1, 17))
    times = [l["time"] for l in lines]
    assert all(t >= 0 for t in times) and times == sorted(times)


def test_truncate_log_drops_later_steps_and_a_line_cut_mid_write(tmp_path):
    from zoo_core.checkpoint import truncate_log

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.5}\n{"step": 3, "loss": 0.2}\n{"step": 4, "lo')
    truncate_log(log, 2)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]
    truncate_log(log, 5)
    assert log.read_text().endswith("\n") and len(log.read_text().splitlines()) == 2


def test_state_encoding_round_trips_and_old_checkpoints_still_read():
    from zoo_core.checkpoint import decode_state, encode_state

    tensors = {}
    state = {"state": {0: {"step": torch.tensor(3.0), "n": 2}}, "groups": [{"lr": 0.1, "betas": (0.9, 0.99)}]}
    encoded = encode_state(state, "x", tensors)
    decoded = decode_state(json.loads(json.dumps(encoded)), tensors)
    assert list(decoded["state"]) == [0] and torch.equal(decoded["state"][0]["step"], torch.tensor(3.0))
    assert decoded["groups"] == [{"lr": 0.1, "betas": [0.9, 0.99]}]
    old = {"step": 13, "epoch": 1, "elapsed": 2.5, "history": [{"step": 8, "mse": 0.3}],
           "best": {"metric": "mse", "value": 0.3, "step": 8, "epoch": 0, "metrics": {"mse": 0.3}}}
    st = TrainState.from_json(old)
    assert (st.step, st.best_metric, st.best_step, st.batches_per_epoch) == (13, 0.3, 8, None)
    assert st.best_record("mse") == old["best"]
    assert TrainState.from_json(json.loads(json.dumps(st.to_json()))) == st


def test_the_step_picks_the_process_group_backend(zoo_plugins, tmp_path, monkeypatch):
    from zoo_core import distributed

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    seen = []
    real = distributed.init_distributed
    monkeypatch.setattr(distributed, "init_distributed", lambda device, backend=None: seen.append(backend)
                        or real(device, backend))
    cfg = TrainConfig(out=str(tmp_path / "a"), max_steps=1, batch_size=32, progress=False)
    Trainer(recipe, cfg).fit()
    step = recipe.load_step()
    monkeypatch.setattr(step, "distributed_backend", "gloo", raising=False)
    Trainer(recipe, dataclasses.replace(cfg, out=str(tmp_path / "b"))).fit()
    assert seen == [None, "gloo"]  # sparse gradients on CUDA need gloo: NCCL cannot reduce them
