"""Where a repo lives in the Hugging Face cache, and the zoo's verification markers.

Files land in the standard Hugging Face cache (``<HF_HUB_CACHE>/models--org--name/``:
``blobs/``, ``snapshots/<commit>/``, ``refs/``; locks under ``<cache>/.locks/``), so
``hf cache ls`` sees them. :class:`RepoCache` names those paths for one repo and does
the few writes the zoo makes there itself: removing a bad file (:meth:`RepoCache.evict`),
cleaning partial downloads of killed processes, writing a ref.

A verified snapshot is recorded in a small JSON :class:`Marker` under
``$ZOO_HOME/verified/<hash of the cache path>/<repo folder>/<commit>.json`` (default
``~/.cache/zoo``) holding each blob's size and mtime, so a later ``pull`` of the same pin
makes no network request and hashes nothing unless a blob changed on disk. Markers are
kept outside the HF cache so that ``hf cache`` tools never see (or delete) foreign files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZooError
from ..files import write_text
from ..store import zoo_home
from .checks import COMMIT_RE, check_revision

logger = logging.getLogger(__package__)  # "zoo_core.hub", as before the split

#: (real blob path, size, mtime_ns) of a snapshot file, as :func:`stat_file` returns it
FileStat = tuple[str, int, int]

MARKER_VERSION = 1


def stat_file(snapshot: Path, path: str) -> FileStat | None:
    """(real blob path, size, mtime_ns) of a snapshot file, or None if missing / dangling."""
    p = snapshot / path
    try:
        real = os.path.realpath(p)
        st = os.stat(real)
    except OSError:
        return None
    if not os.path.isfile(real):
        return None
    return real, st.st_size, st.st_mtime_ns


class Marker:
    """The verification record of one cached snapshot: what was verified, and the blob it was in then.

    ``files`` maps a repo path to ``{"blob", "size", "mtime_ns", "sha256"[, "git_sha1"]}``. A record
    vouches for a file only while the snapshot link still leads to the same blob with the same size and
    mtime; any change on disk (a new download, an edit, a truncation) makes the file unverified again.
    Other keys hold what the snapshot is (``repo_id``, ``commit``, ...) and, for unpinned repos, the file
    list ``pull_repo`` chose (``manifest``, ``patterns``).

    A marker that is missing, unreadable or of another version loads as an empty one: the worst a lost
    marker costs is hashing the files again.
    """

    def __init__(self, path: str | os.PathLike, data: dict | None = None):
        self.path = Path(path)
        self.data: dict = data if data is not None else {"version": MARKER_VERSION, "files": {}}

    @classmethod
    def load(cls, path: str | os.PathLike) -> Marker:
        """Read the marker at ``path``; an empty one if it is missing, unreadable or of another version."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
            if data.get("version") == MARKER_VERSION and isinstance(data.get("files"), dict):
                return cls(path, data)
        except (OSError, ValueError, AttributeError):
            pass
        return cls(path)

    def save(self) -> bool:
        """Write the marker atomically (a reader sees the old one or the new one, never a part).

        Returns False, with a warning, if it cannot be written: a read-only ZOO_HOME only costs
        re-hashing next time. Not fsynced: a marker lost in a crash is only a re-hash too.
        """
        try:
            write_text(self.path, json.dumps(self.data, indent=1, sort_keys=True), fsync=False)
        except (OSError, ZooError) as exc:  # the atomic writer names filesystem failures as ZooErrors
            logger.warning("could not record verification in %s: %s", self.path, exc)
            return False
        return True

    @property
    def files(self) -> dict[str, dict]:
        return self.data["files"]

    def get(self, key: str, default=None):
        """A top-level field (``manifest``, ``patterns``, ``commit``, ...)."""
        return self.data.get(key, default)

    def stamp(self, repo: RepoCache, commit: str, extra: dict | None = None) -> Marker:
        """Set what the marker is about (repo, commit, cache folder) and any ``extra`` fields; returns self."""
        self.data.update(version=MARKER_VERSION, repo_id=repo.repo_id, repo_type=repo.repo_type, commit=commit,
                         cache_dir=str(repo.cache.resolve()))
        if extra:
            self.data.update(extra)
        return self

    def record(self, path: str, stat: FileStat, sha256: str, git_sha1: str | None = None) -> None:
        """Remember that ``path``, in the blob ``stat`` describes, was hashed to ``sha256`` (and ``git_sha1``)."""
        rec = {"blob": stat[0], "size": stat[1], "mtime_ns": stat[2], "sha256": sha256}
        if git_sha1 is not None:
            rec["git_sha1"] = git_sha1
        self.files[path] = rec

    def recorded(self, path: str, stat: FileStat | None, *, sha256: str | None = None, size: int | None = None,
                 git_sha1: str | None = None) -> bool:
        """Whether this exact blob (same path, size, mtime) was verified, with this sha256 / size / git sha1."""
        rec = self.files.get(path)
        if rec is None or stat is None:
            return False
        if (rec.get("blob"), rec.get("size"), rec.get("mtime_ns")) != stat:
            return False
        if sha256 is not None and rec.get("sha256") != sha256:
            return False
        if size is not None and rec.get("size") != size:
            return False
        return git_sha1 is None or rec.get("git_sha1") == git_sha1

    def forget(self, path: str) -> bool:
        """Drop what the marker says about ``path`` (in memory); True if it said anything."""
        return self.files.pop(path, None) is not None


