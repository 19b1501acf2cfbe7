"""Large files are hashed while the client writes them (zoo_core.hub.stream), and the hash still vouches for
exactly the bytes on disk: across retries, a Range answered with the whole file, a rewrite after the download.

Real huggingface_hub client against LocalHub over 127.0.0.1; no mocks of the client.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import threading
from pathlib import Path

import pytest

from zoo_core import hub
from zoo_core.errors import IntegrityError
from zoo_core.hub import download as hub_download
from zoo_core.hub import stream
from zoo_core.hub.stream import HashingWriter

MB = 1024 * 1024
BIG = os.urandom(24 * MB)  # above STREAM_HASH_MIN, and many of the client's chunks
FILES = {"config.json": b'{"architecture": "tiny"}', "model.safetensors": BIG}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


# --- the writer on its own ---------------------------------------------------------------------

def test_writes_in_order_give_the_digests_of_the_file():
    f = io.BytesIO()
    w = HashingWriter(f, git_size=6)
    w.write(b"abc")
    w.write(b"def")
    assert f.getvalue() == b"abcdef"
    assert w.digests(6) == (_sha(b"abcdef"), _git_sha1(b"abcdef"))
    assert w.digests(7) is None  # not the size the file must have
    w.close()


def test_many_chunks_hashed_behind_the_writes_give_the_same_digest():
    f = io.BytesIO()
    w = HashingWriter(f)
    chunks = [os.urandom(100_000) for _ in range(3 * HashingWriter.BACKLOG)]
    for c in chunks:
        w.write(c)
    w.close()
    assert w.digests(len(f.getvalue())) == (_sha(b"".join(chunks)), None)


def test_a_write_anywhere_but_the_end_voids_the_digest():
    f = io.BytesIO()
    w = HashingWriter(f)
    w.write(b"good bytes")
    w.seek(0)
    w.write(b"BAD!")  # the file is now "BAD! bytes": the hash of the writes would lie
    assert f.getvalue() == b"BAD! bytes"
    assert w.digests(10) is None
    w.close()


def test_a_truncation_to_zero_starts_again_and_a_partial_one_voids():
    f = io.BytesIO()
    w = HashingWriter(f)
    w.write(b"first attempt, cut")
    w.seek(0)
    w.truncate()  # what http_get does when its Range request is answered with the whole file
    w.write(b"whole file")
    assert w.digests(10) == (_sha(b"whole file"), None)
    w.truncate(5)
    assert w.digests(5) is None
    w.close()


def test_anything_else_done_to_the_file_voids_the_digest():
    f = io.BytesIO()
    w = HashingWriter(f)
    w.write(b"abc")
    w.writelines([b"def"])  # not tracked: the writer stops vouching, the call still happens
    assert f.getvalue() == b"abcdef"
    assert w.digests(6) is None
    w.close()


def test_the_bytes_of_a_resumed_part_are_read_and_hashed_first(tmp_path):
    part = tmp_path / "x.incomplete"
    part.write_bytes(b"first half ")
    with open(part, "r+b") as f:
        w = HashingWriter(f, have=11)
        assert w.tell() == 11
        w.write(b"second half")
        assert w.digests(22) == (_sha(b"first half second half"), None)
        w.close()
    assert part.read_bytes() == b"first half second half"


# --- pulls ---------------------------------------------------------------------------------------

@pytest.fixture
def reads(monkeypatch):
    """The files a pull hashes by reading them back from disk (it should not need to for large ones)."""
    seen: list[str] = []
    for name in ("zoo_core.hub.pull", "zoo_core.hub.verify"):
        module = importlib.import_module(name)

        def counting(path, real=module.hash_file, **kw):
            seen.append(os.path.basename(os.path.realpath(path)))
            return real(path, **kw)

        monkeypatch.setattr(module, "hash_file", counting)
    return seen


def _gets(local_hub, path):
    return [r for r in local_hub.request_log if r.method == "GET" and r.path.endswith("/" + path)]


def test_a_large_file_is_verified_without_reading_it_back(local_hub, reads):
    assert len(BIG) >= hub_download.STREAM_HASH_MIN
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    snap = hub.pull(pin, progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    assert _sha(BIG) not in reads  # hashed while written
    assert hub.local_state(pin) == "verified"
    assert not list((local_hub.cache_dir / "models--org--big" / "blobs").glob("*.incomplete"))


def test_a_large_file_served_wrong_is_caught_and_removed(local_hub, reads):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    local_hub.corrupt("org/big", "model.safetensors", times=1)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        hub.pull(pin, progress=False)
    assert hub.local_state(pin) == "absent"
    assert (hub.pull(pin, progress=False) / "model.safetensors").read_bytes() == BIG


def test_a_dropped_connection_resumes_and_the_hash_carries_on(local_hub, reads):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    local_hub.drop_connection("org/big", "model.safetensors", after_bytes=15 * MB)
    snap = hub.pull(pin, progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    ranges = [{k.lower(): v for k, v in r.headers.items()}.get("range") for r in _gets(local_hub, "model.safetensors")]
    assert ranges == [None, f"bytes={15 * MB}-"]  # the client keeps whole chunks (1 MiB ones, set by the zoo)
    assert _sha(BIG) not in reads and hub.local_state(pin) == "verified"


def test_a_retry_answered_with_the_whole_file_rewrites_it_in_place_and_is_checked(local_hub, reads):
    """First attempt: bad bytes, cut. The retry's Range is ignored (200): the client rewrites the file from byte 0."""
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    local_hub.corrupt("org/big", "model.safetensors", times=1)
    local_hub.drop_connection("org/big", "model.safetensors", after_bytes=15 * MB)
    local_hub.ignore_range("org/big", "model.safetensors")
    snap = hub.pull(pin, progress=False)
    assert [r.status for r in _gets(local_hub, "model.safetensors")] == [200, 200]
    assert (snap / "model.safetensors").read_bytes() == BIG
    assert hub.local_state(pin) == "verified"


