"""Training on a damaged disk: damaged checkpoints, a torn log, a dead run's temporaries, changed settings.

Each is either handled (fall back, skip, clean up) and said on stderr, or a
ZooError that lists what is wrong; never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo_core.errors import ZooError
from zoo_core.trainer import TrainConfig, Trainer

COMMON = {"batch_size": 32, "lr": 0.05, "progress": False, "checkpoint_every": 4, "keep_checkpoints": 3,
          "log_every": 1, "seed": 1}


def _run(recipe, out, **over):
    return Trainer(recipe, TrainConfig(out=str(out), **{**COMMON, **over})).fit()


def _weights(out):
    return load_file(Path(out) / "model" / "model.safetensors")


def _ckpts(out):
    return sorted(p.name for p in (Path(out) / "checkpoints").iterdir())


# --- damaged checkpoints --------------------------------------------------------------------------


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "trainer_state.json truncated": lambda c: _truncate(c / "trainer_state.json"),
    "trainer_state.safetensors truncated": lambda c: _truncate(c / "trainer_state.safetensors"),
    "model.safetensors zero-filled": lambda c: (c / "model" / "model.safetensors").write_bytes(
        bytes((c / "model" / "model.safetensors").stat().st_size)),
    "model config not JSON": lambda c: (c / "model" / "config.json").write_text("{"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(zoo_plugins, tmp_path, capsys, damage):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path / "straight", epochs=2)
    _run(recipe, tmp_path / "run", epochs=1)  # 8 steps: checkpoints 4 and 8
    assert _ckpts(tmp_path / "run") == ["step-00000004", "step-00000008"]
    DAMAGE[damage](tmp_path / "run" / "checkpoints" / "step-00000008")
    capsys.readouterr()
    _run(recipe, tmp_path / "run", epochs=2)
    err = capsys.readouterr().err
    assert "checkpoint step-00000008 is damaged" in err and "resuming from step-00000004" in err
    assert "step-00000008.damaged" in err
    # resumed from step 4, it ends exactly where a run that never stopped does
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "run")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert "step-00000008.damaged" in _ckpts(tmp_path / "run") and "step-00000016" in _ckpts(tmp_path / "run")


def test_every_checkpoint_damaged_is_a_clear_error(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    for c in (tmp_path / "checkpoints").iterdir():
        _truncate(c / "trainer_state.json")
    with pytest.raises(ZooError, match="every checkpoint under .* is damaged") as err:
        _run(recipe, tmp_path, epochs=2)
    assert "--no-resume" in err.value.hint


def test_loading_damaged_weights_into_a_module_changes_nothing(zoo_plugins, tmp_path):
    from zoo_core import build_model
    from zoo_core.checkpoint import load_weights

    torch.manual_seed(0)
    build_model("toy-mlp").save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "model.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    path.write_bytes(path.read_bytes()[: 8 + header_len + 40])  # fc1.weight survives, the rest is cut
    target = build_model("toy-mlp")
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ZooError, match="truncated"):
        load_weights(target, tmp_path / "m")
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


# --- the log ----------------------------------------------------------------------------------------


def test_damaged_log_lines_are_skipped_and_said(zoo_plugins, tmp_path, capsys):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    log = tmp_path / "log.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[1] = lines[1][:10]  # torn mid-write, then appended to
    lines[2] = b"null"
    lines[3] = b"\xff\xfe\x00garbage"
    lines[4] = b'{"step": "x"}'
    log.write_bytes(b"\n".join(lines) + b'{"step": 9, "lo')
    capsys.readouterr()
    _run(recipe, tmp_path, epochs=2)
    err = capsys.readouterr().err
    assert f"skipped 5 damaged line(s) of {log} (line 2, 3, 4, 5, " in err
    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line reads back now
    assert [r["step"] for r in records if "loss" in r][-1] == 16


# --- what a dead run left -----------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_run_removes_what_a_killed_run_left(zoo_plugins, tmp_path):
    from zoo_core.files import _HOST

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    dead = _dead_pid()
    ckpts = tmp_path / "checkpoints"
    stale = [ckpts / f".step-00000012.h{_HOST}-p{dead}.x1y2.partial", tmp_path / f".model.h{_HOST}-p{dead}.ab.partial",
             ckpts / ".step-00000099.legacy.partial", tmp_path / f".log.jsonl.h{_HOST}-p{dead}.cd.partial"]
    live = [ckpts / f".step-00000013.h{_HOST}-p{os.getpid()}.zz.partial",
            ckpts / ".step-00000014.h0badf00d-p1.zz.partial"]  # this process; another machine
    for p in stale[:3] + live:
        p.mkdir()
        (p / "model.safetensors").write_bytes(bytes(1000))
    stale[3].write_text("{}")
    _run(recipe, tmp_path, epochs=2)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in live)


def test_a_conversion_killed_mid_write_is_cleared_by_the_next_write(tmp_path):
    from zoo_core.files import _HOST, atomic_dir

    dead = _dead_pid()
    left = tmp_path / f".gpt2-ml.h{_HOST}-p{dead}.q1.partial"
    other = tmp_path / f".other-model.h{_HOST}-p{dead}.q1.partial"
    left.mkdir()
    other.mkdir()
    with atomic_dir(tmp_path / "gpt2-ml") as tmp:
        (tmp / "config.json").write_text("{}")
    assert not left.exists() and other.exists()  # only the temporaries of the folder being written
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, "gpt2-ml"]


# --- changed settings ----------------------------------------------------------------------------------


def test_resume_with_changed_settings_lists_them(zoo_plugins, tmp_path):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    with pytest.raises(ZooError) as err:
        _run(recipe, tmp_path, epochs=2, lr=0.5, batch_size=64)
    assert "batch_size: 32 in the checkpoint, 64 now" in err.value.what
    assert "lr: 0.05 in the checkpoint, 0.5 now" in err.value.what
    assert "--accept-changes" in err.value.hint and "--no-resume" in err.value.hint
    with pytest.raises(ZooError, match="noise: 0.01 in the checkpoint, 0.5 now"):
        _run(recipe, tmp_path, epochs=2, extra={"noise": 0.5})
    _run(recipe, tmp_path, epochs=2, log_every=3)  # a longer run, logged differently: the same run


def test_accept_changes_goes_on_with_the_new_settings(zoo_plugins, tmp_path, capsys):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    _run(recipe, tmp_path, epochs=2, lr=0.01, accept_changes=True)
    assert "resuming with changed settings (--accept-changes): lr: 0.05 in the checkpoint, 0.01 now" in \
        capsys.readouterr().err
    saved = json.loads((tmp_path / "checkpoints" / "step-00000016" / "trainer_state.json").read_text())
    assert saved["optimizers"]["sgd"]["param_groups"][0]["lr"] == 0.01  # the new rate was used, not ignored
    assert saved["settings"]["lr"] == 0.01


def test_resume_with_another_model_config_is_refused(zoo_plugins, tmp_path):
    import dataclasses

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    wider = dataclasses.replace(recipe, model_config={**recipe.model_config, "hidden": 32})
    with pytest.raises(ZooError, match="written by another model: model hidden: 16 in the checkpoint, 32 now"):
        _run(wider, tmp_path, epochs=2, accept_changes=True)


def test_zoo_train_resume_with_changed_lr_is_an_error_from_the_cli(zoo_plugins, tmp_path):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    args = ["train", "toy-fit", "--out", str(tmp_path), "--epochs", "1", "--no-progress", "--no-install"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    result = CliRunner().invoke(cli, [*args, "--lr", "0.5"])
    assert result.exit_code == 1 and isinstance(result.exception, (SystemExit, type(None)))
    assert "lr: 0.05 in the checkpoint, 0.5 now" in result.output
    result = CliRunner().invoke(cli, [*args, "--lr", "0.5", "--accept-changes"])
    assert result.exit_code == 0, result.output


def test_a_damaged_best_copy_in_the_checkpoint_is_not_put_back(zoo_plugins, tmp_path, capsys):
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    _run(recipe, tmp_path, epochs=1)
    good = _weights(tmp_path)
    best = tmp_path / "checkpoints" / "step-00000008" / "best" / "model.safetensors"
    size = best.stat().st_size
    best.unlink()  # a hard link of OUT/model's file: damage a file of its own
    best.write_bytes(bytes(size))
    capsys.readouterr()
    _run(recipe, tmp_path, epochs=1)  # resumes at the end: nothing to train, the best copy is checked
    assert "the best model saved in step-00000008 is damaged" in capsys.readouterr().err
    assert all(torch.equal(good[k], v) for k, v in _weights(tmp_path).items())
