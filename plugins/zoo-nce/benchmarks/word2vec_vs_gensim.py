"""word2vec (zoo-nce SGNS through the Trainer) against gensim 4.4 on People's Daily 1998-01, same settings.

Settings: skip-gram, dim 100, window 5, negative 5, sample 1e-3, min_count 5, 5 epochs, alpha 0.025 → 0.0001.
Speed: raw corpus words × epochs / training seconds (gensim's `train()` call; zoo: the Trainer's
training clock, validation excluded), with 1 and 2 threads/workers. Quality on the same vocabulary:
AUC of cosine similarity, Cilin synonym pairs against random pairs of the same words, words with
count ≥ 20; and, as a relative check, wordsim353 / SimLex-999 Spearman on gensim's English lee corpus.

zoo-nce trains with its compiled per-pair loop (kernel=auto, numba); ``--torch`` adds a run of the batched
torch update it falls back to. The Trainer drops the last incomplete batch of blocks each epoch, so zoo's
words/s counts the blocks it trained (the fraction is printed).

Run under the CPU lock:  flock /tmp/zoo-heavy.lock python plugins/zoo-nce/benchmarks/word2vec_vs_gensim.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

SETTINGS = dict(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=5, sg=1, alpha=0.025,
                min_alpha=0.0001, ns_exponent=0.75)


def gensim_run(sentences, workers, seed=1):
    from gensim.models import Word2Vec

    model = Word2Vec(vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, sg=1, workers=workers,
                     seed=seed, alpha=0.025, min_alpha=0.0001)
    t0 = time.perf_counter()
    model.build_vocab(sentences)
    t1 = time.perf_counter()
    model.train(sentences, total_examples=model.corpus_count, epochs=5)
    t2 = time.perf_counter()
    words = list(model.wv.index_to_key)
    return words, torch.tensor(model.wv.vectors), t2 - t1, t1 - t0


def zoo_run(corpus, threads, out, seed=0, **settings):
    """(words, vectors, training seconds, wall seconds, fraction of the corpus's blocks trained per epoch)."""
    from zoo_core import load_model, train
    from zoo_nce.data import load_corpus

    t0 = time.perf_counter()
    best = train("sgns-peoples-daily", out=str(out), threads=threads, progress=False, install=False, seed=seed,
                 dataset_options={"corpus": corpus, "min_count": 5}, **settings)
    wall = time.perf_counter() - t0
    log = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    train_seconds = [r["train_seconds"] for r in log if r.get("split") == "validation"][-1]
    blocks = len(load_corpus(corpus, 5, 1024).block_starts)
    batch = int(settings.get("batch_size", 64))
    fraction = (blocks // batch) * batch / blocks
    model = load_model(best)
    return model.config.words, model.input.detach().clone(), train_seconds, wall, fraction


def lee_sentences():
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    return [re.findall(r"[a-z]+", line.lower()) for line in path.read_text(encoding="utf-8").splitlines()], path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--skip-english", action="store_true")
    ap.add_argument("--torch", action="store_true", help="also time the batched torch update (the fallback)")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    import gensim
    import zoo_text

    from zoo_nce.wordsim import cilin_synonym_pairs, synonym_auc, wordsim_spearman

    sentences = list(zoo_text.iter_words())
    sentences = [s for s in sentences if s]
    raw = sum(len(s) for s in sentences)
    pairs = cilin_synonym_pairs()
    from collections import Counter

    counts = Counter(w for s in sentences for w in s)
    allowed = {w for w, c in counts.items() if c >= 20}
    print(f"People's Daily 1998-01: {len(sentences)} sentences, {raw} raw words; gensim {gensim.__version__}, "
          f"torch {torch.__version__}, load {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in threads:
            torch.set_num_threads(n)
            words, vecs, secs, vocab_secs = gensim_run(sentences, n)
            auc = synonym_auc(words, vecs, pairs, allowed=allowed)
            rows.append(("gensim", n, secs, raw * 5 / secs, auc["auc"], len(words)))
            print(f"gensim  workers={n}: train {secs:.1f} s (+ vocab {vocab_secs:.1f} s), "
                  f"{raw * 5 / secs / 1e3:.0f}k words/s, vocab {len(words)}, Cilin AUC {auc['auc']:.4f} "
                  f"({auc['synonym_pairs']} synonym pairs)", flush=True)
            runs = [("zoo-nce", {})] + ([("zoo-nce torch", {"kernel": "torch"})] if args.torch else [])
            for name, over in runs:
                words, vecs, secs, wall, frac = zoo_run("peoples-daily", n, Path(tmp) / f"{name[-5:]}{n}", **over)
                auc = synonym_auc(words, vecs, pairs, allowed=allowed)
                rate = raw * frac * 5 / secs
                rows.append((name, n, secs, rate, auc["auc"], len(words)))
                print(f"{name} threads={n}: train {secs:.1f} s (wall {wall:.1f} s), {rate / 1e3:.0f}k words/s "
                      f"({frac:.1%} of the blocks per epoch), vocab {len(words)}, Cilin AUC {auc['auc']:.4f}, "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
        for n in threads:
            g = [r for r in rows if r[0] == "gensim" and r[1] == n][0]
            z = [r for r in rows if r[0] == "zoo-nce" and r[1] == n][0]
            print(f"{n} thread(s): speed zoo/gensim {z[3] / g[3]:.2f}x, AUC zoo − gensim {z[4] - g[4]:+.4f}")
        for name in ("gensim", "zoo-nce"):
            by = {r[1]: r[3] for r in rows if r[0] == name}
            if 1 in by and 2 in by:
                print(f"{name}: 2 threads / 1 thread = {by[2] / by[1]:.2f}x")
        if not args.skip_english:
            lee, path = lee_sentences()
            corpus = Path(tmp) / "lee.txt"
            corpus.write_text("\n".join(" ".join(s) for s in lee if s) + "\n", encoding="utf-8")
            data = Path(gensim.__file__).parent / "test" / "test_data"
            torch.set_num_threads(1)
            g_words, g_vecs, _, _ = gensim_run([s for s in lee if s], 1)
            z_words, z_vecs, *_ = zoo_run(str(corpus), 1, Path(tmp) / "lee")
            for name in ("wordsim353.tsv", "simlex999.txt"):
                g = wordsim_spearman(g_words, g_vecs, data / name)
                z = wordsim_spearman(z_words, z_vecs, data / name)
                print(f"English ({path.name}, {sum(map(len, lee))} words) {name}: gensim ρ {g['spearman']:.3f}, "
                      f"zoo-nce ρ {z['spearman']:.3f} on {z['pairs']} of {z['total']} pairs")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
