"""O-GAN on MNIST 32 px for a training-time budget, measured on the test digits, next to GAN-QP-L2.

1. Throughput, in one run: an O-GAN iteration (one RMSprop update on 64 real images) against a
   GAN-QP-L2 iteration (2 critic updates and 1 generator update, 3 batches of 64) with the nets of
   the same size, both through the core's Trainer, timed alternately (``--throughput-steps`` each,
   after 2 warm-up steps, best of ``--repeats``).
2. Reproduction: ``zoo train ogan-mnist`` for ``--minutes`` of training time (the Trainer's
   ``max_train_seconds``; validations excluded), validating every ``minutes / evals``. The best
   model (by LeNet-FID on the validation split) is then scored on the MNIST test split: mean
   rho(z, E(G(z))), reconstruction MSE, how often the LeNet class of the reconstruction equals the
   digit's label, LeNet-FID and KID of 10,000 samples against the training split.
3. Pictures: samples, real/reconstruction pairs and interpolations between test digits.
4. GAN-QP-L2 at the same training time, from zoo-ganqp's comparison (``--ganqp-results``, the
   compare.json that ``plugins/zoo-ganqp/benchmarks/compare.py`` writes): its validation nearest
   in training time.

Writes ``OUT/reproduce.md`` and ``OUT/reproduce.json`` and the pictures. The throughput baseline is
the recipe ``ganqp-mnist``, found through the core's registry (no import of zoo-ganqp): it needs
zoo-ganqp installed, the ``benchmarks`` extra of zoo-ogan (``pip install -e 'plugins/zoo-ogan[benchmarks]'``),
or ``--no-throughput``.

    python plugins/zoo-ogan/benchmarks/reproduce.py --minutes 10 --ganqp-results runs/ganqp-compare/compare.json
    python plugins/zoo-ogan/benchmarks/reproduce.py --minutes 0.3 --evals 1 --eval-samples 1000   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def _values(recipe, out, **overrides) -> dict:
    values = dict(recipe.defaults)
    values.update(out=str(out), progress=False, resume=False, checkpoint_every=10**9, device="cpu")
    values.update(overrides)
    return values


class _NoEval:
    """A step mixin for timing: validation returns at once."""

    def evaluate(self, model, loader):
        return {"fid": 0.0}


def _timed_steps(recipe, step_class, steps: int, threads: int | None) -> float:
    """Seconds per iteration of ``recipe`` (log times of steps 3 .. steps + 2), validation off."""
    from zoo_core import TrainConfig, Trainer

    class Step(_NoEval, step_class):
        pass

    module = sys.modules[__name__]
    module._TimingStep = Step
    spec = dataclasses.replace(recipe, step=f"{__name__}:_TimingStep")
    with tempfile.TemporaryDirectory() as out:
        values = _values(spec, out, max_steps=steps + 2, eval_every_steps=None, log_every=1, threads=threads,
                         max_train_seconds=None)
        Trainer(spec, TrainConfig.from_dict(values)).fit()
        times = {line["step"]: line["time"] for line in _log(Path(out)) if "split" not in line and "step" in line
                 and "time" in line and "control" not in line}
    return (times[steps + 2] - times[2]) / steps


BASELINE = "ganqp-mnist"  # zoo-ganqp's recipe (the `benchmarks` extra of zoo-ogan's pyproject.toml)


def baseline_recipe():
    """The GAN-QP recipe the throughput is compared with, or None when zoo-ganqp is not installed."""
    from zoo_core import UnknownNameError, plugins

    try:
        return plugins.get_recipe_spec(BASELINE)
    except UnknownNameError:
        return None


def throughput(ogan_recipe, ganqp_recipe, *, steps: int, repeats: int, threads: int | None) -> dict:
    """Seconds per iteration of O-GAN and of GAN-QP-L2, alternately, best of ``repeats``."""
    ganqp_recipe = dataclasses.replace(ganqp_recipe, defaults={**ganqp_recipe.defaults, "loss": "qp-l2"})
    o, g = [], []
    for _ in range(repeats):
        o.append(_timed_steps(ogan_recipe, ogan_recipe.load_step(), steps, threads))
        g.append(_timed_steps(ganqp_recipe, ganqp_recipe.load_step(), steps, threads))
    batch = int(ogan_recipe.defaults["batch_size"])
    best_o, best_g = min(o), min(g)
    return {"ogan_s_per_it": best_o, "ganqp_s_per_it": best_g, "ogan_it_per_s": 1 / best_o,
            "ganqp_it_per_s": 1 / best_g, "ogan_images_per_s": batch / best_o, "ganqp_images_per_s": 3 * batch / best_g,
            "iteration_time_ratio": best_o / best_g, "all_ogan": o, "all_ganqp": g, "steps": steps}


def test_scores(recipe, model_folder: Path, *, eval_samples: int, threads: int | None) -> dict:
    """The best model's metrics on the MNIST test split (all 10,000 digits reconstructed)."""
    from zoo_core import TrainConfig, evaluate, load_model

    values = _values(recipe, "unused", eval_samples=eval_samples, recon_samples=10_000, corr_samples=10_000,
                     threads=threads)
    return evaluate(recipe, load_model(model_folder), split="test", config=TrainConfig.from_dict(values))


