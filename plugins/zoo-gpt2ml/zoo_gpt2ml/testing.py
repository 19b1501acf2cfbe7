"""Loopback stand-ins for the hosts the GPT2_ML release is published on, for offline tests of ``zoo pull``.

:class:`ReleaseHosts` is one threaded HTTP server on 127.0.0.1 that answers as

- ``drive.google.com``: ``/uc?id=ID`` redirects (303) to ``drive.usercontent.google.com``;
- ``drive.usercontent.google.com``: ``/download?id=ID&export=download`` answers Drive's
  "Virus scan warning" page (a ``download-form`` with ``id``, ``export``, ``confirm`` and a
  fresh ``uuid`` and ``at`` token) for a large file, then serves the bytes once the form comes
  back with them (``Content-Disposition``, ``Last-Modified``, HTTP Range); an unknown id is
  Drive's 404 page, a quota fault its "Too many users" page;
- ``github.com``: ``/OWNER/REPO/releases/download/TAG/NAME`` redirects (302) to a signed,
  expiring URL on ``release-assets.githubusercontent.com``, which serves the asset (ETag,
  Range) and refuses a bad signature (403);
- itself (``http://127.0.0.1:PORT/mirror/NAME``): a plain mirror, for ``ZOO_GPT2ML_MIRROR``.

Clients reach the first four through it as an HTTPS proxy: :meth:`env` gives
``HTTPS_PROXY`` and ``REQUESTS_CA_BUNDLE`` (a throw-away CA, made with the ``openssl``
command, signs the hosts' certificate), which ``requests`` honours, so gdown and the
catalogue's real URLs are used unchanged. :meth:`fault` injects failures; :attr:`requests`
records what was asked, Range headers included.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import html
import re
import secrets
import socket
import ssl
import subprocess
import threading
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

DRIVE = "drive.google.com"
DRIVE_CONTENT = "drive.usercontent.google.com"
GITHUB = "github.com"
ASSETS = "release-assets.githubusercontent.com"
TLS_HOSTS = (DRIVE, DRIVE_CONTENT, GITHUB, ASSETS)
CHUNK = 64 * 1024
LAST_MODIFIED = email.utils.formatdate(1_570_000_000, usegmt=True)  # 2019-10-02, about when the release was made

VIRUS_SCAN_PAGE = (  # Drive's confirmation page for files too large to scan, on one line as Drive sends it
    '<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title><meta http-equiv="content-type" '
    'content="text/html; charset=utf-8"/></head><body><div class="uc-main"><div id="uc-text">'
    '<p class="uc-warning-caption">Google Drive can\'t scan this file for viruses.</p><p class="uc-warning-'
    'subcaption"><span class="uc-name-size"><a href="/open?id={id}">{name}</a> ({size})</span> is too large for '
    'Google to scan for viruses. Would you still like to download this file?</p>'
    '<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
    '<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action" '
    'value="Download anyway"/><input type="hidden" name="id" value="{id}"><input type="hidden" name="export" '
    'value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" '
    'value="{uuid}"><input type="hidden" name="at" value="{at}"></form></div></div><div class="uc-footer">'
    '<hr class="uc-footer-divider"></div></body></html>\n')
QUOTA_PAGE = (
    '<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head><body><div class="uc-main">'
    '<div id="uc-text"><p class="uc-error-caption">Sorry, you can\'t view or download this file at this time.</p>'
    '<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try '
    'accessing the file again later. If the file you are trying to access is particularly large or is shared with '
    'many people, it may take up to 24 hours to be able to view or download the file.</p></div></div></body></html>\n')
NOT_FOUND_PAGE = (
    '<!DOCTYPE html><html lang="en"><head><title>Google Drive - Page Not Found</title></head><body>'
    '<div id="af-error-container"><p><b>404.</b> <ins>That\'s an error.</ins></p><p>Sorry, the file you have '
    'requested does not exist.</p></div></body></html>\n')


@dataclass
class Request:
    """One request the hosts saw."""

    host: str
    method: str
    path: str
    headers: dict

    @property
    def range(self) -> str | None:
        """The Range header, if any."""
        return self.headers.get("range")


@dataclass
class Fault:
    """A failure injected into the serving of one file (see :meth:`ReleaseHosts.fault`)."""

    kind: str  # drop | stall | corrupt | missing | quota | no-range
    at: int = 0  # drop / stall: after this many bytes of the file (absolute offset)
    times: int | None = None  # how many responses it applies to (None: all)
    sent: int = field(default=0)  # bytes of the file sent so far by stalled or dropped responses


class ReleaseHosts:
    """The loopback server; use it as a context manager, or call :meth:`close`."""

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, Path] = {}  # served name -> file
        self.drive: dict[str, str] = {}  # Drive file id -> name
        self.assets: dict[tuple[str, str, str], str] = {}  # (owner/repo, tag, name) -> name
        self.faults: dict[str, Fault] = {}
        self.requests: list[Request] = []
        self.uuids: dict[str, str] = {}  # uuid of a confirmation page -> its "at" token
        self.secret = secrets.token_bytes(16)
        self.released = threading.Event()  # set at close: stalled responses end
        self.lock = threading.Lock()
        self.ca_bundle, cert, key = _make_certificates(self.workdir)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="release-hosts")
        self.thread.start()

    # -- what it serves -------------------------------------------------------------

    def add_drive_file(self, file_id: str, path: str | Path, name: str | None = None) -> None:
        """Serve ``path`` as Drive file ``file_id`` (downloaded under ``name``, default the file's name)."""
        name = name or Path(path).name
        self.files[name] = Path(path)
        self.drive[file_id] = name

    def add_release_asset(self, repo: str, tag: str, path: str | Path, name: str | None = None) -> None:
        """Serve ``path`` as asset ``name`` of release ``tag`` of GitHub repository ``repo`` (owner/name)."""
        name = name or Path(path).name
        self.files[name] = Path(path)
        self.assets[(repo, tag, name)] = name

    def add_mirror_file(self, path: str | Path, name: str | None = None) -> None:
        """Serve ``path`` at ``/mirror/<name>``."""
        self.files[name or Path(path).name] = Path(path)

    def fault(self, name: str, kind: str, *, at: int = 0, times: int | None = None) -> Fault:
        """Inject a failure when file ``name`` is served.

        ``drop``: close the connection after byte ``at``; ``stall``: send up to byte ``at``
        then nothing until :meth:`release` or close; ``corrupt``: flip one byte in the
        middle; ``missing``: 404 as the host answers it; ``quota``: Drive's quota page;
        ``no-range``: ignore Range and send the whole file (200). ``times`` limits it to
        that many responses.
        """
        self.faults[name] = Fault(kind, at, times)
        return self.faults[name]

    def release(self) -> None:
        """Let stalled responses end (their connections are closed)."""
        self.released.set()

    # -- how clients reach it --------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``, the HTTPS proxy through which the hosts are reached."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def mirror_url(self) -> str:
        """A plain mirror of every file, for ``ZOO_GPT2ML_MIRROR``."""
        return f"http://127.0.0.1:{self.port}/mirror"

    def env(self) -> dict[str, str]:
        """Environment that sends ``requests`` (and so gdown) to these hosts and trusts their certificate."""
        return {"HTTPS_PROXY": self.proxy_url, "https_proxy": self.proxy_url, "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def seen(self, host: str | None = None, name: str | None = None, method: str = "GET") -> list[Request]:
        """``method`` requests to ``host`` (all hosts if None) whose path mentions ``name`` (proxy CONNECTs apart)."""
        with self.lock:
            return [r for r in self.requests if r.method == method and (host is None or r.host == host)
                    and (name is None or name in r.path)]

    def close(self) -> None:
        """Stop serving (stalled responses end)."""
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- signed asset URLs -----------------------------------------------------------

    def _signature(self, name: str, expires: str) -> str:
        return hmac.new(self.secret, f"{name}|{expires}".encode(), hashlib.sha256).hexdigest()

    def signed_asset_url(self, name: str) -> str:
        """What github.com redirects a release download to: a URL that expires in 5 minutes."""
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 300))
        asset = uuidlib.uuid5(uuidlib.NAMESPACE_URL, name)
        return (f"https://{ASSETS}/github-production-release-asset/196532213/{asset}?sp=r&sv=2018-11-09&sr=b"
                f"&spr=https&se={quote(expires)}&rscd=attachment%3B+filename%3D{quote(name)}"
                f"&rsct=application%2Foctet-stream&sig={self._signature(name, expires)}")


