"""zoo_core.hub with the real huggingface_hub client against LocalHub over 127.0.0.1 (no mocks, no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import pytest

from zoo_core import hub
from zoo_core.errors import IntegrityError, UnsafeFileError, ZooError
from zoo_core.pins import FilePin, HubPin
from zoo_core.testing import free_port


WEIGHTS = bytes(range(256)) * 1200  # 300 KiB, served LFS-style
FILES = {
    "config.json": b'{"architecture": "tiny", "hidden": 8}',
    "model.safetensors": WEIGHTS,
    "README.md": b"# tiny\n",
    "extra/vocab.txt": b"a\nb\nc\n",
}


def _blob_files(cache: Path, repo_id: str) -> list[Path]:
    blobs = cache / ("models--" + repo_id.replace("/", "--")) / "blobs"
    return sorted(p for p in blobs.iterdir() if not p.name.endswith(".incomplete")) if blobs.is_dir() else []


def _content(snap: Path) -> dict[str, bytes]:
    return {p.relative_to(snap).as_posix(): p.read_bytes() for p in snap.rglob("*") if p.is_file()}


def test_pull_is_byte_identical_and_second_pull_makes_no_request(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    assert hub.local_state(pin) == "absent" and hub.snapshot_path(pin) is None

    snap = hub.pull(pin, progress=False)
    assert snap == local_hub.cache_dir / "models--org--tiny" / "snapshots" / pin.revision
    assert _content(snap) == FILES
    assert len(local_hub.downloads()) == len(FILES)
    assert hub.local_state(pin) == "verified" and hub.snapshot_path(pin) == snap

    local_hub.clear_requests()
    assert hub.pull(pin, progress=False) == snap
    assert local_hub.requests == []  # no download, and no request at all

    # the standard HF cache sees it (what `hf cache ls` shows)
    (model,) = hub.cached_models()
    assert model.repo_id == "org/tiny" and model.revisions[0].commit == pin.revision
    assert model.revisions[0].verified and model.size_on_disk == sum(len(v) for v in FILES.values())


def test_second_pull_rehashes_only_after_a_change_on_disk(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    snap = hub.pull(pin, progress=False)
    blob = Path(os.path.realpath(snap / "config.json"))
    os.utime(blob, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))  # mtime moved, content intact
    assert hub.local_state(pin) == "pulled"
    assert hub.local_state(pin, deep=True) == "verified"
    local_hub.clear_requests()
    hub.pull(pin, progress=False)
    assert local_hub.requests == []


def test_corrupt_download_raises_and_leaves_nothing_corrupt(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    local_hub.corrupt("org/tiny", "model.safetensors")
    with pytest.raises(IntegrityError) as err:
        hub.pull(pin, progress=False)
    msg = str(err.value)
    assert "model.safetensors" in msg and "org/tiny" in msg and "sha256" in msg and "next:" in msg
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    names = [p.name for p in _blob_files(local_hub.cache_dir, "org/tiny")]
    assert sha not in names  # the corrupt blob is gone ...
    snap = local_hub.cache_dir / "models--org--tiny" / "snapshots" / pin.revision
    assert not os.path.lexists(snap / "model.safetensors")  # ... and so is its snapshot link
    assert (snap / "config.json").read_bytes() == FILES["config.json"]  # the good files stay
    assert hub.local_state(pin) == "absent"
    assert hub.cached_models()[0].repo_id == "org/tiny"  # the cache is still consistent for scan_cache_dir

    local_hub.heal("org/tiny", "model.safetensors")
    local_hub.clear_requests()
    assert _content(hub.pull(pin, progress=False)) == FILES
    assert local_hub.downloads() == local_hub.downloads("model.safetensors")  # only the evicted file again
    assert hub.local_state(pin) == "verified"


def test_pin_with_a_wrong_hash(local_hub):
    local_hub.publish("org/tiny", FILES)
    good = local_hub.pin("org/tiny")
    wrong = dataclasses.replace(good, files=tuple(
        dataclasses.replace(f, sha256="0" * 64) if f.path == "config.json" else f for f in good.files))
    with pytest.raises(IntegrityError, match="config.json"):
        hub.pull(wrong, progress=False)
    assert hub.local_state(wrong) == "pulled"  # present, never verified against the wrong pin; kept
    local_hub.clear_requests()
    assert _content(hub.pull(good, progress=False)) == FILES
    assert local_hub.downloads() == []


def test_wrong_size_in_pin_is_an_integrity_error(local_hub):
    local_hub.publish("org/tiny", FILES)
    good = local_hub.pin("org/tiny")
    wrong = dataclasses.replace(good, files=tuple(
        dataclasses.replace(f, size=f.size + 1) if f.path == "README.md" else f for f in good.files))
    with pytest.raises(IntegrityError, match="README.md"):
        hub.pull(wrong, progress=False)


def test_locally_damaged_blob_is_replaced(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    snap = hub.pull(pin, progress=False)
    blob = Path(os.path.realpath(snap / "model.safetensors"))
    blob.write_bytes(b"\0" * len(WEIGHTS))  # same size, other bytes, new mtime
    assert hub.local_state(pin) == "pulled"
    assert hub.local_state(pin, deep=True) == "corrupt"
    local_hub.clear_requests()
    assert _content(hub.pull(pin, progress=False)) == FILES  # evicted and downloaded again
    assert local_hub.downloads() == local_hub.downloads("model.safetensors")
    blob.write_bytes(b"short")
    assert hub.local_state(pin) == "corrupt"
    # a deleted blob leaves a dangling link: absent, and the next pull repairs it
    blob.unlink()
    assert hub.local_state(pin) == "absent"
    assert hub.cached_models() == []  # scan_cache_dir reports the repo as damaged and skips it
    assert _content(hub.pull(pin, progress=False)) == FILES and hub.local_state(pin) == "verified"
    blob.unlink()
    assert hub.remove("org/tiny") > 0  # a damaged repo is removed whole
    assert not (local_hub.cache_dir / "models--org--tiny").exists()


def test_dropped_connection_pull_completes_and_verifies(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    local_hub.drop_connection("org/tiny", "model.safetensors", after_bytes=150_000)
    assert _content(hub.pull(pin, progress=False)) == FILES
    gets = [r for r in local_hub.request_log if r.method == "GET" and r.path.endswith("model.safetensors")]
    # the client keeps whole chunks only (1 MiB, env.sync_client), so it restarted this small file
    assert len(gets) == 2 and gets[0].status == 200
    assert hub.local_state(pin) == "verified"


def test_unknown_repo_revision_and_file(local_hub):
    commit = local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    with pytest.raises(hub.HubNotFoundError, match="org/nope not found") as err:
        hub.pull(dataclasses.replace(pin, repo_id="org/nope"), progress=False)
    assert "HF_TOKEN" in str(err.value)
    with pytest.raises(hub.HubNotFoundError, match="revision") as err:
        hub.pull(dataclasses.replace(pin, revision="f" * 40), progress=False)
    assert "pin" in err.value.hint
    missing = dataclasses.replace(pin, files=pin.files + (FilePin("nothere.json", "0" * 64, 3),))
    with pytest.raises(hub.HubNotFoundError, match="nothere.json"):
        hub.pull(missing, progress=False)
    with pytest.raises(hub.HubNotFoundError):
        hub.pull_repo("org/nope", progress=False)
    with pytest.raises(hub.HubNotFoundError, match="revision"):
        hub.pull_repo("org/tiny", "nobranch", progress=False)
    # the files of `missing` that exist were downloaded (unverified); the pin itself still pulls
    assert _content(hub.pull(pin, progress=False)) == FILES
    # a deleted commit: a pin already verified in the cache still works, another one is a clear error
    local_hub.delete_revision("org/tiny", commit)
    assert hub.pull(pin, progress=False)
    commit2 = local_hub.publish("org/tiny", {"model.safetensors": b"v2"})
    other = local_hub.pin("org/tiny", commit2)
    local_hub.delete_revision("org/tiny", commit2)
    with pytest.raises(hub.HubNotFoundError, match="revision"):
        hub.pull(other, progress=False)


def test_unsafe_pins_are_refused_before_any_request(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    for bad_path in ("pytorch_model.bin", "weights.PT", "ckpt/model.ckpt", "x.pkl"):
        bad = dataclasses.replace(pin, files=(FilePin(bad_path, "0" * 64, 1),))
        with pytest.raises(UnsafeFileError, match="pickle"):
            hub.pull(bad, progress=False)
    for bad_path in ("../evil.json", "/etc/passwd", "a/../../b.json", "a//b.json", "..", "C:/x.json", "a\\..\\b"):
        bad = dataclasses.replace(pin, files=(FilePin(bad_path, "0" * 64, 1),))
        with pytest.raises(UnsafeFileError, match="escapes"):
            hub.pull(bad, progress=False)
        assert hub.local_state(bad) == "absent" and hub.snapshot_path(bad) is None
    with pytest.raises(ZooError, match="40-hex"):
        hub.pull(dataclasses.replace(pin, revision="main"), progress=False)
    assert local_hub.requests == []


def test_offline_after_pull_works_in_process(local_hub, monkeypatch):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    snap = hub.pull(pin, progress=False)
    local_hub.clear_requests()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.pull(pin, progress=False) == snap
    # even without zoo's verification record, offline re-verifies from the cache
    for marker in (local_hub.zoo_home / "verified").rglob("*.json"):
        marker.unlink()
    assert hub.local_state(pin) == "pulled"
    assert hub.pull(pin, progress=False) == snap and hub.local_state(pin) == "verified"
    assert local_hub.requests == []


def test_offline_before_any_pull_is_a_clear_error(local_hub, monkeypatch):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineCacheMissError) as err:
        hub.pull(pin, progress=False)
    text = str(err.value)
    assert "org/tiny" in text and "HF_HUB_OFFLINE" in text and "online" in text
    with pytest.raises(hub.OfflineCacheMissError, match="org/tiny"):
        hub.pull_repo("org/tiny", progress=False)
    assert local_hub.requests == []


def test_connection_refused_is_quick_and_clear(hf_cache):
    port = free_port()  # nothing listens there
    pin = HubPin("org/tiny", "a" * 40, (FilePin("config.json", "0" * 64, 2),))
    t0 = time.monotonic()
    with pytest.raises(hub.HubConnectionError, match="could not download") as err:
        hub.pull(pin, endpoint=f"http://127.0.0.1:{port}", progress=False)
    assert time.monotonic() - t0 < 5
    assert "HF_ENDPOINT" in err.value.hint


def test_endpoint_argument_and_hf_endpoint_env(local_hub, tmp_path, monkeypatch):
    from zoo_core.testing.local_hub import LocalHub

    with LocalHub(tmp_path / "mirror") as mirror:
        mirror.publish("org/tiny", FILES)
        pin = mirror.pin("org/tiny")
        assert _content(hub.pull(pin, endpoint=mirror.endpoint, progress=False)) == FILES
        assert local_hub.requests == [] and mirror.downloads()
        # HF_ENDPOINT read at call time: point it at the mirror for a second model
        mirror.publish("org/two", {"model.safetensors": b"x" * 10})
        monkeypatch.setenv("HF_ENDPOINT", mirror.endpoint)
        hub.pull(mirror.pin("org/two"), progress=False)
        assert local_hub.requests == []


def test_hf_token_is_honoured(local_hub, monkeypatch):
    local_hub.publish("org/secret", FILES, private=True)
    pin = local_hub.pin("org/secret")
    with pytest.raises(hub.HubNotFoundError, match="HF_TOKEN"):
        hub.pull(pin, progress=False, token=False)
    monkeypatch.setenv("HF_TOKEN", local_hub.token)
    assert _content(hub.pull(pin, progress=False)) == FILES


def test_pull_repo_verifies_against_the_tree(local_hub):
    files = dict(FILES, **{"pytorch_model.bin": b"PICKLE", "tokenizer.model": b"sp", ".gitattributes": b"*.bin lfs\n"})
    commit = local_hub.publish("org/mixed", files)
    snap = hub.pull_repo("org/mixed", progress=False)
    assert snap.name == commit
    assert _content(snap) == FILES  # safetensors, json, md, txt -- no pickle, nothing else
    assert not local_hub.downloads("pytorch_model.bin")
    # branch ref recorded, so offline by branch name works; no download the second time
    local_hub.clear_requests()
    assert hub.pull_repo("org/mixed", progress=False) == snap
    assert not local_hub.downloads() and len(local_hub.requests) == 1  # the branch -> commit lookup only
    local_hub.clear_requests()
    assert hub.pull_repo("org/mixed", commit, progress=False) == snap
    assert local_hub.requests == []
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        assert hub.pull_repo("org/mixed", progress=False) == snap
    finally:
        del os.environ["HF_HUB_OFFLINE"]
    assert local_hub.requests == []


def test_pull_repo_detects_corruption_of_lfs_and_regular_files(local_hub):
    for path in ("model.safetensors", "config.json"):  # sha256 from lfs.oid / git blob sha1 from oid
        repo = f"org/{path.split('.')[0]}"
        local_hub.publish(repo, FILES)
        local_hub.corrupt(repo, path, times=1)
        with pytest.raises(IntegrityError, match=path):
            hub.pull_repo(repo, progress=False)
        assert _content(hub.pull_repo(repo, progress=False)) == FILES


def test_pull_repo_refuses_pickle_only_and_escaping_repos(local_hub):
    local_hub.publish("org/pickled", {"config.json": b"{}", "pytorch_model.bin": b"PICKLE"})
    with pytest.raises(UnsafeFileError, match="pickle") as err:
        hub.pull_repo("org/pickled", progress=False)
    assert "pytorch_model.bin" in str(err.value) and "safetensors" in str(err.value)
    local_hub.publish("org/escape", {"model.safetensors": b"x", "../evil.json": b"{}"}, allow_unsafe_paths=True)
    with pytest.raises(UnsafeFileError, match="escapes"):
        hub.pull_repo("org/escape", progress=False)
    local_hub.publish("org/empty", {"config.json": b"{}"})
    with pytest.raises(ZooError, match="no .safetensors"):
        hub.pull_repo("org/empty", progress=False)
    with pytest.raises(UnsafeFileError):
        hub.pull_repo("org/pickled", include=["*.bin"], progress=False)
    assert not local_hub.downloads()


def test_cache_listing_and_removal(local_hub):
    c1 = local_hub.publish("org/tiny", FILES)
    pin1 = local_hub.pin("org/tiny")
    hub.pull(pin1, progress=False)
    local_hub.publish("org/tiny", dict(FILES, **{"config.json": b'{"v": 2}'}))
    pin2 = local_hub.pin("org/tiny")
    hub.pull(pin2, progress=False)
    (model,) = hub.cached_models()
    assert {r.commit for r in model.revisions} == {c1, pin2.revision}
    # removing one revision frees only what the other does not share
    freed = hub.remove("org/tiny", c1[:10])
    assert freed == len(FILES["config.json"])
    assert hub.local_state(pin1) == "absent" and hub.local_state(pin2) == "verified"
    assert hub.remove("org/tiny", "f" * 40) == 0 and hub.remove("org/other") == 0
    freed = hub.remove("org/tiny")
    assert freed == sum(len(v) for v in FILES.values()) - len(FILES["config.json"]) + len(b'{"v": 2}')
    assert hub.cached_models() == [] and hub.local_state(pin2) == "absent"
    assert not list((local_hub.zoo_home / "verified").rglob("*.json"))


def test_push_then_pull_round_trip(local_hub, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    (folder / "extra").mkdir(parents=True)
    for path, data in FILES.items():
        (folder / path).write_bytes(data)
    monkeypatch.setenv("HF_TOKEN", local_hub.token)
    commit = hub.push(folder, "me/tiny", message="first push")
    assert commit == local_hub.resolve("me/tiny")
    pin = hub.pin_for_folder(folder, "me/tiny", commit)
    assert {f.path for f in pin.files} == set(FILES)
    assert pin == local_hub.pin("me/tiny", paths=sorted(FILES))
    local_hub.clear_requests()
    assert _content(hub.pull(pin, progress=False)) == FILES
    # a second push of changed content makes a new commit
    (folder / "config.json").write_bytes(b'{"v": 2}')
    commit2 = hub.push(folder, "me/tiny")
    assert commit2 != commit and local_hub.files("me/tiny")["config.json"] == b'{"v": 2}'


def test_push_refuses_pickles_and_missing_token(local_hub, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    (folder / "optimizer.pt").write_bytes(b"PICKLE")
    with pytest.raises(UnsafeFileError, match="optimizer.pt"):
        hub.push(folder, "me/tiny", token=local_hub.token)
    assert local_hub.requests == []
    (folder / "optimizer.pt").unlink()
    with pytest.raises(ZooError, match="HTTP 401|refused"):
        hub.push(folder, "me/tiny", token=False)


def test_progress_bars_on(local_hub, monkeypatch, capsys):
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS")
    monkeypatch.setenv("TQDM_POSITION", "-1")  # bars on even without a terminal (as huggingface_hub does)
    monkeypatch.setattr(hub.verify, "HASH_PROGRESS_MIN", 0)  # show the verification bar for small files too
    local_hub.publish("org/tiny", FILES)
    assert _content(hub.pull(local_hub.pin("org/tiny"))) == FILES
    err = capsys.readouterr().err
    assert "verifying org/tiny" in err
    from huggingface_hub.utils import are_progress_bars_disabled

    if not are_progress_bars_disabled():  # the client's own switch, read when it was imported
        assert "model.safetensors" in err


@pytest.mark.parametrize("path", ["model.safetensors", "config.json"])  # an LFS file and a plain git blob
def test_a_wrong_pin_is_named_and_deletes_nothing_another_pin_verifies(local_hub, tmp_path, path):
    local_hub.publish("org/tiny", FILES)
    good = local_hub.pin("org/tiny")
    wrong = dataclasses.replace(good, files=tuple(
        dataclasses.replace(f, sha256="0" * 64) if f.path == path else f for f in good.files))

    hub.pull(good, progress=False)
    local_hub.clear_requests()
    with pytest.raises(IntegrityError, match="is wrong for " + path) as err:
        hub.pull(wrong, progress=False)
    assert "nothing was deleted" in str(err.value) and "exactly what the Hub serves" in str(err.value)
    assert local_hub.downloads() == []  # a download would not have helped
    assert hub.local_state(good) == "verified"

    fresh = tmp_path / "fresh-cache"  # the wrong pin first, on an empty cache
    with pytest.raises(IntegrityError, match="is wrong for " + path):
        hub.pull(wrong, cache_dir=fresh, progress=False)
    local_hub.clear_requests()
    snap = hub.pull(good, cache_dir=fresh, progress=False)
    assert local_hub.downloads() == [] and _content(snap) == FILES


def test_bytes_damaged_in_the_cache_are_still_removed_and_fetched_again(local_hub):
    local_hub.publish("org/tiny", FILES)
    pin = local_hub.pin("org/tiny")
    snap = hub.pull(pin, progress=False)
    blob = (snap / "model.safetensors").resolve()
    blob.write_bytes(b"\0" * len(WEIGHTS))  # same size, not what its name (the Hub's hash) says
    local_hub.clear_requests()
    assert _content(hub.pull(pin, progress=False)) == FILES
    assert len(local_hub.downloads("model.safetensors")) == 1


BIG = bytes(range(251)) * 12_000  # ~3 MB, LFS-style


def test_a_pull_killed_midway_resumes_from_where_it_stopped(local_hub):
    local_hub.publish("org/big", {"config.json": b"{}", "model.safetensors": BIG})
    pin = local_hub.pin("org/big")
    sha = hashlib.sha256(BIG).hexdigest()
    blobs = local_hub.cache_dir / "models--org--big" / "blobs"
    blobs.mkdir(parents=True)
    have = 2_000_000
    (blobs / f"{sha}.1f2e3d4c.incomplete").write_bytes(BIG[:have])  # what a SIGKILLed pull leaves
    local_hub.clear_requests()
    snap = hub.pull(pin, progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    gets = [r for r in local_hub.request_log if r.method == "GET" and r.path.endswith("/model.safetensors")]
    assert [{k.lower(): v for k, v in r.headers.items()}.get("range") for r in gets] == [f"bytes={have}-"]
    assert not list(blobs.glob("*.incomplete"))
    assert hub.local_state(pin) == "verified"


def test_a_damaged_partial_file_is_caught_by_the_sha256_and_fetched_whole(local_hub):
    local_hub.publish("org/big", {"config.json": b"{}", "model.safetensors": BIG})
    pin = local_hub.pin("org/big")
    blobs = local_hub.cache_dir / "models--org--big" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{hashlib.sha256(BIG).hexdigest()}.0a0b0c0d.incomplete").write_bytes(b"\0" * 1000)
    with pytest.raises(IntegrityError):
        hub.pull(pin, progress=False)
    assert _content(hub.pull(pin, progress=False))["model.safetensors"] == BIG


def test_a_pull_that_overruns_its_deadline_stops_with_a_clear_error(local_hub, monkeypatch):
    local_hub.publish("org/big", {"config.json": b"{}", "model.safetensors": BIG})
    pin = local_hub.pin("org/big")
    local_hub.stall("org/big", "model.safetensors", after_bytes=100_000, times=None)
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", "2")
    monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "60")  # the client's own read timeout would be far later
    start = time.monotonic()
    try:
        with pytest.raises(hub.HubConnectionError, match="did not finish within 2 s") as err:
            hub.pull(pin, progress=False)
    finally:
        local_hub.release_stalls()
    assert time.monotonic() - start < 10
    assert "ZOO_PULL_TIMEOUT" in str(err.value) and "resumes" in str(err.value)
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", "nonsense")
    with pytest.raises(ZooError, match="not a number of seconds"):
        hub.pull(pin, progress=False)
