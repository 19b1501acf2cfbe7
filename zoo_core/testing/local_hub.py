"""A loopback Hugging Face Hub for tests: the real ``huggingface_hub`` client talks to it over 127.0.0.1.

``LocalHub`` serves model (and dataset) repos from a folder and speaks the parts of
the Hub's HTTP protocol that ``hf_hub_download``, ``snapshot_download``,
``HfApi.list_repo_tree`` / ``repo_info`` and ``HfApi.create_repo`` /
``upload_folder`` / ``create_commit`` use (huggingface_hub 2.4.0; see
``shared/reference/hub-protocol.md``). It never sends ``X-Xet-Hash``, so the
client always stays on plain HTTP.

Typical use::

    with LocalHub(tmp_path / "hub") as hub:
        commit = hub.publish("org/tiny", {"config.json": b"{}", "model.safetensors": data})
        pin = hub.pin("org/tiny")              # a zoo_core.pins.HubPin at that commit
        os.environ["HF_ENDPOINT"] = hub.endpoint
        ...
        hub.corrupt("org/tiny", "model.safetensors")           # same length, other bytes
        hub.drop_connection("org/tiny", "model.safetensors", after_bytes=1000)
        hub.stall("org/tiny", "model.safetensors", after_bytes=1000)  # hang until release_stalls()
        assert not [r for r in hub.requests if r[0] == "GET" and "/resolve/" in r[1]]

Storage under ``root``: ``blobs/<sha256>`` (content addressed) and one JSON file
per repo (``repos/<type>s/<repo_id>.json``) with its branches and commits, so a
hub can be reopened from the same folder. Every ``publish`` makes a new
immutable commit; older commits stay servable by sha; the branch moves.

Only the standard library is used (``http.server``), plus ``zoo_core.pins`` for
``pin()``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

__all__ = ["LocalHub", "RequestRecord", "git_blob_sha1", "lfs_pointer"]

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
API_ACTIONS = {"revision", "tree", "preupload", "commit", "paths-info"}
DEFAULT_LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz",
    ".h5", ".onnx", ".msgpack", ".gguf", ".model", ".zip", ".tar", ".gz", ".arrow", ".parquet",
)
DEFAULT_TOKEN = "hf_localhub_test_token"
_CORRUPT_TABLE = bytes(b ^ 0xFF for b in range(256))  # every byte changes, the length does not
GITATTRIBUTES = (
    "*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
    "*.bin filter=lfs diff=lfs merge=lfs -text\n"
    "*.pt filter=lfs diff=lfs merge=lfs -text\n"
    "*.pth filter=lfs diff=lfs merge=lfs -text\n"
    "*.ckpt filter=lfs diff=lfs merge=lfs -text\n"
    "*.model filter=lfs diff=lfs merge=lfs -text\n"
).encode()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data`` as a blob (what ``git hash-object`` prints)."""
    h = hashlib.sha1(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file that stands in a git tree for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now_iso(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


@dataclass(frozen=True)
class _File:
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
class _Commit:
    sha: str
    parent: str | None
    message: str
    files: dict[str, _File]
    timestamp: float

    def to_json(self) -> dict:
        return {"sha": self.sha, "parent": self.parent, "message": self.message, "timestamp": self.timestamp,
                "files": {p: f.to_json() for p, f in self.files.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "_Commit":
        return cls(sha=d["sha"], parent=d.get("parent"), message=d.get("message", ""),
                   timestamp=d.get("timestamp", 0.0),
                   files={p: _File(**f) for p, f in d.get("files", {}).items()})


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        return {"repo_id": self.repo_id, "repo_type": self.repo_type, "private": self.private,
                "created": self.created, "branches": self.branches,
                "commits": {s: c.to_json() for s, c in self.commits.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "_Repo":
        return cls(repo_id=d["repo_id"], repo_type=d["repo_type"], private=d.get("private", False),
                   created=d.get("created", 0.0), branches=dict(d.get("branches", {})),
                   commits={s: _Commit.from_json(c) for s, c in d.get("commits", {}).items()})


@dataclass
class RequestRecord:
    """One request the hub received (``hub.request_log``)."""

    method: str
    path: str  # URL path, percent-decoded, without the query string
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


@dataclass
class _Stall:
    after_bytes: int
    times: int | None
    event: threading.Event = field(default_factory=threading.Event)


class _HttpError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None,
                 extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}
        self.extra = extra or {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, hub: "LocalHub"):
        self.hub = hub
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, handler)

    def process_request(self, request, client_address):
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)


class LocalHub:
    """A Hub-compatible HTTP server on 127.0.0.1 serving repos stored under ``root``.

    Args:
        root: folder for blobs and repo metadata; a temporary folder (removed by
            ``stop()``) when omitted. Reopening a hub on the same folder serves the
            same repos.
        port: 0 picks a free port.
        page_size: entries per page of ``/api/.../tree`` listings (``Link: rel="next"``
            pagination); make it small to test pagination.
        lfs_threshold / lfs_suffixes: which files are served LFS-style (sha256 ETag,
            ``X-Linked-Etag``/``X-Linked-Size``, ``lfs`` in tree entries).
        token: the token that opens private repos and write endpoints
            (``Authorization: Bearer <token>``).
        require_write_token: refuse create/commit/upload without ``token``.
        upload_mode: what the preupload endpoint answers for LFS-eligible files:
            ``"regular"`` (content inlined in the commit; works whatever the
            client's Xet setting) or ``"lfs"`` (the LFS batch + PUT protocol; the
            client must run with ``HF_HUB_DISABLE_XET=1``).
        chunk_size: bytes per write when streaming a file.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = 1000,
        lfs_threshold: int = 10 * 1024 * 1024,
        lfs_suffixes: Iterable[str] = DEFAULT_LFS_SUFFIXES,
        token: str = DEFAULT_TOKEN,
        require_write_token: bool = True,
        upload_mode: str = "regular",
        chunk_size: int = 64 * 1024,
    ):
        if upload_mode not in ("regular", "lfs"):
            raise ValueError("upload_mode must be 'regular' or 'lfs'")
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="localhub-")) if root is None else Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        self.host, self._port = host, port
        self.page_size = page_size
        self.lfs_threshold = lfs_threshold
        self.lfs_suffixes = tuple(s.lower() for s in lfs_suffixes)
        self.token = token
        self.require_write_token = require_write_token
        self.upload_mode = upload_mode
        self.chunk_size = chunk_size

        self._lock = threading.RLock()
        self._sent_cond = threading.Condition(self._lock)
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._log: list[RequestRecord] = []
        self._corrupt: dict[tuple, int | None] = {}
        self._drops: dict[tuple, list[int]] = {}  # key -> [after_bytes, times_left]
        self._stalls: dict[tuple, _Stall] = {}
        self._all_stalls: list[_Stall] = []
        self._failures: dict[tuple, list] = {}  # key -> [status, times_left, methods]
        self._sent: dict[tuple, int] = {}
        self._counter = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        #: set by the ``local_hub`` fixture: the isolated HF hub cache and ZOO_HOME of the test
        self.cache_dir: Path | None = None
        self.zoo_home: Path | None = None
        self._load()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "LocalHub":
        """Start serving in a background thread (idempotent). Returns self."""
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler, self)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"LocalHub:{server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release stalls, close open connections, join the thread; remove a temporary root."""
        server, self._server = self._server, None
        self.release_stalls()
        if server is not None:
            server.shutdown()
            with server.conn_lock:
                conns = list(server.connections)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalHub is not started")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``: what HF_ENDPOINT / ``endpoint=`` should be."""
        return f"http://{self.host}:{self.port}"

    def url(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> str:
        """The resolve URL of a file, as ``hf_hub_url`` builds it."""
        return (f"{self.endpoint}/{URL_PREFIX[repo_type]}{repo_id}/resolve/"
                f"{quote(revision, safe='')}/{quote(path)}")

    # ------------------------------------------------------------------ repos and commits

    def create_repo(self, repo_id: str, *, repo_type: str = "model", private: bool = False,
                    exist_ok: bool = True) -> None:
        """Create an empty repo (no commits, no branches) -- ``publish`` creates repos on its own."""
        _check_repo_id(repo_id)
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                if not exist_ok:
                    raise ValueError(f"repo {repo_id} exists")
                return
            self._repos[key] = _Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            self._save(self._repos[key])

    def publish(
        self,
        repo_id: str,
        source: str | os.PathLike | Mapping[str, bytes | str],
        *,
        message: str = "publish",
        branch: str = "main",
        repo_type: str = "model",
        private: bool | None = None,
        allow_unsafe_paths: bool = False,
    ) -> str:
        """Make a new commit on ``branch`` whose tree is exactly ``source``; returns its 40-hex sha.

        ``source`` is a folder (every file under it, ``.git`` excluded) or a mapping
        ``{path_in_repo: bytes | str}``. The repo is created if needed. Older
        commits stay servable by sha. ``allow_unsafe_paths=True`` accepts paths such as
        ``../evil.txt`` in a mapping, to test that clients refuse them.
        """
        _check_repo_id(repo_id)
        files: dict[str, _File] = {}
        if isinstance(source, Mapping):
            for path, data in source.items():
                path = path if allow_unsafe_paths and path else _clean_path(path)
                files[path] = self._store_bytes(path, data.encode() if isinstance(data, str) else bytes(data))
        else:
            folder = Path(source)
            if not folder.is_dir():
                raise ValueError(f"not a folder: {folder}")
            for p in sorted(folder.rglob("*")):
                rel = p.relative_to(folder).as_posix()
                if p.is_dir() or rel.split("/")[0] == ".git":
                    continue
                files[_clean_path(rel)] = self._store_file(rel, p)
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                repo = self._repos[(repo_type, repo_id)] = _Repo(repo_id=repo_id, repo_type=repo_type)
            if private is not None:
                repo.private = private
            sha = self._commit(repo, branch, files, message)
        return sha

    def delete_revision(self, repo_id: str, revision: str, *, repo_type: str = "model") -> None:
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

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        """Remove a repo (its blobs stay in the content store)."""
        with self._lock:
            repo = self._repos.pop((repo_type, repo_id))
            self._repo_json(repo).unlink(missing_ok=True)

    def set_private(self, repo_id: str, private: bool = True, *, repo_type: str = "model") -> None:
        """Make a repo private (readable only with ``Authorization: Bearer <hub.token>``) or public."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            repo.private = private
            self._save(repo)

    def resolve(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit sha a branch (or commit) names."""
        with self._lock:
            return self._resolve(self._get_repo(repo_type, repo_id), revision)

    def files(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> dict[str, bytes]:
        """Every file of a commit as ``{path: bytes}`` (the published content, never corrupted)."""
        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            commit = repo.commits[self._resolve(repo, revision)]
            entries = dict(commit.files)
        return {p: self._blob_path(f.sha256).read_bytes() for p, f in entries.items()}

    def pin(self, repo_id: str, revision: str = "main", *, repo_type: str = "model",
            paths: Iterable[str] | None = None):
        """A ``zoo_core.pins.HubPin`` of the commit ``revision`` names, with every file's sha256 and size.

        ``paths`` restricts the pin to some files (default: all of them).
        """
        from zoo_core.pins import FilePin, HubPin

        with self._lock:
            repo = self._get_repo(repo_type, repo_id)
            sha = self._resolve(repo, revision)
            entries = repo.commits[sha].files
            wanted = sorted(entries) if paths is None else list(paths)
            files = tuple(FilePin(path=p, sha256=entries[p].sha256, size=entries[p].size) for p in wanted)
        return HubPin(repo_id=repo_id, revision=sha, files=files, repo_type=repo_type)

    # ------------------------------------------------------------------ failure injection

    def corrupt(self, repo_id: str, path: str, *, times: int | None = None, repo_type: str = "model") -> None:
        """Serve other bytes of the same length for ``path`` (any revision), under unchanged metadata.

        Lasts ``times`` GETs (forever when None) or until ``heal()`` / ``clear_faults()``.
        """
        with self._lock:
            self._corrupt[(repo_type, repo_id, path)] = times

    def heal(self, repo_id: str, path: str, *, repo_type: str = "model") -> None:
        """Undo ``corrupt()`` for one file."""
        with self._lock:
            self._corrupt.pop((repo_type, repo_id, path), None)

    def drop_connection(self, repo_id: str, path: str, after_bytes: int, *, times: int = 1,
                        repo_type: str = "model") -> None:
        """On the next ``times`` GETs of ``path``: send headers and ``after_bytes`` of the body, then close."""
        with self._lock:
            self._drops[(repo_type, repo_id, path)] = [after_bytes, times]

    def stall(self, repo_id: str, path: str, after_bytes: int, *, times: int | None = 1,
              repo_type: str = "model") -> threading.Event:
        """On the next ``times`` GETs of ``path``: send ``after_bytes`` of the body, then hang.

        The hang ends when the returned event is set, on ``release_stalls()`` or on
        ``stop()``; the rest of the body is then sent (if the client is still there).
        Use ``wait_until_sent()`` to know when a client is mid-download.
        """
        st = _Stall(after_bytes=after_bytes, times=times)
        with self._lock:
            self._stalls[(repo_type, repo_id, path)] = st
            self._all_stalls.append(st)
        return st.event

    def release_stalls(self) -> None:
        """Let every stalled response go on."""
        with self._lock:
            stalls, self._all_stalls = self._all_stalls, []
            self._stalls.clear()
        for st in stalls:
            st.event.set()

    def fail(self, repo_id: str, path: str, status: int = 500, *, times: int = 1,
             methods: Iterable[str] = ("HEAD", "GET"), repo_type: str = "model") -> None:
        """Answer the next ``times`` requests for ``path`` with a bare HTTP ``status`` (no X-Error-Code)."""
        with self._lock:
            self._failures[(repo_type, repo_id, path)] = [status, times, tuple(methods)]

    def clear_faults(self) -> None:
        """Remove every injected fault (and release stalls)."""
        with self._lock:
            self._corrupt.clear()
            self._drops.clear()
            self._failures.clear()
        self.release_stalls()

    def sent_bytes(self, repo_id: str, path: str, *, repo_type: str = "model") -> int:
        """Body bytes of ``path`` sent so far, over all GETs."""
        with self._lock:
            return self._sent.get((repo_type, repo_id, path), 0)

    def wait_until_sent(self, repo_id: str, path: str, n: int, *, timeout: float = 10.0,
                        repo_type: str = "model") -> bool:
        """Block until at least ``n`` body bytes of ``path`` have been sent; False on timeout."""
        key = (repo_type, repo_id, path)
        deadline = time.monotonic() + timeout
        with self._sent_cond:
            while self._sent.get(key, 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._sent_cond.wait(left)
            return True

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request so far (path percent-decoded, no query)."""
        with self._lock:
            return [(r.method, r.path) for r in self._log]

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every request so far with its query, headers and status."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Forget the request log."""
        with self._lock:
            self._log.clear()

    def downloads(self, path: str | None = None) -> list[tuple[str, str]]:
        """The GETs of file contents (``/resolve/``) so far, optionally only those of ``path``."""
        return [(m, p) for m, p in self.requests
                if m == "GET" and "/resolve/" in p and (path is None or p.endswith("/" + path))]

    # ------------------------------------------------------------------ internals: storage

    def _load(self) -> None:
        repos_dir = self.root / "repos"
        if not repos_dir.is_dir():
            return
        for p in repos_dir.rglob("*.json"):
            try:
                repo = _Repo.from_json(json.loads(p.read_text()))
            except (OSError, ValueError, KeyError):
                continue
            self._repos[(repo.repo_type, repo.repo_id)] = repo

    def _repo_json(self, repo: _Repo) -> Path:
        return self.root / "repos" / f"{repo.repo_type}s" / f"{repo.repo_id}.json"

    def _save(self, repo: _Repo) -> None:
        path = self._repo_json(repo)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(repo.to_json()))
        os.replace(tmp, path)

    def _blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def _is_lfs(self, path: str, size: int) -> bool:
        return size >= self.lfs_threshold or path.lower().endswith(self.lfs_suffixes)

    def _store_bytes(self, path: str, data: bytes) -> _File:
        sha256 = hashlib.sha256(data).hexdigest()
        dst = self._blob_path(sha256)
        if not dst.exists():
            tmp = dst.with_name(f".{sha256}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, dst)
        return _File(sha256=sha256, size=len(data), git_sha1=git_blob_sha1(data), lfs=self._is_lfs(path, len(data)))

    def _store_file(self, path: str, src: Path) -> _File:
        size = src.stat().st_size
        h256 = hashlib.sha256()
        h1 = hashlib.sha1(b"blob %d\0" % size)
        tmp = self.root / "blobs" / f".incoming.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(src, "rb") as f, open(tmp, "wb") as out:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h256.update(chunk)
                h1.update(chunk)
                out.write(chunk)
        sha256 = h256.hexdigest()
        os.replace(tmp, self._blob_path(sha256))
        return _File(sha256=sha256, size=size, git_sha1=h1.hexdigest(), lfs=self._is_lfs(path, size))

    def _commit(self, repo: _Repo, branch: str, files: dict[str, _File], message: str) -> str:
        parent = repo.branches.get(branch)
        self._counter += 1
        h = hashlib.sha1()
        h.update(json.dumps([repo.repo_type, repo.repo_id, parent, message, time.time_ns(), self._counter,
                             os.getpid(), sorted((p, f.sha256) for p, f in files.items())]).encode())
        sha = h.hexdigest()
        repo.commits[sha] = _Commit(sha=sha, parent=parent, message=message, files=dict(files),
                                    timestamp=time.time())
        repo.branches[branch] = sha
        self._save(repo)
        return sha

    def _get_repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HttpError(404, f"Repository Not Found: {repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: _Repo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if COMMIT_RE.match(revision) and revision in repo.commits:
            return revision
        raise _HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    # ------------------------------------------------------------------ internals: faults

    def _take_faults(self, key: tuple) -> tuple[bool, int | None, _Stall | None]:
        with self._lock:
            corrupt = key in self._corrupt
            if corrupt and self._corrupt[key] is not None:
                self._corrupt[key] -= 1
                if self._corrupt[key] <= 0:
                    del self._corrupt[key]
            drop = None
            if key in self._drops:
                drop = self._drops[key][0]
                self._drops[key][1] -= 1
                if self._drops[key][1] <= 0:
                    del self._drops[key]
            stall = self._stalls.get(key)
            if stall is not None and stall.times is not None:
                stall.times -= 1
                if stall.times <= 0:
                    del self._stalls[key]
            return corrupt, drop, stall

    def _take_failure(self, key: tuple, method: str) -> int | None:
        with self._lock:
            f = self._failures.get(key)
            if f is None or method not in f[2]:
                return None
            f[1] -= 1
            if f[1] <= 0:
                del self._failures[key]
            return f[0]

    def _count_sent(self, key: tuple, n: int) -> None:
        with self._sent_cond:
            self._sent[key] = self._sent.get(key, 0) + n
            self._sent_cond.notify_all()


def _check_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if not 1 <= len(parts) <= 2 or any(not p or p in (".", "..") for p in parts):
        raise ValueError(f"invalid repo id {repo_id!r}")


def _clean_path(path: str) -> str:
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"invalid path in repo: {path!r}")
    return p.as_posix()


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 60  # idle keep-alive connections go away eventually
    server: _Server

    # quiet
    def log_message(self, format, *args):  # noqa: A002
        pass

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self._raw_path = parts.path
        self._query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self._record = RequestRecord(method=method, path=unquote(parts.path), query=self._query,
                                     headers={k.lower(): v for k, v in self.headers.items()})
        with self.hub._lock:
            self.hub._log.append(self._record)
        try:
            if parts.path.startswith("/api/"):
                self._api(method)
            elif parts.path.startswith("/_lfs/"):
                self._lfs_object(method)
            elif ".git/info/lfs/objects/batch" in parts.path:
                self._lfs_batch(method)
            else:
                self._resolve_route(method)
        except _HttpError as e:
            self._error(e)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # pragma: no cover - a server bug: answer 500 rather than hang the client
            try:
                self._error(_HttpError(500, f"LocalHub internal error: {e!r}"))
            except OSError:
                self.close_connection = True

    @property
    def _base_url(self) -> str:
        return f"http://{self.headers.get('Host') or self.hub.endpoint.split('://', 1)[1]}"

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        return auth == f"Bearer {self.hub.token}"

    def _check_read(self, repo: _Repo) -> None:
        if repo.private and not self._authorized():
            raise _HttpError(401, "Repository Not Found (private: a valid token is needed)", "RepoNotFound")

    def _check_write(self) -> None:
        if self.hub.require_write_token and not self._authorized():
            raise _HttpError(401, "Invalid credentials in Authorization header")

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json", head_only: bool = False) -> None:
        self._record.status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and not head_only and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, e: _HttpError) -> None:
        headers = dict(e.headers)
        if e.code:
            headers["X-Error-Code"] = e.code
        headers["X-Error-Message"] = e.message
        self._send(e.status, json.dumps({"error": e.message, **e.extra}).encode(), headers)

    def _read_body(self) -> bytes:
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            out = bytearray()
            while True:
                line = self.rfile.readline()
                n = int(line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(n)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict:
        body = self._read_body()
        try:
            return json.loads(body or b"{}")
        except ValueError:
            raise _HttpError(400, "malformed JSON body")

    # ------------------------------------------------------------------ resolve (file contents)

    def _resolve_route(self, method: str) -> None:
        segs = self._raw_path.lstrip("/").split("/")
        repo_type = "model"
        if segs and segs[0] in ("datasets", "spaces"):
            repo_type = REPO_TYPES[segs[0]]
            segs = segs[1:]
        if len(segs) >= 5 and segs[2] == "resolve":
            repo_id, rev, rest = f"{unquote(segs[0])}/{unquote(segs[1])}", segs[3], segs[4:]
        elif len(segs) >= 4 and segs[1] == "resolve":
            repo_id, rev, rest = unquote(segs[0]), segs[2], segs[3:]
        else:
            raise _HttpError(404, f"Not Found: {unquote(self._raw_path)}")
        if method not in ("HEAD", "GET"):
            raise _HttpError(405, "method not allowed")
        rev, path = unquote(rev), unquote("/".join(rest))
        key = (repo_type, repo_id, path)
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            self._check_read(repo)
            commit = hub._resolve(repo, rev)
            entry = repo.commits[commit].files.get(path)
        if entry is None:
            raise _HttpError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit})
        status = hub._take_failure(key, method)
        if status is not None:
            self._send(status, json.dumps({"error": "injected failure"}).encode())
            return

        size = entry.size
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{PurePosixPath(path).name}"',
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(size)
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if not m or (not m.group(1) and not m.group(2)):
                raise _HttpError(416, f"bad Range {rng!r}", headers={"Content-Range": f"bytes */{size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: last N bytes
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size or start > end:
                raise _HttpError(416, f"Range {rng!r} not satisfiable", headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1 if size else 0

        self._record.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if method == "HEAD" or length == 0:
            return
        self._stream(key, hub._blob_path(entry.sha256), start, length)

    def _stream(self, key: tuple, blob: Path, start: int, length: int) -> None:
        hub = self.hub
        corrupt, drop_after, stall = hub._take_faults(key)
        sent = 0
        with open(blob, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(hub.chunk_size, length - sent)
                if drop_after is not None:
                    if sent >= drop_after:
                        self.close_connection = True
                        try:
                            self.wfile.flush()
                            self.connection.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        return
                    n = min(n, drop_after - sent)
                if stall is not None:
                    if sent >= stall.after_bytes:
                        while not stall.event.wait(0.05):
                            if hub._server is None:
                                break
                        stall = None
                    else:
                        n = min(n, stall.after_bytes - sent)
                data = f.read(n)
                if not data:
                    break
                if corrupt:
                    data = data.translate(_CORRUPT_TABLE)
                self.wfile.write(data)
                sent += len(data)
                hub._count_sent(key, len(data))

    # ------------------------------------------------------------------ API

    def _api(self, method: str) -> None:
        segs = [s for s in self._raw_path[len("/api/"):].split("/")]
        if segs[:2] == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if segs[:1] == ["validate-yaml"] and method == "POST":
            self._read_body()
            return self._json({"errors": [], "warnings": []})
        if segs[:1] == ["whoami-v2"]:
            if not self._authorized():
                raise _HttpError(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": "localhub", "fullname": "LocalHub user", "orgs": [],
                               "auth": {"accessToken": {"role": "write"}}})
        if not segs or segs[0] not in REPO_TYPES:
            raise _HttpError(404, f"Not Found: {unquote(self._raw_path)}")
        repo_type = REPO_TYPES[segs[0]]
        rest = segs[1:]
        if len(rest) >= 3 and rest[2] in API_ACTIONS:
            repo_id, action, args = f"{unquote(rest[0])}/{unquote(rest[1])}", rest[2], rest[3:]
        elif len(rest) >= 2 and rest[1] in API_ACTIONS:
            repo_id, action, args = unquote(rest[0]), rest[1], rest[2:]
        elif len(rest) == 2:
            repo_id, action, args = f"{unquote(rest[0])}/{unquote(rest[1])}", "info", []
        elif len(rest) == 1:
            repo_id, action, args = unquote(rest[0]), "info", []
        else:
            raise _HttpError(404, f"Not Found: {unquote(self._raw_path)}")

        if action in ("info", "revision") and method == "GET":
            rev = unquote(args[0]) if args else "main"
            return self._repo_info(repo_type, repo_id, rev)
        if action == "tree" and method == "GET":
            if not args:
                raise _HttpError(404, "missing revision")
            return self._tree(repo_type, repo_id, unquote(args[0]), unquote("/".join(args[1:])))
        if action == "preupload" and method == "POST":
            return self._preupload(repo_type, repo_id, unquote(args[0]) if args else "main")
        if action == "commit" and method == "POST":
            return self._commit_route(repo_type, repo_id, unquote(args[0]) if args else "main")
        if action == "paths-info" and method == "POST":
            return self._paths_info(repo_type, repo_id, unquote(args[0]) if args else "main")
        raise _HttpError(405, f"{method} not supported on {unquote(self._raw_path)}")

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            self._check_read(repo)
            sha = hub._resolve(repo, rev)
            commit = repo.commits[sha]
            files = dict(commit.files)
        blobs = _truthy(self._query.get("blobs"))
        siblings = []
        for p in sorted(files):
            s = {"rfilename": p}
            if blobs:
                f = files[p]
                s.update(size=f.size, blobId=f.tree_oid)
                if f.lfs:
                    s["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(lfs_pointer(f.sha256, f.size))}
            siblings.append(s)
        info = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id, "sha": sha, "private": repo.private, "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "createdAt": _now_iso(repo.created), "lastModified": _now_iso(commit.timestamp),
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._json(info)

    def _tree(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            self._check_read(repo)
            sha = hub._resolve(repo, rev)
            files = dict(repo.commits[sha].files)
        path = path.strip("/")
        recursive = _truthy(self._query.get("recursive"))
        dirs: set[str] = set()
        for p in files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        if path and path not in dirs:
            raise _HttpError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        prefix = f"{path}/" if path else ""

        def wanted(p: str) -> bool:
            if not p.startswith(prefix):
                return False
            return recursive or "/" not in p[len(prefix):]

        entries = []
        for d in sorted(x for x in dirs if wanted(x)):
            entries.append({"type": "directory", "path": d, "size": 0,
                            "oid": hashlib.sha1(f"tree:{sha}:{d}".encode()).hexdigest()})
        for p in sorted(x for x in files if wanted(x)):
            f = files[p]
            e = {"type": "file", "path": p, "size": f.size, "oid": f.tree_oid}
            if f.lfs:
                e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(lfs_pointer(f.sha256, f.size))}
            entries.append(e)

        try:
            cursor = max(int(self._query.get("cursor") or 0), 0)
        except ValueError:
            raise _HttpError(400, "bad cursor")
        page_size = max(int(hub.page_size), 1)
        page = entries[cursor:cursor + page_size]
        headers = {}
        if cursor + page_size < len(entries):
            q = dict(self._query)
            q["cursor"] = str(cursor + page_size)
            headers["Link"] = f'<{self._base_url}{self._raw_path}?{urlencode(q)}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        hub = self.hub
        body = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = [v for k, v in parse_qsl(body.decode()) if k == "paths"]
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            self._check_read(repo)
            files = dict(repo.commits[hub._resolve(repo, rev)].files)
        out = []
        for p in paths:
            f = files.get(p)
            if f is not None:
                e = {"type": "file", "path": p, "size": f.size, "oid": f.tree_oid}
                if f.lfs:
                    e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(lfs_pointer(f.sha256, f.size))}
                out.append(e)
            elif any(q.startswith(p.rstrip("/") + "/") for q in files):
                out.append({"type": "directory", "path": p, "size": 0,
                            "oid": hashlib.sha1(f"tree:{p}".encode()).hexdigest()})
        self._json(out)

    # ------------------------------------------------------------------ uploads

    def _create_repo(self) -> None:
        self._check_write()
        body = self._json_body()
        name, org = body.get("name"), body.get("organization")
        if not name:
            raise _HttpError(400, "missing repo name")
        repo_id = f"{org}/{name}" if org else name
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise _HttpError(400, f"bad repo type {repo_type!r}")
        private = body.get("visibility") == "private" or bool(body.get("private"))
        url = f"{self._base_url}/{URL_PREFIX[repo_type]}{repo_id}"
        hub = self.hub
        with hub._lock:
            if (repo_type, repo_id) in hub._repos:
                raise _HttpError(409, f"You already created this {repo_type} repo", extra={"url": url})
            try:
                _check_repo_id(repo_id)
            except ValueError as e:
                raise _HttpError(400, str(e))
            repo = hub._repos[(repo_type, repo_id)] = _Repo(repo_id=repo_id, repo_type=repo_type, private=private)
            gitattributes = hub._store_bytes(".gitattributes", GITATTRIBUTES)
            hub._commit(repo, "main", {".gitattributes": gitattributes}, "initial commit")
        self._json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _preupload(self, repo_type: str, repo_id: str, rev: str) -> None:
        self._check_write()
        body = self._json_body()
        hub = self.hub
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            head = hub._resolve(repo, rev) if rev in repo.branches or COMMIT_RE.match(rev) else None
            existing = dict(repo.commits[head].files) if head else {}
        out = []
        for item in body.get("files", []):
            path, size = item.get("path", ""), int(item.get("size", 0))
            mode = "lfs" if hub.upload_mode == "lfs" and size > 0 and hub._is_lfs(path, size) else "regular"
            old = existing.get(path)
            oid = None
            if old is not None:
                oid = old.sha256 if mode == "lfs" else old.git_sha1
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": head})

    def _commit_route(self, repo_type: str, repo_id: str, rev: str) -> None:
        self._check_write()
        body = self._read_body()
        hub = self.hub
        ops = []
        try:
            for line in body.splitlines():
                if line.strip():
                    ops.append(json.loads(line))
        except ValueError:
            raise _HttpError(400, "malformed NDJSON commit payload")
        header = next((o["value"] for o in ops if o.get("key") == "header"), {})
        message = header.get("summary") or "commit"
        new_blobs: dict[str, _File] = {}
        for o in ops:
            key, v = o.get("key"), o.get("value", {})
            if key == "file":
                try:
                    path = _clean_path(v["path"])
                except ValueError as e:
                    raise _HttpError(400, str(e))
                if v.get("encoding", "base64") != "base64":
                    raise _HttpError(400, "only base64 file content is supported")
                new_blobs[path] = hub._store_bytes(path, base64.b64decode(v.get("content", "")))
        with hub._lock:
            repo = hub._get_repo(repo_type, repo_id)
            if rev not in repo.branches:
                if repo.branches or COMMIT_RE.match(rev):
                    raise _HttpError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            head = repo.branches.get(rev)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != head:
                raise _HttpError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[head].files) if head else {}
            for o in ops:
                key, v = o.get("key"), o.get("value", {})
                if key == "file":
                    files[_clean_path(v["path"])] = new_blobs[_clean_path(v["path"])]
                elif key == "lfsFile":
                    try:
                        path = _clean_path(v["path"])
                    except ValueError as e:
                        raise _HttpError(400, str(e))
                    oid = v.get("oid", "")
                    blob = hub._blob_path(oid)
                    if not re.fullmatch(r"[0-9a-f]{64}", oid) or not blob.is_file():
                        raise _HttpError(422, f"LFS object {oid} was not uploaded")
                    size = blob.stat().st_size
                    git_sha1 = git_blob_sha1(blob.read_bytes()) if size < (64 << 20) else ""
                    files[path] = _File(sha256=oid, size=size, git_sha1=git_sha1, lfs=True)
                elif key == "deletedFile":
                    if v.get("path") not in files:
                        raise _HttpError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[v["path"]]
                elif key == "deletedFolder":
                    prefix = v.get("path", "").rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
            sha = hub._commit(repo, rev, files, message)
        url = f"{self._base_url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})

    def _lfs_batch(self, method: str) -> None:
        if method != "POST":
            raise _HttpError(405, "method not allowed")
        self._check_write()
        body = self._json_body()
        base = self._base_url
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj.get("oid", ""), int(obj.get("size", 0))
            entry: dict = {"oid": oid, "size": size, "authenticated": True}
            if not self.hub._blob_path(oid).is_file():
                entry["actions"] = {
                    "upload": {"href": f"{base}/_lfs/{oid}", "header": {}},
                    "verify": {"href": f"{base}/_lfs/{oid}/verify", "header": {}},
                }
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")

    def _lfs_object(self, method: str) -> None:
        segs = self._raw_path.split("/")[2:]
        oid = segs[0] if segs else ""
        if not re.fullmatch(r"[0-9a-f]{64}", oid):
            raise _HttpError(404, "bad LFS oid")
        if method == "PUT":
            data = self._read_body()
            if hashlib.sha256(data).hexdigest() != oid:
                raise _HttpError(400, "uploaded content does not match its oid")
            self.hub._store_bytes("", data)
            return self._send(200, b"{}")
        if method == "POST" and segs[1:] == ["verify"]:
            self._read_body()
            if not self.hub._blob_path(oid).is_file():
                raise _HttpError(404, "LFS object not found")
            return self._json({"success": True})
        raise _HttpError(405, "method not allowed")
