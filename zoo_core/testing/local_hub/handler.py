"""The local hub's HTTP request handler: the parts of the Hub's protocol ``huggingface_hub`` 2.4.0 uses.

Routes: ``/<repo>/resolve/<rev>/<path>`` (file contents: ETag / X-Repo-Commit / X-Linked-*
headers, Range requests), ``/api/<type>s/<repo>[/revision/<rev>]`` (repo info),
``/api/.../tree/<rev>[/<path>]`` (paginated listings), ``/api/.../paths-info/<rev>``,
``/api/repos/create``, ``/api/.../preupload/<rev>``, ``/api/.../commit/<rev>`` (NDJSON), the LFS
batch API and ``/_lfs/<oid>`` uploads, ``/api/whoami-v2``. It never sends ``X-Xet-Hash``, so the
client always stays on plain HTTP. Errors carry ``X-Error-Code`` like the Hub's, so the client
raises its typed errors (``RepositoryNotFoundError``, ``RevisionNotFoundError``, ...).

The handler holds no state of its own beyond one request. It reaches the hub only through
public, thread-safe APIs: ``RepoStore`` (repos, commits, blobs), ``Faults`` and ``Traffic``
(``tests/test_hub_cache.py`` checks that it touches no underscore attribute of anything but
itself).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from .faults import Faults, Key, corrupt_bytes
from .storage import (
    GITATTRIBUTES,
    File,
    HubError,
    RepoExistsError,
    RepoStore,
    clean_path,
    lfs_pointer,
)
from .traffic import RequestRecord, Traffic


REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
API_ACTIONS = {"revision", "tree", "preupload", "commit", "paths-info"}


def _now_iso(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on")


def _tree_entry(path: str, f: File) -> dict:
    e = {"type": "file", "path": path, "size": f.size, "oid": f.tree_oid}
    if f.lfs:
        e["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(lfs_pointer(f.sha256, f.size))}
    return e


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 60  # idle keep-alive connections go away eventually
    server: ThreadingHTTPServer  # server.HubHTTPServer (not imported: server.py imports this module)

    # quiet
    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    @property
    def hub(self):
        """The hub's settings (token, page size, upload mode, chunk size, endpoint): the server's LocalHub."""
        return self.server.hub

    @property
    def store(self) -> RepoStore:
        return self.server.hub.store

    @property
    def faults(self) -> Faults:
        return self.server.hub.faults

    @property
    def traffic(self) -> Traffic:
        return self.server.hub.traffic

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
        self.traffic.record(self._record)
        try:
            if parts.path.startswith("/api/"):
                self._api(method)
            elif parts.path.startswith("/_lfs/"):
                self._lfs_object(method)
            elif ".git/info/lfs/objects/batch" in parts.path:
                self._lfs_batch(method)
            else:
                self._resolve_route(method)
        except HubError as e:
            self._error(e)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - a server bug: answer 500 rather than hang the client
            try:
                self._error(HubError(500, f"LocalHub internal error: {e!r}"))
            except OSError:
                self.close_connection = True

    @property
    def _base_url(self) -> str:
        return f"http://{self.headers.get('Host') or self.hub.endpoint.split('://', 1)[1]}"

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        return auth == f"Bearer {self.hub.token}"

    def _check_write(self) -> None:
        if self.hub.require_write_token and not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

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

    def _error(self, e: HubError) -> None:
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
        except ValueError as e:
            raise HubError(400, "malformed JSON body") from e

    def _snapshot(self, repo_type: str, repo_id: str, rev: str):
        return self.store.snapshot(repo_type, repo_id, rev, can_read_private=self._authorized())

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
            raise HubError(404, f"Not Found: {unquote(self._raw_path)}")
        if method not in ("HEAD", "GET"):
            raise HubError(405, "method not allowed")
        rev, path = unquote(rev), unquote("/".join(rest))
        key = (repo_type, repo_id, path)
        snap = self._snapshot(repo_type, repo_id, rev)
        commit = snap.commit
        entry = snap.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit})
        status = self.faults.take_failure(key, method)
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
        if rng and method == "GET" and self.faults.take_ignore_range(key):
            rng = None
        if rng:
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if not m or (not m.group(1) and not m.group(2)):
                raise HubError(416, f"bad Range {rng!r}", headers={"Content-Range": f"bytes */{size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: last N bytes
                start, end = max(size - int(m.group(2)), 0), size - 1
            if start >= size or start > end:
                raise HubError(416, f"Range {rng!r} not satisfiable", headers={"Content-Range": f"bytes */{size}"})
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
        self._stream(key, self.store.blob_path(entry.sha256), start, length)

    def _stream(self, key: Key, blob: Path, start: int, length: int) -> None:
        faults = self.faults.take_stream_faults(key)
        drop_after, stall = faults.drop_after, faults.stall
        chunk_size = self.hub.chunk_size
        sent = 0
        with open(blob, "rb") as f:
            f.seek(start)
            while sent < length:
                n = min(chunk_size, length - sent)
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
                            if self.server.stopping.is_set():
                                break
                        stall = None
                    else:
                        n = min(n, stall.after_bytes - sent)
                data = f.read(n)
                if not data:
                    break
                if faults.corrupt:
                    data = corrupt_bytes(data)
                self.wfile.write(data)
                sent += len(data)
                self.traffic.count_sent(key, len(data))

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
                raise HubError(401, "Invalid credentials in Authorization header")
            return self._json({"type": "user", "name": "localhub", "fullname": "LocalHub user", "orgs": [],
                               "auth": {"accessToken": {"role": "write"}}})
        if not segs or segs[0] not in REPO_TYPES:
            raise HubError(404, f"Not Found: {unquote(self._raw_path)}")
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
            raise HubError(404, f"Not Found: {unquote(self._raw_path)}")

        if action in ("info", "revision") and method in ("GET", "HEAD"):  # a mirror (olah) HEADs a repo to probe it
            rev = unquote(args[0]) if args else "main"
            return self._repo_info(repo_type, repo_id, rev)
        if action == "tree" and method == "GET":
            if not args:
                raise HubError(404, "missing revision")
            return self._tree(repo_type, repo_id, unquote(args[0]), unquote("/".join(args[1:])))
        if action == "preupload" and method == "POST":
            return self._preupload(repo_type, repo_id, unquote(args[0]) if args else "main")
        if action == "commit" and method == "POST":
            return self._commit_route(repo_type, repo_id, unquote(args[0]) if args else "main")
        if action == "paths-info" and method == "POST":
            return self._paths_info(repo_type, repo_id, unquote(args[0]) if args else "main")
        raise HubError(405, f"{method} not supported on {unquote(self._raw_path)}")

    def _repo_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        snap = self._snapshot(repo_type, repo_id, rev)
        files = snap.files
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
            "id": repo_id, "sha": snap.commit, "private": snap.private, "disabled": False, "gated": False,
            "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "createdAt": _now_iso(snap.created), "lastModified": _now_iso(snap.timestamp),
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        self._json(info)

    def _tree(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        snap = self._snapshot(repo_type, repo_id, rev)
        sha, files = snap.commit, snap.files
        path = path.strip("/")
        recursive = _truthy(self._query.get("recursive"))
        dirs: set[str] = set()
        for p in files:
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.add("/".join(parts[:i]))
        if path and path not in dirs:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
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
            entries.append(_tree_entry(p, files[p]))

        try:
            cursor = max(int(self._query.get("cursor") or 0), 0)
        except ValueError as e:
            raise HubError(400, "bad cursor") from e
        page_size = max(int(self.hub.page_size), 1)
        page = entries[cursor:cursor + page_size]
        headers = {}
        if cursor + page_size < len(entries):
            q = dict(self._query)
            q["cursor"] = str(cursor + page_size)
            headers["Link"] = f'<{self._base_url}{self._raw_path}?{urlencode(q)}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo_type: str, repo_id: str, rev: str) -> None:
        body = self._read_body()
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = [v for k, v in parse_qsl(body.decode()) if k == "paths"]
        files = self._snapshot(repo_type, repo_id, rev).files
        out = []
        for p in paths:
            f = files.get(p)
            if f is not None:
                out.append(_tree_entry(p, f))
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
            raise HubError(400, "missing repo name")
        repo_id = f"{org}/{name}" if org else name
        repo_type = body.get("type") or "model"
        if repo_type not in URL_PREFIX:
            raise HubError(400, f"bad repo type {repo_type!r}")
        private = body.get("visibility") == "private" or bool(body.get("private"))
        url = f"{self._base_url}/{URL_PREFIX[repo_type]}{repo_id}"
        store = self.store
        try:
            store.create_repo(repo_type, repo_id, private=private, exist_ok=False,
                              initial={".gitattributes": store.put_bytes(".gitattributes", GITATTRIBUTES)})
        except RepoExistsError as e:
            raise HubError(409, f"You already created this {repo_type} repo", extra={"url": url}) from e
        except ValueError as e:
            raise HubError(400, str(e)) from e
        self._json({"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _preupload(self, repo_type: str, repo_id: str, rev: str) -> None:
        self._check_write()
        body = self._json_body()
        head, existing = self.store.tip(repo_type, repo_id, rev)
        out = []
        for item in body.get("files", []):
            path, size = item.get("path", ""), int(item.get("size", 0))
            mode = "lfs" if self.hub.upload_mode == "lfs" and size > 0 and self.store.is_lfs(path, size) else "regular"
            old = existing.get(path)
            oid = None
            if old is not None:
                oid = old.sha256 if mode == "lfs" else old.git_sha1
            out.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json({"files": out, "commitOid": head})

    def _commit_route(self, repo_type: str, repo_id: str, rev: str) -> None:
        self._check_write()
        body = self._read_body()
        ops = []
        try:
            for line in body.splitlines():
                if line.strip():
                    ops.append(json.loads(line))
        except ValueError as e:
            raise HubError(400, "malformed NDJSON commit payload") from e
        header = next((o["value"] for o in ops if o.get("key") == "header"), {})
        message = header.get("summary") or "commit"
        new_files: dict[str, File] = {}
        for o in ops:
            key, v = o.get("key"), o.get("value", {})
            if key == "file":
                try:
                    path = clean_path(v["path"])
                except ValueError as e:
                    raise HubError(400, str(e)) from e
                if v.get("encoding", "base64") != "base64":
                    raise HubError(400, "only base64 file content is supported")
                new_files[path] = self.store.put_bytes(path, base64.b64decode(v.get("content", "")))
        sha = self.store.commit_operations(repo_type, repo_id, rev, ops, message=message,
                                           parent_commit=header.get("parentCommit"), new_files=new_files)
        url = f"{self._base_url}/{URL_PREFIX[repo_type]}{repo_id}/commit/{sha}"
        self._json({"success": True, "commitOid": sha, "commitUrl": url, "hookOutput": ""})

    def _lfs_batch(self, method: str) -> None:
        if method != "POST":
            raise HubError(405, "method not allowed")
        self._check_write()
        body = self._json_body()
        base = self._base_url
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj.get("oid", ""), int(obj.get("size", 0))
            entry: dict = {"oid": oid, "size": size, "authenticated": True}
            if not self.store.has_blob(oid):
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
            raise HubError(404, "bad LFS oid")
        if method == "PUT":
            data = self._read_body()
            if hashlib.sha256(data).hexdigest() != oid:
                raise HubError(400, "uploaded content does not match its oid")
            self.store.put_bytes("", data)
            return self._send(200, b"{}")
        if method == "POST" and segs[1:] == ["verify"]:
            self._read_body()
            if not self.store.has_blob(oid):
                raise HubError(404, "LFS object not found")
            return self._json({"success": True})
        raise HubError(405, "method not allowed")