def pictures(model_folder: Path, out: Path) -> dict:
    """Samples, reconstruction pairs and interpolations of test digits, as PNG under ``out``."""
    from zoo_core import load_model
    from zoo_images.data import MNIST
    from zoo_images.pictures import save_grid, save_interpolation, save_pairs

    model = load_model(model_folder).eval()
    x, _ = MNIST(layout="image", size=32).split("test").batch(range(64))
    written = {
        "samples": save_grid(model.sample(64, generator=torch.Generator().manual_seed(0)), out / "samples.png"),
        "reconstructions": save_pairs(x[:32], model.reconstruct(x[:32]), out / "reconstructions.png"),
        "interpolations": save_interpolation(model.interpolate(x[32:48:2], x[33:49:2], 10), out / "interpolations.png",
                                             steps=10),
    }
    return {k: str(v) for k, v in written.items()}


def ganqp_at(path: Path | None, train_seconds: float) -> dict | None:
    """GAN-QP-L2's LeNet-FID and KID at ``train_seconds``, linearly interpolated between the validations of
    zoo-ganqp's compare.json (its nearest validation when outside them), and the run's final row."""
    if path is None or not path.is_file():
        return None
    data = json.loads(path.read_text())
    run = next((r for r in data["results"] if r["loss"] == "qp-l2"), None)
    if run is None:
        return None
    curve = run["curve"]
    point = min(curve, key=lambda c: abs(c["train_seconds"] - train_seconds))
    for a, b in zip(curve, curve[1:]):
        if a["train_seconds"] <= train_seconds <= b["train_seconds"]:
            w = (train_seconds - a["train_seconds"]) / (b["train_seconds"] - a["train_seconds"])
            point = {"train_seconds": round(train_seconds, 1), "interpolated": True,
                     **{k: a[k] + w * (b[k] - a[k]) for k in ("fid", "kid")}}
    return {"point": point, "final": run["final"], "meta": data["meta"], "steps": run["steps"]}


