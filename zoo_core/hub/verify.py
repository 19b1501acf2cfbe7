"""Verification shared by ``pull`` and ``pull_repo``: hash what is in the cache, compare it with what was expected.

The client only checks sizes. Here every expected file's size and sha256 (or, for the non-LFS
files of an unpinned repo, its git blob sha1) is checked after the download; what passes is
recorded in the snapshot's :class:`~zoo_core.hub.cache.Marker`, so it is not hashed again until
the blob changes on disk. What fails is reported to the caller, which evicts it and raises the
:class:`~zoo_core.errors.IntegrityError` built by :func:`integrity_error`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import IntegrityError
from .cache import Marker, RepoCache
from .env import env_true


@dataclass(frozen=True)
class Expect:
    """What one file of a snapshot must be."""

    path: str
    size: int
    sha256: str | None = None  # checked when given
    git_sha1: str | None = None  # checked when given (non-LFS files listed by the tree API)


def hash_file(path: str, *, git_sha1: bool = False, bar=None) -> tuple[str, str | None, int]:
    """(sha256, git blob sha1 or None, size) of a file, read once; ``bar.update`` is called per chunk."""
    size = os.path.getsize(path)
    h = hashlib.sha256()
    g = hashlib.sha1(b"blob %d\0" % size) if git_sha1 else None
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            if g is not None:
                g.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return h.hexdigest(), g.hexdigest() if g is not None else None, size


class _NullBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


#: Show a "verifying" progress bar when more than this many bytes are to be hashed.
HASH_PROGRESS_MIN = 64 * 1024 * 1024


def hash_bar(total: int, progress: bool, desc: str):
    """A "verifying" progress bar for ``total`` bytes to hash; a no-op one when off or below the threshold."""
    if not progress or total < HASH_PROGRESS_MIN or env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        return _NullBar()
    from huggingface_hub.utils import tqdm

    # like the client's download bars: shown on a terminal (disable=None), forced on by TQDM_POSITION=-1
    disable = False if os.environ.get("TQDM_POSITION") == "-1" else None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=disable)


def verify(expects: Sequence[Expect], *, repo: RepoCache, commit: str, marker: Marker, progress: bool,
           known: dict | None = None) -> tuple[list[tuple[Expect, str]], list[Expect], list[tuple[Expect, str]]]:
    """Check present files against expectations; record good ones in ``marker`` (not saved here).

    Returns ``(bad, missing, served)``. ``bad``: ``[(expect, reason)]``, files whose bytes are damaged.
    ``served``: files whose bytes are exactly what the Hub said they are (the cache names each blob by
    the Hub's own hash, its ETag: the LFS sha256, or the git blob sha1) but not what was expected, so the
    expectation (a registry pin) is what is wrong, and the file must not be deleted: another pin may
    vouch for it. Files the marker already vouches for are not re-hashed, nor are those in ``known``
    (``{FileStat: (sha256, git_sha1)}``, hashed as they arrived) whose blob has not changed since.
    """
    bad, missing, served, todo = [], [], [], []
    known = known or {}
    for e in expects:
        st = repo.stat(commit, e.path)
        if st is None:
            missing.append(e)
        elif marker.recorded(e.path, st, sha256=e.sha256, size=e.size, git_sha1=e.git_sha1):
            continue
        else:
            todo.append((e, st))
    bar = hash_bar(sum(st[1] for _, st in todo if st not in known), progress, f"verifying {repo.repo_id}")
    try:
        for e, st in todo:
            blob = os.path.basename(st[0])
            sha256, git_sha1 = (known or {}).get(st) or hash_file(st[0], git_sha1=wants_git_sha1(e, st), bar=bar)[:2]
            if e.sha256 is not None and sha256 != e.sha256:
                why = f"sha256 {sha256} != expected {e.sha256}"
            elif e.git_sha1 is not None and git_sha1 != e.git_sha1:
                why = f"git blob sha1 {git_sha1} != expected {e.git_sha1}"
            elif st[1] != e.size:
                why = f"size {st[1]} != expected {e.size}"
            else:
                marker.record(e.path, st, sha256, git_sha1)
                continue
            (served if blob in (sha256, git_sha1) else bad).append((e, why))
    finally:
        bar.close()
    return bad, missing, served


def wants_git_sha1(e: Expect, st) -> bool:
    """Whether a file's git blob sha1 is needed: expected, or its blob is named by one (a non-LFS file)."""
    return e.git_sha1 is not None or len(os.path.basename(st[0])) == 40


def pin_error(repo_id: str, commit: str, endpoint: str, served: list[tuple[Expect, str]]) -> IntegrityError:
    """The error for files that are what the Hub serves but not what the pin says: the pin is wrong."""
    names = ", ".join(e.path for e, _ in served)
    details = "; ".join(f"{e.path}: {why}" for e, why in served)
    return IntegrityError(
        f"the pin of {repo_id}@{commit[:12]} is wrong for {names}: the file is exactly what the Hub serves "
        f"(its content matches the Hub's own hash) but not what the registry pins ({details}); "
        "nothing was deleted",
        where=f"{endpoint}/{repo_id}/tree/{commit}",
        hint="fix the sha256/size in the registry entry (`zoo push` prints a correct pin for a folder); "
             "if the pin is right, the repo changed: pin the commit you meant",
    )


def integrity_error(repo_id: str, commit: str, endpoint: str, bad: list[tuple[Expect, str]],
                    against: str) -> IntegrityError:
    """The error for files that did not match ``against`` (the pin, or the hashes the Hub lists)."""
    names = ", ".join(e.path for e, _ in bad)
    details = "; ".join(f"{e.path}: {why}" for e, why in bad)
    return IntegrityError(
        f"{names} from {repo_id}@{commit[:12]} does not match {against} ({details}); "
        "the bad download was removed from the cache",
        where=f"{endpoint}/{repo_id}/tree/{commit}",
        hint="pull again; if it fails again, the Hub (or the mirror in HF_ENDPOINT) serves other bytes than the "
             "registry pins: check the mirror, or update the pin if the repo changed on purpose",
    )
