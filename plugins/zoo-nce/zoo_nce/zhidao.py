"""The Baidu Zhidao question → tags corpus: a streaming loader, vocabularies, hashed splits, synthetic data.

The real file (Su Jianlin, kexue.fm/archives/5067; Baidu Pan only, research
use) is one JSON list of 10 million ``{"url", "question", "tags"}`` records,
2 GB+. It is never loaded whole: :func:`iter_records` streams it with
``ijson`` (constant memory), and also reads JSON Lines, and either of them
inside ``.gz`` or ``.zip``. A record whose fields are missing or of the wrong
type (or, in JSON Lines, a line that is not JSON) is *malformed*: it is
counted and its position reported (record number, and line for JSON Lines),
and the rest is read. A JSON list whose syntax breaks cannot be resynchronised:
that raises a ZooError naming the record where it broke.

:func:`scan` builds the tag and character vocabularies in one pass;
:func:`split_of` assigns each record to train / validation / test by hashing
its URL, so the split never depends on file order or on how many records the
file has. :func:`write_synthetic` writes data of the same schema with a Zipf
tag distribution and any number of tags (up to millions), the questions made
of characters that carry their tags' signal.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo_core import ZooDataset, ZooError

__all__ = ["Malformed", "Record", "Scan", "iter_records", "scan", "split_of", "write_synthetic"]

MAX_REPORTED = 20  # positions of malformed records kept for the report (the count is exact)


@dataclass(frozen=True)
class Record:
    """One question: its URL (the split key), text and tags."""

    url: str
    question: str
    tags: tuple[str, ...]


@dataclass
class Malformed:
    """Malformed records seen so far: their exact number and the first few positions with the reason."""

    path: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_REPORTED:
            self.examples.append(f"{self.path}: {where}: {why}")

    def report(self) -> str:
        """A one-paragraph summary for the user ("" when every record was fine)."""
        if not self.count:
            return ""
        more = f" (first {len(self.examples)} shown)" if self.count > len(self.examples) else ""
        return f"{self.count} malformed record(s) skipped{more}:\n  " + "\n  ".join(self.examples)


MAX_DEPTH = 32  # a record is {url, question, tags: [...]}: 3 levels inside the list; 32 leaves room for extra fields
MAX_RECORD_BYTES = 1 << 20  # a real record is ~200 bytes; one past 1 MiB is not a question
_CHUNK = 1 << 16
_STRUCTURAL = bytes(c if c in b'"[]{}\\' else 0 for c in range(256))  # a translate table: everything else → 0
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_GAP = b" \t\r\n,"  # what may stand between two records of the list


class _TooDeep(Exception):
    pass


class _TooLong(Exception):
    pass


class _Guard:
    """A byte stream that refuses JSON nested deeper than MAX_DEPTH or a list item longer than MAX_RECORD_BYTES.

    ijson's C parser keeps one prefix string per open level, each as long as
    the level is deep, so a small file nested 200,000 deep takes memory in the
    square of its depth; and it holds a whole string or number token in memory.
    This wrapper follows the nesting as the parser reads (with numpy, on the
    quotes, brackets and backslashes of each chunk only) and stops both first.
    """

    def __init__(self, raw):
        self.raw = raw
        self.depth = 0
        self.in_string = False
        self.backslashes = 0  # the run of backslashes that ended the previous chunk
        self.record_bytes = 0  # bytes of the list item being read (0 between items)

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(_CHUNK if n is None or n < 0 else n)
        if data:
            self._follow(data)
        return data

    def _follow(self, data: bytes) -> None:
        a = np.frombuffer(data.translate(_STRUCTURAL), np.uint8)
        pos = np.flatnonzero(a != 0)  # the few bytes that matter, (S,)
        ch = a[pos]
        quote = ch == _QUOTE
        if self.backslashes or b"\\" in data:  # a quote after an odd run of backslashes is escaped
            bs = ch == _BACKSLASH
            k = np.arange(pos.size)
            chained = np.zeros(pos.size, dtype=bool)  # element k-1 is a backslash right before element k
            chained[1:] = bs[:-1] & (pos[:-1] == pos[1:] - 1)
            if pos.size:
                chained[0] = self.backslashes > 0 and pos[0] == 0
            last_break = np.maximum.accumulate(np.where(~chained, k, -1))
            run = np.where(last_break >= 0, k - last_break, k + self.backslashes)
            quote &= run % 2 == 0
            ends_in_backslash = pos.size and int(pos[-1]) == len(data) - 1 and bs[-1]
            self.backslashes = int(run[-1]) + 1 if ends_in_backslash else 0
        toggles = np.cumsum(quote)
        inside_after = (toggles + self.in_string) % 2 == 1  # inside a string after element k
        opening, closing = (ch == ord("[")) | (ch == ord("{")), (ch == ord("]")) | (ch == ord("}"))
        step = (opening.astype(np.int32) - closing) * ~inside_after
        depth = self.depth + np.cumsum(step, dtype=np.int64)
        if depth.size and int(depth.max()) > MAX_DEPTH:
            raise _TooDeep
        gap = np.flatnonzero((depth <= 1) & ~inside_after)  # elements after which the list is between items
        if gap.size:
            tail = data[int(pos[gap[-1]]) + 1:]
            if gap[-1] == pos.size - 1 and not tail.strip(_GAP):
                self.record_bytes = 0
            else:
                self.record_bytes = len(tail)
        elif pos.size or self.record_bytes or data.strip(_GAP):
            self.record_bytes += len(data)
        if self.record_bytes > MAX_RECORD_BYTES:
            raise _TooLong
        if depth.size:
            self.depth = int(depth[-1])
            self.in_string = bool(inside_after[-1])


_BLANK = b" \t\r\n"


def _lines(stream) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) of each non-blank line; None for a line longer than MAX_RECORD_BYTES (never held).

    A chunk of blank lines is counted without a Python loop (a 1 GiB run of newlines takes seconds).
    """
    lineno, pending, too_long = 1, bytearray(), False  # pending: the unfinished line of the previous chunks
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        if not pending and not too_long and not chunk.strip(_BLANK):
            lineno += chunk.count(b"\n")
            continue
        parts = chunk.split(b"\n")
        first, last = parts[0], parts[-1]
        if len(parts) > 1:  # the pending line ends in this chunk
            if too_long or len(pending) + len(first) > MAX_RECORD_BYTES:
                yield lineno, None
            elif pending or first.strip(_BLANK):
                yield lineno, bytes(pending) + first
            pending.clear()
            too_long = False
            lineno += 1
            for part in parts[1:-1]:
                if part and not part.isspace():
                    yield lineno, part if len(part) <= MAX_RECORD_BYTES else None
                lineno += 1
            first = last
        if not too_long:  # the unfinished line grows, up to the bound
            if len(pending) + len(first) > MAX_RECORD_BYTES:
                too_long = True
                pending.clear()
            elif pending or first.strip(_BLANK):
                pending += first
    if too_long:
        yield lineno, None
    elif pending:
        yield lineno, bytes(pending)


