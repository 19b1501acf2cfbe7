"""Benchmark the GPT2_ML checkpoint converter on a full-size (5.5 GB) checkpoint.

Side by side, in one run, on the same checkpoint:

* ``cat DATA > /dev/null``: the floor for reading the bytes once;
* ``cat DATA > BIG/copy``: copying the same bytes with cat, the baseline the issue names (target ≤ 1.3×);
* ``cp DATA BIG/copy``: the same copy with cp;
* ``zoo_gpt2ml.convert`` (ours, no TensorFlow): fp32 with the sha256 pass, fp32 without it, and bf16;
* TensorFlow's own reader: ``tf.train.load_checkpoint`` + the same name map + ``safetensors.numpy.save_file``
  in 2 GB shards, the way existing converters gather the whole state dict first.

Each contender runs in its own child process under ``/usr/bin/time``, which
gives wall time and peak RSS. The page-cache residency of the .data file
(``fincore``) is printed before each run: runs are warm (the file was read
just before), since dropping the cache needs root.

Usage (the checkpoint is written with TensorFlow, in its own venv, if missing)::

    python plugins/zoo-gpt2ml/benchmarks/bench_gpt2ml_convert.py --big /work/big --tf-python .venv-tf/bin/python

The converted folders stay at BIG/mega-zoo-fp32 and BIG/mega-zoo-bf16 for the
load and generation benchmarks; TensorFlow's output and the copy are deleted.
Needs ~20 GB of free disk at the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STEP = 220000
MEGA = dict(vocab=8021, max_pos=1024, hidden=1536, layers=48, inter=6144)
REPO = Path(__file__).resolve().parents[3]  # plugins/zoo-gpt2ml/benchmarks/ -> the repository


# -- run inside the TensorFlow venv ------------------------------------------------------

def make_checkpoint(prefix_dir: Path) -> None:
    """Write a random full-size GPT2_ML checkpoint, with Adafactor slots and global_step, using TF's Saver."""
    import tensorflow.compat.v1 as tf

    tf.disable_eager_execution()
    V, P, H, L, inner = (MEGA[k] for k in ("vocab", "max_pos", "hidden", "layers", "inter"))
    shapes = {"newslm/embeddings/word_embed": [V, H], "newslm/embeddings/pos_embed": [P, H],
              "newslm/embeddings/LayerNorm_embed_norm/gamma": [H], "newslm/embeddings/LayerNorm_embed_norm/beta": [H]}
    for i in range(L):
        s = f"newslm/layer{i:02d}/"
        for d in ("query_layer", "key_layer", "value_layer", "context_projection_layer"):
            shapes[s + d + "/kernel"], shapes[s + d + "/bias"] = [H, H], [H]
        for ln in ("LayerNorm_mlp_ln0", "LayerNorm_mlp_ln1"):
            shapes[s + ln + "/gamma"] = shapes[s + ln + "/beta"] = [H]
        shapes[s + "intermediate/kernel"], shapes[s + "intermediate/bias"] = [H, inner], [inner]
        shapes[s + "output/kernel"], shapes[s + "output/bias"] = [inner, H], [H]
    for name, shape in list(shapes.items()):
        if len(shape) == 2:
            shapes[name + "/adafactor_vr"], shapes[name + "/adafactor_vc"] = [shape[0]], [shape[1]]
        else:
            shapes[name + "/adafactor_v"] = shape
    with tf.Graph().as_default():
        for name, shape in shapes.items():  # random uniform values made inside TF: cheap, no numpy copy
            tf.get_variable(name, shape, tf.float32, initializer=tf.random_uniform_initializer(-0.05, 0.05))
        step = tf.train.get_or_create_global_step()
        saver = tf.train.Saver()
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(tf.assign(step, STEP))
            prefix_dir.mkdir(parents=True, exist_ok=True)
            saver.save(sess, str(prefix_dir / "model.ckpt"), global_step=STEP, write_meta_graph=False)
    print(f"wrote {len(shapes) + 1} tensors to {prefix_dir}")


