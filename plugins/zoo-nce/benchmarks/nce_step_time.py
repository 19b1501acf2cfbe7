"""Training-step time of the question → tag model: NCE against the exact full softmax, at 10k, 100k and 1M tags.

Same model (dim 128, 3,000 characters, questions of 20 characters, 2 tags each, batch 256), same
optimizers as the zhidao-tags recipe: NCE with 20 shared noise tags (SparseAdam on the tables, Adam on
the rest) vs the full softmax over every tag (dense Adam on the tag table, as it must be). The step is
forward, backward and the optimizer steps, through TagStep.training_step itself. Random Zipf data.

Run under the CPU lock:  flock /tmp/zoo-cpu.lock python plugins/zoo-nce/benchmarks/nce_step_time.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from zoo_core import TrainConfig

from zoo_nce.model import TagModel
from zoo_nce.train import TagStep


def make_step(tags: int, loss: str, dim: int = 128, chars: int = 3000):
    counts = (1e7 / np.arange(1, tags + 1) ** 1.1).astype(np.int64) + 1
    model = TagModel.from_config({"dim": dim, "chars": [str(i) for i in range(chars)],
                                  "tags": [str(i) for i in range(tags)], "tag_counts": counts.tolist()})
    step = TagStep(model, TrainConfig.from_dict({"lr": 1e-3, "loss": loss}))  # the tags are in the model config
    return model, step, step.configure_optimizers(), counts


def time_steps(tags: int, loss: str, steps: int, batch: int = 256) -> float:
    torch.manual_seed(0)
    model, step, opts, counts = make_step(tags, loss)
    q = counts / counts.sum()
    gen = np.random.default_rng(0)

    def batch_data():
        tokens = torch.randint(1, 3001, (batch, 20))
        t = torch.from_numpy(gen.choice(tags, size=(batch, 2), p=q))
        return tokens, t

    data = [batch_data() for _ in range(steps + 3)]
    times = []
    for i, b in enumerate(data):
        t0 = time.perf_counter()
        for o in opts.values():
            o.zero_grad(set_to_none=True)
        step.training_step(model, b)["loss"].backward()
        for o in opts.values():
            o.step()
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--softmax-steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load {os.getloadavg()[0]:.2f}")
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        nce = time_steps(n, "nce", args.steps)
        full = time_steps(n, "softmax", args.softmax_steps)
        rows.append((n, nce, full))
        print(f"{n:>9} tags: NCE {nce * 1e3:8.2f} ms/step   full softmax {full * 1e3:9.2f} ms/step   "
              f"softmax/NCE {full / nce:7.1f}x", flush=True)
    base = rows[0][1]
    print("NCE step time relative to the smallest tag set: "
          + ", ".join(f"{n}: {t / base:.2f}x" for n, t, _ in rows))


if __name__ == "__main__":
    main()