def markdown(r: dict) -> str:
    m, t, s = r["meta"], r["throughput"], r["test"]
    lines = [f"# O-GAN on MNIST 32 px: {m['minutes']} min of training", "",
             f"{m['date']}, {m['machine']}, torch {m['torch']}, {m['threads']} threads, load average "
             f"{m['load_average']['start'][0]} at the start, {m['load_average']['end'][0]} at the end.", "",
             f"Command: `{m['command']}`", ""]
    if m.get("settings") or m.get("model_settings"):
        lines += [f"Settings changed from the recipe: {m.get('settings') or {}}, model {m.get('model_settings') or {}}.", ""]
    if t is not None:
        lines += ["## Throughput (same run, same nets' size, batch 64)", "",
             "| model | s / iteration | iterations / s | real images / s | O-GAN / GAN-QP time per iteration |",
             "|---|---|---|---|---|",
             f"| O-GAN (1 update) | {t['ogan_s_per_it']:.4f} | {t['ogan_it_per_s']:.2f} | {t['ogan_images_per_s']:.0f} | "
             f"{t['iteration_time_ratio']:.3f} |",
             f"| GAN-QP-L2 (2 D + 1 G updates) | {t['ganqp_s_per_it']:.4f} | {t['ganqp_it_per_s']:.2f} | "
             f"{t['ganqp_images_per_s']:.0f} | 1 |", ""]
    lines += ["## Reproduction (best model by validation LeNet-FID, scored on the MNIST test split)", "",
             f"Training: {r['train']['train_seconds']} s of training, {r['train']['steps']} iterations; best at step "
             f"{r['train']['best_step']}.", "",
             "| metric | O-GAN | goal |", "|---|---|---|",
             f"| mean ρ(z, E(G(z))) (10,000 z) | {s['z_corr']:.4f} | ≥ 0.9 |",
             f"| LeNet class of reconstruction = label (10,000 test digits) | {s['recon_acc']:.4f} | ≥ 0.8 |",
             f"| reconstruction MSE (pixels in [−1, 1]) | {s['recon_mse']:.4f} | |",
             f"| LeNet-FID ({m['eval_samples']:,} samples vs train) | {s['fid']:.2f} | |",
             f"| KID ×1000 | {s['kid']:.4g} ± {s['kid_std']:.2g} | |", ""]
    g = r.get("ganqp")
    if g:
        p = g["point"]
        lines += ["## Against GAN-QP-L2 at equal training time (zoo-ganqp's comparison)", "",
                  "| model | train s | LeNet-FID | KID ×1000 | source |", "|---|---|---|---|---|",
                  f"| O-GAN (last validation) | {r['train']['train_seconds']} | {r['train']['last']['fid']:.2f} | "
                  f"{r['train']['last']['kid']:.4g} | this run, validation split scores vs train |",
                  f"| GAN-QP-L2 ({'interpolated' if p.get('interpolated') else 'nearest validation'}) | "
                  f"{p['train_seconds']} | {p['fid']:.2f} | {p['kid']:.4g} | compare.json of {g['meta']['date']} |",
                  f"| GAN-QP-L2 (its last validation) | {g['final']['train_seconds']} | {g['final']['fid']:.2f} | "
                  f"{g['final']['kid']:.4g} | same |", ""]
    lines += ["## Validation curve", "", "| train s | step | LeNet-FID | KID | z_corr | recon_mse | recon_acc |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['train_seconds']} | {c['step']} | {c['fid']:.2f} | {c['kid']:.4g} | {c['z_corr']:.4f} | "
              f"{c['recon_mse']:.4f} | {c.get('recon_acc', float('nan')):.4f} |" for c in r["train"]["curve"]]
    lines += ["", "Pictures: " + ", ".join(f"`{Path(v).name}`" for v in r["pictures"].values()), ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True, help="training minutes (validation excluded)")
    parser.add_argument("--evals", type=int, default=5, help="validations, evenly in training time")
    parser.add_argument("--eval-samples", type=int, default=10_000)
    parser.add_argument("--out", default="runs/ogan-reproduce")
    parser.add_argument("--ganqp-results", type=Path, default=None, help="zoo-ganqp's compare.json")
    parser.add_argument("--throughput-steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe setting (JSON value), e.g. rho_weight=1.0")
    parser.add_argument("--model-set", dest="model_sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a model config field, e.g. z_dim=32")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput part")
    parser.add_argument("--render", type=Path, default=None,
                        help="only rewrite reproduce.md from this reproduce.json (e.g. with other --ganqp-results)")
    args = parser.parse_args()
    if args.render is not None:
        result = json.loads(args.render.read_text())
        result["ganqp"] = ganqp_at(args.ganqp_results, result["train"]["train_seconds"])
        args.render.write_text(json.dumps(result, indent=2) + "\n")
        args.render.with_name("reproduce.md").write_text(markdown(result))
        print(markdown(result))
        return

    from zoo_core import TrainConfig, Trainer, plugins

    def parse(items):
        out = {}
        for item in items:
            key, _, value = item.partition("=")
            try:
                out[key] = json.loads(value)
            except ValueError:
                out[key] = value
        return out

    ganqp_recipe = None if args.no_throughput else baseline_recipe()
    if not args.no_throughput and ganqp_recipe is None:
        parser.error(f"the throughput baseline is zoo-ganqp's recipe {BASELINE}, which is not installed: "
                     "pip install -e 'plugins/zoo-ogan[benchmarks]' (or plugins/zoo-ganqp), or pass --no-throughput")
    base = plugins.get_recipe_spec("ogan-mnist")
    recipe = dataclasses.replace(base, defaults={**base.defaults, **parse(args.sets)},
                                 model_config={**base.model_config, **parse(args.model_sets)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    speed = None
    if not args.no_throughput:
        print("throughput ...", flush=True)
        speed = throughput(recipe, ganqp_recipe, steps=args.throughput_steps,
                           repeats=args.repeats, threads=args.threads)
        print(f"O-GAN {speed['ogan_it_per_s']:.2f} it/s, GAN-QP-L2 {speed['ganqp_it_per_s']:.2f} it/s", flush=True)

    budget = args.minutes * 60
    run_dir = out / "run"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    values = _values(recipe, run_dir, max_steps=10**9, eval_every_steps=None, max_train_seconds=budget,
                     eval_every_seconds=budget / max(args.evals, 1), eval_samples=args.eval_samples,
                     threads=args.threads, log_every=50)
    print(f"training for {args.minutes} min ...", flush=True)
    start = time.monotonic()
    best = Trainer(recipe, TrainConfig.from_dict(values)).fit()
    wall = time.monotonic() - start
    curve = [line for line in _log(run_dir) if line.get("split") == "validation"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    print("scoring on the test split ...", flush=True)
    test = test_scores(recipe, best, eval_samples=args.eval_samples, threads=args.threads)
    shown = pictures(best, out)
    result = {
        "meta": {"minutes": args.minutes, "settings": parse(args.sets), "model_settings": parse(args.model_sets), "eval_samples": args.eval_samples, "torch": torch.__version__,
                 "threads": args.threads or torch.get_num_threads(),
                 "machine": f"{platform.machine()} ({os.cpu_count()} CPUs)",
                 "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                 "load_average": {"start": [round(x, 2) for x in load_before],
                                  "end": [round(x, 2) for x in os.getloadavg()]},
                 "command": "python " + " ".join(sys.argv)},
        "throughput": speed,
        "train": {"train_seconds": curve[-1]["train_seconds"], "steps": curve[-1]["step"], "wall_seconds": round(wall, 1),
                  "best_step": metrics["best"]["step"], "curve": curve, "last": curve[-1]},
        "test": test, "pictures": shown,
        "ganqp": ganqp_at(args.ganqp_results, curve[-1]["train_seconds"]),
    }
    (out / "reproduce.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "reproduce.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