def _open_binary(path: Path):
    """The decompressed byte stream of ``path`` (plain, .gz, or the single JSON member of a .zip)."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    if path.suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX")]
        if len(members) != 1:
            raise ZooError(f"{path} holds {len(members)} files; expected exactly one JSON or JSON Lines file",
                           hint="unzip it and pass the JSON file itself")
        return archive.open(members[0])
    return open(path, "rb")


def _validate(obj) -> Record | str:
    """A Record, or the reason ``obj`` is not one."""
    if not isinstance(obj, dict):
        return f"expected an object, got {type(obj).__name__}"
    url, question, tags = obj.get("url"), obj.get("question"), obj.get("tags")
    if not isinstance(url, str) or not url:
        return "missing or empty 'url'"
    if not isinstance(question, str):
        return "missing 'question' (or not a string)"
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "'tags' is not a list of strings"
    return Record(url, question, tuple(tags))


def _not_utf8(path: Path, where: str, raw: bytes | None = None) -> ZooError:
    guess = ""
    if raw is not None:
        try:
            raw.decode("gbk")
            guess = " (it reads as GBK)"
        except UnicodeDecodeError:
            pass
    return ZooError(f"{path} is not UTF-8{guess}: {where} holds bytes that are not UTF-8 text",
                    where=str(path), hint=f"the Zhidao files are UTF-8; convert it first, e.g. "
                                          f"`iconv -f GBK -t UTF-8 {path.name} > utf8-{path.name}`")


def _damaged(path: Path, exc: BaseException) -> ZooError:
    kind = {".gz": "gzip", ".zip": "zip"}.get(path.suffix, "")
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError):
        detail = "it ends before the end of its compressed data (truncated)"
    what = f"{path} cannot be read as {kind + ' ' if kind else ''}data: {detail}"
    check = {"gzip": f"`gzip -t {path.name}`", "zip": f"`unzip -t {path.name}`"}.get(kind)
    return ZooError(what, where=str(path), hint="the file is damaged, truncated or not what its name says: download it "
                                                 "again" + (f" (check it with {check})" if check else ""))


def iter_records(path, malformed: Malformed | None = None) -> Iterator[Record]:
    """Stream the records of a Zhidao file (JSON list or JSON Lines; plain, .gz or .zip) in constant memory.

    Malformed records are skipped and added to ``malformed`` (pass one to read
    the report afterwards). Memory stays bounded for any input: a JSON Lines
    line longer than MAX_RECORD_BYTES is a malformed record (skipped without
    being held); in a JSON list, a record longer than that or nesting deeper
    than MAX_DEPTH is an error (the list cannot be resynchronised). A file that
    is not UTF-8, or a damaged ``.gz`` / ``.zip``, is an error naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ZooError(f"Zhidao file {path} does not exist",
                       hint="download the corpus (kexue.fm/archives/5067) or write synthetic data with "
                            "`zoo nce synthetic-zhidao`")
    malformed = malformed if malformed is not None else Malformed(str(path))
    try:
        with _open_binary(path) as raw:
            stream = io.BufferedReader(raw) if not hasattr(raw, "peek") else raw
            head = stream.peek(64)[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
            if head.startswith(b"["):
                yield from _list_records(path, stream, malformed)
            else:
                yield from _line_records(path, stream, malformed)
    except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as exc:
        raise _damaged(path, exc) from None
    except OSError as exc:
        raise ZooError(f"{path} cannot be read: {exc.strerror or exc}", where=str(path),
                       hint="check the file and its permissions") from None


def _list_records(path: Path, stream, malformed: Malformed) -> Iterator[Record]:
    import ijson

    index = 0
    guard = _Guard(stream)
    try:
        for index, obj in enumerate(ijson.items(guard, "item", use_float=True)):
            rec = _validate(obj)
            if isinstance(rec, str):
                malformed.add(f"record {index}", rec)
            else:
                yield rec
    except _TooDeep:
        raise ZooError(f"{path}: the JSON after record {index} is nested more than {MAX_DEPTH} levels deep: "
                       "not a Zhidao record", where=str(path),
                       hint="a record is {\"url\", \"question\", \"tags\": [...]}; check what wrote the file") from None
    except _TooLong:
        raise ZooError(f"{path}: the record after record {index} is longer than {MAX_RECORD_BYTES >> 20} MiB: "
                       "not a Zhidao question", where=str(path),
                       hint="check what wrote the file (a real record is a few hundred bytes)") from None
    except ijson.JSONError as exc:
        if b"UTF8" in str(exc).encode() or "UTF8" in repr(exc):
            raise _not_utf8(path, f"the text after record {index}") from None
        raise ZooError(f"{path}: the JSON list breaks after record {index}: {exc}",
                       hint="the file is truncated or corrupt; download it again") from None


def _line_records(path: Path, stream, malformed: Malformed) -> Iterator[Record]:
    for lineno, line in _lines(stream):
        if line is None:
            malformed.add(f"line {lineno}", f"longer than {MAX_RECORD_BYTES >> 20} MiB (not read)")
            continue
        if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(path, f"line {lineno}", line) from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            malformed.add(f"line {lineno}", f"not JSON ({exc.msg})")
            continue
        except RecursionError:
            malformed.add(f"line {lineno}", "nested too deep")
            continue
        rec = _validate(obj)
        if isinstance(rec, str):
            malformed.add(f"line {lineno}", rec)
        else:
            yield rec


def split_of(url: str, validation: float = 0.01, test: float = 0.01) -> str:
    """"train", "validation" or "test" from a hash of the URL: the same on every machine, in any file order."""
    h = int.from_bytes(hashlib.blake2b(url.encode("utf-8"), digest_size=8).digest(), "big") / 2**64
    if h < validation:
        return "validation"
    if h < validation + test:
        return "test"
    return "train"


@dataclass
class Scan:
    """What one pass over the file learns: vocabularies with counts, split sizes, malformed records."""

    tags: Counter
    chars: Counter
    records: int
    splits: Counter
    malformed: Malformed


def scan(path, validation: float = 0.01, test: float = 0.01) -> Scan:
    """One streaming pass: tag and character counts (training split only) and the split sizes."""
    malformed = Malformed(str(path))
    tags, chars, splits = Counter(), Counter(), Counter()
    n = 0
    for rec in iter_records(path, malformed):
        n += 1
        split = split_of(rec.url, validation, test)
        splits[split] += 1
        if split == "train":
            tags.update(rec.tags)
            chars.update(rec.question)
    return Scan(tags=tags, chars=chars, records=n, splits=splits, malformed=malformed)


# --- synthetic data ---------------------------------------------------------------------------

_CHARS = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]  # 3,000 common-block CJK characters


