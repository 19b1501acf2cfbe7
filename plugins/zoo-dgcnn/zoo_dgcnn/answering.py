"""Text in, answers out: DGCNN's answer pipeline (tokenise, batch, forward, decode, vote), as released.

Decoding: per passage, every span i..j with P_start[i] > 0.1, P_end[j] > 0.1 and j < i + 12 scores
P_start[i] * P_end[j] (a span text repeated in one passage keeps its best score); across passages each
text's scores vote as s = sum(s_k^2) / (1 + sum(s_k)); the best wins.

Memory grows linearly with the text: a forward pass holds at most ``batch_size`` pairs and
:data:`BATCH_POSITIONS` padded positions (a longer passage goes alone), decoding scores the span
lengths in turn, and a passage over :data:`MAX_PASSAGE_CHARS` characters is refused.
"""

from __future__ import annotations

import torch

from zoo_core import ZooError

from .text import tokenizer_of

# the most padded (question, passage) positions one forward pass of `answer` holds: 64 pairs of 512
BATCH_POSITIONS = 64 * 512
# the longest passage `answer` reads: memory grows with the length (about 7 KB a character on CPU)
MAX_PASSAGE_CHARS = 50_000


@torch.no_grad()
def predict(model, questions: list[str], passages: list[str]) -> tuple[list, list]:
    """P_start, P_end (lists of 1-d CPU tensors, one per passage) of (question, passage) pairs."""
    device = model.embedding.weight.device
    enc = tokenizer_of(model).batch(questions, passages, features=bool(model.config.features), device=device)
    p_start, p_end = model(*enc)
    lengths = [len(p) for p in passages]
    return ([p_start[i, :n].float().cpu() for i, n in enumerate(lengths)],
            [p_end[i, :n].float().cpu() for i, n in enumerate(lengths)])


@torch.no_grad()
def answer(model, question: str | list[str], passages: list[str] | list[list[str]], *, batch_size: int = 64,
           details: bool = False):
    """The answer of DGCNN ``model`` to ``question`` from its ``passages`` ("" when no span passes).

    Batched: a list of questions with a list of passage lists returns a list of answers. With
    ``details=True`` each answer is ``{"answer", "score", "candidates": {text: score}}``.
    A passage over :data:`MAX_PASSAGE_CHARS` characters is refused with a clear error.
    """
    single = isinstance(question, str)
    questions = [question] if single else list(question)
    groups = [passages] if single else [list(p) for p in passages]
    if len(groups) != len(questions):
        raise ZooError(f"{len(questions)} questions but {len(groups)} passage lists",
                       hint="give one list of passages per question")
    for qi, group in enumerate(groups):
        for pi, text in enumerate(group):
            if len(text) > MAX_PASSAGE_CHARS:
                raise ZooError(f"passage {pi + 1} is {len(text):,} characters long, over the "
                               f"{MAX_PASSAGE_CHARS:,} this reader takes" + ("" if single else f" (question {qi + 1})"),
                               hint="split it into paragraphs: each is read on its own and the votes add up")
    was_training = model.training
    model.eval()
    pairs = [(qi, p) for qi, group in enumerate(groups) for p in group]
    spans: list[list[dict]] = [[] for _ in questions]
    try:
        for chunk in batches(pairs, questions, batch_size):
            ps, pe = predict(model, [questions[qi] for qi, _ in chunk], [p for _, p in chunk])
            for (qi, text), s, e in zip(chunk, ps, pe):
                spans[qi].append(passage_spans(text, s, e, model.config.threshold, model.config.max_answer_len))
    finally:
        model.train(was_training)
    out = [vote(found) for found in spans]
    if not details:
        out = [o["answer"] for o in out]
    return out[0] if single else out


def batches(pairs: list[tuple[int, str]], questions: list[str], batch_size: int):
    """Consecutive runs of (question index, passage) pairs whose padded size stays within BATCH_POSITIONS."""
    chunk, width = [], 0
    for qi, text in pairs:
        w = max(width, len(text), len(questions[qi]))
        if chunk and (len(chunk) >= batch_size or (len(chunk) + 1) * w > BATCH_POSITIONS):
            yield chunk
            chunk, w = [], max(len(text), len(questions[qi]))
        chunk.append((qi, text))
        width = w
    if chunk:
        yield chunk


def passage_spans(text: str, p_start: torch.Tensor, p_end: torch.Tensor, threshold: float = 0.1,
                  max_len: int = 12) -> dict[str, float]:
    """{span text: best P_start[i] * P_end[j]} over i <= j < i + max_len, both probabilities > threshold.

    Work and memory grow with len(text) * max_len (one pass per span length), never with its square.
    """
    n = min(len(text), len(p_start))
    p_start, p_end = p_start[:n].float(), p_end[:n].float()
    starts = (p_start > threshold).nonzero().flatten()  # (S,)
    ends_ok = p_end > threshold
    found: dict[str, float] = {}
    rows = []
    for k in range(max_len):
        j = starts + k
        j = j[j < n]
        i = j - k
        keep = ends_ok[j]
        if bool(keep.any()):
            rows.append(torch.stack([i[keep], j[keep]], 1))
    if not rows:
        return found
    pairs = torch.cat(rows)
    pairs = pairs[torch.argsort(pairs[:, 0] * n + pairs[:, 1])]  # the release's order: by start, then end
    scores = (p_start[pairs[:, 0]] * p_end[pairs[:, 1]]).tolist()
    for (a, b), s in zip(pairs.tolist(), scores):
        span = text[a:b + 1]
        if s > found.get(span, 0.0):
            found[span] = s
    return found


def vote(per_passage: list[dict[str, float]]) -> dict:
    """Combine passages: each text scores sum(s^2) / (1 + sum(s)) over the passages that found it."""
    sums: dict[str, list[float]] = {}
    for found in per_passage:
        for a, s in found.items():
            acc = sums.setdefault(a, [0.0, 0.0])
            acc[0] += s * s
            acc[1] += s
    scores = {a: sq / (1 + s) for a, (sq, s) in sums.items()}
    if not scores:
        return {"answer": "", "score": 0.0, "candidates": {}}
    best = max(scores, key=lambda a: (scores[a], a))
    return {"answer": best, "score": scores[best], "candidates": scores}
