"""The local hub's repo and commit store: content-addressed blobs, and one JSON file per repo.

Storage under ``root``: ``blobs/<sha256>`` (content addressed) and one JSON file per repo
(``repos/<type>s/<repo_id>.json``) with its branches and commits, so a hub can be reopened
from the same folder. Every ``publish`` makes a new immutable commit; older commits stay
servable by sha; the branch moves. Every file is written atomically (``zoo_core.files``),
without fsync: this is a test fixture, and a reader must only never see half a file.

:class:`RepoStore` is the only way in. Each public method takes the store's lock for the
whole of what it does and hands out immutable values (:class:`File`, :class:`Snapshot`), so
the HTTP handler, which runs one thread per connection, never locks anything itself nor
touches a mutable repo. Refusals are :class:`HubError` s carrying the status and
``X-Error-Code`` the Hub answers with, which the handler sends as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from zoo_core.files import atomic_file, write_bytes, write_text

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz",
    ".h5", ".onnx", ".msgpack", ".gguf", ".model", ".zip", ".tar", ".gz", ".arrow", ".parquet",
)
#: the ``.gitattributes`` a repo created over HTTP starts with (as on the Hub)
GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pth filter=lfs diff=lfs merge=lfs -text\n"
    b"*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.model filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data`` as a blob (what ``git hash-object`` prints)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in a git tree for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def check_repo_id(repo_id: str) -> None:
    """Raise ValueError unless ``repo_id`` is ``name`` or ``org/name`` with no empty, ``.`` or ``..`` part."""
    parts = repo_id.split("/")
    if not 1 <= len(parts) <= 2 or any(not p or p in (".", "..") for p in parts):
        raise ValueError(f"invalid repo id {repo_id!r}")


def clean_path(path: str) -> str:
    """``path`` as a relative POSIX path inside a repo; ValueError if it is absolute or climbs out."""
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"invalid path in repo: {path!r}")
    return p.as_posix()


class HubError(Exception):
    """A refusal, as the Hub words it: HTTP ``status``, ``message`` (X-Error-Message), ``code`` (X-Error-Code)."""

    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}


class RepoExistsError(ValueError):
    """``create_repo(exist_ok=False)`` of a repo that exists."""


@dataclass(frozen=True)
class File:
    """One file of a commit; its content is the blob ``sha256``."""

    sha256: str
    size: int
    git_sha1: str  # of the content (regular files) -- LFS files are listed with their pointer's sha1
    lfs: bool

    @property
    def etag(self) -> str:
        """What the resolve endpoint advertises: sha256 for LFS files, git blob sha1 otherwise (as the Hub does)."""
        return self.sha256 if self.lfs else self.git_sha1

    @property
    def tree_oid(self) -> str:
        return git_blob_sha1(lfs_pointer(self.sha256, self.size)) if self.lfs else self.git_sha1

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "size": self.size, "git_sha1": self.git_sha1, "lfs": self.lfs}


@dataclass
class Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, File]
    timestamp: float

    def to_json(self) -> dict:
        return {"sha": self.sha, "parent": self.parent, "message": self.message, "timestamp": self.timestamp,
                "files": {p: f.to_json() for p, f in self.files.items()}}

    @classmethod
    def from_json(cls, d: dict) -> Commit:
        return cls(sha=d["sha"], parent=d.get("parent"), message=d.get("message", ""),
                   timestamp=d.get("timestamp", 0.0),
                   files={p: File(**f) for p, f in d.get("files", {}).items()})


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {"repo_id": self.repo_id, "repo_type": self.repo_type, "private": self.private,
                "created": self.created, "branches": self.branches,
                "commits": {s: c.to_json() for s, c in self.commits.items()}}

    @classmethod
    def from_json(cls, d: dict) -> Repo:
        return cls(repo_id=d["repo_id"], repo_type=d["repo_type"], private=d.get("private", False),
                   created=d.get("created", 0.0), branches=dict(d.get("branches", {})),
                   commits={s: Commit.from_json(c) for s, c in d.get("commits", {}).items()})


@dataclass(frozen=True)
class Snapshot:
    """A repo at one commit, copied out under the store's lock: safe to use after the lock is gone."""

    repo_id: str
    repo_type: str
    private: bool
    created: float
    commit: str
    timestamp: float
    files: Mapping[str, File]