def tf_convert(prefix: str, out_dir: Path) -> None:
    """The TensorFlow-reader baseline: read every model tensor, map it, save 2 GB safetensors shards."""
    import numpy as np
    import tensorflow as tf
    from safetensors.numpy import save_file

    reader = tf.train.load_checkpoint(prefix)
    names = reader.get_variable_to_shape_map()
    L = len({n.split("/")[1] for n in names if n.startswith("newslm/layer")})
    e = "newslm/embeddings/"
    sd = {"wte.weight": reader.get_tensor(e + "word_embed"), "wpe.weight": reader.get_tensor(e + "pos_embed"),
          "ln_embed.weight": reader.get_tensor(e + "LayerNorm_embed_norm/gamma"),
          "ln_embed.bias": reader.get_tensor(e + "LayerNorm_embed_norm/beta")}
    for i in range(L):
        s = f"newslm/layer{i:02d}/"
        g = lambda n, s=s: reader.get_tensor(s + n)  # noqa: E731
        sd[f"h.{i}.attn.qkv.weight"] = np.ascontiguousarray(
            np.concatenate([g(f"{d}_layer/kernel").T for d in ("query", "key", "value")]))
        sd[f"h.{i}.attn.qkv.bias"] = np.concatenate([g(f"{d}_layer/bias") for d in ("query", "key", "value")])
        sd[f"h.{i}.attn.proj.weight"] = np.ascontiguousarray(g("context_projection_layer/kernel").T)
        sd[f"h.{i}.attn.proj.bias"] = g("context_projection_layer/bias")
        sd[f"h.{i}.ln_0.weight"], sd[f"h.{i}.ln_0.bias"] = g("LayerNorm_mlp_ln0/gamma"), g("LayerNorm_mlp_ln0/beta")
        sd[f"h.{i}.mlp.fc.weight"] = np.ascontiguousarray(g("intermediate/kernel").T)
        sd[f"h.{i}.mlp.fc.bias"] = g("intermediate/bias")
        sd[f"h.{i}.mlp.proj.weight"] = np.ascontiguousarray(g("output/kernel").T)
        sd[f"h.{i}.mlp.proj.bias"] = g("output/bias")
        sd[f"h.{i}.ln_1.weight"], sd[f"h.{i}.ln_1.bias"] = g("LayerNorm_mlp_ln1/gamma"), g("LayerNorm_mlp_ln1/beta")
    out_dir.mkdir(parents=True, exist_ok=True)
    shard, size, n = {}, 0, 0
    for name, arr in sd.items():
        if shard and size + arr.nbytes > 2 * 10**9:
            save_file(shard, str(out_dir / f"model-{n:05d}.safetensors"))
            shard, size, n = {}, 0, n + 1
        shard[name], size = arr, size + arr.nbytes
    save_file(shard, str(out_dir / f"model-{n:05d}.safetensors"))


# -- the benchmark (project venv) --------------------------------------------------------

def timed(cmd: list[str], env: dict | None = None, capture: bool = True) -> tuple[float, int, str]:
    """Wall seconds and peak RSS (KB) of a child process, via /usr/bin/time."""
    stats = Path(f"/tmp/bench-gpt2ml-time-{os.getpid()}.txt")
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *cmd], env=env,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.STDOUT,
                          text=True, errors="replace")
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}")
    _, rss = stats.read_text().split()[-2:]
    stats.unlink()
    return wall, int(rss), proc.stdout


