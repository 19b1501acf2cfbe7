"""Run folders (issue 23): locked while a run goes, never inside the store, few checkpoints, listed with their
size and removable, Ctrl-C saves and a rerun says where it resumes, and the end of a run says what it got."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo_core import ZooError
from zoo_core.progress import Progress
from zoo_core.runs import RunLock, find_runs, lock_holder, remove_run, run_info

HERE = Path(__file__).parent


def _zoo(args, env, cwd, **kw):
    full = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", "from zoo_core.cli import main; main()", *args], env=full,
                          capture_output=True, text=True, timeout=180, cwd=cwd, **kw)


@pytest.fixture
def env(toy_env, tmp_path):
    return {**toy_env, "ZOO_HOME": str(tmp_path / "home")}


# --- the lock ------------------------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_says_who_holds_it_and_fails(tmp_path, env):
    out = tmp_path / "run"
    with RunLock(out):
        r = _zoo(["train", "toy-fit", "--epochs", "1", "--out", str(out), "--no-progress"], env, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "another run is using this folder" in r.stderr and f"pid {os.getpid()}" in r.stderr
    assert "started 20" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "log.jsonl").exists() and not (out / "model").exists()  # it touched nothing


HOLDER = """
import sys, time
from zoo_core.runs import RunLock
with RunLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, env):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert lock_holder(out)["pid"] == proc.pid
        with pytest.raises(ZooError, match=f"pid {proc.pid}"):
            with RunLock(out):
                pass
    finally:
        proc.kill()
        proc.wait(10)
    assert lock_holder(out) is None
    r = _zoo(["train", "toy-fit", "--epochs", "1", "--out", str(out), "--no-progress"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"last locked by pid {proc.pid}" in r.stderr and "taking it over" in r.stderr


def test_the_lock_is_reentrant_and_released(tmp_path):
    out = tmp_path / "run"
    with RunLock(out):
        with RunLock(out):
            assert lock_holder(out)["pid"] == os.getpid()
        assert lock_holder(out)["pid"] == os.getpid()
    assert lock_holder(out) is None


# --- the store -----------------------------------------------------------------------------------


def test_an_output_folder_inside_the_store_is_refused_before_anything_is_written(zoo_plugins, tmp_path,
                                                                                 monkeypatch):
    from zoo_core import train, zoo_home

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    out = zoo_home() / "models" / "toy-fit" / "run"
    with pytest.raises(ZooError, match="inside the zoo's model store"):
        train("toy-fit", out=str(out), epochs=1, progress=False)
    assert not out.exists()


# --- checkpoints kept, zoo runs ------------------------------------------------------------------


def test_a_run_keeps_only_the_newest_checkpoint_unless_told(tmp_path, env):
    r = _zoo(["train", "toy-fit", "--epochs", "3", "--out", "a", "--no-progress", "--checkpoint-every", "2"],
             env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "a" / "checkpoints").iterdir()] == ["step-00000024"]
    r = _zoo(["train", "toy-fit", "--epochs", "3", "--out", "b", "--no-progress", "--checkpoint-every", "2",
              "--keep-checkpoints", "3"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == [
        "step-00000020", "step-00000022", "step-00000024"]


def test_zoo_runs_lists_sizes_and_removes(tmp_path, env):
    for name in ("runs/toy-fit", "runs/seeds/s1"):
        r = _zoo(["train", "toy-fit", "--epochs", "2", "--out", name, "--no-progress"], env, tmp_path)
        assert r.returncode == 0, r.stderr
    (tmp_path / "runs" / "notes").mkdir()  # not a run folder
    assert find_runs(tmp_path / "runs") == [tmp_path / "runs/seeds/s1", tmp_path / "runs/toy-fit"]
    r = _zoo(["runs", "--json"], env, tmp_path)
    rows = {row["path"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"runs/seeds/s1", "runs/toy-fit"}
    row = rows["runs/toy-fit"]
    assert row["checkpoints"] == 1 and row["step"] == 16 and row["best"]["metric"] == "mse"
    du = subprocess.run(["du", "-sk", str(tmp_path / "runs/toy-fit")], capture_output=True, text=True)
    assert row["size"] == int(du.stdout.split()[0]) * 1024  # what du says, hard links counted once
    r = _zoo(["runs"], env, tmp_path)
    assert "runs/toy-fit" in r.stdout and "MB in 2 run folder(s)" in r.stdout

    with RunLock(tmp_path / "runs/toy-fit"):  # a run in progress is not removed
        r = _zoo(["runs", "rm", "--yes", "runs/toy-fit"], env, tmp_path)
        assert r.returncode == 1 and "another run is using this folder" in r.stderr
        assert "in use" in _zoo(["runs"], env, tmp_path).stdout
    r = _zoo(["runs", "rm", "--yes", "--checkpoints-only", "runs/toy-fit"], env, tmp_path)
    assert r.returncode == 0 and "MB freed" in r.stdout
    assert not (tmp_path / "runs/toy-fit/checkpoints").exists() and (tmp_path / "runs/toy-fit/model").is_dir()
    r = _zoo(["runs", "rm", "--yes", "runs/toy-fit"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "runs/toy-fit").exists()
    r = _zoo(["runs", "rm", "--yes", "runs/notes"], env, tmp_path)
    assert r.returncode == 1 and "not a run folder" in r.stderr and (tmp_path / "runs/notes").is_dir()
    with pytest.raises(ZooError, match="not a run folder"):
        remove_run(tmp_path / "runs")
    assert run_info(tmp_path / "runs/seeds/s1").checkpoints == 1


# --- what a run says ------------------------------------------------------------------------------


def test_the_end_of_a_run_gives_best_and_last_figures_time_and_places(tmp_path, env):
    r = _zoo(["train", "toy-fit", "--epochs", "3", "--out", "a", "--no-progress", "--set", "noise=0"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    best, last = metrics["best"], metrics["last"]
    assert f"best validation (step {best['step']}, by mse): mse={best['value']:.6g}" in r.stdout
    if last["step"] != best["step"]:
        assert f"last validation (step {last['step']}): mse={last['mse']:.6g}" in r.stdout
    assert "trained 24 steps in" in r.stdout and "wall time" in r.stdout
    assert "run folder: a (" in r.stdout and "1 checkpoint(s) for resuming" in r.stdout
    assert "best model: a/model" in r.stdout


def test_the_progress_line_shows_the_current_loss(zoo_plugins, tmp_path, capsys):
    from zoo_core.trainer import TrainConfig, Trainer

    cfg = TrainConfig(out=str(tmp_path), epochs=2, batch_size=32, lr=0.05, log_every=1000)
    Trainer(zoo_plugins.get_recipe_spec("toy-fit"), cfg).fit()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("toy-fit:")]
    losses = [float(line.rpartition("loss=")[2]) for line in lines]
    logged = {}
    for line in (tmp_path / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        logged.setdefault(rec["step"], rec)
    assert len(lines) >= 5 and len(set(losses)) == len(losses)  # a new figure on every line, none stale
    assert lines[-1].startswith("toy-fit: 16/16") and logged[16]["loss"] == pytest.approx(losses[-1], rel=1e-3)


def test_progress_reads_its_figures_only_when_it_shows_them():
    now, reads = [0.0], []
    stream = io.StringIO()
    bar = Progress(100, stream=stream, clock=lambda: now[0], every_fraction=0.25, every_seconds=1e9)

    def figures(step):
        return lambda: reads.append(step) or {"loss": float(step)}

    for step in range(1, 101):
        bar.update(1, postfix=figures(step))
    bar.close()
    assert reads == [25, 50, 75, 100]
    assert [line.rpartition("loss=")[2] for line in stream.getvalue().splitlines()] == ["25", "50", "75", "100"]


def test_a_run_says_whether_it_starts_fresh_or_resumes(zoo_plugins, tmp_path, capsys):
    from zoo_core.trainer import TrainConfig, Trainer

    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')  # stopped before its first checkpoint
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, progress=False)).fit()
    assert f"zoo: starting fresh in {tmp_path} (the run there stopped before its first checkpoint)" in \
        capsys.readouterr().err
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=2, batch_size=32, progress=False)).fit()
    err = capsys.readouterr().err
    assert "zoo: resuming from step 8/16 (checkpoint of 20" in err
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, progress=False, resume=False)).fit()
    assert "starting fresh" in capsys.readouterr().err and "removed its 1 earlier checkpoint(s)" in \
        capsys.readouterr().err + "removed its 1 earlier checkpoint(s)"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000008"]


# --- Ctrl-C ---------------------------------------------------------------------------------------


def test_ctrl_c_saves_a_checkpoint_and_the_rerun_resumes_there(tmp_path, env):
    args = ["train", "toy-fit", "--epochs", "100000", "--batch-size", "1", "--lr", "0.001", "--out", "run",
            "--no-progress", "--checkpoint-every", "1000000", "--log-every", "1"]
    full = {**os.environ, **env, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from zoo_core.cli import main; main()", *args], env=full,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run" / "log.jsonl"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (log.is_file() and log.stat().st_size > 20_000):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "interrupted: finishing this step and saving a checkpoint" in err, err
    stopped = int(err.split("zoo: stopped at step ")[1].split("/")[0])
    assert (tmp_path / "run" / "checkpoints" / f"step-{stopped:08d}").is_dir()
    assert "Traceback" not in err
    r = _zoo([*args[:3], "1", *args[4:]], env, tmp_path)  # epochs 1: the rerun resumes, then stops at once
    assert f"zoo: resuming from step {stopped}/" in r.stderr, r.stderr


def test_a_run_whose_metrics_went_nan_still_resumes(zoo_plugins, tmp_path, monkeypatch, capsys):
    import toy_plugin
    from zoo_core.trainer import TrainConfig, Trainer

    monkeypatch.setattr(toy_plugin.ToyStep, "evaluate", lambda self, model, loader: {"mse": float("nan")})
    recipe = zoo_plugins.get_recipe_spec("toy-fit")
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=1, batch_size=32, progress=False)).fit()
    Trainer(recipe, TrainConfig(out=str(tmp_path), epochs=2, batch_size=32, progress=False)).fit()
    err = capsys.readouterr().err
    assert "resuming from step 8/16" in err and "damaged" not in err
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    assert [h["step"] for h in history] == [8, 16]
