"""Tiny models of every method, installed in a zoo home the way `zoo train` / `zoo pull --from` leave them.

Built from each architecture's small config in well under a second each; word2vec and the tag model get
hand-set vectors so that their answers are known (北京 - 中国 + 日本 = 东京; a question about 电脑 gets the
tag 电脑 first).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

WORDS = ["中国", "北京", "日本", "东京", "法国", "巴黎", "苹果", "香蕉"]
TAG_CHARS = list("电脑游戏数学怎么")
TAGS = ["电脑", "游戏", "数学"]
DGCNN_VOCAB = list("的一是了我不人在他有这个上们来到时大地为北京中国首都哪里")
GREY_32 = {"img_size": 32, "channels": 1, "z_dim": 8, "max_channels": 16}

# catalogue id -> (architecture, config)
TINY = {
    "nice-mnist": ("nice", {"dim": 784, "num_couplings": 4, "hidden": 16, "hidden_layers": 2}),
    "ganqp-mnist": ("ganqp", GREY_32),
    "ogan-mnist": ("ogan", GREY_32),
    "gpt2-ml": ("gpt2-ml", {"vocab_size": 8021, "max_position_embeddings": 128, "hidden_size": 64,
                            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256}),
    "dgcnn-cloze": ("dgcnn", {"vocab": DGCNN_VOCAB, "dim": 16, "question_rates": [1, 2], "passage_rates": [1, 2, 1],
                              "threshold": 0.0}),
    "sgns-peoples-daily": ("word2vec", {"dim": 4, "words": WORDS, "counts": [9, 8, 7, 6, 5, 4, 3, 2]}),
    "zhidao-tags": ("zhidao-tags", {"dim": 4, "chars": TAG_CHARS, "tags": TAGS, "tag_counts": [5, 3, 1]}),
}


def _word_vectors(model) -> None:
    # country, capital-ness, east-asia, fruit: 北京 - 中国 + 日本 = 东京 exactly
    rows = {"中国": [1, 0, 1, 0], "北京": [1, 1, 1, 0], "日本": [1, 0, -1, 0], "东京": [1, 1, -1, 0],
            "法国": [1, 0, 0, 0.2], "巴黎": [1, 1, 0, 0.2], "苹果": [0, 0, 0, 1], "香蕉": [0, 0.1, 0, 1]}
    with torch.no_grad():
        for i, w in enumerate(model.config.words):
            model.input[i] = torch.tensor(rows[w], dtype=torch.float32)


def _tag_vectors(model) -> None:
    # characters 电脑 point along axis 0, 游戏 along 1, 数学 along 2; each tag along its own axis
    with torch.no_grad():
        model.char_emb.weight.zero_()
        for i, ch in enumerate(model.config.chars, start=1):
            axis = {"电": 0, "脑": 0, "游": 1, "戏": 1, "数": 2, "学": 2}.get(ch)
            if axis is not None:
                model.char_emb.weight[i, axis] = 3.0
        model.proj.weight.copy_(torch.eye(model.config.dim))
        model.proj.bias.zero_()
        model.tag_emb.weight.zero_()
        for t in range(len(model.config.tags)):
            model.tag_emb.weight[t, t] = 5.0
        model.tag_bias.weight.zero_()


def install_tiny_models(home: Path, ids=None) -> dict[str, Path]:
    """Write the tiny models (all, or ``ids``) under ``home/models/<id>``; returns their folders."""
    from zoo_core import build_model

    out = {}
    for model_id, (architecture, config) in TINY.items():
        if ids is not None and model_id not in ids:
            continue
        torch.manual_seed(0)
        model = build_model(architecture, **config).eval()
        if architecture == "word2vec":
            _word_vectors(model)
        elif architecture == "zhidao-tags":
            _tag_vectors(model)
        folder = model.save_pretrained(home / "models" / model_id)
        if architecture == "gpt2-ml":
            from zoo_gpt2ml.vocab import resolve_vocab

            shutil.copy(resolve_vocab("clue"), folder / "vocab.txt")
        out[model_id] = Path(folder)
    return out
