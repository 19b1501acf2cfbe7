"""QA data: the WebQA/SogouQA loaders, the People's Daily cloze proxy, and the datasets the Trainer reads.

Every source becomes the 2019 release's schema, one record per question::

    {"id": str, "question": str, "passages": [{"passage": str, "answer": str}, ...]}

(``answer`` is "" when the passage does not hold it). Readers stream: a record is parsed, checked and
handed on, and a source is converted once into a JSON-lines cache under ``zoo_home()/dgcnn`` with an
index of line offsets, so a split reads one record from disk per example and memory holds only the
offsets, whatever the corpus size.

Formats read (detected from the file's first characters):

- the schema itself: a JSON array of records (the release's ``SogouQA.json`` and ``WebQA.json``), or
  JSON lines of records;
- WebQA v1.0 (``me_train.json``, ``me_validation.ann.json``, ...): one JSON object
  ``{qid: {"question": q, "evidences": {eid: {"answer": [a, ...], "evidence": text}}}}``, where an
  answer ``["no_answer"]`` marks a negative evidence (answer "");
- SogouQA's competition files: JSON lines ``{"query_id", "query", "answer", "passages":
  [{"passage_id", "passage_text"}, ...]}``; the answer is kept for the passages that contain it.

Training examples (the release's generator): one passage of the question drawn at random each
epoch; a passage longer than 128 characters is, with probability 0.5, cropped to a random window of
128 to 256 characters, and otherwise cut to its first 256; the step labels every occurrence of the
answer in what is left. Evaluation examples are every (question, whole passage) pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path

import torch

from zoo_core import ZooDataset, ZooError, atomic_file, zoo_home

CACHE_VERSION = 1
MAX_RECORD_CHARS = 64 << 20  # one record (a question with its passages) larger than this is refused


# --- streaming JSON -----------------------------------------------------------------------------------


class _Stream:
    """Incremental JSON values from a UTF-8 file, read in chunks (no whole-file load)."""

    def __init__(self, f, path: Path, chunk: int = 1 << 20):
        self.f, self.path, self.chunk = f, path, chunk
        self.buf, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if not data:
            self.eof = True
            return False
        self.buf = self.buf[self.pos:] + data
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ("" at the end)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            raise ZooError(f"malformed JSON: expected one of {chars!r}, found {c or 'the end of the file'!r}",
                           where=str(self.path))
        self.pos += 1
        return c

    def value(self):
        """Decode the next JSON value, reading more of the file until it is complete."""
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos <= MAX_RECORD_CHARS and self._more():
                    continue
                raise ZooError(f"malformed JSON ({exc.msg}), or one record over {MAX_RECORD_CHARS:,} characters",
                               where=str(self.path)) from None
            # a number or literal cut by the chunk boundary could decode short: make sure it ended
            if end == len(self.buf) and not self.eof and self._more():
                continue
            self.pos = end
            return value


def _open(path: Path):
    try:
        return open(path, encoding="utf-8-sig")  # a byte-order mark is skipped
    except FileNotFoundError:
        raise ZooError("data file not found", where=str(path),
                       hint="point --root FOLDER (zoo train / zoo eval) at the folder that holds it") from None


def _json_type(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _check(record, path: Path, n: int) -> dict:
    """A schema record, checked; the error names the file and the record."""
    where = f"{path}: record {n}"
    if not isinstance(record, dict):
        raise ZooError(f"a record must be an object, got {_json_type(record)}", where=where)
    if "id" in record:
        where += f" (id {record['id']!r})"
    for key in ("question", "passages"):
        if key not in record:
            raise ZooError(f"the record has no {key!r}", where=where,
                           hint='records look like {"id", "question", "passages": [{"passage", "answer"}]}')
    if not isinstance(record["question"], str) or not isinstance(record["passages"], list):
        raise ZooError("'question' must be a string and 'passages' a list", where=where)
    passages = []
    for i, p in enumerate(record["passages"]):
        if not isinstance(p, dict) or not isinstance(p.get("passage"), str) or not isinstance(p.get("answer", ""), str):
            raise ZooError(f"passage {i} must be {{\"passage\": str, \"answer\": str}}", where=where)
        passages.append({"passage": p["passage"], "answer": p.get("answer", "")})
    return {"id": str(record.get("id", n)), "question": record["question"], "passages": passages}


def _webqa(qid: str, item, path: Path, n: int) -> dict:
    where = f"{path}: record {n} (id {qid!r})"
    if not isinstance(item, dict) or not isinstance(item.get("question"), str) \
            or not isinstance(item.get("evidences"), dict):
        raise ZooError("a WebQA record must hold 'question' (a string) and 'evidences' (an object)", where=where)
    passages = []
    for eid, ev in item["evidences"].items():
        if not isinstance(ev, dict) or not isinstance(ev.get("evidence"), str) \
                or not isinstance(ev.get("answer"), list):
            raise ZooError(f"evidence {eid!r} must hold 'evidence' (a string) and 'answer' (a list)", where=where)
        answer = next((a for a in ev["answer"] if isinstance(a, str) and a and a != "no_answer"), "")
        passages.append({"passage": ev["evidence"], "answer": answer})
    return {"id": qid, "question": item["question"], "passages": passages}


def _sogou(record, path: Path, n: int) -> dict:
    where = f"{path}: record {n}"
    if not isinstance(record, dict):
        raise ZooError(f"a record must be an object, got {_json_type(record)}", where=where)
    if "query_id" in record:
        where += f" (query_id {record['query_id']!r})"
    if not isinstance(record.get("query"), str) or not isinstance(record.get("passages"), list):
        raise ZooError("a SogouQA record must hold 'query' (a string) and 'passages' (a list)", where=where)
    answer = record.get("answer", "")
    if not isinstance(answer, str):
        raise ZooError("'answer' must be a string", where=where)
    passages = []
    for i, p in enumerate(record["passages"]):
        if not isinstance(p, dict) or not isinstance(p.get("passage_text"), str):
            raise ZooError(f"passage {i} must hold 'passage_text' (a string)", where=where)
        text = p["passage_text"]
        passages.append({"passage": text, "answer": answer if answer and answer in text else ""})
    return {"id": str(record.get("query_id", n)), "question": record["query"], "passages": passages}


def not_utf8(path: Path, where: str | None = None) -> ZooError:
    """The error for a file that is not UTF-8, naming the encoding it looks like (GBK is common for these)."""
    import codecs

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    guess = None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        guess = source = "UTF-16"
    else:
        try:  # GB18030 is the superset of GBK and GB2312; a character cut by the 64 KiB read is fine
            codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
            guess, source = "GBK (GB18030)", "GB18030"
        except UnicodeDecodeError:
            pass
    if guess is None:
        return ZooError("the file is not UTF-8 text", where=where or str(path), hint="convert it to UTF-8")
    return ZooError(f"the file is not UTF-8: it looks like {guess}", where=where or str(path),
                    hint=f"convert it first: iconv -f {source} -t UTF-8 '{path}' > converted.json")


def read_records(path: str | os.PathLike) -> Iterator[dict]:
    """Stream the schema records of a WebQA, SogouQA or schema file (format detected; see the module doc).

    Errors name the file (and the record or line): a file that is not UTF-8 (with the encoding it
    looks like), a JSON line that is not an object, a value nested too deeply, a record over
    ``MAX_RECORD_CHARS``. A UTF-8 byte-order mark is accepted.
    """
    path = Path(path)
    try:
        yield from _read_records(path)
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    except RecursionError:
        raise ZooError("a JSON value is nested too deeply to be a QA record", where=str(path),
                       hint="records look like {\"id\", \"question\", \"passages\": [{\"passage\", \"answer\"}]}") \
            from None


def _lines(f, path: Path):
    """(line index, text) of a text file, each line at most MAX_RECORD_CHARS characters."""
    n = 0
    while True:
        line = f.readline(MAX_RECORD_CHARS + 1)
        if not line:
            return
        if len(line) > MAX_RECORD_CHARS:
            raise ZooError(f"line {n + 1} is longer than {MAX_RECORD_CHARS:,} characters", where=f"{path}:{n + 1}",
                           hint="one record per line, each under that size")
        yield n, line
        n += 1


def _read_records(path: Path) -> Iterator[dict]:
    with _open(path) as f:
        s = _Stream(f, path)
        first = s.peek()
        if first == "":
            return
        if first == "[":
            s.expect("[")
            n = 0
            if s.peek() == "]":
                return
            while True:
                yield _check(s.value(), path, n)
                n += 1
                if s.expect(",]") == "]":
                    return
        if first != "{":
            raise ZooError(f"not a QA data file: it starts with {first!r}", where=str(path),
                           hint="expected a JSON array of records, JSON lines, or WebQA's JSON object")
        # JSON lines (schema or SogouQA) or one WebQA object: look at the first key
        s.expect("{")
        if s.peek() == "}":
            return  # an empty WebQA object
        key = s.value()
        if key in ("id", "question", "passages", "query_id", "query", "answer"):
            f.seek(0)
            for n, line in _lines(f, path):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ZooError(f"malformed JSON line ({exc.msg})", where=f"{path}: record {n} (line {n + 1})") \
                        from None
                if not isinstance(record, dict):
                    raise ZooError(f"a JSON line must be an object (a record), got {_json_type(record)}",
                                   where=f"{path}:{n + 1}",
                                   hint='one record per line: {"query_id", "query", "answer", "passages"} or '
                                        '{"id", "question", "passages"}')
                yield _sogou(record, path, n) if "query" in record or "query_id" in record else _check(record, path, n)
            return
        n = 0
        while True:
            s.expect(":")
            yield _webqa(str(key), s.value(), path, n)
            n += 1
            if s.expect(",}") == "}":
                return
            key = s.value()


# --- the record cache: JSON lines plus offsets ------------------------------------------------------


class Records:
    """Random access to schema records stored as JSON lines, through an index of byte offsets."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offsets = _read_offsets(self.path.with_suffix(".offsets"))  # (n,) int64
        self._f = None

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> dict:
        if self._f is None:
            self._f = open(self.path, "rb")  # one handle per process (DataLoader workers reopen theirs)
        self._f.seek(int(self.offsets[i]))
        return json.loads(self._f.readline())

    def __getstate__(self):
        return {**self.__dict__, "_f": None}

    def __iter__(self):
        with open(self.path, "rb") as f:
            for line in f:
                yield json.loads(line)