class RepoStore:
    """Repos, commits and blobs under ``root``; thread-safe (one re-entrant lock around every public method)."""

    def __init__(self, root: str | os.PathLike, *, lfs_threshold: int = 10 * 1024 * 1024,
                 lfs_suffixes: Iterable[str] = DEFAULT_LFS_SUFFIXES):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        self.lfs_threshold = lfs_threshold
        self.lfs_suffixes = tuple(s.lower() for s in lfs_suffixes)
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._counter = 0
        self._load()

    # ------------------------------------------------------------------ blobs (content addressed, no lock needed)

    def blob_path(self, sha256: str) -> Path:
        """Where the content ``sha256`` is (or would be) stored."""
        return self.root / "blobs" / sha256

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def is_lfs(self, path: str, size: int) -> bool:
        """Whether a file is served (and listed) LFS-style: large, or with a binary suffix."""
        return size >= self.lfs_threshold or path.lower().endswith(self.lfs_suffixes)

    def put_bytes(self, path: str, data: bytes) -> File:
        """Store ``data`` (once per content) and describe it as file ``path`` of a commit."""
        sha256 = hashlib.sha256(data).hexdigest()
        dst = self.blob_path(sha256)
        if not dst.exists():
            write_bytes(dst, data, fsync=False)
        return File(sha256=sha256, size=len(data), git_sha1=git_blob_sha1(data), lfs=self.is_lfs(path, len(data)))

    def put_file(self, path: str, src: Path) -> File:
        """Store the content of file ``src`` and describe it as file ``path`` of a commit.

        The blob's name is its sha256, known only once the file is read, so the file is read twice:
        once to hash it, once to copy it into place (checked against the first hash).
        """
        size = src.stat().st_size
        h256 = hashlib.sha256()
        h1 = hashlib.sha1(b"blob %d\0" % size)
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h256.update(chunk)
                h1.update(chunk)
        sha256 = h256.hexdigest()
        with open(src, "rb") as f, atomic_file(self.blob_path(sha256), "wb", fsync=False) as out:
            again = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                again.update(chunk)
                out.write(chunk)
            if again.hexdigest() != sha256:
                raise ValueError(f"{src} changed while it was being published")
        return File(sha256=sha256, size=size, git_sha1=h1.hexdigest(), lfs=self.is_lfs(path, size))

    # ------------------------------------------------------------------ repos

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool = False, exist_ok: bool = True,
                    initial: Mapping[str, File] | None = None, message: str = "initial commit") -> bool:
        """Create a repo; with ``initial`` files, also its first commit on ``main``. False if it existed.

        Raises ValueError for a bad repo id, RepoExistsError if it exists and not ``exist_ok``.
        """
        check_repo_id(repo_id)
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                if not exist_ok:
                    raise RepoExistsError(f"repo {repo_id} exists")
                return False
            repo = self._repos[key] = Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            if initial is not None:
                self._commit(repo, "main", dict(initial), message)
            else:
                self._save(repo)
            return True

    def publish(self, repo_type: str, repo_id: str, files: Mapping[str, File], *, branch: str = "main",
                message: str = "publish", private: bool | None = None) -> str:
        """Make a new commit on ``branch`` whose tree is exactly ``files`` (repo created if needed); its sha."""
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = self._repos[(repo_type, repo_id)] = Repo(repo_id=repo_id, repo_type=repo_type)
            if private is not None:
                repo.private = private
            return self._commit(repo, branch, dict(files), message)

    def delete_revision(self, repo_type: str, repo_id: str, revision: str) -> None:
        """Make ``revision`` unknown: a branch is deleted; a commit is removed (with branches pointing at it)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            if revision in repo.branches:
                del repo.branches[revision]
            elif revision in repo.commits:
                del repo.commits[revision]
                for b in [b for b, s in repo.branches.items() if s == revision]:
                    del repo.branches[b]
            else:
                raise KeyError(f"{repo_id} has no revision {revision!r}")
            self._save(repo)

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        """Remove a repo (its blobs stay in the content store); KeyError if there is none."""
        with self._lock:
            repo = self._repos.pop((repo_type, repo_id))
            self._repo_json(repo).unlink(missing_ok=True)

    def set_private(self, repo_type: str, repo_id: str, private: bool) -> None:
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            repo.private = private
            self._save(repo)

    # ------------------------------------------------------------------ reads

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> str:
        """The commit sha a branch (or commit) names."""
        with self._lock:
            return self._resolve(self._get_repo(repo_type, repo_id), revision)

    def snapshot(self, repo_type: str, repo_id: str, revision: str, *, can_read_private: bool = True) -> Snapshot:
        """The repo at ``revision``: 404 if the repo is unknown, 401 if private and not ``can_read_private``,
        then 404 if the revision is unknown (the order the Hub checks in)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            if repo.private and not can_read_private:
                raise HubError(401, "Repository Not Found (private: a valid token is needed)", "RepoNotFound")
            sha = self._resolve(repo, revision)
            commit = repo.commits[sha]
            return Snapshot(repo_id=repo.repo_id, repo_type=repo.repo_type, private=repo.private,
                            created=repo.created, commit=sha, timestamp=commit.timestamp, files=dict(commit.files))

    def tip(self, repo_type: str, repo_id: str, revision: str) -> tuple[str | None, dict[str, File]]:
        """What a commit onto ``revision`` would build on: (head sha, its files); (None, {}) for a new branch."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            head = self._resolve(repo, revision) if revision in repo.branches or COMMIT_RE.match(revision) else None
            return head, dict(repo.commits[head].files) if head else {}

    # ------------------------------------------------------------------ commits over HTTP

    def commit_operations(self, repo_type: str, repo_id: str, revision: str, operations: Iterable[dict], *,
                          message: str, parent_commit: str | None = None,
                          new_files: Mapping[str, File] | None = None) -> str:
        """Apply the operations of a Hub commit payload to branch ``revision``, atomically; returns the new sha.

        ``operations`` are the payload's ``{"key", "value"}`` entries: ``file`` (content already stored,
        described in ``new_files`` by clean path), ``lfsFile`` (an uploaded LFS object), ``deletedFile``,
        ``deletedFolder``; other keys are ignored. Nothing changes if one is refused (HubError).
        """
        new_files = new_files or {}
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            if revision not in repo.branches and (repo.branches or COMMIT_RE.match(revision)):
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.branches.get(revision)
            if parent_commit and parent_commit != head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[head].files) if head else {}
            for o in operations:
                key, v = o.get("key"), o.get("value", {})
                if key == "file":
                    files[clean_path(v["path"])] = new_files[clean_path(v["path"])]
                elif key == "lfsFile":
                    try:
                        path = clean_path(v["path"])
                    except ValueError as e:
                        raise HubError(400, str(e)) from e
                    oid = v.get("oid", "")
                    blob = self.blob_path(oid)
                    if not re.fullmatch(r"[0-9a-f]{64}", oid) or not blob.is_file():
                        raise HubError(422, f"LFS object {oid} was not uploaded")
                    size = blob.stat().st_size
                    git_sha1 = git_blob_sha1(blob.read_bytes()) if size < (64 << 20) else ""
                    files[path] = File(sha256=oid, size=size, git_sha1=git_sha1, lfs=True)
                elif key == "deletedFile":
                    if v.get("path") not in files:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[v["path"]]
                elif key == "deletedFolder":
                    prefix = v.get("path", "").rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
            return self._commit(repo, revision, files, message)

    # ------------------------------------------------------------------ internals (callers hold the lock)

    def _load(self) -> None:
        repos_dir = self.root / "repos"
        if not repos_dir.is_dir():
            return
        for p in repos_dir.rglob("*.json"):
            try:
                repo = Repo.from_json(json.loads(p.read_text()))
            except (OSError, ValueError, KeyError):
                continue
            self._repos[(repo.repo_type, repo.repo_id)] = repo

    def _repo_json(self, repo: Repo) -> Path:
        return self.root / "repos" / f"{repo.repo_type}s" / f"{repo.repo_id}.json"

    def _save(self, repo: Repo) -> None:
        write_text(self._repo_json(repo), json.dumps(repo.to_json()), fsync=False)

    def _commit(self, repo: Repo, branch: str, files: dict[str, File], message: str) -> str:
        parent = repo.branches.get(branch)
        self._counter += 1
        h = hashlib.sha1()
        h.update(json.dumps([repo.repo_type, repo.repo_id, parent, message, time.time_ns(), self._counter,
                             os.getpid(), sorted((p, f.sha256) for p, f in files.items())]).encode())
        sha = h.hexdigest()
        repo.commits[sha] = Commit(sha=sha, parent=parent, message=message, files=dict(files),
                                   timestamp=time.time())
        repo.branches[branch] = sha
        self._save(repo)
        return sha

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository Not Found: {repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if COMMIT_RE.match(revision) and revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
