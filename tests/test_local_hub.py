"""LocalHub speaks the Hub protocol well enough for the real huggingface_hub client (no mocks, 127.0.0.1 only)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from zoo_core.testing.local_hub import LocalHub, git_blob_sha1, lfs_pointer


WEIGHTS = bytes(range(256)) * 1200  # 300 KiB, LFS-style (.safetensors)
CONFIG = b'{"hidden": 8}'
FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "sub/notes.txt": b"hello", "sub/deep/x.json": b"[]"}


def _raw(hub: LocalHub, method: str, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


def test_resolve_headers_lfs_and_regular(local_hub):
    commit = local_hub.publish("org/tiny", FILES)
    status, h, body = _raw(local_hub, "HEAD", "/org/tiny/resolve/main/model.safetensors")
    assert status == 200 and body == b""
    assert h["x-repo-commit"] == commit
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    assert h["etag"] == f'"{sha}"' and h["x-linked-etag"] == f'"{sha}"'
    assert h["x-linked-size"] == str(len(WEIGHTS)) == h["content-length"]
    assert h["accept-ranges"] == "bytes"
    assert not any(k.startswith("x-xet") for k in h)
    status, h, _ = _raw(local_hub, "HEAD", f"/org/tiny/resolve/{commit}/config.json")
    assert status == 200 and h["etag"] == f'"{git_blob_sha1(CONFIG)}"' and "x-linked-etag" not in h
    # Range requests
    status, h, body = _raw(local_hub, "GET", "/org/tiny/resolve/main/model.safetensors", {"Range": "bytes=1000-"})
    assert status == 206 and body == WEIGHTS[1000:]
    assert h["content-range"] == f"bytes 1000-{len(WEIGHTS) - 1}/{len(WEIGHTS)}"
    status, _, body = _raw(local_hub, "GET", "/org/tiny/resolve/main/model.safetensors", {"Range": "bytes=10-19"})
    assert status == 206 and body == WEIGHTS[10:20]
    status, _, _ = _raw(local_hub, "GET", "/org/tiny/resolve/main/config.json", {"Range": "bytes=999-"})
    assert status == 416


def test_hf_hub_download_and_snapshot_download(local_hub):
    commit = local_hub.publish("org/tiny", FILES)
    path = hf_hub_download("org/tiny", "model.safetensors", endpoint=local_hub.endpoint,
                           cache_dir=local_hub.cache_dir)
    assert Path(path).read_bytes() == WEIGHTS
    assert f"snapshots/{commit}/" in path
    # blob named by the ETag: sha256 for LFS files
    assert os.path.basename(os.path.realpath(path)) == hashlib.sha256(WEIGHTS).hexdigest()
    snap = Path(snapshot_download("org/tiny", endpoint=local_hub.endpoint, cache_dir=local_hub.cache_dir))
    got = {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
    assert got == FILES


def test_commits_are_immutable_and_branches_move(local_hub):
    c1 = local_hub.publish("org/tiny", {"config.json": b"1"})
    c2 = local_hub.publish("org/tiny", {"config.json": b"2"}, message="second")
    c3 = local_hub.publish("org/tiny", {"config.json": b"dev"}, branch="dev")
    assert len({c1, c2, c3}) == 3 and all(len(c) == 40 for c in (c1, c2, c3))
    api = HfApi(endpoint=local_hub.endpoint)
    assert api.model_info("org/tiny").sha == c2
    assert api.model_info("org/tiny", revision="dev").sha == c3
    kw = dict(endpoint=local_hub.endpoint, cache_dir=local_hub.cache_dir)
    assert Path(hf_hub_download("org/tiny", "config.json", revision=c1, **kw)).read_bytes() == b"1"
    assert Path(hf_hub_download("org/tiny", "config.json", **kw)).read_bytes() == b"2"
    assert Path(hf_hub_download("org/tiny", "config.json", revision="dev", **kw)).read_bytes() == b"dev"
    assert local_hub.resolve("org/tiny") == c2
    assert local_hub.files("org/tiny", c1) == {"config.json": b"1"}


def test_pin_lists_every_file(local_hub):
    commit = local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    assert pin.repo_id == "org/tiny" and pin.revision == commit and pin.repo_type == "model"
    assert {f.path: (f.sha256, f.size) for f in pin.files} == {
        p: (hashlib.sha256(d).hexdigest(), len(d)) for p, d in FILES.items()}
    assert [f.path for f in local_hub.pin("org/tiny", paths=["config.json"]).files] == ["config.json"]


def test_tree_listing_pagination_and_lfs_info(tmp_path, hf_cache):
    files = {f"f{i:02d}.txt": f"{i}".encode() for i in range(7)}
    files["model.safetensors"] = WEIGHTS
    files["sub/a.json"] = b"{}"
    with LocalHub(tmp_path / "hub", page_size=3) as hub:
        commit = hub.publish("org/many", files)
        api = HfApi(endpoint=hub.endpoint)
        entries = list(api.list_repo_tree("org/many", recursive=True, revision=commit))
        tree_gets = [p for m, p in hub.requests if "/tree/" in p]
        assert len(tree_gets) == 4  # 10 entries (9 files + 1 folder), 3 per page
        paths = sorted(e.path for e in entries)
        assert paths == sorted(list(files) + ["sub"])
        st = next(e for e in entries if e.path == "model.safetensors")
        assert st.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest() and st.lfs.size == len(WEIGHTS)
        assert st.lfs.pointer_size == len(lfs_pointer(st.lfs.sha256, len(WEIGHTS)))
        assert st.blob_id == git_blob_sha1(lfs_pointer(st.lfs.sha256, len(WEIGHTS)))
        small = next(e for e in entries if e.path == "f01.txt")
        assert small.lfs is None and small.blob_id == git_blob_sha1(b"1") and small.size == 1
        assert [e.path for e in api.list_repo_tree("org/many", "sub")] == ["sub/a.json"]
        top = [e.path for e in api.list_repo_tree("org/many")]
        assert "sub" in top and "sub/a.json" not in top
        # booleans parsed case-insensitively, unknown params ignored
        status, h, body = _raw(hub, "GET", f"/api/models/org/many/tree/{commit}?recursive=True&expand=False&x=1")
        assert status == 200 and 'rel="next"' in h["link"] and len(json.loads(body)) == 3
        status, _, body = _raw(hub, "GET", f"/api/models/org/many/tree/{commit}/sub?recursive=TRUE")
        assert [e["path"] for e in json.loads(body)] == ["sub/a.json"]
        # snapshot_download follows the pages too
        snap = Path(snapshot_download("org/many", endpoint=hub.endpoint, cache_dir=hf_cache))
        assert (snap / "sub" / "a.json").read_bytes() == b"{}" and (snap / "f06.txt").read_bytes() == b"6"


def test_typed_errors(local_hub):
    commit = local_hub.publish("org/tiny", FILES)
    kw = dict(endpoint=local_hub.endpoint, cache_dir=local_hub.cache_dir)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/nope", "config.json", **kw)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny", "config.json", revision="nobranch", **kw)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny", "config.json", revision="0" * 40, **kw)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/tiny", "missing.json", **kw)
    # EntryNotFound carries X-Repo-Commit, so the client caches the non-existence
    assert (local_hub.cache_dir / "models--org--tiny" / ".no_exist" / commit / "missing.json").exists()
    api = HfApi(endpoint=local_hub.endpoint)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("org/nope")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/tiny", revision="nobranch")
    local_hub.delete_revision("org/tiny", commit)
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/tiny", revision=commit)


def test_private_repo_needs_the_token(local_hub):
    local_hub.publish("org/secret", {"config.json": CONFIG}, private=True)
    kw = dict(endpoint=local_hub.endpoint, cache_dir=local_hub.cache_dir)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/secret", "config.json", token=False, **kw)
    path = hf_hub_download("org/secret", "config.json", token=local_hub.token, **kw)
    assert Path(path).read_bytes() == CONFIG


def test_datasets_are_served_too(local_hub):
    local_hub.publish("org/data", {"train.jsonl": b'{"x": 1}\n'}, repo_type="dataset")
    path = hf_hub_download("org/data", "train.jsonl", repo_type="dataset", endpoint=local_hub.endpoint,
                           cache_dir=local_hub.cache_dir)
    assert Path(path).read_bytes() == b'{"x": 1}\n' and "datasets--org--data" in path
    with pytest.raises(RepositoryNotFoundError):  # a model of that name does not exist
        hf_hub_download("org/data", "train.jsonl", endpoint=local_hub.endpoint, cache_dir=local_hub.cache_dir)


def test_corrupt_serves_same_length_other_bytes(local_hub):
    local_hub.publish("org/tiny", FILES)
    local_hub.corrupt("org/tiny", "model.safetensors", times=1)
    _, h1, bad = _raw(local_hub, "GET", "/org/tiny/resolve/main/model.safetensors")
    _, h2, good = _raw(local_hub, "GET", "/org/tiny/resolve/main/model.safetensors")
    assert len(bad) == len(good) == len(WEIGHTS) and bad != good and good == WEIGHTS
    assert h1["etag"] == h2["etag"]


def test_drop_connection_client_resumes_with_range(local_hub, monkeypatch):
    # The client writes in 10 MiB chunks: a drop before the first chunk is complete restarts from 0
    # (see test_hub.py); with smaller chunks (or a drop after 10 MiB) it resumes with a Range request.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 32 * 1024)
    local_hub.publish("org/tiny", FILES)
    local_hub.drop_connection("org/tiny", "model.safetensors", after_bytes=100_000)
    path = hf_hub_download("org/tiny", "model.safetensors", endpoint=local_hub.endpoint,
                           cache_dir=local_hub.cache_dir)
    assert Path(path).read_bytes() == WEIGHTS
    gets = [r for r in local_hub.request_log if r.method == "GET" and "/resolve/" in r.path]
    assert [g.status for g in gets] == [200, 206]
    assert gets[1].headers["range"] == f"bytes={3 * 32 * 1024}-"  # the whole chunks received before the drop


def test_injected_failure_and_stall(local_hub):
    local_hub.publish("org/tiny", FILES)
    local_hub.fail("org/tiny", "config.json", 503, times=1)
    status, _, _ = _raw(local_hub, "HEAD", "/org/tiny/resolve/main/config.json")
    assert status == 503
    assert _raw(local_hub, "HEAD", "/org/tiny/resolve/main/config.json")[0] == 200

    local_hub.stall("org/tiny", "model.safetensors", after_bytes=70_000)
    out = {}
    url = "/org/tiny/resolve/main/model.safetensors"
    t = threading.Thread(target=lambda: out.update(r=_raw(local_hub, "GET", url)))
    t.start()
    assert local_hub.wait_until_sent("org/tiny", "model.safetensors", 70_000, timeout=5)
    time.sleep(0.1)
    assert local_hub.sent_bytes("org/tiny", "model.safetensors") == 70_000 and t.is_alive()
    local_hub.release_stalls()
    t.join(5)
    assert out["r"][2] == WEIGHTS


def test_upload_folder_with_the_real_client(local_hub, tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_bytes(CONFIG)
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (folder / "sub" / "notes.txt").write_text("n")
    api = HfApi(endpoint=local_hub.endpoint, token=local_hub.token)
    url = api.create_repo("me/pushed", exist_ok=True)
    assert url.repo_id == "me/pushed"
    api.create_repo("me/pushed", exist_ok=True)  # 409 swallowed
    info = api.upload_folder(folder_path=folder, repo_id="me/pushed", commit_message="first")
    assert info.oid == local_hub.resolve("me/pushed")
    got = local_hub.files("me/pushed")
    assert got["model.safetensors"] == WEIGHTS and got["sub/notes.txt"] == b"n" and ".gitattributes" in got
    # the pushed repo downloads like any other
    path = hf_hub_download("me/pushed", "model.safetensors", endpoint=local_hub.endpoint,
                           cache_dir=local_hub.cache_dir)
    assert Path(path).read_bytes() == WEIGHTS
    # without a token, writes are refused
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=local_hub.endpoint, token=False).upload_folder(folder_path=folder, repo_id="me/pushed")


@pytest.mark.filterwarnings("ignore:Use 'content=<...>'")  # the client's own PUT call, not ours
def test_upload_through_the_lfs_batch_protocol(tmp_path, hf_cache):
    # HF_HUB_DISABLE_XET is on (hf_cache fixture), so "lfs" upload mode goes through batch + PUT + verify
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(WEIGHTS)
    (folder / "config.json").write_bytes(CONFIG)
    with LocalHub(tmp_path / "hub", upload_mode="lfs") as hub:
        api = HfApi(endpoint=hub.endpoint, token=hub.token)
        api.create_repo("me/lfs")
        info = api.upload_folder(folder_path=folder, repo_id="me/lfs")
        assert info.oid == hub.resolve("me/lfs")
        methods = [(m, p) for m, p in hub.requests]
        assert any(p.endswith(".git/info/lfs/objects/batch") for _, p in methods)
        assert any(m == "PUT" and p.startswith("/_lfs/") for m, p in methods)
        assert hub.files("me/lfs")["model.safetensors"] == WEIGHTS
        # unchanged content: the second upload sends no LFS object again
        hub.clear_requests()
        api.upload_folder(folder_path=folder, repo_id="me/lfs")
        assert not any(m == "PUT" for m, _ in hub.requests)


def test_reopen_same_root_and_clean_shutdown(tmp_path, hf_cache):
    hub = LocalHub(tmp_path / "hub")
    with hub:
        commit = hub.publish("org/tiny", {"config.json": CONFIG})
        hub.stall("org/tiny", "config.json", after_bytes=1)
        t = threading.Thread(target=lambda: _raw(hub, "GET", "/org/tiny/resolve/main/config.json"), daemon=True)
        t.start()
        assert hub.wait_until_sent("org/tiny", "config.json", 1, timeout=5)
    t.join(5)
    assert not t.is_alive()  # stop() released the stall
    with LocalHub(tmp_path / "hub") as again:
        assert again.resolve("org/tiny") == commit
        assert again.files("org/tiny")["config.json"] == CONFIG
