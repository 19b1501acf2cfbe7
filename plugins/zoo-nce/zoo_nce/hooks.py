"""zoo-nce's plugin hooks: registration only (no torch import here, so `zoo list` stays fast)."""

from __future__ import annotations

from zoo_core import DatasetSpec, ModelSpec, RecipeSpec, hookimpl

# gensim's Word2Vec(sg=1, vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=5,
# alpha=0.025, min_alpha=0.0001): the comparison of BENCHMARKS.md. One step is one block of 1024 words.
SGNS_DEFAULTS = {
    "epochs": 5,
    "batch_size": 1,
    "lr": 0.025,
    "eval_every": None,  # no held-out data: one loss report at the end
    "eval_batch_size": 8,
    "checkpoint_every": 2000,
    "log_every": 200,
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="word2vec", target="zoo_nce.model:Word2Vec", task="word-embedding",
        summary="word2vec skip-gram word vectors (input u and SGNS output v tables)",
        tiny_config={"dim": 8, "words": ["中国", "人民", "北京", "上海"], "counts": [9, 7, 5, 5]}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="text-corpus", target="zoo_nce.data:TextCorpusDataset",
        summary="a tokenised corpus (People's Daily 1998-01 by default, or a text file) as blocks of word ids",
        splits=("train", "validation")))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="sgns-peoples-daily", model="word2vec", dataset="text-corpus", step="zoo_nce.train:SGNSStep",
        summary="word2vec SGNS on People's Daily 1998-01 with gensim's settings (dim 100, window 5, negative 5)",
        defaults=dict(SGNS_DEFAULTS)))


@hookimpl
def register_commands(cli):
    """``zoo export word2vec`` and ``zoo similar`` (zoo_nce/cli.py)."""
    from .cli import attach

    attach(cli)
