"""The word2vec vector-file format, text and binary, as the original C tool and gensim write it.

Both start with a header line ``COUNT DIM``. The text format then has one line per
word: the word, a space, DIM numbers separated by spaces. The binary format has,
per word, the word's UTF-8 bytes, a space, and DIM little-endian float32 values;
the C tool follows each vector with a newline, gensim does not, so a reader must
accept both. Words cannot contain a space or a newline in either format.

Files of real vector sets run to gigabytes (millions of words), so the reader
streams and can keep only the words a model needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from zoo_core import ZooError, atomic_file

_FLOAT32 = np.dtype("<f4")


def _header(raw: bytes, path: Path) -> tuple[int, int]:
    try:
        count, dim = (int(v) for v in raw.decode("ascii").split())
    except (UnicodeDecodeError, ValueError):
        raise ZooError(f"the first line {raw[:60]!r} is not the word2vec header 'COUNT DIM'", where=f"{path}:1",
                       hint="give a word2vec text or binary file (gensim's save_word2vec_format writes one)") from None
    if count < 0 or dim <= 0:
        raise ZooError(f"the header says {count} words of dimension {dim}", where=f"{path}:1",
                       hint="the header must give a word count >= 0 and a dimension > 0")
    return count, dim


def _text_fields(line: bytes, dim: int) -> list[str] | None:
    """The fields of a text-format line, or None when it is not one (which means the file is binary)."""
    try:
        fields = line.decode("utf-8").rstrip("\r\n ").split(" ")
    except UnicodeDecodeError:
        return None
    if len(fields) != dim + 1:
        return None
    try:
        [float(v) for v in fields[1:]]
    except ValueError:
        return None
    return fields


def read_word2vec(path: str | os.PathLike, *, vocab: Iterable[str] | None = None,
                  binary: bool | None = None) -> tuple[list[str], torch.Tensor]:
    """Read a word2vec text or binary file: ``(words, vectors)``, vectors float32 of shape (len(words), DIM).

    ``binary=None`` tells the two formats apart from the first record. With
    ``vocab``, only those words are kept (the rest is read past, never held).
    A word listed twice keeps its first vector, as gensim does. A truncated or
    malformed file raises ZooError naming the file and the line or record.
    """
    path = Path(path)
    keep = None if vocab is None else set(vocab)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ZooError(f"cannot read the word-vector file: {exc.strerror}", where=str(path),
                       hint="give the path of a word2vec text or binary file") from None
    with f:
        count, dim = _header(f.readline(), path)
        start = f.tell()
        if binary is None:
            binary = count > 0 and _text_fields(f.readline(), dim) is None
            f.seek(start)
        words: list[str] = []
        rows: list[np.ndarray] = []
        seen: set[str] = set()
        records = _binary_records(f, count, dim, path) if binary else _text_records(f, count, dim, path)
        for word, vector in records:
            if word in seen or (keep is not None and word not in keep):
                continue
            seen.add(word)
            words.append(word)
            rows.append(vector() if callable(vector) else vector)
    vectors = torch.from_numpy(np.stack(rows).astype(np.float32)) if rows else torch.zeros(0, dim)
    return words, vectors


def _text_records(f, count: int, dim: int, path: Path):
    for index in range(count):
        line = f.readline()
        number = index + 2
        if not line:
            raise ZooError(f"the file ends after {index} of the {count} vectors its header announces",
                           where=f"{path}:{number}", hint="the file is truncated: download or export it again")
        fields = _text_fields(line, dim)
        if fields is None or not fields[0]:
            raise ZooError(f"line is not a word followed by {dim} numbers", where=f"{path}:{number}",
                           hint="each line of a word2vec text file is: WORD v1 ... vDIM")
        yield fields[0], np.asarray(fields[1:], dtype=np.float32)


def _binary_records(f, count: int, dim: int, path: Path, chunk: int = 1 << 20):
    """Records of the binary format, parsed from large reads (a byte-at-a-time loop is far too slow)."""
    size = dim * _FLOAT32.itemsize
    buf, pos = b"", 0
    for index in range(count):
        while True:
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= size:
                break
            more = f.read(chunk)
            if not more:
                raise ZooError(f"the file ends inside record {index + 1} of the {count} its header announces",
                               where=f"{path} (record {index + 1})",
                               hint="the file is truncated: download or export it again")
            buf, pos = buf[pos:] + more, 0
        raw_word = buf[pos:space].lstrip(b"\n")  # the C tool ends each vector with a newline
        try:
            word = raw_word.decode("utf-8")
        except UnicodeDecodeError:
            raise ZooError(f"word {raw_word[:40]!r} is not UTF-8", where=f"{path} (record {index + 1})",
                           hint="is this a word2vec binary file? (for a text file pass binary=False)") from None
        if not word or "\n" in word:
            raise ZooError("empty or broken word", where=f"{path} (record {index + 1})",
                           hint="the file is damaged, or not a word2vec binary file")
        data = buf[space + 1:space + 1 + size]
        pos = space + 1 + size
        yield word, (lambda data=data: np.frombuffer(data, dtype=_FLOAT32).copy())


def write_word2vec(path: str | os.PathLike, words: list[str], vectors, *, binary: bool = False) -> Path:
    """Write ``words`` and their ``vectors`` (N, DIM) in the word2vec text or binary format, atomically.

    Text values are written with 9 significant digits, which gives float32 back
    exactly. Words with a blank or a newline cannot be written (the format splits
    on them) and raise ZooError before anything is written.
    """
    array = vectors.detach().cpu().float().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors)
    array = np.ascontiguousarray(array, dtype=_FLOAT32)
    if array.ndim != 2 or array.shape[0] != len(words):
        raise ZooError(f"{len(words)} words but vectors of shape {tuple(array.shape)}", where=str(path),
                       hint="give one row of vectors per word")
    for word in words:
        if not word or any(c in word for c in " \n\r\t"):
            raise ZooError(f"word {word!r} cannot be written in the word2vec format", where=str(path),
                           hint="words must be non-empty and contain no space, tab or newline")
    with atomic_file(path, "wb") as f:
        f.write(f"{len(words)} {array.shape[1]}\n".encode("ascii"))
        for word, row in zip(words, array):
            if binary:
                f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
            else:
                f.write((word + " " + " ".join(f"{v:.9g}" for v in row.tolist()) + "\n").encode("utf-8"))
    return Path(path)
