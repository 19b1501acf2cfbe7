"""Training throughput of ganqp-mnist: the recipe's loop (the core's Trainer) against a plain PyTorch loop.

Both train the recipe's nets (32 px, D 64-128-256, G Dense(4*4*256)-128-64-1) with GAN-QP-L2, batch
64, 2 critic updates + 1 generator update per iteration, each on a fresh batch of the same MNIST
split read through a torch DataLoader; evaluation is off in both (the Trainer's closing validation,
which it always runs, is replaced by a no-op here and falls outside the timed window). Figures:
iterations per second and images per second (generator batch per iteration), and the Trainer's
overhead relative to the plain loop. Variants: eager (contiguous), channels_last (the model config's
``channels_last``, the recipes' layout), torch.compile (contiguous). Runs alternate
(plain, trainer, plain, trainer, ...) so machine load hits both alike; the median is reported.

    python plugins/zoo-ganqp/benchmarks/bench_throughput.py --seconds 15 --repeats 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zoo_ganqp.train import GANQPStep


class NoEvalStep(GANQPStep):
    """The recipe's step with evaluation switched off (the Trainer still calls it once at the end)."""

    def evaluate(self, model, loader):
        return {"fid": 0.0}


def plain_loop(dataset, config: dict, *, batch: int, seconds: float, warmup: int, channels_last: bool,
               use_compile: bool) -> float:
    """The same nets and GAN-QP-L2 in plain PyTorch; returns iterations per second after ``warmup``."""
    from zoo_ganqp.model import GANQP

    torch.manual_seed(0)
    model = GANQP.from_config({**config, "channels_last": channels_last}).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    G, D = (torch.compile(model.G), torch.compile(model.D)) if use_compile else (model.G, model.D)
    opt_d = torch.optim.Adam(model.D.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    opt_g = torch.optim.Adam(model.G.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-7)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True)

    def batches():
        while True:
            for x, _ in loader:
                yield x.contiguous(memory_format=fmt)

    data = batches()
    done, start = 0, None
    while True:
        for _ in range(2):  # critic: mean(-delta + delta^2 / (2 * 10 * d)), d = RMS distance
            x_r = next(data)
            with torch.no_grad():
                x_f = G(torch.randn(batch, config["z_dim"]))
            t_r, t_f = D(x_r), D(x_f)
            d = (x_r - x_f).flatten(1).square().mean(1).sqrt()
            delta = t_r - t_f
            loss = (-delta + delta.square() / (20.0 * d)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
        x_r = next(data)  # generator: mean(T(x_r) - T(x_f))
        x_f = G(torch.randn(batch, config["z_dim"]))
        with torch.no_grad():
            t_r = D(x_r)
        loss = (t_r - D(x_f)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        done += 1
        if done == warmup:
            start = time.perf_counter()
        elif start is not None and time.perf_counter() - start >= seconds:
            return (done - warmup) / (time.perf_counter() - start)


def trainer_loop(recipe, *, steps: int, warmup: int, channels_last: bool, use_compile: bool) -> float:
    """The recipe through the core's Trainer for ``steps`` iterations; iterations per second after ``warmup``
    (from the elapsed times in log.jsonl)."""
    from zoo_core import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as out:
        values = dict(recipe.defaults)
        values.update(out=out, max_steps=steps, eval_every_steps=None, log_every=1, checkpoint_every=10**9,
                      progress=False, device="cpu", compile=use_compile, resume=False)
        recipe = dataclasses.replace(recipe, model_config={**recipe.model_config, "channels_last": channels_last})
        Trainer(recipe, TrainConfig.from_dict(values)).fit()
        times = {line["step"]: line["time"] for line in map(json.loads, (Path(out) / "log.jsonl").open())
                 if "d_loss" in line}
    return (steps - warmup) / (times[steps] - times[warmup])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="timed seconds per plain run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", default="eager,channels_last,compile")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=3, help="iterations before timing (compile: more)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from zoo_core import build_dataset, plugins

    base = plugins.get_recipe_spec("ganqp-mnist")
    recipe = dataclasses.replace(base, step="__main__:NoEvalStep")
    config = {**{"z_dim": 128}, **recipe.model_config}
    batch = int(recipe.defaults["batch_size"])
    dataset = build_dataset(recipe).split("train")
    print(f"ganqp-mnist: {config}, batch {batch}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = []
    for variant in args.variants.split(","):
        flags = {"channels_last": variant == "channels_last", "use_compile": variant == "compile"}
        warmup = args.warmup + (5 if flags["use_compile"] else 0)
        plain, core = [], []
        for _ in range(args.repeats):
            plain.append(plain_loop(dataset, config, batch=batch, seconds=args.seconds, warmup=warmup, **flags))
            steps = warmup + max(5, round(plain[-1] * args.seconds))
            core.append(trainer_loop(recipe, steps=steps, warmup=warmup, **flags))
            print(f"  {variant}: plain {plain[-1]:.3f} it/s, trainer {core[-1]:.3f} it/s", flush=True)
        p, c = statistics.median(plain), statistics.median(core)
        rows.append((variant, p, c))
    print("\n| variant | plain it/s | plain img/s | trainer it/s | trainer img/s | trainer overhead |")
    print("|---|---|---|---|---|---|")
    for variant, p, c in rows:
        print(f"| {variant} | {p:.3f} | {p * batch:.1f} | {c:.3f} | {c * batch:.1f} | {(p / c - 1) * 100:+.1f}% |")


if __name__ == "__main__":
    main()