def write_synthetic(path, records: int, tags: int, *, seed: int = 0, zipf: float = 1.1, fmt: str | None = None,
                    signature: int = 3, noise_chars: int = 6) -> Path:
    """Write ``records`` synthetic questions over ``tags`` tags, Zipf-distributed (exponent ``zipf``).

    Each record has 1-3 distinct tags; its question is the ``signature``
    characters of each of its tags (fixed per tag, drawn from 3,000 CJK
    characters) plus ``noise_chars`` random ones, shuffled, so a model can learn
    tags from text. ``fmt``: "json" (one JSON list, as the real file) or
    "jsonl"; default from the suffix (``.jsonl``, ``.jsonl.gz`` → JSON Lines).
    A ``.gz`` suffix compresses. Written atomically.
    """
    from zoo_core import atomic_file

    path = Path(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    fmt = fmt or ("jsonl" if name.endswith(".jsonl") else "json")
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, tags + 1) ** zipf
    cdf = np.cumsum(weights / weights.sum())
    sig_rng = np.random.default_rng(seed + 1)
    signatures = sig_rng.integers(0, len(_CHARS), size=(tags, signature))  # (T, s)
    chars = np.array(_CHARS)
    with atomic_file(path, "wb") as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if path.name.endswith(".gz") else None
        f = io.TextIOWrapper(gz or raw, encoding="utf-8")
        if fmt == "json":
            f.write("[\n")
        block = 10_000
        for start in range(0, records, block):
            n = min(block, records - start)
            n_tags = rng.integers(1, 4, size=n)
            drawn = np.searchsorted(cdf, rng.random((n, 3)), side="right").clip(max=tags - 1)
            noise = rng.integers(0, len(_CHARS), size=(n, noise_chars))
            perm_keys = rng.random((n, 3 * signature + noise_chars))
            lines = []
            for i in range(n):
                ts = list(dict.fromkeys(drawn[i, : n_tags[i]].tolist()))
                q = np.concatenate([signatures[ts].ravel(), noise[i]])
                q = q[np.argsort(perm_keys[i, : q.size])]
                rec = {"url": f"http://zhidao.baidu.com/question/{seed}-{start + i}.html",
                       "question": "".join(chars[q]), "tags": [f"标签{t}" for t in ts]}
                lines.append(json.dumps(rec, ensure_ascii=False))
            sep = ",\n" if fmt == "json" else "\n"
            if fmt == "json" and start > 0:
                f.write(",\n")
            f.write(sep.join(lines))
            if fmt == "jsonl":
                f.write("\n")
        if fmt == "json":
            f.write("\n]\n")
        f.flush()
        f.detach()  # the atomic writer closes the file itself
        if gz is not None:
            gz.close()
    return path


