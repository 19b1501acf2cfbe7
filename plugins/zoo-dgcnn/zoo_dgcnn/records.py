"""QA records: the WebQA/SogouQA readers and the record cache.

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
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from zoo_core import ZooError, atomic_file, zoo_home

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
