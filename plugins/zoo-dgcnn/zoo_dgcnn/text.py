"""Text to tensors: characters, the jieba word of each character, answer labels, the 2018 features.

As in the 2019 release: the character vocabulary holds the training data's characters seen at least
``min_count`` times (0 is padding, 1 unknown); each character also carries the vector of the jieba
word it belongs to, with the word-vector words jieba's dictionary lacks added to it and the HMM
off (so jieba only ever cuts into dictionary words and single characters); out-of-vocabulary words
get the zero vector (id 0).

jieba 0.42.1 stands in for the original's jieba_fast: jieba_fast is a SWIG build last released in
2018 with no wheels for current Pythons, while jieba is pure Python, maintained and installable
everywhere. With the HMM off both cut with the same dictionary and the same dynamic programme.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Iterable

import torch

PAD, UNK = 0, 1  # character ids 0 and 1; the vocabulary's characters start at 2


def build_vocab(texts: Iterable[str], min_count: int) -> list[str]:
    """Characters seen at least ``min_count`` times, most frequent first (ties by code point)."""
    counts = Counter()
    for text in texts:
        counts.update(text)
    kept = [(c, n) for c, n in counts.items() if n >= min_count]
    kept.sort(key=lambda cn: (-cn[1], cn[0]))
    return [c for c, _ in kept]


def answer_labels(passage: str, answer: str) -> tuple[list[int], list[int]]:
    """0/1 start and end labels marking every occurrence of ``answer`` in ``passage`` (overlaps too)."""
    start, end = [0] * len(passage), [0] * len(passage)
    if answer:
        i = passage.find(answer)
        while i >= 0:
            start[i] = 1
            end[i + len(answer) - 1] = 1
            i = passage.find(answer, i + 1)
    return start, end


def manual_features(question: str, passage: str, q_words: list[str], p_words: list[str]) -> list[list[float]]:
    """Eight question-passage features per passage character (for the 2018 variant).

    The 2018 write-up names its features (question-evidence exact match, evidence-evidence
    co-occurrence, Jaccard and edit-distance soft matches) without their exact definitions; these are
    ours, in that spirit, per character: in the question; its left and right character bigrams in the
    question; its word in the question's words; that word's character Jaccard similarity with the
    question; its position in the passage (relative); whether the character is a digit or Latin
    letter; whether it is punctuation-like (not a word character).
    """
    q_chars = set(question)
    q_bigrams = {question[i:i + 2] for i in range(len(question) - 1)}
    q_word_set = set(q_words)
    out = []
    n = max(len(passage), 1)
    for i, c in enumerate(passage):
        w = p_words[i] if i < len(p_words) else c
        jac = len(set(w) & q_chars) / len(set(w) | q_chars) if q_chars else 0.0
        out.append([float(c in q_chars), float(passage[max(i - 1, 0):i + 1] in q_bigrams),
                    float(passage[i:i + 2] in q_bigrams), float(w in q_word_set), jac, i / n,
                    float(c.isascii() and c.isalnum()), float(not c.isalnum())])
    return out


def _pad(rows: list[list], value=0, dtype=torch.long, device=None) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    width = max(width, 1)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=dtype, device=device)


class Tokenizer:
    """Character ids and per-character word ids for one model's vocabularies."""

    def __init__(self, vocab: list[str], words: list[str] | None = None, hmm: bool = False):
        self.char_id = {c: i + 2 for i, c in enumerate(vocab)}
        self.word_id = {w: i + 1 for i, w in enumerate(words)} if words else None
        self.hmm = hmm
        self._jieba = None

    def chars(self, text: str) -> list[int]:
        """Character ids (1 for an unknown character)."""
        return [self.char_id.get(c, UNK) for c in text]

    @property
    def jieba(self):
        """A private jieba.Tokenizer with the word-vector vocabulary added to its dictionary."""
        if self._jieba is None:
            import logging

            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            if self.word_id:
                # as the release: only the words jieba's dictionary lacks (add_word on a known word
                # would change its frequency and the total, and so the segmentation)
                tok.check_initialized()
                for w in self.word_id:
                    if w not in tok.FREQ:
                        tok.add_word(w)
            self._jieba = tok
        return self._jieba

    def cut(self, text: str) -> list[str]:
        """jieba's words of ``text`` (HMM off unless the model says otherwise)."""
        return self.jieba.lcut(text, HMM=self.hmm)

    def char_words(self, text: str) -> tuple[list[int], list[str]]:
        """(word id of each character, the word each character belongs to)."""
        ids, owners = [], []
        for w in self.cut(text):
            i = self.word_id.get(w, 0) if self.word_id else 0
            ids.extend([i] * len(w))
            owners.extend([w] * len(w))
        return ids, owners

    def batch(self, questions: list[str], passages: list[str], *, features: bool = False, device=None):
        """Padded tensors (q_chars, p_chars, q_words, p_words, features) for DGCNN.forward."""
        q_chars = _pad([self.chars(q) for q in questions], device=device)
        p_chars = _pad([self.chars(p) for p in passages], device=device)
        q_words = p_words = feats = None
        if self.word_id or features:
            qw = [self.char_words(q) for q in questions]
            pw = [self.char_words(p) for p in passages]
            if self.word_id:
                q_words = _pad([ids for ids, _ in qw], device=device)
                p_words = _pad([ids for ids, _ in pw], device=device)
            if features:
                rows = [manual_features(q, p, qo, po) for q, p, (_, qo), (_, po) in zip(questions, passages, qw, pw)]
                width = p_chars.shape[1]
                feats = torch.zeros(len(rows), width, 8, device=device)
                for i, r in enumerate(rows):
                    if r:
                        feats[i, :len(r)] = torch.tensor(r, device=device)
        return q_chars, p_chars, q_words, p_words, feats


_TOKENIZERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (its config, Tokenizer)


def tokenizer_of(model) -> Tokenizer:
    """The :class:`Tokenizer` of a DGCNN model's vocabularies, built once per model and config.

    jieba's dictionary takes a second to load, so the tokenizer is kept beside the model (weakly:
    it goes with the model) rather than rebuilt for every batch.
    """
    config = model.config
    found = _TOKENIZERS.get(model)
    if found is None or found[0] is not config:
        found = (config, Tokenizer(config.vocab, config.words if config.word_dim else None, hmm=config.hmm))
        _TOKENIZERS[model] = found
    return found[1]
