"""GAN-QP-L1, GAN-QP-L2, WGAN-GP and SGAN with the same G and D, for the same CPU-time budget each.

Each loss trains through the core's Trainer (the recipe ``ganqp-mnist`` by default: MNIST padded to
32 px, batch 64, z 128; each loss with its own paper's optimiser settings and critic schedule, and
WGAN-GP's critic built with layer norms instead of batch norms, see zoo_ganqp/train.py) for
``--minutes`` of training CPU time (the process's CPU clock; the runs use one thread), excluding the
time spent evaluating: equal compute for every loss even when other jobs share the machine, which
equal wall-clock time is not.
LeNet-FID and KID (``--eval-samples`` samples against the training split) are computed about
``--evals`` times, evenly in training time: a short calibration run measures each loss's speed and
sets its ``eval_every_steps``. A run stops at the validation nearest the budget (the first one from
which the next would end further from it). The table reports the training CPU seconds each run
actually got, its wall-clock time and the load average.

Everything is read back from each run's log.jsonl. Written under ``--out``:
``compare.md`` (a summary table and FID/KID against training time for each loss),
``compare.json``, ``grids/LOSS.png`` (each run's final sample grid, fixed z) and the runs themselves.

    python plugins/zoo-ganqp/benchmarks/compare.py --minutes 10
    python plugins/zoo-ganqp/benchmarks/compare.py --minutes 0.5 --eval-samples 1000 --evals 2   # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from zoo_ganqp.train import LOSS_MODEL_CONFIG, LOSSES, GANQPSettings, GANQPStep


@dataclasses.dataclass
class TimedSettings(GANQPSettings):
    """GAN-QP's settings and the benchmark's own two."""

    budget_seconds: float | None = None  # training CPU seconds (evaluation excluded); None: no budget
    no_eval: bool = False  # calibration runs: evaluate() returns at once


class TimedStep(GANQPStep):
    """GANQPStep that records its evaluation time and stops the run once the training-time budget is spent.

    Time is this process's CPU time (``time.process_time``), so a budget is the same compute for every
    loss however busy the machine is.
    """

    Settings = TimedSettings
    marks: list[float] = []  # the CPU clock at each generator update, read by calibrate()

    def __init__(self, model, config):
        super().__init__(model, config)
        self.eval_seconds = 0.0
        self.last_train_seconds = 0.0
        self.cpu_start = time.process_time()

    def g_loss(self, model, batch):
        TimedStep.marks.append(time.process_time())
        return super().g_loss(model, batch)

    def train_seconds(self) -> float:
        """Training CPU seconds so far (evaluation excluded)."""
        return time.process_time() - self.cpu_start - self.eval_seconds

    def evaluate(self, model, loader):
        if self.settings.no_eval:
            return {"fid": 0.0}
        start = time.process_time()
        metrics = super().evaluate(model, loader)
        self.eval_seconds += time.process_time() - start
        return {**metrics, "eval_seconds": self.eval_seconds, "train_cpu_seconds": self.train_seconds()}

    def after_validation(self, control, metrics):
        super().after_validation(control, metrics)
        budget = self.settings.budget_seconds
        now = self.train_seconds()
        interval, self.last_train_seconds = now - self.last_train_seconds, now
        if budget is not None and now + interval / 2 >= budget:  # the next validation would be further off
            control.stop()

    def state_dict(self):
        return {"eval_seconds": self.eval_seconds, "last_train_seconds": self.last_train_seconds}

    def load_state_dict(self, state):
        self.eval_seconds = float(state.get("eval_seconds", 0.0))
        self.last_train_seconds = float(state.get("last_train_seconds", 0.0))


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _values(recipe, out, **overrides) -> dict:
    values = dict(recipe.defaults)
    values.update(out=str(out), progress=False, resume=False, checkpoint_every=10**9, device="cpu", log_every=10)
    values.update(overrides)
    return values


def loss_recipe(recipe, loss: str):
    """``recipe`` with the model config ``loss`` needs (WGAN-GP: a critic without batch norm)."""
    return dataclasses.replace(recipe, model_config={**recipe.model_config, **LOSS_MODEL_CONFIG.get(loss, {})})


def calibrate(recipe, loss: str, steps: int, threads: int | None) -> float:
    """Iterations per CPU second of ``loss`` (timed after 2 warm-up iterations), evaluation off."""
    from zoo_core import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as out:
        values = _values(recipe, out, loss=loss, max_steps=steps + 2, eval_every_steps=None, log_every=1,
                         no_eval=True, threads=threads)
        TimedStep.marks.clear()
        Trainer(recipe, TrainConfig.from_dict(values)).fit()
    marks = TimedStep.marks  # the CPU clock at the start of each iteration
    return steps / (marks[-1] - marks[1])


def run_loss(recipe, loss: str, out: Path, *, budget: float, evals: int, eval_samples: int, threads: int | None,
             calibration_steps: int) -> dict:
    from zoo_core import TrainConfig, Trainer

    recipe = loss_recipe(recipe, loss)
    rate = calibrate(recipe, loss, calibration_steps, threads)
    every = max(1, math.ceil(rate * budget / evals))  # validations about budget / evals apart in training time
    values = _values(recipe, out, loss=loss, max_steps=10**9, eval_every_steps=every, budget_seconds=budget,
                     eval_samples=eval_samples, threads=threads)
    if out.exists():
        shutil.rmtree(out)
    start = time.monotonic()
    Trainer(recipe, TrainConfig.from_dict(values)).fit()
    wall = time.monotonic() - start
    lines = _log(out)
    curve = [{"step": line["step"], "train_seconds": round(line["train_cpu_seconds"], 1),
              "wall_seconds": round(line["time"], 1),
              "fid": line["fid"], "kid": line["kid"], "kid_std": line["kid_std"]}
             for line in lines if line.get("split") == "validation"]
    last = curve[-1]
    train_lines = [line for line in lines if "d_loss" in line]
    return {"loss": loss, "calibrated_it_per_s": rate, "eval_every_steps": every, "curve": curve,
            "final": last, "best_fid": min(c["fid"] for c in curve), "steps": last["step"],
            "it_per_s": last["step"] / max(last["train_seconds"], 1e-9), "wall_seconds": round(wall, 1),
            "last_losses": {k: v for k, v in train_lines[-1].items() if k not in ("step", "epoch", "time")}
            if train_lines else {}}


def markdown(results: list[dict], meta: dict) -> str:
    lines = [f"# GAN-QP vs baselines at equal training time: {meta['recipe']}", "",
             f"{meta['date']}, {meta['machine']}, torch {meta['torch']}, {meta['threads']} threads, load average "
             f"{meta['load_average']['start'][0]} at the start, {meta['load_average']['end'][0]} at the end; "
             f"budget {meta['minutes']} CPU minutes of training per loss (evaluation excluded); LeNet-FID and KID of "
             f"{meta['eval_samples']:,} samples against the training split; nets {meta['model_config']}.", "",
             f"Command: `{meta['command']}`", "",
             "| loss | train CPU s | wall s | iterations | it/s | final LeNet-FID | best LeNet-FID | final KID | grid |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        f = r["final"]
        lines.append(f"| {r['loss']} | {f['train_seconds']} | {r['wall_seconds']} | {r['steps']} | {r['it_per_s']:.3f} | {f['fid']:.2f} | "
                     f"{r['best_fid']:.2f} | {f['kid']:.4g} ± {f['kid_std']:.2g} | grids/{r['loss']}.png |")
    lines += ["", "## LeNet-FID and KID against training time", ""]
    for r in results:
        lines += [f"### {r['loss']}", "", "| train CPU s | wall s | step | LeNet-FID | KID |", "|---|---|---|---|---|"]
        lines += [f"| {c['train_seconds']} | {c['wall_seconds']} | {c['step']} | {c['fid']:.2f} | {c['kid']:.4g} |" for c in r["curve"]]
        lines.append("")
    return "\n".join(lines)


def main():
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training CPU minutes per loss (one thread: CPU time is compute)")
    parser.add_argument("--losses", default=",".join(LOSSES))
    parser.add_argument("--recipe", default="ganqp-mnist", help="ganqp-mnist or ganqp-fashion")
    parser.add_argument("--out", default="runs/ganqp-compare")
    parser.add_argument("--evals", type=int, default=10, help="validations per run, evenly in training time")
    parser.add_argument("--eval-samples", type=int, default=10_000)
    parser.add_argument("--max-channels", type=int, default=None, help="smaller nets for all losses alike")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--calibration-steps", type=int, default=10)
    args = parser.parse_args()

    from zoo_core import plugins

    base = plugins.get_recipe_spec(args.recipe)
    model_config = dict(base.model_config)
    if args.max_channels:
        model_config["max_channels"] = args.max_channels
    recipe = dataclasses.replace(base, step="__main__:TimedStep", model_config=model_config)
    out = Path(args.out)
    (out / "grids").mkdir(parents=True, exist_ok=True)
    results = []
    load_before = os.getloadavg()
    for loss in args.losses.split(","):
        print(f"{loss}: training for {args.minutes} min ...", flush=True)
        r = run_loss(recipe, loss, out / loss, budget=args.minutes * 60, evals=args.evals,
                     eval_samples=args.eval_samples, threads=args.threads, calibration_steps=args.calibration_steps)
        grid = out / loss / "samples" / f"step-{r['steps']:08d}.png"
        if grid.is_file():
            shutil.copyfile(grid, out / "grids" / f"{loss}.png")
        print(f"{loss}: {r['steps']} iterations, final LeNet-FID {r['final']['fid']:.2f}, best {r['best_fid']:.2f}, "
              f"KID {r['final']['kid']:.4f}", flush=True)
        results.append(r)
    meta = {"recipe": args.recipe, "minutes": args.minutes, "eval_samples": args.eval_samples,
            "model_config": model_config, "torch": torch.__version__, "threads": args.threads or torch.get_num_threads(),
            "machine": f"{platform.machine()} ({os.cpu_count()} CPUs)",
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average": {"start": [round(x, 2) for x in load_before],
                             "end": [round(x, 2) for x in os.getloadavg()]},
            "command": "python " + " ".join(sys.argv)}
    (out / "compare.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    (out / "compare.md").write_text(markdown(results, meta) + "\n")
    print(f"wrote {out / 'compare.md'}")


if __name__ == "__main__":
    main()
