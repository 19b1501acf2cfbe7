"""The Zhidao loader on a 1M-record synthetic file: records per second and peak memory, against json.load.

Each measurement runs in a fresh process (peak RSS is the process's high-water mark): streaming every
record (iter_records), the one-pass vocabulary scan (scan), both on the JSON list and on JSON Lines .gz,
and the baseline, json.load of the whole JSON list.

Run under the CPU lock:  flock /tmp/zoo-cpu.lock python plugins/zoo-nce/benchmarks/zhidao_loader.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
kind, path = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if kind == "stream":
    from zoo_nce.zhidao import iter_records
    n = sum(1 for _ in iter_records(path))
elif kind == "scan":
    from zoo_nce.zhidao import scan
    n = scan(path).records
else:
    with open(path, encoding="utf-8") as f:
        n = len(json.load(f))
secs = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"n": n, "secs": secs, "peak_mb": peak / 1024, "start_mb": before / 1024}))
"""


def run(kind, path):
    r = subprocess.run([sys.executable, "-c", CHILD, kind, str(path)], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--tags", type=int, default=100_000)
    args = ap.parse_args()
    from zoo_nce.zhidao import write_synthetic

    print(f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name in ("zhidao.json", "zhidao.jsonl.gz"):
            t = time.perf_counter()
            files[name] = write_synthetic(Path(tmp) / name, args.records, args.tags, seed=0)
            print(f"wrote {name}: {files[name].stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.0f} s",
                  flush=True)
        for kind, name in (("stream", "zhidao.json"), ("stream", "zhidao.jsonl.gz"), ("scan", "zhidao.json"),
                           ("json.load", "zhidao.json")):
            r = run(kind, files[name])
            print(f"{kind:>9} {name:>16}: {r['n']} records in {r['secs']:.1f} s = {r['n'] / r['secs'] / 1e3:.0f}k "
                  f"records/s, peak RSS {r['peak_mb']:.0f} MB (bare interpreter: "
                  f"{r['start_mb']:.0f} MB)", flush=True)


if __name__ == "__main__":
    main()
