"""The datasets the Trainer reads: training and evaluation examples of QA records.

Records come from :mod:`zoo_dgcnn.records` (SogouQA/WebQA files) or :mod:`zoo_dgcnn.cloze` (the
People's Daily proxy). Training examples (the release's generator): one passage of the question drawn
at random each epoch; a passage longer than 128 characters is, with probability 0.5, cropped to a
random window of 128 to 256 characters, and otherwise cut to its first 256; the step labels every
occurrence of the answer in what is left. Evaluation examples are every (question, whole passage) pair.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

import torch

from zoo_core import ZooDataset, ZooError

from .cloze import cloze_records
from .records import Records, cached_records, source_records
from .text import build_vocab
from .vectors import word_vectors

# --- examples -------------------------------------------------------------------------------------------


def _rng(seed: int, epoch: int, index: int) -> random.Random:
    """One example's random numbers, a function of (seed, epoch, index) only: resume and torchrun agree."""
    return random.Random(hashlib.sha256(f"{seed}|{epoch}|{index}".encode()).digest())


def crop(passage: str, rng: random.Random) -> str:
    """The release's augmentation: > 128 characters: p 0.5 a random 128-256 window, else the first 256."""
    if len(passage) > 128 and rng.random() < 0.5:
        length = rng.randint(128, min(256, len(passage)))
        start = rng.randint(0, len(passage) - length)
        return passage[start:start + length]
    return passage[:256]


class TrainExamples(torch.utils.data.Dataset):
    """(question, passage, answer) strings: one random, randomly cropped passage of each question per epoch.

    ``repeat`` lists (Records, times) pairs: the release doubles SogouQA next to WebQA.
    """

    def __init__(self, parts: list[tuple[Records, int]], seed: int = 0, augment: bool = True):
        self.parts = parts
        self.sizes = [len(r) * times for r, times in parts]
        self.seed, self.epoch, self.augment = seed, 0, augment

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return sum(self.sizes)

    def record(self, index: int) -> dict:
        for (records, _), size in zip(self.parts, self.sizes):
            if index < size:
                return records[index % len(records)]
            index -= size
        raise IndexError(index)

    def __getitem__(self, index: int):
        r = self.record(index)
        rng = _rng(self.seed, self.epoch, index)
        if not r["passages"]:
            return r["question"], "", ""
        p = r["passages"][rng.randrange(len(r["passages"]))]
        text = crop(p["passage"], rng) if self.augment else p["passage"]
        return r["question"], text, p["answer"]


class EvalExamples(torch.utils.data.Dataset):
    """(question index, question id, question, passage, gold answer) for every passage of every question."""

    def __init__(self, records: Records):
        self.records = records
        pairs = []
        for qi, r in enumerate(records):
            pairs.extend((qi, pi) for pi in range(len(r["passages"])))
        self.pairs = torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        qi, pi = (int(v) for v in self.pairs[index])
        r = self.records[qi]
        return qi, r["id"], r["question"], r["passages"][pi]["passage"], gold_answer(r)


def gold_answer(record: dict) -> str:
    """The question's answer: the first non-empty passage answer ("" when none holds it)."""
    return next((p["answer"] for p in record["passages"] if p["answer"]), "")


def _fold(record_id: str, folds: int) -> int:
    return int(hashlib.sha256(record_id.encode()).hexdigest(), 16) % folds


def fold_records(records: Records, name: str, keep) -> Records:
    """Records whose fold passes ``keep``, cached next to the source."""
    return cached_records(f"{records.path.stem}-{name}", lambda: (r for r in records if keep(r)))


# --- the datasets --------------------------------------------------------------------------------------


