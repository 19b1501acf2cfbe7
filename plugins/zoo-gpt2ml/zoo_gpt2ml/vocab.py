"""The two official GPT2_ML vocabularies, pinned by sha256, shipped in the package.

``resolve_vocab("clue")`` gives the 8021-token CLUE vocabulary of the released
220k-step model, ``resolve_vocab("bert")`` the 21128-token bert-base-chinese
vocabulary of the legacy 100k-step model, and any other spec is a path to a
vocab file. The packaged copies are byte-identical to the files of
imcaspar/gpt2-ml at commit f6286b1 (checked by sha256 at every resolve). If a
packaged copy is missing or altered, the file is fetched from the original
repository into ``zoo_core.zoo_home()/vocab`` (``$ZOO_HOME/vocab``; ``ZOO_HOME``
defaults to ``$XDG_CACHE_HOME/zoo``, else ``~/.cache/zoo``) and verified before
it is kept.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from zoo_core import IntegrityError, ZooError, atomic_file, sha256_file, zoo_home

REPO_COMMIT = "f6286b1"
_RAW = "https://raw.githubusercontent.com/imcaspar/gpt2-ml/{commit}/tokenization/{name}"


@dataclass(frozen=True)
class VocabPin:
    """One official vocabulary file: name in the repository, size, checksum and special ids."""

    filename: str
    num_tokens: int
    size: int
    sha256: str
    eos_token_id: int

    @property
    def url(self) -> str:
        """Where the original file lives (the pinned commit of imcaspar/gpt2-ml)."""
        return _RAW.format(commit=REPO_COMMIT, name=self.filename)


VOCABS: dict[str, VocabPin] = {
    "clue": VocabPin("clue-vocab.txt", 8021, 35_058,
                     "a25692ff268cd5d2468a66601ad746c49251bcc0b5a330592708bbe89ef67d02", eos_token_id=102),
    "bert": VocabPin("bert-base-chinese-vocab.txt", 21128, 109_540,
                     "45bbac6b341c319adc98a532532882e91a9cefc0329aa57bac9ae761c27b291c", eos_token_id=102),
}


def packaged_path(name: str) -> Path:
    """Where the package keeps its copy of an official vocabulary."""
    return Path(__file__).with_name("vocab") / VOCABS[name].filename


def resolve_vocab(spec: str | os.PathLike) -> Path:
    """Path of a vocab file: ``"clue"``, ``"bert"`` (verified official files) or a path to one.

    Official files come from the package, else from ``zoo_home()/vocab``, else
    they are downloaded there; each is checked against its sha256 first. A
    path must exist and be a non-empty text file.
    """
    key = str(spec)
    if key in VOCABS:
        pin = VOCABS[key]
        for candidate in (packaged_path(key), zoo_home() / "vocab" / pin.filename):
            if candidate.is_file() and sha256_file(candidate) == pin.sha256:
                return candidate
        return _download(pin, zoo_home() / "vocab" / pin.filename)
    path = Path(key).expanduser()
    if not path.is_file():
        raise ZooError(f"vocab {key!r} is neither an official vocabulary nor an existing file",
                       where=str(path), hint='use "clue" (8021 tokens), "bert" (21128 tokens) or a path to a vocab.txt')
    if path.stat().st_size == 0:
        raise ZooError("the vocab file is empty", where=str(path), hint="a vocab file lists one token per line")
    return path


def _download(pin: VocabPin, dest: Path) -> Path:
    """Fetch ``pin`` to ``dest`` through ``zoo_core.atomic_file``, verifying the sha256 before the rename.

    The check runs inside the ``atomic_file`` block, so a failed download or a
    wrong hash raises before anything lands at ``dest`` (the temporary is removed).
    """
    import urllib.error
    import urllib.request

    with atomic_file(dest, "wb") as out:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(pin.url, timeout=30) as response:
                while block := response.read(1 << 16):
                    digest.update(block)
                    out.write(block)
        except (urllib.error.URLError, OSError) as exc:
            raise ZooError(f"could not download {pin.filename} ({exc})", where=pin.url,
                           hint=f"download it by hand, check its sha256 is {pin.sha256}, "
                                f"and put it at {dest} (or pass its path)") from None
        actual = digest.hexdigest()
        if actual != pin.sha256:
            raise IntegrityError(f"{pin.filename}: sha256 {actual} is not the pinned {pin.sha256}", where=pin.url,
                                 hint="the upstream file changed or the download was corrupted; nothing was kept. "
                                      f"Put a copy with sha256 {pin.sha256} at {dest}, or pass a vocab.txt path")
    return dest


def read_vocab(path: str | os.PathLike) -> list[str]:
    """Tokens of a vocab file in id order.

    Lines are split on ``\\n`` only: the bert vocabulary holds a token made of
    U+2028 (a line separator to ``str.splitlines``) and the CLUE file has no
    trailing newline. A trailing ``\\r`` is dropped, as BERT's loader would.
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    tokens = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not tokens:
        raise ZooError("the vocab file has no tokens", where=str(path))
    return tokens
