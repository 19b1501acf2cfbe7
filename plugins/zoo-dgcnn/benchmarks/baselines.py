"""Readers without learning for the cloze proxy, all through the same Sogou scorer as DGCNN.

- ``overlap``: every entity jieba's part-of-speech tagger *predicts* in the passages (tags nr, nrfg,
  nrt, ns, nt, nz; at least 2 characters) that is not in the question is a candidate; a candidate
  scores the sum, over the passages holding it, of that passage's character overlap (multiset) with
  the question; the best wins (ties by string). The corpus's gold tags are never used.
- ``overlap_typed``: the same, keeping only the candidates whose predicted type is the one the
  question word asks for (谁 nr, 哪里 ns, 哪个单位 nt, 什么 nz) when there are any.
- ``count``: the counting floor: the candidate found in the most passages.
- ``oracle``: the release's decoding and vote fed the gold answer's 0/1 start and end labels as
  probabilities (what a perfect network would score through the decoder).
"""

from __future__ import annotations

from collections import Counter
from functools import cache

TAG_FAMILY = {"nr": "nr", "nrfg": "nr", "nrt": "nr", "ns": "ns", "nt": "nt", "nz": "nz"}


@cache
def predicted_entities(text: str) -> tuple[tuple[str, str], ...]:
    """(entity, type) pairs jieba.posseg predicts in ``text`` (its default dictionary, HMM on)."""
    import logging

    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(logging.WARNING)
    return tuple((p.word, TAG_FAMILY[p.flag]) for p in pseg.cut(text)
                 if p.flag in TAG_FAMILY and len(p.word) >= 2)


def asked_type(question: str) -> str | None:
    """The entity type the question word asks for (None when the question has none)."""
    from zoo_dgcnn.cloze import QUESTION_WORDS

    for tag, word in sorted(QUESTION_WORDS.items(), key=lambda tw: -len(tw[1])):
        if word in question:
            return tag
    return None


def _candidates(question: str, passages: list[str]):
    for p in passages:
        yield p, {e: t for e, t in predicted_entities(p) if e not in question}


def overlap(question: str, passages: list[str], typed: bool = False) -> str:
    """The predicted-tag entity of the passages with the largest summed passage-question overlap."""
    q = Counter(question)
    scores: dict[str, float] = {}
    types: dict[str, str] = {}
    for p, found in _candidates(question, passages):
        o = sum((Counter(p) & q).values())
        for e, t in found.items():
            scores[e] = scores.get(e, 0.0) + o
            types.setdefault(e, t)
    if typed:
        want = asked_type(question)
        kept = {e: s for e, s in scores.items() if types[e] == want}
        scores = kept or scores
    return max(scores, key=lambda e: (scores[e], e)) if scores else ""


def count(question: str, passages: list[str]) -> str:
    """The predicted-tag entity (not in the question) found in the most passages."""
    seen = Counter()
    for _, found in _candidates(question, passages):
        seen.update(found.keys())
    return max(seen, key=lambda e: (seen[e], e)) if seen else ""


def oracle(question: str, passages: list[str], answer: str) -> str:
    """The release's decoding + vote of gold 0/1 start/end probabilities."""
    import torch

    from zoo_dgcnn.answering import passage_spans, vote
    from zoo_dgcnn.text import answer_labels

    found = []
    for p in passages:
        s, e = answer_labels(p, answer)
        found.append(passage_spans(p, torch.tensor(s, dtype=torch.float32), torch.tensor(e, dtype=torch.float32)))
    return vote(found)["answer"]