# --- encoded splits for training -----------------------------------------------------------------

# the zhidao dataset's options (``dataset_options``) and their defaults
ZHIDAO_OPTIONS = {"path": None, "validation": 0.01, "test": 0.01, "min_char_count": 1, "min_tag_count": 1,
                   "max_len": 64, "max_tags": 8}


@dataclass
class Encoded:
    """The file encoded once: vocabularies, and per split flat id arrays with offsets."""

    chars: list[str]  # id 1.. (0 pads)
    tags: list[str]
    tag_counts: list[int]
    splits: dict  # name -> (tokens int32, token offsets int64, tags int32, tag offsets int64)
    malformed: Malformed
    max_len: int
    max_tags: int


def zhidao_options(options: dict | None) -> dict:
    """ZHIDAO_OPTIONS with ``options`` on top; unknown keys and a missing path are refused."""
    merged = dict(ZHIDAO_OPTIONS)
    for key, value in (options or {}).items():
        if key not in merged:
            raise ZooError(f"unknown Zhidao dataset option {key!r}", where="--set dataset_options=...",
                           hint=f"options: {', '.join(ZHIDAO_OPTIONS)}")
        merged[key] = value
    if not merged["path"]:
        raise ZooError("the Zhidao dataset needs a file",
                       hint="--set dataset_options='{\"path\": \"zhidao.json\"}' (the real corpus, or one written "
                            "by `zoo nce synthetic-zhidao`)")
    merged["path"] = str(merged["path"])
    return merged