def test_bad_bytes_rewritten_in_place_after_a_retry_are_caught(local_hub):
    """First attempt: good bytes, cut. The retry's Range is ignored and the whole file it sends is bad."""
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    release = local_hub.stall("org/big", "model.safetensors", after_bytes=12 * MB)
    local_hub.drop_connection("org/big", "model.safetensors", after_bytes=15 * MB)
    local_hub.ignore_range("org/big", "model.safetensors")
    errors: list[BaseException] = []

    def pull():
        try:
            hub.pull(pin, progress=False)
        except BaseException as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    t = threading.Thread(target=pull)
    t.start()
    try:
        assert local_hub.wait_until_sent("org/big", "model.safetensors", 12 * MB)
        local_hub.corrupt("org/big", "model.safetensors", times=1)  # for the next GET: the retry
    finally:
        release.set()
    t.join(60)
    assert not t.is_alive()
    assert [r.status for r in _gets(local_hub, "model.safetensors")] == [200, 200]
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError), errors
    assert hub.local_state(pin) == "absent"  # the bad blob was removed


def test_a_blob_changed_after_its_download_is_hashed_again_and_caught(local_hub, monkeypatch, reads):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    real = stream.fetch_blob

    def then_damaged(repo, url, **kw):
        hashed = real(repo, url, **kw)
        blob = Path(hashed.stat[0])
        with open(blob, "r+b") as f:  # rewritten in place, same size
            f.write(b"\0" * 4096)
        os.utime(blob, ns=(hashed.stat[2] + 10**9, hashed.stat[2] + 10**9))
        return hashed

    monkeypatch.setattr(hub_download, "fetch_blob", then_damaged)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        hub.pull(pin, progress=False)
    assert _sha(BIG) in reads  # the digests no longer described the blob: it was read back
    assert hub.local_state(pin) == "absent"


def test_a_partial_large_file_left_by_a_killed_pull_is_resumed_and_hashed_once(local_hub, reads):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    blobs = local_hub.cache_dir / "models--org--big" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{_sha(BIG)}.1f2e3d4c.incomplete").write_bytes(BIG[:5 * MB])
    (blobs / f"{_sha(BIG)}.99999999.incomplete").write_bytes(BIG[:1 * MB])  # a smaller one: dropped
    snap = hub.pull(pin, progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    ranges = [{k.lower(): v for k, v in r.headers.items()}.get("range") for r in _gets(local_hub, "model.safetensors")]
    assert ranges == [f"bytes={5 * MB}-"]
    assert _sha(BIG) not in reads and hub.local_state(pin) == "verified"
    assert not list(blobs.glob("*.incomplete"))


def test_an_unpinned_repo_gets_git_sha1_for_its_large_regular_files(local_hub, reads):
    """A large file stored without LFS: the Hub lists its git blob sha1, the stream computes it too."""
    local_hub.lfs_threshold = 10**9
    local_hub.lfs_suffixes = ()
    local_hub.publish("org/plain", {"model.safetensors": BIG, "config.json": b"{}"})
    snap = hub.pull_repo("org/plain", progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    assert _git_sha1(BIG) not in reads  # its blob is named by the git sha1
    assert _content_ok(snap)


def _content_ok(snap: Path) -> bool:
    return (snap / "config.json").read_bytes() == b"{}"


def test_a_file_redirected_to_another_host_is_fetched_without_the_token(local_hub, monkeypatch):
    """A Hub answers with a redirect to a CDN on another host: the token must stay with the Hub, also when a
    partial file is resumed (the resume once sent it along)."""
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    cdn = local_hub.endpoint.replace("127.0.0.1", "localhost")  # the same server under another host name

    class Redirecting(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _redirect(self):
            head = urllib.request.urlopen(urllib.request.Request(local_hub.endpoint + self.path, method="HEAD"))
            self.send_response(302)
            for k in ("X-Repo-Commit", "ETag", "X-Linked-Etag", "X-Linked-Size"):
                if head.headers.get(k):
                    self.send_header(k, head.headers[k])
            self.send_header("Location", cdn + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET = _redirect

    hub_server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=hub_server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hub_server.server_address[1]}")
        monkeypatch.setenv("HF_TOKEN", local_hub.token)
        blobs = local_hub.cache_dir / "models--org--big" / "blobs"
        blobs.mkdir(parents=True)
        (blobs / f"{_sha(BIG)}.1f2e3d4c.incomplete").write_bytes(BIG[:5 * MB])
        local_hub.clear_requests()
        snap = hub.pull(pin, progress=False)
    finally:
        hub_server.shutdown()
        hub_server.server_close()
    assert (snap / "model.safetensors").read_bytes() == BIG
    gets = [r for r in local_hub.request_log if r.method == "GET"]
    assert {r.path.rsplit("/", 1)[-1] for r in gets} == {"model.safetensors", "config.json"}
    assert all("authorization" not in {k.lower() for k in r.headers} for r in gets)
    assert hub.local_state(pin) == "verified"