@dataclass(frozen=True)
class RepoCache:
    """One repo in one Hugging Face hub cache: the paths of its storage, locks and markers.

    Replaces the ``(cache, repo_id, repo_type)`` triple; build it from a checked repo id (see
    ``checks.check_repo_id``), since the folder names come from it.
    """

    cache: Path
    repo_id: str
    repo_type: str

    # ------------------------------------------------------------------ layout

    @property
    def folder_name(self) -> str:
        """``models--org--name``: the repo's folder name in the cache (and under ``.locks`` and the markers)."""
        return "--".join([f"{self.repo_type}s", *self.repo_id.split("/")])

    @property
    def storage(self) -> Path:
        return self.cache / self.folder_name

    @property
    def blobs(self) -> Path:
        return self.storage / "blobs"

    @property
    def snapshots(self) -> Path:
        return self.storage / "snapshots"

    @property
    def refs(self) -> Path:
        return self.storage / "refs"

    def snapshot(self, commit: str) -> Path:
        return self.snapshots / commit

    def stat(self, commit: str, path: str) -> FileStat | None:
        """(real blob path, size, mtime_ns) of a file of snapshot ``commit``, or None if missing / dangling."""
        return stat_file(self.snapshot(commit), path)

    def lock_path(self, blob_name: str) -> Path:
        """The lock ``huggingface_hub`` holds while it writes blob ``blob_name`` (an etag)."""
        return self.cache / ".locks" / self.folder_name / f"{blob_name}.lock"

    def lock(self, blob_name: str):
        """The client's own lock for ``blob_name`` (a ``WeakFileLock``), so we never race its downloads."""
        from huggingface_hub.utils import WeakFileLock

        lock_path = self.lock_path(blob_name)
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return WeakFileLock(lock_path)

    # ------------------------------------------------------------------ markers

    @property
    def markers_dir(self) -> Path:
        """The folder of this repo's markers: keyed by the resolved cache path, so two caches never mix."""
        key = hashlib.sha1(str(self.cache.resolve()).encode()).hexdigest()[:16]
        return zoo_home() / "verified" / key / self.folder_name

    def marker_path(self, commit: str) -> Path:
        return self.markers_dir / f"{commit}.json"

    def marker(self, commit: str) -> Marker:
        """The verification marker of snapshot ``commit`` (empty if none was written)."""
        return Marker.load(self.marker_path(commit))

    def forget_markers(self, commit: str | None = None) -> None:
        """Delete the marker of ``commit``, or (``None``) every marker of the repo."""
        if commit is None:
            shutil.rmtree(self.markers_dir, ignore_errors=True)
        else:
            self.marker_path(commit).unlink(missing_ok=True)

    # ------------------------------------------------------------------ refs

    def read_ref(self, revision: str) -> str | None:
        """The commit the cached ref ``revision`` (a branch or tag name) points to; None if there is none."""
        ref = self._ref_path(revision)
        if not ref.is_file():
            return None
        commit = ref.read_text().strip()
        return commit if COMMIT_RE.match(commit) else None

    def write_ref(self, revision: str, commit: str) -> None:
        """Record that branch/tag ``revision`` is ``commit`` (as the client does), so it resolves offline.

        Nothing is written for a commit sha; failures are ignored (the ref is a convenience).
        """
        if revision == commit or COMMIT_RE.match(revision):
            return
        ref = self._ref_path(revision)
        try:
            if not ref.is_file() or ref.read_text() != commit:
                write_text(ref, commit)
        except OSError:
            pass

    def _ref_path(self, revision: str) -> Path:
        """The file of ref ``revision``, refusing names that would leave ``refs/`` (checked again here,
        whoever the caller is, because this is where a hostile name would turn into a write)."""
        check_revision(revision, where=f"{self.repo_id}@{revision}")
        ref = self.refs / revision
        if not os.path.abspath(ref).startswith(os.path.abspath(self.refs) + os.sep):
            raise ZooError(f"ref {revision!r} would be written outside the cache", where=str(self.refs))
        return ref

    def drop_refs_to(self, commit: str) -> None:
        """Delete every ref naming ``commit`` (its snapshot is gone)."""
        if not self.refs.is_dir():
            return
        for ref in self.refs.rglob("*"):
            try:
                if ref.is_file() and ref.read_text().strip() == commit:
                    ref.unlink()
            except OSError:
                pass

    # ------------------------------------------------------------------ removal

    def evict(self, commit: str, path: str) -> None:
        """Remove a bad file from the cache: its blob, every snapshot link to that blob, emptied folders, stale refs.

        The blob is removed under the client's lock for it, so a concurrent download of the same blob
        is not cut from under its feet. The marker forgets the file too.
        """
        snaps = self.snapshots
        link = snaps / commit / path
        blobs_dir = self.blobs.resolve() if self.blobs.exists() else None
        real = Path(os.path.realpath(link))
        in_blobs = blobs_dir is not None and real.parent == blobs_dir
        touched: set[Path] = {link.parent}
        if in_blobs:
            with self.lock(real.name):
                if snaps.is_dir():
                    for other in snaps.rglob("*"):
                        if other.is_symlink() and Path(os.path.realpath(other)) == real:
                            other.unlink(missing_ok=True)
                            touched.add(other.parent)
                real.unlink(missing_ok=True)
        if os.path.lexists(link):
            link.unlink()
        # prune emptied folders, and snapshots that became empty (with the refs naming them)
        for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
            d = folder
            while snaps in d.parents:
                try:
                    d.rmdir()
                except OSError:
                    break
                if d.parent == snaps:
                    self.drop_refs_to(d.name)
                    break
                d = d.parent
        # forget what the verification marker said about it
        marker = self.marker(commit)
        if marker.forget(path):
            marker.save()

    def clean_incompletes(self) -> None:
        """Remove partial downloads left by killed processes, for blobs that are now complete.

        Each ``<etag>.<uuid>.incomplete`` belongs to one download; its ``.locks/<repo>/<etag>.lock`` is held
        while it runs, so if we can take that lock at once, nobody is writing it.
        """
        from filelock import FileLock, Timeout

        blobs = self.blobs
        if not blobs.is_dir():
            return
        for inc in blobs.glob("*.incomplete"):
            etag = inc.name.split(".", 1)[0]
            if not (blobs / etag).is_file():
                continue
            try:
                with FileLock(str(self.lock_path(etag)), timeout=0):
                    inc.unlink(missing_ok=True)
            except (Timeout, OSError):
                pass
