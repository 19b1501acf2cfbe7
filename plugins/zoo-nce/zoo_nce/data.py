"""word2vec's data: a tokenised corpus, gensim's vocabulary, and blocks of word ids for the Trainer.

A corpus is a sequence of sentences, each a list of tokens: People's Daily
1998-01 (``zoo_text.read_peoples_daily``, its own segmentation, tags
stripped) or any text file with one sentence a line, tokens separated by
whitespace (e.g. jieba's output joined by spaces).

The vocabulary follows gensim: words with count ≥ ``min_count``, sorted by
count, most frequent first (ties keep first-seen order). Out-of-vocabulary
tokens are removed before any windowing, as gensim does. Whole sentences are
packed into blocks of at most ``block_tokens`` ids (a longer sentence is cut,
as gensim cuts at 10,000 words); a block is one example for the Trainer, so
its batch size counts blocks.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo_core import ZooDataset, ZooError

__all__ = ["CORPUS_OPTIONS", "Corpus", "TextCorpusDataset", "load_corpus", "read_sentences"]

# the text-corpus dataset's options (``dataset_options``) and their defaults: what sgns-peoples-daily reads
CORPUS_OPTIONS = {"corpus": "peoples-daily", "min_count": 5, "block_tokens": 1024}


def read_sentences(corpus: str | Path):
    """Sentences of ``corpus``: ``"peoples-daily"`` (zoo_text's People's Daily 1998-01) or a text file path."""
    if str(corpus) == "peoples-daily":
        import zoo_text

        yield from zoo_text.iter_words()
        return
    path = Path(corpus)
    if not path.is_file():
        raise ZooError(f"corpus file {path} does not exist",
                       hint="pass a text file with one tokenised sentence a line, or 'peoples-daily'")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if "\x00" in line:
                raise ZooError(f"{path}:{lineno} holds a NUL byte: this is not a text file",
                               hint="pass a UTF-8 text file, one tokenised sentence a line")
            yield line.split()


@dataclass
class Corpus:
    """A corpus encoded against its vocabulary.

    ``ids`` (N,) int64 are the in-vocabulary tokens in order; ``sentence`` (N,)
    the index of the sentence each came from; ``raw_words`` counts every
    token, in vocabulary or not (gensim's words/s counts those).
    """

    words: list[str]
    counts: torch.Tensor  # (V,) int64
    ids: torch.Tensor  # (N,) int64
    sentence: torch.Tensor  # (N,) int64
    raw_words: int
    block_tokens: int

    @functools.cached_property
    def block_starts(self) -> torch.Tensor:
        """Start offset of each block in ``ids`` (whole sentences, at most ``block_tokens`` ids each)."""
        n, cap = self.ids.numel(), self.block_tokens
        if n == 0:
            return torch.zeros(0, dtype=torch.int64)
        boundary = torch.ones(n, dtype=torch.bool)
        boundary[1:] = self.sentence[1:] != self.sentence[:-1]
        sent_starts = torch.nonzero(boundary).flatten().tolist() + [n]
        starts, block_start = [0], 0
        for s, e in zip(sent_starts[:-1], sent_starts[1:]):
            if e - block_start > cap:  # this sentence does not fit: close the block before it
                if s > block_start:
                    starts.append(s)
                    block_start = s
                while e - block_start > cap:  # a sentence longer than a block is cut
                    block_start += cap
                    starts.append(block_start)
        return torch.tensor(starts, dtype=torch.int64)

    def block(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``i``: ids (block_tokens,) padded with −1, and sentence ids (block_tokens,) (−1 pads)."""
        starts = self.block_starts
        s = int(starts[i])
        e = int(starts[i + 1]) if i + 1 < len(starts) else self.ids.numel()
        ids = torch.full((self.block_tokens,), -1, dtype=torch.int64)
        sent = torch.full((self.block_tokens,), -1, dtype=torch.int64)
        ids[: e - s] = self.ids[s:e]
        sent[: e - s] = self.sentence[s:e] - self.sentence[s]  # local numbering
        # a sentence cut across blocks continues in the next block; pairs never cross a block
        return ids, sent


def load_corpus(corpus: str = "peoples-daily", min_count: int = 5, block_tokens: int = 1024) -> Corpus:
    """Read and encode ``corpus``: the whole file, every call (a run's dataset calls it once)."""
    if min_count < 1:
        raise ZooError(f"min_count must be at least 1, not {min_count}")
    sentences = [s for s in read_sentences(corpus) if s]
    counter = Counter(w for s in sentences for w in s)
    raw_words = sum(counter.values())
    words = [w for w, c in sorted(counter.items(), key=lambda kv: -kv[1]) if c >= min_count]  # stable: ties first-seen
    if not words:
        raise ZooError(f"no word of corpus {corpus} occurs {min_count} times or more",
                       hint="lower min_count or use a larger corpus")
    index = {w: i for i, w in enumerate(words)}
    ids, sent = [], []
    for k, s in enumerate(sentences):
        for w in s:
            i = index.get(w)
            if i is not None:
                ids.append(i)
                sent.append(k)
    return Corpus(words=words, counts=torch.tensor([counter[w] for w in words], dtype=torch.int64),
                  ids=torch.tensor(ids, dtype=torch.int64), sentence=torch.tensor(sent, dtype=torch.int64),
                  raw_words=raw_words, block_tokens=int(block_tokens))


def corpus_options(options: dict | None) -> dict:
    """CORPUS_OPTIONS with ``options`` (a recipe's ``dataset_options``) on top, unknown keys refused."""
    merged = dict(CORPUS_OPTIONS)
    for key, value in (options or {}).items():
        if key not in merged:
            raise ZooError(f"unknown corpus option {key!r}", where="--set dataset_options=...",
                           hint=f"options: {', '.join(CORPUS_OPTIONS)}")
        merged[key] = value
    merged["min_count"] = int(merged["min_count"])
    merged["block_tokens"] = int(merged["block_tokens"])
    merged["corpus"] = str(merged["corpus"])
    return merged


class _Blocks(torch.utils.data.Dataset):
    def __init__(self, corpus: Corpus, indices: range):
        self.corpus, self.indices = corpus, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.corpus.block(self.indices[i])


class TextCorpusDataset(ZooDataset):
    """A tokenised corpus as blocks of word ids; ``train`` is every block, ``validation`` the first few.

    word2vec has no held-out data: validation re-reads the first 32 blocks to
    report the loss, and the quality checks (Cilin, wordsim) live in the
    benchmarks. Options: ``corpus``, ``min_count``, ``block_tokens``.
    """

    name = "text-corpus"
    splits = ("train", "validation")

    def __init__(self, source=None, root=None, seed=0, **options):
        super().__init__(source=source, root=root, seed=seed)
        self.options = corpus_options(options)

    @functools.cached_property
    def corpus(self) -> Corpus:
        """The encoded corpus, read when first asked for."""
        return load_corpus(**self.options)

    def model_config(self, settings=None) -> dict:
        """The vocabulary word2vec is sized for: ``words``, most frequent first, and their corpus ``counts``."""
        return {"words": list(self.corpus.words), "counts": self.corpus.counts.tolist()}

    def split(self, name: str):
        """Blocks of the corpus: every one for ``train``, the first 32 for ``validation``."""
        self.check_split(name)
        n = len(self.corpus.block_starts)
        return _Blocks(self.corpus, range(n) if name == "train" else range(min(n, 32)))
