"""`zoo pull` against `hf download` of the same ~1 GB repo from a loopback Hub, side by side.

Run: python benchmarks/bench_pull.py [--gb 1] [--files 4] [--repeats 3]

A LocalHub (zoo_core.testing) in this process serves one repo of ``--files`` safetensors files
of random bytes, ``--gb`` in all, plus a config.json. Each repeat downloads it into an empty
cache twice, alternating the order: once with ``hf download REPO --revision COMMIT`` (the
huggingface_hub CLI: size checks only) and once with ``zoo pull ID`` for a registry entry
pinning the same commit (the same client, then the sha256 of every file: verification is
included, as the issue asks). Prints the median seconds, MB/s, the CPU seconds of the command (client) and of this process
(the server) during it, and the ratio of speeds (zoo / hf).
Both commands run as subprocesses; the server's threads are shared equally.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from zoo_core.testing.local_hub import LocalHub

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-pull-"))
    try:
        size = int(args.gb * 1e9 / args.files)
        files = {f"model-{i:05d}-of-{args.files:05d}.safetensors": os.urandom(size) for i in range(args.files)}
        files["config.json"] = b'{"architecture": "nice"}'
        with LocalHub(work / "hub") as hub:
            commit = hub.publish("bench/big", files)
            pin = hub.pin("bench/big", commit)
            files = None  # free the bytes: the hub has them on disk
            registry = work / "registry.yaml"
            listed = "\n".join(f'        - {{path: {f.path}, sha256: "{f.sha256}", size: {f.size}}}' for f in pin.files)
            registry.write_text(f"""version: 1
models:
  - id: bench-big
    architecture: nice
    plugin: nice
    task: density-estimation
    summary: benchmark repo
    links: {{source: "https://example.org"}}
    license: MIT
    metrics: []
    hub:
      repo_id: bench/big
      revision: "{commit}"
      files:
{listed}
""")
            total = sum(f.size for f in pin.files)
            bindir = Path(sys.executable).parent
            commands = {
                "hf download": [str(bindir / "hf"), "download", "bench/big", "--revision", commit],
                "zoo pull": [str(bindir / "zoo"), "pull", "bench-big"],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}  # (client, server)
            for repeat in range(args.repeats):
                order = list(commands) if repeat % 2 == 0 else list(reversed(commands))
                for name in order:
                    home = work / "home"
                    shutil.rmtree(home, ignore_errors=True)
                    env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HOME=str(home / "hf"),
                               ZOO_HOME=str(home / "zoo"), ZOO_REGISTRY=str(registry),
                               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
                    server0 = _cpu(resource.getrusage(resource.RUSAGE_SELF))
                    start = time.perf_counter()
                    proc = subprocess.Popen(commands[name], env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.PIPE)
                    err = proc.stderr.read()
                    _, status, usage = os.wait4(proc.pid, 0)
                    took = time.perf_counter() - start
                    server = _cpu(resource.getrusage(resource.RUSAGE_SELF)) - server0
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    if proc.returncode != 0:
                        raise SystemExit(f"{name} failed: {err[-2000:].decode(errors='replace')}")
                    times[name].append(took)
                    cpu[name].append((_cpu(usage), server))
                    print(f"repeat {repeat}: {name:12s} {took:7.2f} s  (CPU s: client {_cpu(usage):.2f}, "
                          f"server {server:.2f})", flush=True)
        load = os.getloadavg()[0]
        print(f"\n{total / 1e9:.2f} GB in {len(pin.files)} files, loopback LocalHub, {os.cpu_count()} CPUs, "
              f"load {load:.2f}")
        print(f"{'command':14s} {'median s':>9s} {'MB/s':>8s} {'client CPU s':>13s} {'server CPU s':>13s}")
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, m in med.items():
            print(f"{name:14s} {m:9.2f} {total / 1e6 / m:8.1f} {statistics.median(c for c, _ in cpu[name]):13.2f} "
                  f"{statistics.median(s for _, s in cpu[name]):13.2f}")
        print(f"zoo pull speed / hf download speed: {med['hf download'] / med['zoo pull']:.2f}x (target >= 0.95x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _cpu(usage) -> float:
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
