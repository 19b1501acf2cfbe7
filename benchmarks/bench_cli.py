"""CLI start-up: `zoo --help` and `zoo list` against a bare `python -c pass`, side by side.

Run (on a quiet machine, under the shared lock):

    flock /tmp/zoo-heavy.lock python benchmarks/bench_cli.py [--repeat 21] [--torch]

Every command runs in a fresh interpreter; the commands take turns (one run of
each per round) so that a change in the machine's load hits them alike. Prints
the median wall time of each and its ratio to `python -c pass`, the load
average before and after, and the plugins installed. The target (issue 18):
`zoo list` with every plugin installed at most 4x `python -c pass`.

Bytecode is cached as on an installed package (pip compiles it), in a folder of
its own (PYTHONPYCACHEPREFIX), even where PYTHONDONTWRITEBYTECODE is set; one
untimed warm-up round writes it.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 4.0  # zoo list / python -c pass


def rounds(commands: dict[str, list[str]], repeat: int, env: dict) -> dict[str, float]:
    """Median wall-clock seconds of each command, run in turns ``repeat`` times after one warm-up round."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for i in range(repeat + 1):
        for label, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            if i:
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--torch", action="store_true", help='also time python -c "import torch" (for scale)')
    args = parser.parse_args()
    zoo = shutil.which("zoo") or sys.exit("zoo is not installed in this environment")
    from importlib.metadata import entry_points

    plugins = sorted(ep.name for ep in entry_points(group="zoo"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="zoo-bench-pycache-")
    commands = {"python -c pass": [sys.executable, "-c", "pass"]}
    if args.torch:
        commands['python -c "import torch"'] = [sys.executable, "-c", "import torch"]
    for cmd in (["--help"], ["list"], ["list", "--json"]):
        commands["zoo " + " ".join(cmd)] = [zoo, *cmd]
    load_before = os.getloadavg()
    medians = rounds(commands, args.repeat, env)
    load_after = os.getloadavg()
    shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, plugins installed: {', '.join(plugins) or 'none'}")
    print(f"load average before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}; median of {args.repeat} runs each, in turns")
    empty = medians["python -c pass"]
    print(f"{'command':32} {'median s':>9} {'/ python -c pass':>17}")
    for label, t in medians.items():
        flag = ""
        if label.startswith("zoo list"):
            flag = "  ok" if t <= TARGET * empty else f"  over the {TARGET:g}x target"
        print(f"{label:32} {t:9.3f} {t / empty:17.2f}{flag}")


if __name__ == "__main__":
    main()