def cache_state(path: Path) -> str:
    out = subprocess.run(["fincore", "-b", "-n", "-o", "RES,SIZE", str(path)], capture_output=True, text=True)
    try:
        res, size = (int(x) for x in out.stdout.split())
        return f"{100 * res / size:.0f}% of the .data file in page cache"
    except ValueError:
        return "page cache state unknown (no fincore)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", type=Path, default=Path("/work/big"), help="work folder for the big files")
    ap.add_argument("--tf-python", default=str(REPO / ".venv-tf/bin/python"), help="python of the TensorFlow venv")
    ap.add_argument("--checkpoint", help="existing checkpoint prefix (default: BIG/mega-tf/model.ckpt-220000, "
                                         "written with TensorFlow if missing)")
    ap.add_argument("--skip-tf", action="store_true", help="skip the TensorFlow-reader baseline")
    ap.add_argument("--repeat", type=int, default=3, help="runs of cat (the median is used)")
    ap.add_argument("_mode", nargs="*", help=argparse.SUPPRESS)  # internal: make / tf-convert, in the TF venv
    args = ap.parse_args()
    if args._mode[:1] == ["make"]:
        return make_checkpoint(Path(args._mode[1]))
    if args._mode[:1] == ["tf-convert"]:
        return tf_convert(args._mode[1], Path(args._mode[2]))

    big = args.big
    big.mkdir(parents=True, exist_ok=True)
    prefix = Path(args.checkpoint) if args.checkpoint else big / "mega-tf" / f"model.ckpt-{STEP}"
    if not Path(f"{prefix}.index").exists():
        print(f"writing a full-size random checkpoint with TensorFlow at {prefix} ...", flush=True)
        wall, rss, _ = timed([args.tf_python, __file__, "make", str(prefix.parent)])
        print(f"  done in {wall:.0f} s (TF peak RSS {rss / 2**20:.1f} GB)")
    data = Path(f"{prefix}.data-00000-of-00001")
    size = data.stat().st_size
    print(f"checkpoint {prefix}: .data {size / 1e9:.3f} GB; machine: {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    py = sys.executable
    env = dict(os.environ, PYTHONPATH=str(REPO / "plugins/zoo-gpt2ml"))
    rows = []

    def run(label, cmd, env=None, capture=True):
        os.sync()  # no dirty pages of the previous run left to slow this one down
        state = cache_state(data)
        wall, rss, out = timed(cmd, env, capture)
        rows.append((label, wall, rss))
        print(f"{label:<44} {wall:7.2f} s  peak RSS {rss / 1024:7.0f} MB   [{state}; "
              f"load {os.getloadavg()[0]:.2f}]", flush=True)
        return out

    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    cats = []
    for _ in range(args.repeat):
        run("cat .data > /dev/null", ["cat", str(data)], capture=False)
        cats.append(rows.pop()[1])
    cat = sorted(cats)[len(cats) // 2]
    rows.append(("cat .data > /dev/null (median)", cat, 0))
    print(f"cat median {cat:.2f} s = {size / cat / 1e9:.2f} GB/s over {args.repeat} runs")
    copy = big / "bench-copy.tmp"
    run("cat .data > copy (read + write)", ["sh", "-c", f'cat "{data}" > "{copy}"'])
    copy.unlink()
    run("cp .data (read + write)", ["cp", str(data), str(copy)])
    copy.unlink()
    ours = ["-c", "import sys; from zoo_gpt2ml.cli import convert_command; "
                  "convert_command.main(sys.argv[1:], standalone_mode=True)"]
    for label, dtype, out, extra in [("ours fp32 --no-sha256", "float32", "mega-zoo-fp32", ["--no-sha256"]),
                                     ("ours fp32 (+ sha256 of .data)", "float32", "mega-zoo-fp32", []),
                                     ("ours bf16 (+ sha256)", "bfloat16", "mega-zoo-bf16", [])]:
        summary = run(label, [py, *ours, str(prefix), str(big / out), "--dtype", dtype, "--force", "--quiet",
                              *extra], env)
        if extra == []:
            print("\n".join("    " + line for line in summary.strip().splitlines()))
    available = int(next(line for line in open("/proc/meminfo") if line.startswith("MemAvailable")).split()[1])
    if not args.skip_tf and available < 14 * 2**20:
        print(f"skipping the TensorFlow baseline: only {available / 2**20:.1f} GB of memory available, "
              "it needs ~12 GB")
    elif not args.skip_tf:
        tf_out = big / "tf-out"
        shutil.rmtree(tf_out, ignore_errors=True)
        run("TensorFlow reader + safetensors.save_file", [args.tf_python, __file__, "tf-convert", str(prefix),
                                                          str(tf_out)],
            dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        shutil.rmtree(tf_out, ignore_errors=True)

    table = {label: (wall, rss) for label, wall, rss in rows}
    print("\nratios (wall time):")
    ours_fp32 = table["ours fp32 (+ sha256 of .data)"][0]
    for label in ("ours fp32 (+ sha256 of .data)", "ours fp32 --no-sha256", "ours bf16 (+ sha256)"):
        w = table[label][0]
        print(f"  {label:<34} / cat>/dev/null = {w / cat:5.2f}x   / cat>copy = "
              f"{w / table['cat .data > copy (read + write)'][0]:5.2f}x   / cp = "
              f"{w / table['cp .data (read + write)'][0]:5.2f}x")
    if "TensorFlow reader + safetensors.save_file" in table:
        tw, trss = table["TensorFlow reader + safetensors.save_file"]
        orss = table["ours fp32 (+ sha256 of .data)"][1]
        print(f"  TensorFlow / ours fp32: wall {tw / ours_fp32:.2f}x, peak RSS {trss / orss:.1f}x "
              f"({trss / 1024:.0f} MB vs {orss / 1024:.0f} MB)")
    print(json.dumps({k: {"wall_s": round(v[0], 2), "peak_rss_mb": round(v[1] / 1024)} for k, v in table.items()}))
    print(f"load average now: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
