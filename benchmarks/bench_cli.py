"""CLI start-up: `zoo --help` and `zoo list` against a bare `python -c pass`, side by side.

Run (on a quiet machine, under the shared lock):

    flock /tmp/zoo-heavy.lock python benchmarks/bench_cli.py [--repeat 21] [--torch] [--against TREE]

Every command runs in a fresh interpreter; the commands take turns (one run of
each per round) so that a change in the machine's load hits them alike. Prints
the median wall time of each and its ratio to `python -c pass`, the load
average before and after, and the plugins installed. The target (issue 18):
`zoo list` with every plugin installed at most 4x `python -c pass`.

``--against TREE`` also times the zoo of another source tree (e.g. ``git archive COMMIT | tar -x -C
TREE``) in the same rounds: its core and plugin packages go first on PYTHONPATH, the installed entry
points stay. Bytecode is cached as on an installed package (pip compiles it), in a folder of
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
from pathlib import Path

TARGET = 4.0  # zoo list / python -c pass


def rounds(commands: dict[str, tuple[list[str], dict]], repeat: int) -> dict[str, float]:
    """Median wall-clock seconds of each (command, environment), run in turns ``repeat`` times after a warm-up."""
    times: dict[str, list[float]] = {label: [] for label in commands}
    for i in range(repeat + 1):
        for label, (cmd, env) in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True, env=env)
            if i:
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(t) for label, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--torch", action="store_true", help='also time python -c "import torch" (for scale)')
    parser.add_argument("--against", metavar="TREE", help="also time the zoo of this source tree (another commit)")
    args = parser.parse_args()
    zoo = shutil.which("zoo") or sys.exit("zoo is not installed in this environment")
    from importlib.metadata import entry_points

    plugins = sorted(ep.name for ep in entry_points(group="zoo"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="zoo-bench-pycache-")
    commands = {"python -c pass": ([sys.executable, "-c", "pass"], env)}
    if args.torch:
        commands['python -c "import torch"'] = ([sys.executable, "-c", "import torch"], env)
    for cmd in (["--help"], ["list"], ["list", "--json"]):
        commands["zoo " + " ".join(cmd)] = ([zoo, *cmd], env)
    if args.against:
        tree = Path(args.against).resolve()
        path = os.pathsep.join([str(tree), *map(str, sorted(tree.glob("plugins/*/"))), env.get("PYTHONPATH", "")])
        other = {**env, "PYTHONPATH": path.rstrip(os.pathsep)}
        for cmd in (["--help"], ["list"], ["list", "--json"]):
            commands[f"zoo {' '.join(cmd)} [{tree.name}]"] = ([zoo, *cmd], other)
    load_before = os.getloadavg()
    medians = rounds(commands, args.repeat)
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