class QADataset(ZooDataset):
    """What both DGCNN datasets give the Trainer besides their splits: the model's vocabularies.

    ``settings`` is the step's :class:`zoo_dgcnn.train.DGCNNSettings`: ``min_count`` and ``word_vectors``.
    """

    _vectors: tuple[list[str], torch.Tensor] | None = None  # the word vectors, read once per dataset

    def training_texts(self) -> Iterator[str]:
        """Questions and passages of the training split (for the character vocabulary)."""
        raise NotImplementedError

    def word_vectors(self, settings) -> tuple[list[str], torch.Tensor]:
        """(words, vectors) of the ``word_vectors`` setting (none for ""), read on first use."""
        if self._vectors is None:
            self._vectors = word_vectors(settings.word_vectors) if settings.word_vectors else ([], torch.zeros(0, 0))
        return self._vectors

    def model_config(self, settings) -> dict:
        """The characters of the training split seen ``min_count`` times, and the word-vector vocabulary."""
        words, vectors = self.word_vectors(settings)
        return {"vocab": build_vocab(self.training_texts(), settings.min_count), "words": list(words),
                "word_dim": int(vectors.shape[1]) if words else 0}

    def init_model(self, model, settings) -> None:
        """Fill the fresh model's frozen word-vector table (row 0, out-of-vocabulary words, stays zero)."""
        words, vectors = self.word_vectors(settings)
        if words and model.config.word_dim:
            with torch.no_grad():
                model.word_vectors[1:] = vectors.to(model.word_vectors)


class SogouQA(QADataset):
    """SogouQA + WebQA from the user's folder, as the 2019 release mixes them.

    Options: ``root`` (required), ``sogou`` (default ``SogouQA.json``), ``webqa`` (``WebQA.json``;
    missing is allowed, then SogouQA alone), ``folds`` (3) and ``dev_fold`` (0): SogouQA questions
    fall into folds by a hash of their id; the dev fold is validation and test (SogouQA's test
    answers were never published), the other folds train, doubled, next to WebQA.
    """

    name = "dgcnn-sogou"
    sources = ("folder",)

    def __init__(self, source=None, root=None, seed=0, **options):
        super().__init__(source, root, seed, **options)
        if self.root is None:
            raise ZooError("dgcnn-sogou needs the folder holding SogouQA.json (and WebQA.json)",
                           hint="zoo train dgcnn-sogou --root /data/sogou")
        self.folds = int(options.get("folds", 3))
        self.dev_fold = int(options.get("dev_fold", 0))

    def _sogou(self) -> Records:
        return source_records(self.root / self.options.get("sogou", "SogouQA.json"))

    def split(self, name: str):
        self.check_split(name)
        sogou = self._sogou()
        folds, dev = self.folds, self.dev_fold
        if name == "train":
            parts = [(fold_records(sogou, f"train{dev}of{folds}", lambda r: _fold(r["id"], folds) != dev), 2)]
            webqa = self.root / self.options.get("webqa", "WebQA.json")
            if webqa.is_file():
                parts.append((source_records(webqa), 1))
            return TrainExamples(parts, self.seed)
        return EvalExamples(fold_records(sogou, f"dev{dev}of{folds}", lambda r: _fold(r["id"], folds) == dev))

    def training_texts(self) -> Iterator[str]:
        for records, _ in self.split("train").parts:
            for r in records:
                yield r["question"]
                for p in r["passages"]:
                    yield p["passage"]


class ClozeQA(QADataset):
    """The offline proxy: cloze questions from People's Daily 1998-01 (see :mod:`zoo_dgcnn.cloze`)."""

    name = "dgcnn-cloze"
    sources = ("offline",)

    def _records(self, split: str) -> Records:
        return cloze_records(split, **{k: v for k, v in self.options.items() if k in ("passages", "distractors")})

    def split(self, name: str):
        self.check_split(name)
        if name == "train":
            return TrainExamples([(self._records("train"), 1)], self.seed)
        return EvalExamples(self._records(name))

    def training_texts(self) -> Iterator[str]:
        for r in self._records("train"):
            yield r["question"]
            for p in r["passages"]:
                yield p["passage"]
