"""``LocalHub``: the object tests use. Starts and stops the loopback HTTP server, and wires the store,
the fault injection and the traffic log to it.

Every method tests call (``publish``, ``pin``, ``corrupt``, ``stall``, ``requests``, ...) is a
thin delegation to one of the three parts; the server thread's handler uses the same parts.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Mapping
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from .faults import Faults
from .handler import URL_PREFIX, Handler
from .storage import DEFAULT_LFS_SUFFIXES, File, RepoStore, check_repo_id, clean_path
from .traffic import RequestRecord, Traffic

DEFAULT_TOKEN = "hf_localhub_test_token"


class HubHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its open connections (``stop`` cuts them) and its ``LocalHub``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, hub: LocalHub):
        self.hub = hub
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        #: set when the hub stops: stalled responses give up waiting
        self.stopping = threading.Event()
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

    Attributes: ``store`` (:class:`~.storage.RepoStore`), ``faults`` (:class:`~.faults.Faults`),
    ``traffic`` (:class:`~.traffic.Traffic`).
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
        self.host, self._port = host, port
        self.page_size = page_size
        self.token = token
        self.require_write_token = require_write_token
        self.upload_mode = upload_mode
        self.chunk_size = chunk_size

        self.store = RepoStore(self.root, lfs_threshold=lfs_threshold, lfs_suffixes=lfs_suffixes)
        self.faults = Faults()
        self.traffic = Traffic()
        self._server: HubHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: set by the ``local_hub`` fixture: the isolated HF hub cache and ZOO_HOME of the test
        self.cache_dir: Path | None = None
        self.zoo_home: Path | None = None

    @property
    def lfs_threshold(self) -> int:
        return self.store.lfs_threshold

    @lfs_threshold.setter
    def lfs_threshold(self, value: int) -> None:
        self.store.lfs_threshold = value

    @property
    def lfs_suffixes(self) -> tuple[str, ...]:
        return self.store.lfs_suffixes

    @lfs_suffixes.setter
    def lfs_suffixes(self, value: Iterable[str]) -> None:
        self.store.lfs_suffixes = tuple(s.lower() for s in value)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalHub:
        """Start serving in a background thread (idempotent). Returns self."""
        if self._server is not None:
            return self
        server = HubHTTPServer((self.host, self._port), Handler, self)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"LocalHub:{server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release stalls, close open connections, join the thread; remove a temporary root."""
        server, self._server = self._server, None
        if server is not None:
            server.stopping.set()
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

    def __enter__(self):
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
        self.store.create_repo(repo_type, repo_id, private=private, exist_ok=exist_ok)

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
        check_repo_id(repo_id)
        files: dict[str, File] = {}
        if isinstance(source, Mapping):
            for path, data in source.items():
                path = path if allow_unsafe_paths and path else clean_path(path)
                files[path] = self.store.put_bytes(path, data.encode() if isinstance(data, str) else bytes(data))
        else:
            folder = Path(source)
            if not folder.is_dir():
                raise ValueError(f"not a folder: {folder}")
            for p in sorted(folder.rglob("*")):
                rel = p.relative_to(folder).as_posix()
                if p.is_dir() or rel.split("/")[0] == ".git":
                    continue
                files[clean_path(rel)] = self.store.put_file(rel, p)
        return self.store.publish(repo_type, repo_id, files, branch=branch, message=message, private=private)

    def delete_revision(self, repo_id: str, revision: str, *, repo_type: str = "model") -> None:
        """Make ``revision`` unknown: a branch is deleted; a commit is removed (with branches pointing at it)."""
        self.store.delete_revision(repo_type, repo_id, revision)

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        """Remove a repo (its blobs stay in the content store)."""
        self.store.delete_repo(repo_type, repo_id)

    def set_private(self, repo_id: str, private: bool = True, *, repo_type: str = "model") -> None:
        """Make a repo private (readable only with ``Authorization: Bearer <hub.token>``) or public."""
        self.store.set_private(repo_type, repo_id, private)

    def resolve(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> str:
        """The commit sha a branch (or commit) names."""
        return self.store.resolve(repo_type, repo_id, revision)

    def files(self, repo_id: str, revision: str = "main", *, repo_type: str = "model") -> dict[str, bytes]:
        """Every file of a commit as ``{path: bytes}`` (the published content, never corrupted)."""
        entries = self.store.snapshot(repo_type, repo_id, revision).files
        return {p: self.store.blob_path(f.sha256).read_bytes() for p, f in entries.items()}

    def pin(self, repo_id: str, revision: str = "main", *, repo_type: str = "model",
            paths: Iterable[str] | None = None):
        """A ``zoo_core.pins.HubPin`` of the commit ``revision`` names, with every file's sha256 and size.

        ``paths`` restricts the pin to some files (default: all of them).
        """
        from zoo_core.pins import FilePin, HubPin

        snap = self.store.snapshot(repo_type, repo_id, revision)
        entries = snap.files
        wanted = sorted(entries) if paths is None else list(paths)
        files = tuple(FilePin(path=p, sha256=entries[p].sha256, size=entries[p].size) for p in wanted)
        return HubPin(repo_id=repo_id, revision=snap.commit, files=files, repo_type=repo_type)

    # ------------------------------------------------------------------ failure injection

    def corrupt(self, repo_id: str, path: str, *, times: int | None = None, repo_type: str = "model") -> None:
        """Serve other bytes of the same length for ``path`` (any revision), under unchanged metadata.

        Lasts ``times`` GETs (forever when None) or until ``heal()`` / ``clear_faults()``.
        """
        self.faults.corrupt((repo_type, repo_id, path), times)

    def heal(self, repo_id: str, path: str, *, repo_type: str = "model") -> None:
        """Undo ``corrupt()`` for one file."""
        self.faults.heal((repo_type, repo_id, path))

    def drop_connection(self, repo_id: str, path: str, after_bytes: int, *, times: int = 1,
                        repo_type: str = "model") -> None:
        """On the next ``times`` GETs of ``path``: send headers and ``after_bytes`` of the body, then close."""
        self.faults.drop_connection((repo_type, repo_id, path), after_bytes, times)

    def stall(self, repo_id: str, path: str, after_bytes: int, *, times: int | None = 1,
              repo_type: str = "model") -> threading.Event:
        """On the next ``times`` GETs of ``path``: send ``after_bytes`` of the body, then hang.

        The hang ends when the returned event is set, on ``release_stalls()`` or on
        ``stop()``; the rest of the body is then sent (if the client is still there).
        Use ``wait_until_sent()`` to know when a client is mid-download.
        """
        return self.faults.stall((repo_type, repo_id, path), after_bytes, times)

    def release_stalls(self) -> None:
        """Let every stalled response go on."""
        self.faults.release_stalls()

    def fail(self, repo_id: str, path: str, status: int = 500, *, times: int = 1,
             methods: Iterable[str] = ("HEAD", "GET"), repo_type: str = "model") -> None:
        """Answer the next ``times`` requests for ``path`` with a bare HTTP ``status`` (no X-Error-Code)."""
        self.faults.fail((repo_type, repo_id, path), status, times, methods)

    def ignore_range(self, repo_id: str, path: str, *, times: int = 1, repo_type: str = "model") -> None:
        """Answer the next ``times`` Range GETs of ``path`` with the whole file (200), as some CDNs do."""
        self.faults.ignore_range((repo_type, repo_id, path), times)

    def clear_faults(self) -> None:
        """Remove every injected fault (and release stalls)."""
        self.faults.clear()

    def sent_bytes(self, repo_id: str, path: str, *, repo_type: str = "model") -> int:
        """Body bytes of ``path`` sent so far, over all GETs."""
        return self.traffic.sent((repo_type, repo_id, path))

    def wait_until_sent(self, repo_id: str, path: str, n: int, *, timeout: float = 10.0,
                        repo_type: str = "model") -> bool:
        """Block until at least ``n`` body bytes of ``path`` have been sent; False on timeout."""
        return self.traffic.wait_until_sent((repo_type, repo_id, path), n, timeout)

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request so far (path percent-decoded, no query)."""
        return self.traffic.requests()

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every request so far with its query, headers and status."""
        return self.traffic.records()

    def clear_requests(self) -> None:
        """Forget the request log."""
        self.traffic.clear()

    def downloads(self, path: str | None = None) -> list[tuple[str, str]]:
        """The GETs of file contents (``/resolve/``) so far, optionally only those of ``path``."""
        return [(m, p) for m, p in self.requests
                if m == "GET" and "/resolve/" in p and (path is None or p.endswith("/" + path))]
