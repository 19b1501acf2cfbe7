"""CLI start-up: `zoo --help` and `zoo list` against `python -c "import torch"`, side by side.

Run: python benchmarks/bench_cli.py [--repeat 15]
Prints the median wall time of each command (fresh interpreter each run) and its
ratio to importing torch. The target is under 0.3 s for both zoo commands with
every plugin installed.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def median_wall(cmd: list[str], repeat: int) -> float:
    """Median wall-clock seconds of running ``cmd`` ``repeat`` times (after one warm-up)."""
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    zoo = shutil.which("zoo") or sys.exit("zoo is not installed in this environment")
    from importlib.metadata import entry_points

    plugins = sorted(ep.name for ep in entry_points(group="zoo"))
    print(f"python {sys.version.split()[0]}, plugins installed: {', '.join(plugins) or 'none'}, "
          f"load {os.getloadavg()[0]:.2f}")
    baseline = median_wall([sys.executable, "-c", "import torch"], args.repeat)
    empty = median_wall([sys.executable, "-c", "pass"], args.repeat)
    print(f"{'command':32} {'median s':>9} {'/ import torch':>15}")
    print(f"{'python -c pass':32} {empty:9.3f} {empty / baseline:15.2f}")
    label = 'python -c "import torch"'
    print(f"{label:32} {baseline:9.3f} {1.0:15.2f}")
    for cmd in (["--help"], ["list"], ["list", "--json"]):
        t = median_wall([zoo, *cmd], args.repeat)
        flag = "ok" if t < 0.3 else "over 0.3 s target"
        print(f"{'zoo ' + ' '.join(cmd):32} {t:9.3f} {t / baseline:15.2f}  {flag}")


if __name__ == "__main__":
    main()
