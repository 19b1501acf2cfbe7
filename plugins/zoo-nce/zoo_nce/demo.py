"""zoo-nce's tabs in ``zoo serve``: word2vec's nearest words and analogies; the Zhidao model's tags for a question."""

from __future__ import annotations

from functools import partial

import gradio as gr

MAX_QUESTION = 512  # characters read of a question (training keeps its first max_len = 64)


def build_word2vec(tab) -> None:
    """Endpoints ``<model>_similar`` (word -> nearest words) and ``<model>_analogy`` (a : b :: c : ?)."""
    with gr.Row():
        word = gr.Textbox("中国", label="word")
        topn = gr.Slider(1, 50, value=10, step=1, label="how many")
    nearest = gr.Dataframe(headers=["word", "cosine"], label="nearest words", interactive=False,
                           elem_classes=["zoo-nearest"])
    tab.on([word.submit, gr.Button("Nearest words", variant="primary").click], partial(similar, tab), [word, topn],
           nearest, name="similar", description="(word, how many) -> nearest words by cosine similarity")
    gr.Markdown("#### Analogy: a is to b as c is to ?  (b - a + c, gensim's 3CosAdd)")
    with gr.Row():
        a = gr.Textbox("中国", label="a")
        b = gr.Textbox("北京", label="b")
        c = gr.Textbox("日本", label="c")
    answers = gr.Dataframe(headers=["word", "cosine"], label="?", interactive=False, elem_classes=["zoo-analogy"])
    tab.on([gr.Button("Solve").click, c.submit], partial(analogy, tab), [a, b, c, topn], answers, name="analogy",
           description="(a, b, c, how many) -> the words closest to b - a + c")


def _word(text, name: str) -> str:
    from zoo_core import ZooError

    text = (text or "").strip()
    if not text:
        raise ZooError(f"{name} is empty", hint="type a word of the model's vocabulary, e.g. 中国")
    return text


def similar(tab, word, topn):
    """[[word, cosine], ...] of the ``topn`` words nearest to ``word``."""
    model = tab.model()
    return [[w, round(s, 4)] for w, s in model.most_similar(_word(word, "the word"), int(topn or 10))]


def analogy(tab, a, b, c, topn):
    """[[word, cosine], ...] of the words nearest to unit(b) - unit(a) + unit(c), the three excluded."""
    import torch
    import torch.nn.functional as F

    from zoo_core import did_you_mean

    model = tab.model()
    words = [_word(a, "a"), _word(b, "b"), _word(c, "c")]
    for w in words:
        if w not in model.index:
            raise did_you_mean("word", w, model.config.words, otherwise="try a more frequent word")
    with torch.no_grad():
        unit = F.normalize(model.input.float(), dim=1)  # (V, d)
        ia, ib, ic = (model.index[w] for w in words)
        target = F.normalize(unit[ib] - unit[ia] + unit[ic], dim=0)
        sims = unit @ target
        sims[[ia, ib, ic]] = -2.0
        top = torch.topk(sims, min(int(topn or 10), max(len(sims) - 3, 1)))
    return [[model.config.words[j], round(float(s), 4)] for s, j in zip(top.values.tolist(), top.indices.tolist())]


def build_tags(tab) -> None:
    """Endpoint ``<model>_tags``: a question -> the likeliest tags."""
    question = gr.Textbox("电脑游戏怎么安装", label="question", lines=2)
    topn = gr.Slider(1, 20, value=5, step=1, label="tags")
    tags = gr.Label(label="suggested tags", elem_classes=["zoo-tags"])
    tab.on([question.submit, gr.Button("Suggest tags", variant="primary").click], partial(suggest, tab),
           [question, topn], tags, name="tags", description="(question, how many) -> tags with their probabilities")


def suggest(tab, question, topn):
    """{tag: probability} of the ``topn`` likeliest tags (softmax over every tag's score G(q, t))."""
    import torch

    from zoo_core import ZooError

    text = (question or "").strip()
    if not text:
        raise ZooError("the question is empty", hint="type a question, e.g. 电脑游戏怎么安装")
    model = tab.model()
    index = tab.cached("chars", lambda: {ch: i + 1 for i, ch in enumerate(model.config.chars)})
    ids = [index[ch] for ch in text[:MAX_QUESTION] if ch in index]
    if not ids:
        raise ZooError("none of the question's characters is in the model's vocabulary",
                       hint="ask in Chinese, with words the training questions used")
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids], device=model.proj.weight.device)).float(), dim=1)[0].cpu()
        top = torch.topk(probs, min(int(topn or 5), len(probs)))
    return {model.config.tags[j]: float(p) for p, j in zip(top.values.tolist(), top.indices.tolist())}