def load_encoded(options: dict) -> Encoded:
    """Scan (vocabularies) and encode (ids) the file: two streaming passes, every call (a run's dataset calls it once).

    Two passes keep memory bounded by the vocabularies and the encoded ids, never the records, however
    large the file."""
    import torch

    o = options
    sc = scan(o["path"], o["validation"], o["test"])
    if sc.malformed.count:
        import sys

        print(f"zoo-nce: {sc.malformed.report()}", file=sys.stderr)
    tags = [t for t, c in sorted(sc.tags.items(), key=lambda kv: (-kv[1], kv[0])) if c >= o["min_tag_count"]]
    chars = [ch for ch, c in sorted(sc.chars.items(), key=lambda kv: (-kv[1], kv[0])) if c >= o["min_char_count"]]
    if not tags:
        raise ZooError(f"{o['path']}: no tag in the training split", hint="check the file's 'tags' fields")
    tag_index = {t: i for i, t in enumerate(tags)}
    char_index = {ch: i + 1 for i, ch in enumerate(chars)}
    buf = {s: ([], [0], [], [0]) for s in ("train", "validation", "test")}
    for rec in iter_records(o["path"]):
        tok, tok_off, tg, tg_off = buf[split_of(rec.url, o["validation"], o["test"])]
        ids = [char_index[ch] for ch in rec.question if ch in char_index][: o["max_len"]]
        tids = [tag_index[t] for t in dict.fromkeys(rec.tags) if t in tag_index][: o["max_tags"]]
        tok.extend(ids)
        tok_off.append(len(tok))
        tg.extend(tids)
        tg_off.append(len(tg))
    splits = {s: (torch.tensor(a, dtype=torch.int32), torch.tensor(b, dtype=torch.int64),
                  torch.tensor(c, dtype=torch.int32), torch.tensor(d, dtype=torch.int64))
              for s, (a, b, c, d) in buf.items()}
    return Encoded(chars=chars, tags=tags, tag_counts=[sc.tags[t] for t in tags], splits=splits,
                   malformed=sc.malformed, max_len=int(o["max_len"]), max_tags=int(o["max_tags"]))


class _Questions:
    """A split as a torch Dataset: (tokens (max_len,) int64, 0-padded; tags (max_tags,) int64, −1-padded)."""

    def __init__(self, enc: Encoded, split: str):
        self.enc = enc
        self.tok, self.tok_off, self.tag, self.tag_off = enc.splits[split]

    def __len__(self):
        return len(self.tok_off) - 1

    def __getitem__(self, i):
        import torch

        tokens = torch.zeros(self.enc.max_len, dtype=torch.int64)
        tags = torch.full((self.enc.max_tags,), -1, dtype=torch.int64)
        a, b = int(self.tok_off[i]), int(self.tok_off[i + 1])
        tokens[: b - a] = self.tok[a:b]
        a, b = int(self.tag_off[i]), int(self.tag_off[i + 1])
        tags[: b - a] = self.tag[a:b]
        return tokens, tags


class ZhidaoDataset(ZooDataset):
    """Baidu Zhidao questions with their tags, from a file (real or synthetic), split by URL hash."""

    name = "zhidao"
    splits = ("train", "validation", "test")

    def __init__(self, source=None, root=None, seed=0, **options):
        super().__init__(source=source, root=root, seed=seed)
        self.options = zhidao_options(options)

    @functools.cached_property
    def encoded(self) -> Encoded:
        """The encoded file, read when first asked for."""
        return load_encoded(self.options)

    def model_config(self, settings=None) -> dict:
        """The vocabularies the tag model is sized for: ``chars``, ``tags`` and the tags' training ``tag_counts``."""
        enc = self.encoded
        return {"chars": list(enc.chars), "tags": list(enc.tags), "tag_counts": list(enc.tag_counts)}

    def split(self, name: str):
        """The questions of split ``name``."""
        self.check_split(name)
        return _Questions(self.encoded, name)
