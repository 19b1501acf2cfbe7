"""The People's Daily cloze proxy in one table: DGCNN (several seeds) next to the readers that do not learn.

Rows (all scored by the same Sogou scorer on the whole validation split, and on a fixed sample of the
training split beside it):

- DGCNN: the dgcnn-cloze recipe (the 2019 model, characters + word vectors, RAdam 1e-3, batch 128),
  trained ``--seconds`` of training time per seed (validation excluded), validated on the whole
  validation split every ``--eval-every`` seconds and at the end; the best validation (EMA weights)
  is reported, and the same weights are scored on the training sample;
- the overlap baseline with jieba's *predicted* entity tags, with and without the question word's type;
- the counting floor; the decoding oracle (see ``baselines.py``).

    flock /tmp/zoo-heavy.lock python plugins/zoo-dgcnn/benchmarks/proxy.py \\
        --vectors sgns-peoples-daily --seconds 480 --eval-every 480 --ema 0.95 --train-sample 400 \\
        --seeds 0,1,2 --out runs/dgcnn/proxy

``--vectors`` is what ``zoo train dgcnn-cloze --set word_vectors=...`` takes: a word2vec file or an
installed word2vec model (``zoo train sgns-peoples-daily`` installs one in about 20 s).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import baselines  # this folder's module


def score_answers(records, answers) -> dict:
    """Sogou accuracy, F1 and score of one answer per record, against the record's answer."""
    from zoo_dgcnn.data import gold_answer
    from zoo_dgcnn.sogou import Gold, score_one

    rows = [score_one(a, Gold.of(gold_answer(r), gold_answer(r))) for r, a in zip(records, answers)]
    acc = sum(r["exact"] for r in rows) / len(rows)
    f1 = sum(r["f1"] for r in rows) / len(rows)
    return {"accuracy": acc, "f1": f1, "score": (acc + f1) / 2, "questions": len(rows)}


def readers():
    """name -> f(record) -> answer, for the readers that do not learn."""
    from zoo_dgcnn.data import gold_answer

    def texts(r):
        return [p["passage"] for p in r["passages"]]

    return {
        "overlap baseline (jieba tags)": lambda r: baselines.overlap(r["question"], texts(r)),
        "overlap baseline (jieba tags, typed)": lambda r: baselines.overlap(r["question"], texts(r), typed=True),
        "counting floor (jieba tags)": lambda r: baselines.count(r["question"], texts(r)),
        "decoding oracle (gold 0/1 labels)": lambda r: baselines.oracle(r["question"], texts(r), gold_answer(r)),
    }


def train_one(seed: int, args) -> dict:
    """One DGCNN run of the dgcnn-cloze recipe; its validation curve and best model folder."""
    from zoo_core import TrainConfig, Trainer, plugins
    from zoo_dgcnn.hooks import CLOZE_DEFAULTS

    out = Path(args.out) / f"seed{seed}"
    values = dict(CLOZE_DEFAULTS)
    values.update(out=str(out), seed=seed, max_train_seconds=args.seconds, eval_every_seconds=args.eval_every,
                  ema_decay=args.ema, threads=args.threads, progress=False, resume=True, epochs=1000,
                  word_vectors=args.vectors, log_every=20)
    started = time.time()
    best = Trainer(plugins.get_recipe_spec("dgcnn-cloze"), TrainConfig.from_dict(values)).fit()
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    curve = [{k: line.get(k) for k in ("step", "epoch", "train_seconds", "accuracy", "f1", "score")}
             for line in log if line.get("split") == "validation"]
    return {"seed": seed, "best": str(best), "wall_seconds": round(time.time() - started, 1),
            "steps": max((line.get("step", 0) for line in log), default=0), "curve": curve}


def table(results: dict) -> str:
    """The markdown table: per row, validation score per seed, their mean, and the training-sample score."""
    lines = ["| reader | validation score (per seed) | validation mean | train-sample score (mean) |",
             "|---|---|---:|---:|"]
    for name, runs in results.items():
        val = [r["validation"]["score"] for r in runs]
        tr = [r["train"]["score"] for r in runs]
        spread = f" ± {statistics.stdev(val):.3f}" if len(val) > 1 else ""
        lines.append(f"| {name} | {', '.join(f'{v:.3f}' for v in val)} | {statistics.mean(val):.3f}{spread} | "
                     f"{statistics.mean(tr):.3f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=480, help="training seconds per seed")
    ap.add_argument("--eval-every", type=float, default=480, help="validate (whole split) every N training seconds")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--vectors", default="sgns-peoples-daily", help="word2vec file or installed model ('' for none)")
    ap.add_argument("--ema", type=float, default=0.95,
                    help="EMA decay: the release's 0.9999 averages over ~1/(1-d) = 10k steps, an eighth of its "
                         "~78k; 0.95 over 20, an eighth of the ~160 steps of 480 s on a shared 2-core CPU")
    ap.add_argument("--train-sample", type=int, default=400, help="training questions scored beside validation")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/dgcnn/proxy")
    args = ap.parse_args()

    import torch

    from zoo_core import load_model
    from zoo_dgcnn.cloze import cloze_records

    torch.set_num_threads(args.threads)
    started = time.time()
    load = os.getloadavg()
    val = list(cloze_records("validation"))
    train = cloze_records("train")
    stride = max(1, len(train) // args.train_sample)
    sample = [train[i] for i in range(0, len(train), stride)][:args.train_sample]
    splits = {"validation": val, "train": sample}

    results: dict[str, list] = {}
    for name, read in readers().items():
        results[name] = [{split: score_answers(recs, [read(r) for r in recs]) for split, recs in splits.items()}]
        print(f"{name}: validation {results[name][0]['validation']['score']:.4f}, "
              f"train sample {results[name][0]['train']['score']:.4f}", flush=True)

    runs = []
    for seed in (int(x) for x in args.seeds.split(",")):
        run = train_one(seed, args)
        # the validation score is the trainer's own, on the whole split, of the best (EMA) weights
        best = max(run["curve"], key=lambda c: c["score"])
        run["validation"] = {"accuracy": best["accuracy"], "f1": best["f1"], "score": best["score"],
                             "questions": len(val), "step": best["step"]}
        model = load_model(run["best"]).eval()
        answers = model.answer([r["question"] for r in sample], [[p["passage"] for p in r["passages"]] for r in sample],
                               batch_size=128)
        run["train"] = score_answers(sample, answers)
        runs.append(run)
        print(f"DGCNN seed {seed}: {run['steps']} steps, validation {run['validation']['score']:.4f} "
              f"(best at step {best['step']}), train sample {run['train']['score']:.4f}", flush=True)
        for c in run["curve"]:
            print(f"  step {c['step']:5d}  epoch {c['epoch']:3d}  {c['train_seconds']:7.1f} s  score {c['score']:.4f}")
    results = {f"DGCNN ({args.seconds:.0f} s of training per seed)": runs, **results}

    text = table(results)
    summary = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
               "loadavg_start": load, "loadavg_end": os.getloadavg(), "wall_seconds": round(time.time() - started, 1),
               "validation_questions": len(val), "train_sample_questions": len(sample),
               "train_questions": len(train), "results": results, "table": text}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, "proxy-results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print(text)
    print(f"wall {summary['wall_seconds']} s, load average {load} -> {summary['loadavg_end']}")


if __name__ == "__main__":
    main()