def _read_offsets(path: Path) -> torch.Tensor:
    raw = path.read_bytes()
    return torch.frombuffer(bytearray(raw), dtype=torch.int64) if raw else torch.zeros(0, dtype=torch.int64)


def write_records(records, path: Path) -> Records:
    """Write records as JSON lines with their offsets, atomically (both files appear whole or not at all)."""
    path = Path(path)
    offsets = []
    with atomic_file(path, "wb") as f:
        pos = 0
        for r in records:
            line = (json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8")
            offsets.append(pos)
            f.write(line)
            pos += len(line)
        with atomic_file(path.with_suffix(".offsets"), "wb") as g:
            g.write(torch.tensor(offsets, dtype=torch.int64).numpy().tobytes())
    return Records(path)


def cached_records(key: str, make) -> Records:
    """The cache ``zoo_home()/dgcnn/KEY.jsonl``, built once from ``make()`` (an iterator of records)."""
    path = zoo_home() / "dgcnn" / f"{key}.jsonl"
    if not (path.is_file() and path.with_suffix(".offsets").is_file()):
        write_records(make(), path)
    return Records(path)


def _file_key(path: Path) -> str:
    st = path.stat()
    return hashlib.sha256(f"{CACHE_VERSION}|{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def source_records(path: str | os.PathLike) -> Records:
    """A user's data file converted once into the record cache (keyed by path, size and mtime)."""
    path = Path(path)
    if not path.is_file():
        raise ZooError("data file not found", where=str(path),
                       hint="point --root FOLDER (zoo train / zoo eval) at the folder that holds it")
    records = cached_records(f"src-{path.stem}-{_file_key(path)}", lambda: read_records(path))
    if len(records) == 0:
        with open(path, "rb") as f:
            empty = not f.read(4096).strip(b" \t\r\n\xef\xbb\xbf")
        raise ZooError("the data file is empty" if empty else "the data file holds no questions", where=str(path),
                       hint="give the SogouQA/WebQA file with its questions (UTF-8 JSON)")
    return records


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


class SogouQA(ZooDataset):
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
        """Questions and passages of the training split (for the character vocabulary)."""
        for records, _ in self.split("train").parts:
            for r in records:
                yield r["question"]
                for p in r["passages"]:
                    yield p["passage"]


class ClozeQA(ZooDataset):
    """The offline proxy: cloze questions from People's Daily 1998-01 (see :mod:`zoo_dgcnn.cloze`)."""

    name = "dgcnn-cloze"
    sources = ("offline",)

    def _records(self, split: str) -> Records:
        from .cloze import cloze_records

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
