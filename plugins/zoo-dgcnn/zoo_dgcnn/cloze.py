"""``dgcnn-cloze``: a span-QA proxy built from People's Daily 1998-01 (no Chinese QA data ships offline).

The corpus (``zoo_text.read_peoples_daily``) is cut into blocks of 20 consecutive lines (paragraphs);
a block's sentences end at 。！？； . An entity is a token tagged nr, ns, nt or nz of at least two
characters; adjacent nr tokens (surname + given name) are one name. For each sentence of 8 to 120
characters, one of its entities that another sentence of the block also contains is drawn
(deterministically); the question is the sentence with every occurrence of that entity removed, the
answer is the entity, and the passages are the (at most ``passages``, default 3) nearest other
sentences of the block that contain it, plus as many distractors: sentences without the answer that
share a *confounder*, the entity of the block (not the answer, not in the question) found in the most
such sentences. So counting entities across passages does not give the answer away: the answer and
the confounder both recur, and only the question's context tells them apart. (Without a confounder,
the ``distractors`` nearest sentences without the answer are used.)
Whole blocks go to one split, by a hash of the block number: 1 in 10 test, 1 in 10 validation,
the rest train, so no passage is shared between splits.
"""

from __future__ import annotations

import hashlib
import random

from .data import Records, cached_records

ENTITY_TAGS = ("nr", "ns", "nt", "nz")
SENTENCE_END = set("。！？；")
BLOCK = 20
VERSION = 2


def sentences(tokens: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(text, entities) of each sentence of one line; adjacent nr tokens merge into one name."""
    out, words, entities = [], [], []
    prev_nr = False
    for word, tag in tokens:
        words.append(word)
        if tag in ENTITY_TAGS:
            if tag == "nr" and prev_nr:
                entities[-1] += word
            else:
                entities.append(word)
        prev_nr = tag == "nr"
        if word in SENTENCE_END:
            out.append(("".join(words), entities))
            words, entities, prev_nr = [], [], False
    if words:
        out.append(("".join(words), entities))
    return out


def _split_of(block: int) -> str:
    h = int(hashlib.sha256(f"pd-block-{block}".encode()).hexdigest(), 16) % 10
    return "test" if h == 0 else "validation" if h == 1 else "train"


def block_questions(block: int, sents: list[tuple[str, list[str]]], passages: int = 3, distractors: int = 2):
    """The cloze records of one block of sentences."""
    texts = [t for t, _ in sents]
    for si, (text, entities) in enumerate(sents):
        if not 8 <= len(text) <= 120:
            continue
        candidates = sorted({e for e in entities if len(e) >= 2
                             and any(e in t for sj, t in enumerate(texts) if sj != si)})
        if not candidates:
            continue
        rng = random.Random(f"{block}-{si}")
        e = rng.choice(candidates)
        question = text.replace(e, "")
        if len(question) < 5:
            continue
        others = sorted((abs(sj - si), sj) for sj in range(len(texts)) if sj != si and texts[sj] != text)
        having = [sj for _, sj in others if e in texts[sj]][:passages]
        lacking = [sj for _, sj in others if e not in texts[sj] and len(texts[sj]) >= 8]
        counts: dict[str, int] = {}
        for sj in lacking:
            for c in set(sents[sj][1]):
                if len(c) >= 2 and c != e and c not in question and e not in c:
                    counts[c] = counts.get(c, 0) + 1
        top = max(counts.values(), default=0)
        if top >= 1:
            confounder = rng.choice(sorted(c for c, n in counts.items() if n == top))
            lacking = [sj for sj in lacking if confounder in texts[sj]][:max(len(having), 1)]
        else:
            lacking = lacking[:distractors]
        chosen = having + lacking
        rng.shuffle(chosen)
        yield {"id": f"pd-{block}-{si}", "question": question,
               "passages": [{"passage": texts[sj], "answer": e if e in texts[sj] else ""} for sj in chosen]}


def build(passages: int = 3, distractors: int = 2):
    """{split: [records]} over the whole corpus (about 3 s)."""
    import zoo_text

    out = {"train": [], "validation": [], "test": []}
    block, sents = 0, []
    for n, tokens in enumerate(zoo_text.read_peoples_daily()):
        if n // BLOCK != block:
            out[_split_of(block)].extend(block_questions(block, sents, passages, distractors))
            block, sents = n // BLOCK, []
        sents.extend(sentences(tokens))
    out[_split_of(block)].extend(block_questions(block, sents, passages, distractors))
    return out


def cloze_records(split: str, passages: int = 3, distractors: int = 2) -> Records:
    """One split of the proxy, built once into the record cache."""
    key = f"cloze-v{VERSION}-p{passages}-d{distractors}"
    built = {}

    def make(name):
        def records():
            if not built:
                built.update(build(passages, distractors))
            return iter(built[name])
        return records

    for name in ("train", "validation", "test"):
        cached_records(f"{key}-{name}", make(name))
    return cached_records(f"{key}-{split}", make(split))
