"""``dgcnn-cloze``: questions made from People's Daily 1998-01 (no Chinese QA data ships offline).

The corpus (``zoo_text.read_peoples_daily``, one line per paragraph, with its gold part-of-speech tags)
is cut into blocks of 20 consecutive lines; a block's sentences end at 。！？； . An entity is a token
tagged nr (person), ns (place), nt (organisation) or nz (other proper noun) of at least two
characters; adjacent nr tokens (surname + given name) are one name.

A question (per sentence of 8 to 120 characters, at most one):

- the answer is one of the sentence's entities (drawn deterministically) that occurs exactly once in
  the sentence and also in another sentence of the block;
- the question is the sentence with that entity replaced by the question word of its type
  (:data:`QUESTION_WORDS`: 谁, 哪里, 哪个单位, 什么) and its final punctuation by "？", so it says
  what is asked and where the gap is;
- the passages are, in a shuffled order:
  * the *source* passage: the sentence in its paragraph, with the sentence after and the one before
    it when they are in the same line and the window stays within 128 characters. The answer sits
    where the question's gap is, among the question's own words, as in search-engine evidence for a
    factoid question;
  * up to ``passages`` (2) other sentences of the block that contain the answer, nearest first
    (evidence on the same topic, without the question's context);
  * as many sentences of the block without the answer as there are passages with it (at least
    ``distractors``, 2): those holding the *confounder*, the entity of the answer's type that is not
    in the question and is found in the most sentences without the answer, so that counting entities
    does not give the answer away; without a confounder, those sharing the most character bigrams
    with the question (what a search for the question's words would also return).

Whole blocks go to one split, by a hash of the block number: 1 in 10 test, 1 in 10 validation,
the rest train, so no passage is shared between splits.
"""

from __future__ import annotations

import hashlib
import random

from .records import Records, cached_records

# the question word of each entity type (nr person, ns place, nt organisation, nz other proper noun)
QUESTION_WORDS = {"nr": "谁", "ns": "哪里", "nt": "哪个单位", "nz": "什么"}
ENTITY_TAGS = tuple(QUESTION_WORDS)
SENTENCE_END = set("。！？；")
BLOCK = 20
MAX_PASSAGE = 128  # the source window's length (keeps CPU training affordable)
VERSION = 4


def sentences(tokens: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, [(entity, tag), ...]) of each sentence of one line; adjacent nr tokens merge into one name."""
    out, words, entities = [], [], []
    prev_nr = False
    for word, tag in tokens:
        words.append(word)
        if tag in ENTITY_TAGS:
            if tag == "nr" and prev_nr:
                entities[-1] = (entities[-1][0] + word, "nr")
            else:
                entities.append((word, tag))
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


def ask(sentence: str, entity: str, tag: str) -> str:
    """The question: ``entity`` replaced by its type's question word, the final punctuation by "？"."""
    question = sentence.replace(entity, QUESTION_WORDS[tag]).rstrip()
    while question and (question[-1] in SENTENCE_END or question[-1] in "，、：…"):
        question = question[:-1]
    return question + "？"


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)}


def _distractors(sents, lacking: list[int], answer: str, tag: str, question: str, n: int) -> list[int]:
    """Up to ``n`` sentences without the answer: those holding the *confounder* (the entity of the
    answer's type, not in the question, found in the most of them), else those sharing the most
    character bigrams with the question."""
    counts: dict[str, int] = {}
    for sj in lacking:
        for c, t in set(sents[sj][2]):
            if t == tag and len(c) >= 2 and c not in question and answer not in c and c not in answer:
                counts[c] = counts.get(c, 0) + 1
    if counts:
        top = max(counts.values())
        confounder = min(c for c, k in counts.items() if k == top)
        return [sj for sj in lacking if confounder in sents[sj][1]][:n]
    q = _bigrams(question)
    return [sj for _, _, sj in sorted((-len(_bigrams(sents[sj][1]) & q), i, sj) for i, sj in enumerate(lacking))][:n]


def block_questions(block: int, sents: list[tuple[int, str, list[tuple[str, str]]]], passages: int = 2,
                    distractors: int = 2):
    """The records of one block; ``sents`` lists (line number, text, entities) in corpus order."""
    texts = [t for _, t, _ in sents]
    for si, (line, text, entities) in enumerate(sents):
        if not 8 <= len(text) <= 120:
            continue
        candidates = sorted({(e, tag) for e, tag in entities if len(e) >= 2 and text.count(e) == 1
                             and any(e in t for sj, t in enumerate(texts) if sj != si)})
        if not candidates:
            continue
        rng = random.Random(f"{block}-{si}")
        e, tag = rng.choice(candidates)
        question = ask(text, e, tag)
        window = [si]
        for sj in (si + 1, si - 1):  # the sentence after, then the one before, while the window fits
            if 0 <= sj < len(sents) and sents[sj][0] == line and sum(map(len, (texts[w] for w in window))) \
                    + len(texts[sj]) <= MAX_PASSAGE:
                window = sorted(window + [sj])
        source = "".join(texts[sj] for sj in window)
        others = sorted((abs(sj - si), sj) for sj in range(len(texts))
                        if sj not in window and texts[sj] != text and len(texts[sj]) >= 8)
        having = [sj for _, sj in others if e in texts[sj]][:passages]
        lacking = [sj for _, sj in others if e not in texts[sj]]
        chosen = [source] + [texts[sj] for sj in having] + [texts[sj] for sj in
                                                             _distractors(sents, lacking, e, tag, question,
                                                                          max(distractors, len(having) + 1))]
        rng.shuffle(chosen)
        yield {"id": f"pd-{block}-{si}", "question": question,
               "passages": [{"passage": p, "answer": e if e in p else ""} for p in chosen]}


def build(passages: int = 2, distractors: int = 2):
    """{split: [records]} over the whole corpus (a few seconds)."""
    import zoo_text

    out = {"train": [], "validation": [], "test": []}
    block, sents = 0, []
    for n, tokens in enumerate(zoo_text.read_peoples_daily()):
        if n // BLOCK != block:
            out[_split_of(block)].extend(block_questions(block, sents, passages, distractors))
            block, sents = n // BLOCK, []
        sents.extend((n, text, entities) for text, entities in sentences(tokens))
    out[_split_of(block)].extend(block_questions(block, sents, passages, distractors))
    return out


def cloze_records(split: str, passages: int = 2, distractors: int = 2) -> Records:
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
