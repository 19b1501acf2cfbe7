"""zoo-dgcnn's tab in ``zoo serve``: a question and passages in; the answer, its score and where it is, out."""

from __future__ import annotations

from functools import partial

import gradio as gr

EXAMPLE_QUESTION = "中国的首都是哪里"
EXAMPLE_PASSAGES = "北京是中国的首都。\n中国的首都北京有很多名胜古迹。"


def build(tab) -> None:
    """One endpoint, ``<model>_answer``: (question, passages) -> (answer, score, where, marked passages)."""
    question = gr.Textbox(EXAMPLE_QUESTION, label="question")
    passages = gr.Textbox(EXAMPLE_PASSAGES, label="passages (one per line)", lines=5)
    go = gr.Button("Answer", variant="primary")
    with gr.Row():
        answer_box = gr.Textbox(label="answer", interactive=False, elem_classes=["zoo-answer"])
        score = gr.Number(label="score", interactive=False)
    where = gr.Markdown(elem_classes=["zoo-where"])
    marked = gr.HighlightedText(label="where the answer is", combine_adjacent=True, show_legend=False)
    tab.on([go.click, question.submit], partial(answer, tab), [question, passages],
           [answer_box, score, where, marked], name="answer",
           description="(question, passages one per line) -> (answer, score, where it is, passages marked)")


def answer(tab, question, passages):
    """The reader's answer, its score, the places it occurs and the passages with those places marked."""
    from zoo_core import ZooError

    if not question or not question.strip():
        raise ZooError("the question is empty", hint="type a question, e.g. 中国的首都是哪里")
    texts = [line.strip() for line in (passages or "").splitlines() if line.strip()]
    if not texts:
        raise ZooError("there is no passage to read", hint="paste one or more passages, one per line")
    model = tab.model()
    out = model.answer(question.strip(), texts, details=True)
    found = out["answer"]
    if not found:
        return "", 0.0, "No span passed the model's threshold: no answer.", [(t + "\n", None) for t in texts]
    places, spans = [], []
    for number, text in enumerate(texts, start=1):
        start = 0
        while (at := text.find(found, start)) >= 0:
            chars = f"character {at + 1}" if len(found) == 1 else f"characters {at + 1}-{at + len(found)}"
            places.append(f"passage {number}, {chars}")
            spans.append((text[start:at], None))
            spans.append((found, "answer"))
            start = at + len(found)
        spans.append((text[start:] + "\n", None))
    where = "Found in " + "; ".join(places) + "." if places else "The answer does not occur verbatim in a passage."
    return found, round(float(out["score"]), 6), where, spans