def _make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a certificate it signs for the release hosts, with the openssl command."""
    ca_key, ca, key, csr, cert, ext = (folder / n for n in ("ca.key", "ca.pem", "hosts.key", "hosts.csr",
                                                             "hosts.pem", "hosts.ext"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=" + ",".join(f"DNS:{h}" for h in TLS_HOSTS) + "\n")
    steps = [
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=zoo test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=release hosts"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ]
    for cmd in steps:
        try:
            subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
        except FileNotFoundError:
            raise RuntimeError("ReleaseHosts needs the openssl command to make its test certificates") from None
    return ca, cert, key


def _handler(hosts: ReleaseHosts):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        tunnel: str | None = None

        def log_message(self, *args):  # quiet
            pass

        # -- the proxy -------------------------------------------------------------
        def do_CONNECT(self):
            host = self.path.rsplit(":", 1)[0]
            self._record(host)
            if host not in TLS_HOSTS:
                self._send(502, b"unknown host\n")
                self.close_connection = True
                return
            self.send_response(200, "Connection Established")
            self.end_headers()
            self.wfile.flush()
            conn = hosts.tls.wrap_socket(self.connection, server_side=True)
            self.connection, self.tunnel = conn, host
            self.rfile, self.wfile = conn.makefile("rb"), conn.makefile("wb")
            self.close_connection = False

        def finish(self):
            try:
                super().finish()
            finally:
                if self.tunnel:
                    self.connection.close()

        # -- the hosts -------------------------------------------------------------
        def do_GET(self):
            host = self.tunnel or (self.headers.get("Host") or "").rsplit(":", 1)[0]
            self._record(host)
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                if host == DRIVE:
                    self._drive(url.path, query)
                elif host == DRIVE_CONTENT:
                    self._drive_content(url.path, query)
                elif host == GITHUB:
                    self._github(url.path)
                elif host == ASSETS:
                    self._asset(url.path, query)
                elif url.path.startswith("/mirror/"):
                    self._serve(url.path.removeprefix("/mirror/"), "application/octet-stream")
                else:
                    self._send(404, b"Not Found\n")
            except (TimeoutError, BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.close_connection = True  # the client went away (e.g. gdown closing to resume with Range)

        def _drive(self, path, query):
            if path != "/uc" or "id" not in query:
                return self._send(404, NOT_FOUND_PAGE.encode(), "text/html; charset=utf-8")
            self._redirect(303, f"https://{DRIVE_CONTENT}/download?id={query['id']}&export=download")

        def _drive_content(self, path, query):
            name = hosts.drive.get(query.get("id", ""))
            fault = self._fault(name, ("missing", "quota"))
            if path != "/download" or name is None or (fault and fault.kind == "missing"):
                return self._send(404, NOT_FOUND_PAGE.encode(), "text/html; charset=utf-8")
            if fault and fault.kind == "quota":
                return self._send(200, QUOTA_PAGE.encode(), "text/html; charset=utf-8")
            if query.get("confirm") != "t" or hosts.uuids.get(query.get("uuid")) != query.get("at"):
                token, at = str(uuidlib.uuid4()), f"AKk{secrets.token_urlsafe(18)}:{int(time.time() * 1000)}"
                hosts.uuids[token] = at
                size = hosts.files[name].stat().st_size
                page = VIRUS_SCAN_PAGE.format(id=html.escape(query["id"]), name=html.escape(name),
                                              size=f"{size / 2**30:.1f}G" if size > 2**30 else f"{size // 1024}K",
                                              uuid=token, at=at)
                return self._send(200, page.encode(), "text/html; charset=utf-8")
            self._serve(name, "application/octet-stream", disposition=True)

        def _github(self, path):
            m = re.fullmatch(r"/([^/]+/[^/]+)/releases/download/([^/]+)/([^/]+)", path)
            name = hosts.assets.get(m.groups()) if m else None
            if name is None or self._fault(name, ("missing",)):
                return self._send(404, b"Not Found", "text/plain; charset=utf-8")
            self._redirect(302, hosts.signed_asset_url(name))

        def _asset(self, path, query):
            name = next((n for n in hosts.files if query.get("rscd", "").endswith(f"filename={n}")), None)
            expires = query.get("se", "")
            good = name is not None and hmac.compare_digest(query.get("sig", ""), hosts._signature(name, expires))
            if not good or expires < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()):
                return self._send(403, b"<Error><Code>AuthenticationFailed</Code></Error>", "application/xml")
            self._serve(name, "application/octet-stream", disposition=True)

        # -- serving bytes -----------------------------------------------------------
        def _serve(self, name, content_type, disposition=False):
            if name not in hosts.files or self._fault(name, ("missing",)):
                return self._send(404, b"Not Found\n")
            data_path = hosts.files[name]
            size = data_path.stat().st_size
            etag = '"' + hashlib.sha1(f"{name}:{size}".encode()).hexdigest() + '"'
            start = 0
            fault = self._fault(name, ("drop", "stall", "corrupt", "no-range"))
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if_range = self.headers.get("If-Range")
            if m and not (fault and fault.kind == "no-range") and if_range in (None, etag, LAST_MODIFIED):
                start = int(m.group(1))
                if start >= size:
                    return self._send(416, b"", headers={"Content-Range": f"bytes */{size}"})
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size - start))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            if disposition:
                self.send_header("Content-Disposition", f'attachment; filename="{name}"')
            self.end_headers()
            with open(data_path, "rb") as f:
                f.seek(start)
                pos = start
                while pos < size:
                    chunk = f.read(CHUNK)
                    if fault and fault.kind in ("drop", "stall") and pos + len(chunk) > fault.at:
                        chunk = chunk[:max(fault.at - pos, 0)]
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        fault.sent = pos + len(chunk)
                        if fault.kind == "stall":
                            hosts.released.wait()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if fault and fault.kind == "corrupt" and pos <= size // 2 < pos + len(chunk):
                        i = size // 2 - pos
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    self.wfile.write(chunk)
                    pos += len(chunk)
            self.wfile.flush()

        def _fault(self, name, kinds) -> Fault | None:
            with hosts.lock:
                fault = hosts.faults.get(name)
                if fault is None or fault.kind not in kinds or fault.times == 0:
                    return None
                if fault.times is not None:
                    fault.times -= 1
                return fault

        def _record(self, host):
            with hosts.lock:
                hosts.requests.append(Request(host, self.command, self.path,
                                              {k.lower(): v for k, v in self.headers.items()}))

        def _redirect(self, status, location):
            self._send(status, b"", headers={"Location": location})

        def _send(self, status, body: bytes, content_type="text/plain; charset=utf-8", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

    return Handler
