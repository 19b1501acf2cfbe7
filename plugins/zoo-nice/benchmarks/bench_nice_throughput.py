"""NICE training throughput on this machine against the bound set by its measured matmul speed.

One training step of the paper's MNIST model (4 couplings, each m = 392 -> 5 x 1000 ReLU -> 392)
at global batch B is dominated by matrix products: forward X W^T per linear layer, and in the
backward pass G W (gradient of the input) and G^T X (gradient of the weight), i.e. about
3 x the forward matmul FLOPs. The bound is the time torch.matmul alone needs for exactly those
products at exactly those shapes on this machine; the ratio says how close the whole step
(prior, log-det, ReLUs, Adam update, and optionally data loading) gets to it.

    python plugins/zoo-nice/benchmarks/bench_nice_throughput.py [--batch-size 128] [--steps 20] [--threads N] [--loader] [--unfused]

Target: ratio >= 0.70. Run it on an otherwise idle machine: other processes skew both sides.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def linear_shapes(cfg) -> list[tuple[int, int]]:
    """(in, out) of every nn.Linear in the model, in forward order."""
    half = cfg.dim // 2
    dims = [half] + [cfg.hidden] * cfg.hidden_layers + [half]
    per_coupling = list(zip(dims[:-1], dims[1:]))
    return per_coupling * cfg.num_couplings


def matmul_products(cfg, batch: int):
    """A function doing exactly the step's matmuls (3 per linear layer), and their FLOPs."""
    calls, flops = [], 0.0
    for fan_in, fan_out in linear_shapes(cfg):
        x, w, g = torch.rand(batch, fan_in), torch.rand(fan_out, fan_in), torch.rand(batch, fan_out)
        outs = torch.empty(batch, fan_out), torch.empty(batch, fan_in), torch.empty(fan_out, fan_in)
        calls.append((x, w, g, outs))
        flops += 3 * 2 * batch * fan_in * fan_out

    def products():
        for x, w, g, (o_fwd, o_gin, o_gw) in calls:
            torch.matmul(x, w.t(), out=o_fwd)  # forward: X W^T
            torch.matmul(g, w, out=o_gin)  # backward, input gradient: G W
            torch.matmul(g.t(), x, out=o_gw)  # backward, weight gradient: G^T X

    return products, flops


def training_step(cfg, batch: int, loader: bool, fused: bool = True):
    """A function doing one full NICEStep training step (forward, loss, backward, Adam)."""
    from zoo_core import TrainConfig
    from zoo_nice.hooks import RECIPE_DEFAULTS
    from zoo_nice.model import NICE
    from zoo_nice.train import NICEStep

    torch.manual_seed(0)
    model = NICE(cfg).train()
    recipe = TrainConfig.from_dict({**RECIPE_DEFAULTS, "batch_size": batch, "adam_fused": fused})
    step = NICEStep(model, recipe)
    opt = step.configure_optimizers()["adam"]  # the recipe's optimizer (fused Adam)
    if loader:
        from zoo_images.data import MNIST

        data = MNIST().split("train")
        batches = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
        it = iter(batches)

        def next_batch():
            return next(it)
    else:
        fixed = (torch.rand(batch, cfg.dim), torch.zeros(batch, dtype=torch.long))

        def next_batch():
            return fixed

    def one():
        b = next_batch()
        opt.zero_grad(set_to_none=True)
        loss = step.training_step(model, b)["loss"]
        loss.backward()
        opt.step()

    return one


def main():
    from zoo_nice.model import NICEConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--loader", action="store_true", help="also time the step with batches from the MNIST loader")
    p.add_argument("--unfused", action="store_true", help="also time the step with torch's per-tensor Adam")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = NICEConfig()
    B = args.batch_size
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch {B}, model: paper NICE "
          f"({cfg.num_couplings} couplings x {cfg.hidden_layers} x {cfg.hidden})")

    products, flops = matmul_products(cfg, B)
    fns = {"bound: matmuls alone": products, "NICEStep (fixed batch)": training_step(cfg, B, loader=False)}
    if args.loader:
        fns["NICEStep + MNIST DataLoader"] = training_step(cfg, B, loader=True)
    if args.unfused:
        fns["NICEStep, per-tensor Adam"] = training_step(cfg, B, loader=False, fused=False)
    # Interleave the measurements (one call of each per round) so that load from other
    # processes hits all sides alike; report medians.
    for fn in fns.values():
        for _ in range(2):
            fn()
    times = {name: [] for name in fns}
    for _ in range(args.steps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    bound_s = med.pop("bound: matmuls alone")
    gflops = flops / bound_s / 1e9
    rows = list(med.items())
    measured_s = rows[0][1]
    print(f"matmul FLOPs per training step: {flops / 1e9:.2f} GFLOP (3 x forward); "
          f"torch.matmul at these shapes: {gflops:.1f} GFLOP/s")
    print(f"{'':32s} {'s/step':>8s} {'images/s':>10s} {'GFLOP/s':>8s} {'ratio':>6s}")
    print(f"{'bound: matmuls alone':32s} {bound_s:8.4f} {B / bound_s:10.1f} {gflops:8.1f} {1.0:6.2f}")
    for name, s in rows:
        print(f"{name:32s} {s:8.4f} {B / s:10.1f} {flops / s / 1e9:8.1f} {bound_s / s:6.2f}")
    ratio = bound_s / measured_s
    print(f"ratio (step vs bound) = {ratio:.2f}  [target >= 0.70: {'met' if ratio >= 0.70 else 'NOT met'}]")


if __name__ == "__main__":
    main()
