import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from zoo_core.trainer import TrainConfig, Trainer

HERE = Path(__file__).parent


def _params(folder):
    return load_file(folder / "model.safetensors")


def test_fit_improves_validation_and_saves_best(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_trainer_spec("toy-fit")
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
    recipe = zoo_plugins.get_trainer_spec("toy-fit")
    common = dict(epochs=3, batch_size=32, lr=0.05, progress=False, checkpoint_every=5, keep_checkpoints=10)
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
    monkeypatch.setattr(toy_plugin.ToyStep, "model_card",
                        lambda self, model, metrics, state: seen.setdefault("state", state) and f"steps {state['step']}",
                        raising=False)
    recipe = zoo_plugins.get_trainer_spec("toy-fit")
    trainer = Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, seed=7, progress=False))
    assert trainer.build_dataset().seed == 7
    trainer.fit()
    assert seen["state"]["step"] == 8 and seen["state"]["epoch"] == 0 and seen["state"]["elapsed"] >= 0
    assert (tmp_path / "model" / "README.md").read_text() == "steps 8"


def test_keeps_only_newest_checkpoints(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_trainer_spec("toy-fit")
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
Trainer(plugins.get_trainer_spec("toy-fit"), cfg).fit()
"""


def _run(args, env_extra, tmp_path):
    env = dict(os.environ, ZOO_LOAD_PLUGINS="", OMP_NUM_THREADS="1", **env_extra)
    return subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


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

    recipe = zoo_plugins.get_trainer_spec("toy-fit")
    common = dict(epochs=2, batch_size=32, lr=0.05, progress=False, checkpoint_every=5, keep_checkpoints=10,
                  log_every=1)
    Trainer(recipe, TrainConfig(out=str(tmp_path), max_steps=13, **common)).fit()
    # As if the process died after step 13 but before its checkpoint was written.
    shutil.rmtree(tmp_path / "checkpoints" / "step-00000013")
    Trainer(recipe, TrainConfig(out=str(tmp_path), **common)).fit()
    lines = [json.loads(l) for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    steps = [l["step"] for l in lines if "loss" in l]
    assert steps == list(range(1, 17))
    times = [l["time"] for l in lines]
    assert all(t >= 0 for t in times) and times == sorted(times)
