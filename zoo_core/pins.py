"""What the registry pins for a model on the Hub: repo, commit, and every file's sha256 and size."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import UnsafeFileError

#: Weight and array formats built on pickle, which can run arbitrary code when loaded; the zoo never reads them.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".npy", ".npz", ".joblib")


def is_pickle(path: str) -> bool:
    """Whether a file name has a pickle-based format's suffix."""
    return str(path).lower().endswith(PICKLE_SUFFIXES)


def refuse_pickle(path: str, where: str) -> None:
    """Raise UnsafeFileError for a pickle-based file."""
    if is_pickle(path):
        raise UnsafeFileError(
            f"refusing {path}: pickle-based files can run arbitrary code when loaded",
            where=where,
            hint="publish and pin the weights as .safetensors (safetensors.torch.save_file) instead",
        )


def is_dot_part(part: str) -> bool:
    """An empty, ``.`` or ``..`` path part, also when percent-encoded (``%2e%2e``) or a look-alike that
    Unicode normalisation turns into dots (``‥``, one character): a server or a filesystem may decode either."""
    import unicodedata
    from urllib.parse import unquote

    return any(form in ("", ".", "..") for form in (part, unquote(part), unicodedata.normalize("NFKC", unquote(part))))


#: Longest file name part, and whole repo path, in UTF-8 bytes: a part is one file name on disk (255 on
#: every common filesystem), and the path lands under the cache folder, within the system's 4096.
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024


def check_repo_path(path: str, where: str, *, length: bool = True) -> None:
    """Raise UnsafeFileError for a repo file path that could land outside the repo's folder.

    With ``length``, also raise ZooError for a path too long to be stored on disk (``MAX_NAME_BYTES``
    per part, ``MAX_PATH_BYTES`` in all), before anything is downloaded or written.
    """
    bad = (
        not isinstance(path, str) or not path or "\\" in path or "\0" in path or path.startswith(("/", "~"))
        or re.match(r"^[A-Za-z]:", path) is not None
        or any(is_dot_part(part) for part in path.split("/"))
    )
    if bad:
        raise UnsafeFileError(
            f"refusing file path {path!r}: it escapes the repository",
            where=where,
            hint="a repo path must be relative, without '..' or absolute parts; fix the pin or the repo",
        )
    if length:
        longest = max(len(part.encode("utf-8", "surrogatepass")) for part in path.split("/"))
        total = len(path.encode("utf-8", "surrogatepass"))
        if longest > MAX_NAME_BYTES or total > MAX_PATH_BYTES:
            from .errors import ZooError

            raise ZooError(
                f"file path {_short(path)} is too long to store ({total} bytes, a part of {longest}; at most "
                f"{MAX_NAME_BYTES} per part and {MAX_PATH_BYTES} in all)",
                where=where, hint="rename the file in the repo (and the pin), or leave it out of the pull")


def _short(text: str, keep: int = 60) -> str:
    """``text`` quoted, its middle cut out when it is long (error messages stay readable)."""
    return repr(text) if len(text) <= 2 * keep else repr(text[:keep]) + f" … ({len(text)} characters) … " + \
        repr(text[-keep:])


@dataclass(frozen=True)
class FilePin:
    """One file of a pinned repo."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class HubPin:
    """A Hub repo at one commit, with the expected content of every file we use."""

    repo_id: str
    revision: str  # a 40-hex commit
    files: tuple[FilePin, ...] = field(default_factory=tuple)
    repo_type: str = "model"

    @classmethod
    def from_dict(cls, d: dict) -> HubPin:
        """Build from a registry entry's ``hub`` mapping (already schema-validated)."""
        files = tuple(FilePin(path=f["path"], sha256=f["sha256"], size=int(f["size"])) for f in d.get("files", []))
        return cls(repo_id=d["repo_id"], revision=d["revision"], files=files, repo_type=d.get("repo_type", "model"))
