"""Benchmark loading the converted GPT2_ML mega model (1.37B parameters) with ``zoo_core.load_model``.

Side by side, in one run, each contender in its own child process under
``/usr/bin/time`` (wall time and peak RSS):

* ``cat`` of the weight files to /dev/null: the floor for reading the bytes;
* ``load_model(folder)`` of the fp32 folder, and of the bf16 folder;
* ``load_model(fp32 folder, dtype=bf16)`` (cast while loading);
* transformers' ``GPT2LMHeadModel.from_pretrained`` of a random HF GPT-2 with
  the same dimensions (48 layers, 1536 hidden, 24 heads, 6144 inner, vocab
  8021, tied head), saved as safetensors, in fp32 and bf16.

Ratios printed: time / cat time, peak RSS / weights size (target ≤ 1.1), and
transformers time / ours. Runs are warm: each folder is read once (cat) just
before it is measured, and ``fincore`` residency is printed.

Usage::

    python plugins/zoo-gpt2ml/benchmarks/bench_gpt2ml_load.py --big /work/big

Folders: BIG/mega-zoo-fp32 and BIG/mega-zoo-bf16 (left by the converter
benchmark; made here with random weights if missing) and BIG/mega-hf-gpt2-fp32
/ -bf16 (made here). ``--config small`` runs the same on a 4-layer model in
seconds, to check the script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MEGA = dict(vocab_size=8021, max_position_embeddings=1024, hidden_size=1536, num_hidden_layers=48,
            num_attention_heads=24, intermediate_size=6144)
SMALL = dict(vocab_size=8021, max_position_embeddings=1024, hidden_size=512, num_hidden_layers=4,
             num_attention_heads=8, intermediate_size=2048)
CONFIGS = {"mega": MEGA, "small": SMALL}


# -- folder preparation (each in a child process, so the parent stays small) ---------------

def make_zoo_folder(folder: Path, config: dict, dtype: str) -> None:
    """A random-weight GPT2ML folder: one copy of the weights in memory (built on meta, then materialised)."""
    import torch

    from zoo_gpt2ml.model import GPT2ML

    with torch.device("meta"):
        model = GPT2ML.from_config(dict(config))
    model.to_empty(device="cpu")
    torch.manual_seed(0)
    model.reset_parameters()
    if dtype == "bf16":
        for p in model.parameters():  # in place, one tensor at a time
            p.data = p.data.to(torch.bfloat16)
    model.save_pretrained(folder)
    from zoo_gpt2ml.vocab import resolve_vocab

    (folder / "vocab.txt").write_bytes(resolve_vocab("clue").read_bytes())


def cast_zoo_folder(src: Path, folder: Path) -> None:
    """A bf16 copy of a zoo folder: loaded cast to bf16 (one bf16 copy in memory), then saved."""
    import shutil

    import torch

    from zoo_core import load_model

    model = load_model(src, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    if (src / "vocab.txt").is_file():
        shutil.copy(src / "vocab.txt", folder / "vocab.txt")


def hf_config(config: dict):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=config["vocab_size"], n_positions=config["max_position_embeddings"],
                      n_embd=config["hidden_size"], n_layer=config["num_hidden_layers"],
                      n_head=config["num_attention_heads"], n_inner=config["intermediate_size"],
                      activation_function="gelu", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                      bos_token_id=101, eos_token_id=102, pad_token_id=0)


def make_hf_folder(folder: Path, config: dict, dtype: str) -> None:
    """A random HF GPT-2 of the same dimensions, saved as safetensors (through a temp sibling)."""
    import shutil

    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    with torch.device("meta"):
        model = GPT2LMHeadModel(hf_config(config))
    model.to_empty(device="cpu")
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.dim() == 1:
                p.fill_(1.0 if ".ln_" in name or name.startswith("transformer.ln_f") else 0.0)
            else:
                p.normal_(0, 0.014)
    model.tie_weights()
    for name, b in model.named_buffers():  # GPT-2 has no persistent buffers to save, but be safe
        if b.is_meta:
            raise SystemExit(f"meta buffer {name}")
    if dtype == "bf16":
        model = model.to(torch.bfloat16)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


# -- what the children measure ---------------------------------------------------------------

def rss_now() -> int:
    """Current resident set size of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def touch(model) -> float:
    """Read every weight once (a memory-mapped load pages them in here); return the seconds it took."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of small reductions: no OpenMP barriers on a shared 2-core machine
    t0 = time.perf_counter()
    with torch.no_grad():
        for p in model.parameters():
            p.sum()
    seconds = time.perf_counter() - t0
    torch.set_num_threads(threads)
    return seconds


def child_zoo_load(folder: str, dtype: str | None) -> dict:
    import torch

    from zoo_core import load_model

    baseline = rss_now()  # python + torch + zoo imported, nothing loaded
    t0 = time.perf_counter()
    model = load_model(folder, dtype=dtype)
    seconds = time.perf_counter() - t0
    touched = seconds + touch(model)
    n = model.num_parameters()
    assert not any(p.is_meta for p in model.parameters())
    return {"seconds": seconds, "params": n, "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
            "torch_threads": torch.get_num_threads(), "baseline_rss": baseline, "touched": touched}


def child_hf_load(folder: str, dtype: str | None) -> dict:
    import torch
    from transformers import GPT2LMHeadModel

    torch_dtype = {"bf16": torch.bfloat16, None: torch.float32, "fp32": torch.float32}[dtype]
    baseline = rss_now()
    t0 = time.perf_counter()
    model = GPT2LMHeadModel.from_pretrained(folder, dtype=torch_dtype)
    seconds = time.perf_counter() - t0
    touched = seconds + touch(model)
    return {"seconds": seconds, "params": model.num_parameters(), "touched": touched,
            "dtype": str(next(model.parameters()).dtype).replace("torch.", ""), "baseline_rss": baseline}


# -- plumbing ------------------------------------------------------------------------------

def run_child(args: list[str], script: str = __file__) -> dict:
    """Run ``script`` in child mode under /usr/bin/time; return its JSON plus wall time and peak RSS."""
    cmd = ["/usr/bin/time", "-f", "TIME %e %M", sys.executable, script, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"child failed: {' '.join(args)}\n{proc.stdout}\n{proc.stderr}")
    out = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    line = [x for x in proc.stderr.splitlines() if x.startswith("TIME ")][-1]
    _, wall, kb = line.split()
    out.update(wall=float(wall), peak_rss=int(kb) * 1024)
    return out


def weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def cat(folder: Path) -> float:
    files = sorted(str(p) for p in folder.glob("*.safetensors"))
    t0 = time.perf_counter()
    subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def residency(folder: Path) -> str:
    files = sorted(str(p) for p in folder.glob("*.safetensors"))
    proc = subprocess.run(["fincore", "--bytes", "--noheadings", "-o", "RES,SIZE", *files],
                          capture_output=True, text=True)
    res = size = 0
    for line in proc.stdout.splitlines():
        r, s = line.split()[:2]
        res, size = res + int(r), size + int(s)
    return f"{100 * res / max(size, 1):.0f}% in page cache"


def ensure_folders(big: Path, name: str, config: dict, *, make: bool = True) -> dict[str, Path]:
    """Create whatever folders are missing (each in its own child process)."""
    folders = {"zoo-fp32": big / f"{name}-zoo-fp32", "zoo-bf16": big / f"{name}-zoo-bf16",
               "hf-fp32": big / f"{name}-hf-gpt2-fp32", "hf-bf16": big / f"{name}-hf-gpt2-bf16"}
    for key, folder in folders.items():
        if folder.exists():
            continue
        kind, dtype = key.split("-")
        if key == "zoo-bf16" and folders["zoo-fp32"].exists():
            print(f"creating {folder} (bf16 cast of {folders['zoo-fp32']}) ...", flush=True)
            r = run_child(["--child", "cast-zoo", str(folders["zoo-fp32"]), str(folder)])
        else:
            print(f"creating {folder} (random weights) ...", flush=True)
            r = run_child(["--child", f"make-{kind}", str(folder), dtype, json.dumps(config)])
        print(f"  done in {r['wall']:.0f} s, peak RSS {r['peak_rss'] / 1e9:.2f} GB", flush=True)
    return folders


def uptime() -> str:
    """The 1/5/15-minute load averages (other engineers share the machine)."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", default="/work/big", help="folder holding (or receiving) the big model folders")
    ap.add_argument("--config", choices=sorted(CONFIGS), default="mega")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child_main(args.child)

    big = Path(args.big)
    config = CONFIGS[args.config]
    name = "mega" if args.config == "mega" else f"bench-{args.config}"
    folders = ensure_folders(big, name, config)
    print(f"load average before: {uptime()}  (cores: {os.cpu_count()})")

    rows = []
    for label, folder_key, kind, dtype in [
        ("zoo load_model fp32", "zoo-fp32", "zoo", None),
        ("transformers from_pretrained fp32", "hf-fp32", "hf", "fp32"),
        ("zoo load_model bf16 folder", "zoo-bf16", "zoo", None),
        ("transformers from_pretrained bf16", "hf-bf16", "hf", "bf16"),
        ("zoo load_model fp32 -> bf16", "zoo-fp32", "zoo", "bf16"),
    ]:
        folder = folders[folder_key]
        cat(folder)  # warm the page cache
        cat_s = min(cat(folder) for _ in range(3))
        res = residency(folder)
        r = run_child(["--child", f"load-{kind}", str(folder), dtype or "none"])
        size = weight_bytes(folder)
        in_memory = r["params"] * (2 if r["dtype"] in ("bfloat16", "float16") else 4)
        rows.append(dict(label=label, cat=cat_s, size=size, res=res, in_memory=in_memory, **r))
        print(f"{label:36s} load {r['seconds']:6.2f} s, +first read of all weights {r['touched']:6.2f} s "
              f"(process {r['wall']:6.2f} s)  cat {cat_s:5.2f} s  "
              f"peak RSS {r['peak_rss'] / 1e9:5.2f} GB  weights in memory {in_memory / 1e9:5.2f} GB  "
              f"RSS/weights {r['peak_rss'] / in_memory:4.2f} (above the {r['baseline_rss'] / 1e9:.2f} GB import "
              f"baseline: {(r['peak_rss'] - r['baseline_rss']) / in_memory:4.2f})  [{res}]", flush=True)

    by = {r["label"]: r for r in rows}
    print("\nratios")
    for ours, theirs in [("zoo load_model fp32", "transformers from_pretrained fp32"),
                         ("zoo load_model bf16 folder", "transformers from_pretrained bf16")]:
        a, b = by[ours], by[theirs]
        print(f"  {ours}: (load + first read)/cat {a['touched'] / a['cat']:.2f}x, peak RSS/weights {a['peak_rss'] / a['in_memory']:.2f} "
              f"(target <= 1.1; {(a['peak_rss'] - a['baseline_rss']) / a['in_memory']:.2f} above imports); transformers takes "
              f"{b['touched'] / a['touched']:.2f}x our time (load + first read; {b['seconds'] / a['seconds']:.2f}x for the "
              f"load call alone) and "
              f"{b['peak_rss'] / a['peak_rss']:.2f}x our peak RSS")
    r = by["zoo load_model fp32 -> bf16"]
    print(f"  zoo load_model fp32 -> bf16: peak RSS/bf16 weights {r['peak_rss'] / r['in_memory']:.2f}")
    print(f"load average after: {uptime()}")
    return 0


def child_main(argv: list[str]) -> int:
    what = argv[0]
    if what in ("make-zoo", "make-hf"):
        folder, dtype, config = Path(argv[1]), argv[2], json.loads(argv[3])
        (make_zoo_folder if what == "make-zoo" else make_hf_folder)(folder, config, dtype)
        print(json.dumps({}))
    elif what == "cast-zoo":
        cast_zoo_folder(Path(argv[1]), Path(argv[2]))
        print(json.dumps({}))
    elif what in ("load-zoo", "load-hf"):
        dtype = None if argv[2] == "none" else argv[2]
        fn = child_zoo_load if what == "load-zoo" else child_hf_load
        print(json.dumps(fn(argv[1], dtype)))
    else:
        raise SystemExit(f"unknown child task {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
