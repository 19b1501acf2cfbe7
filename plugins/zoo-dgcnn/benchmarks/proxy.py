"""The People's Daily cloze proxy: a timed DGCNN run (score curve), then DGCNN and a simple baseline on the
test split, scored by the same Sogou scorer, in one run.

Baseline (no learning): every named entity of the passages (the corpus's own nr/ns/nt/nz tags; adjacent
nr merged) that is not in the question is a candidate; a candidate scores the sum, over the passages
holding it, of the character overlap (multiset) between that passage and the question; the best wins.

    flock /tmp/zoo-cpu.lock env OMP_NUM_THREADS=2 python plugins/zoo-dgcnn/benchmarks/proxy.py \\
        --seconds 420 --out /tmp/dgcnn-proxy

(within a 10-minute slot: ``--seconds 400 --train-only``, then ``--seconds 700 --resume`` to train on
to 700 s and evaluate.)

The run uses the dgcnn-cloze recipe (the release's model, RAdam 1e-3, batch 128) with an EMA of 0.99
instead of the recipe's 0.999: a 7-minute CPU run makes a few hundred steps, and an EMA with a
1000-step horizon would still be mostly the initial weights.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path


def entity_table() -> dict[str, list[str]]:
    """sentence text -> its entities, over the whole corpus."""
    import zoo_text

    from zoo_dgcnn.cloze import sentences

    table: dict[str, list[str]] = {}
    for tokens in zoo_text.read_peoples_daily():
        for text, entities in sentences(tokens):
            table.setdefault(text, []).extend(e for e in entities if len(e) >= 2)
    return table


def baseline_answer(question: str, passages: list[str], table) -> str:
    q = Counter(question)
    scores: dict[str, float] = {}
    for p in passages:
        overlap = sum((Counter(p) & q).values())
        for e in set(table.get(p, ())):
            if e not in question:
                scores[e] = scores.get(e, 0.0) + overlap
    return max(scores, key=lambda e: (scores[e], e)) if scores else ""


def score_answers(records, answers) -> dict:
    from zoo_dgcnn.data import gold_answer
    from zoo_dgcnn.sogou import Gold, score_one

    rows = [score_one(a, Gold.of(gold_answer(r), gold_answer(r))) for r, a in zip(records, answers)]
    acc = sum(r["exact"] for r in rows) / len(rows)
    f1 = sum(r["f1"] for r in rows) / len(rows)
    return {"exact_match": acc, "f1": f1, "score": (acc + f1) / 2, "questions": len(rows)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=420)
    ap.add_argument("--eval-every", type=float, default=60)
    ap.add_argument("--out", default="/tmp/dgcnn-proxy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ema", type=float, default=0.99)
    ap.add_argument("--limit-eval", type=int, default=2000, help="validation pairs scored during training")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out (--seconds is the total)")
    ap.add_argument("--train-only", action="store_true", help="stop after training (finish with --resume)")
    args = ap.parse_args()

    import torch

    from zoo_core import TrainConfig, Trainer, plugins
    from zoo_core.model import load_folder
    from zoo_dgcnn.cloze import cloze_records
    from zoo_dgcnn.hooks import CLOZE_DEFAULTS

    torch.set_num_threads(args.threads)
    recipe = plugins.get_recipe_spec("dgcnn-cloze")
    values = dict(CLOZE_DEFAULTS)
    values.update(out=args.out, max_train_seconds=args.seconds, eval_every_seconds=args.eval_every,
                  ema_decay=args.ema, threads=args.threads, limit_eval=args.limit_eval, progress=False,
                  resume=args.resume, epochs=1000)
    started = time.time()
    best = Trainer(recipe, TrainConfig.from_dict(values)).fit()
    wall = time.time() - started
    if args.train_only:
        return
    log = [json.loads(line) for line in (Path(args.out) / "log.jsonl").read_text().splitlines()]
    curve = [{k: line[k] for k in ("step", "epoch", "train_seconds", "accuracy", "f1", "score")}
             for line in log if line.get("split") == "validation"]
    model = load_folder(best).eval()

    test = cloze_records("test")
    records = [test[i] for i in range(len(test))]
    t = time.perf_counter()
    answers = model.answer([r["question"] for r in records], [[p["passage"] for p in r["passages"]] for r in records],
                           batch_size=256)
    t_dgcnn = time.perf_counter() - t
    table = entity_table()
    base = [baseline_answer(r["question"], [p["passage"] for p in r["passages"]], table) for r in records]
    results = {
        "train_wall_seconds": round(wall, 1), "steps": log[-1]["step"] if log else 0,
        "curve": curve, "test": {"dgcnn": score_answers(records, answers), "baseline": score_answers(records, base)},
        "test_answer_seconds": round(t_dgcnn, 1),
        "train_size": len(cloze_records("train")), "vocab": len(model.config.vocab),
    }
    print("validation curve (first --limit-eval pairs):")
    for c in curve:
        print(f"  step {c['step']:5d}  epoch {c['epoch']:3d}  {c['train_seconds']:7.1f} s  "
              f"EM {c['accuracy']:.3f}  F1 {c['f1']:.3f}  score {c['score']:.3f}")
    for name, r in results["test"].items():
        print(f"test {name:9s} EM {r['exact_match']:.4f}  F1 {r['f1']:.4f}  score {r['score']:.4f}  "
              f"({r['questions']} questions)")
    Path(args.out, "proxy-results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
