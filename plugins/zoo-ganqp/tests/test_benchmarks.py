"""The benchmarks still run: compare.py end to end on tiny nets (a smoke run, not a measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zoo_ganqp.train import LOSSES

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow  # about a minute: 4 losses, each calibrated, trained for 3 s and evaluated
def test_compare_trains_every_loss_and_writes_its_tables(zoo, mnist, tmp_path):
    out = tmp_path / "compare"
    r = subprocess.run([sys.executable, str(BENCHMARKS / "compare.py"), "--minutes", "0.05", "--eval-samples", "200",
                        "--evals", "1", "--max-channels", "8", "--threads", "1", "--out", str(out)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    results = json.loads((out / "compare.json").read_text())["results"]
    assert [x["loss"] for x in results] == list(LOSSES)
    for x in results:
        assert x["steps"] >= 1 and x["final"]["fid"] > 0 and x["curve"], x["loss"]
        assert (out / "grids" / f"{x['loss']}.png").is_file()
        config = json.loads((out / x["loss"] / "model" / "config.json").read_text())
        assert config["max_channels"] == 8
        # WGAN-GP's critic is built without batch norm; the others keep the scripts' batch norm
        assert config["critic_norm"] == ("layer" if x["loss"] == "wgan-gp" else "batch")
    table = (out / "compare.md").read_text()
    assert all(f"| {loss} |" in table for loss in LOSSES)
    assert "| loss | train CPU s | wall s |" in table  # the budget is CPU time: equal compute on a busy machine
    for x in results:
        assert all(c["train_seconds"] >= 0 and c["wall_seconds"] > 0 for c in x["curve"]), x["loss"]
