"""Nothing is written or uploaded outside its place: revisions and refs, tree paths, shard names, push symlinks.

Hub traffic goes through the real huggingface_hub client to LocalHub, which plays a hostile mirror here.
"""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from zoo_core import hub
from zoo_core.errors import UnsafeFileError, ZooError
from zoo_core.hub.cache import RepoCache
from zoo_core.testing import free_port

FILES = {"config.json": b'{"architecture": "tiny"}', "model.safetensors": b"weights"}
TRAVERSALS = ["../x", "a/../../x", "/abs/x", "a\\..\\x", "%2e%2e/x", "a/%2E%2E/x", "\u2025/x", "./x", "a//x"]


@pytest.mark.parametrize("revision", ["../../../../../victim.txt", "main/../../../victim", "/tmp/victim", "-x",
                                      "a b", "x.lock", "a/.hidden", "%2e%2e/victim", "\u2025/victim", "@", "a@{1}"])
def test_a_revision_that_could_leave_the_cache_is_refused_before_any_request(local_hub, revision, tmp_path):
    local_hub.publish("org/x", FILES)
    local_hub.publish("org/x", FILES, branch=revision)  # the hostile mirror resolves it happily
    local_hub.clear_requests()
    with pytest.raises(ZooError, match="invalid revision"):
        hub.pull_repo("org/x", revision, progress=False)
    assert local_hub.requests == []
    assert not any(p.name.startswith("victim") for p in local_hub.cache_dir.parent.rglob("*"))


def test_load_model_refuses_the_same_revisions(local_hub):
    from zoo_core import load_model

    with pytest.raises(ZooError, match="invalid revision"):
        load_model("hf-hub:org/x@../../../../../victim.txt")


def test_valid_branch_names_still_pull_and_resolve_offline(local_hub, monkeypatch):
    commit = local_hub.publish("org/x", FILES, branch="release/v1.0")
    snap = hub.pull_repo("org/x", "release/v1.0", progress=False, include=["*"])
    assert snap.name == commit
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.pull_repo("org/x", "release/v1.0", progress=False, include=["*"]) == snap


def test_ref_files_are_never_written_or_read_outside_refs(tmp_path):
    repo = RepoCache(tmp_path / "cache", "org/x", "model")
    with pytest.raises(ZooError):
        repo.write_ref("../../../victim", "a" * 40)
    (tmp_path / "cache" / "secret").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "cache" / "secret").write_text("b" * 40)
    with pytest.raises(ZooError):
        repo.read_ref("../../secret")
    assert not any(p.name == "victim" for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_tree_paths_that_escape_the_repo_refuse_the_whole_repo(local_hub, bad):
    commit = local_hub.publish("org/evil", {**FILES, bad: b"payload"}, allow_unsafe_paths=True)
    with pytest.raises(UnsafeFileError, match="escapes the repository"):
        hub.pull_repo("org/evil", commit, progress=False, include=["*"])
    cache = local_hub.cache_dir / "models--org--evil"
    assert not cache.exists() or not any(p.read_bytes() == b"payload" for p in cache.rglob("*") if p.is_file())
    assert not (local_hub.cache_dir.parent / "x").exists()


def _sharded_folder(folder, shard_name):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architecture": "toy-mlp"}))
    save_file({"w": torch.zeros(2)}, str(folder.parent / "outside.safetensors"))
    index = {"metadata": {}, "weight_map": {"w": shard_name}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


@pytest.mark.parametrize("shard", ["../outside.safetensors", os.path.abspath("/tmp/outside.safetensors"),
                                   "..\\outside.safetensors", "%2e%2e/outside.safetensors",
                                   "\u2025/outside.safetensors", "sub/../../outside.safetensors", ".."])
def test_index_shard_names_that_leave_the_folder_are_refused(zoo_plugins, tmp_path, shard):
    from zoo_core import load_model

    _sharded_folder(tmp_path / "m", shard)
    with pytest.raises(UnsafeFileError, match="outside the folder") as err:
        load_model(tmp_path / "m")
    assert "model.safetensors.index.json" in str(err.value)


def test_push_refuses_a_symlink_out_of_the_folder_before_any_request(local_hub, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("private key")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w")
    (folder / "notes.txt").symlink_to(secret)
    local_hub.clear_requests()
    with pytest.raises(UnsafeFileError, match="notes.txt is a symlink") as err:
        hub.push(folder, "org/pushed")
    assert str(secret) in str(err.value) and local_hub.requests == []
    (folder / "notes.txt").unlink()
    (folder / "linked-dir").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(UnsafeFileError, match="linked-dir is a symlink"):
        hub.push(folder, "org/pushed")


def test_push_accepts_links_that_stay_inside_the_folder(local_hub, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w")
    (folder / "README.md").symlink_to(folder / "config.json")
    commit = hub.push(folder, "org/pushed", token=local_hub.token)
    assert local_hub.files("org/pushed", commit)["README.md"] == b"{}"


def test_push_to_an_unreachable_hub_says_push_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ZooError, match="could not push") as err:
        hub.push(folder, "org/pushed", token="x")
    assert "push again" in str(err.value) and "pull" not in str(err.value)


# --- issue 23: the Hub and registry surfaces, attacked ---------------------------------------------

def test_a_mirror_listing_a_file_twice_pulls_at_once(local_hub, monkeypatch):
    """Every file arrives; the wait loop once compared unique paths with the doubled list, and waited it out."""
    import time

    from zoo_core.hub import download
    from zoo_core.hub import pull as _  # noqa: F401 - the module, for monkeypatch below

    pull_module = __import__("sys").modules["zoo_core.hub.pull"]
    real = pull_module.list_tree
    monkeypatch.setattr(pull_module, "list_tree", lambda *a, **k: real(*a, **k) * 2)  # the mirror's doubled tree
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", "30")
    commit = local_hub.publish("org/x", FILES)
    start = time.monotonic()
    snap = hub.pull_repo("org/x", commit, progress=False)
    assert time.monotonic() - start < 15  # not the 30 s deadline
    assert (snap / "model.safetensors").read_bytes() == b"weights"
    assert len(local_hub.downloads("model.safetensors")) == 1
    seen = []
    start = time.monotonic()  # and the loop itself, given a doubled list
    download._run_with_deadline(seen.append, ["a", "b", "a"], 30, where="w", what="x")
    assert sorted(seen) == ["a", "b"] and time.monotonic() - start < 15


def test_a_file_listed_twice_with_different_content_is_refused(local_hub, monkeypatch):
    pull_module = __import__("sys").modules["zoo_core.hub.pull"]
    real = pull_module.list_tree

    def doubled(*a, **k):
        files = real(*a, **k)
        f = next(f for f in files if f.path == "config.json")
        return files + [type(f)(path=f.path, size=f.size + 1, oid="0" * 40, type="file")]

    monkeypatch.setattr(pull_module, "list_tree", doubled)
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", "20")  # a hang, should the doubled path reach the wait loop
    commit = local_hub.publish("org/x", FILES)
    local_hub.clear_requests()
    with pytest.raises(ZooError, match="names config.json twice, with different content"):
        hub.pull_repo("org/x", commit, progress=False)
    assert local_hub.downloads() == []


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999", "-5", "soon", "5s"])
def test_a_pull_deadline_that_is_not_a_number_of_seconds_is_refused_before_any_request(local_hub, monkeypatch,
                                                                                        value):
    local_hub.publish("org/x", FILES)
    pin = local_hub.pin("org/x")
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", value)
    local_hub.clear_requests()
    with pytest.raises(ZooError, match="ZOO_PULL_TIMEOUT=.* is not a number of seconds") as err:
        hub.pull(pin, progress=False)
    assert err.value.where == "ZOO_PULL_TIMEOUT" and "0 for no deadline" in err.value.hint
    assert local_hub.requests == []


@pytest.mark.parametrize(("value", "seconds"), [("", 4 * 3600), ("0", None), ("none", None), ("off", None),
                                                ("7200", 7200.0), (" 2.5 ", 2.5)])
def test_pull_deadline_values_that_are_accepted(monkeypatch, value, seconds):
    from zoo_core.hub.env import pull_timeout

    monkeypatch.setenv("ZOO_PULL_TIMEOUT", value)
    assert pull_timeout() == seconds


def test_a_pinned_revision_against_an_unreachable_hub_fails_fast_and_quietly(hf_cache, monkeypatch, capfd):
    """Without a network: one clean error in a few seconds, not 25 s of the client's raw retry lines."""
    import time

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    for revision in ("0123456789abcdef0123456789abcdef01234567", "main"):
        start = time.monotonic()
        with pytest.raises(hub.HubConnectionError, match="could not download"):
            hub.pull_repo("org/x", revision, progress=False)
        assert time.monotonic() - start < 8, revision
    out, err = capfd.readouterr()
    assert "Retry" not in out + err and "thrown while requesting" not in out + err


def _push_folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w")
    return folder


def _push_in_thread(folder, token):
    """Push in a thread that cannot hang the suite: (finished, error)."""
    import threading

    box = []

    def run():
        try:
            hub.push(folder, "org/pushed", token=token)
            box.append(None)
        except BaseException as exc:  # noqa: BLE001 - checked by the caller
            box.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(30)
    return bool(box), box[0] if box else None


def test_push_refuses_a_fifo_before_any_request(local_hub, tmp_path):
    folder = _push_folder(tmp_path)
    os.mkfifo(folder / "pipe.txt")
    local_hub.clear_requests()
    finished, error = _push_in_thread(folder, local_hub.token)
    assert finished, "push hung on the FIFO"
    assert isinstance(error, ZooError) and "pipe.txt is a FIFO" in str(error)
    assert local_hub.requests == []


def test_push_refuses_sockets_broken_links_and_link_loops(local_hub, tmp_path):
    import socket

    folder = _push_folder(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(folder / "s.sock"))
        with pytest.raises(ZooError, match="s.sock is a socket"):
            hub.push(folder, "org/pushed", token=local_hub.token)
    finally:
        sock.close()
    (folder / "s.sock").unlink()
    (folder / "gone.txt").symlink_to(folder / "missing.txt")
    with pytest.raises(ZooError, match="gone.txt cannot be read"):
        hub.push(folder, "org/pushed", token=local_hub.token)
    (folder / "gone.txt").unlink()
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    with pytest.raises(ZooError, match="loop.txt is a symlink loop"):
        hub.push(folder, "org/pushed", token=local_hub.token)
    assert local_hub.requests == []


def test_a_registry_file_that_never_ends_or_is_huge_is_refused(tmp_path):
    from zoo_core.errors import RegistryError
    from zoo_core.registry import MAX_REGISTRY_BYTES, load_registry_file

    with pytest.raises(RegistryError, match="not a regular file"):
        load_registry_file("/dev/zero")
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(RegistryError, match="not a regular file"):
        load_registry_file(tmp_path / "fifo.yaml")  # would wait for a writer forever
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.write(b"# " + b"x" * MAX_REGISTRY_BYTES + b"\nversion: 1\nmodels: []\n")
    with pytest.raises(RegistryError, match="larger than 16 MB") as err:
        load_registry_file(big)
    assert err.value.where == str(big)


def test_zoo_registry_dev_zero_is_a_clear_error_from_the_cli(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, ZOO_REGISTRY="/dev/zero", ZOO_HOME=str(tmp_path / "zoo"))
    r = subprocess.run([sys.executable, "-m", "zoo_core.cli", "list"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "not a regular file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("endpoint", ["http://[::1", "http://", "ftp://hub.example", "localhost:8080",
                                      "http://host:99999", "http://host:port"])
def test_an_invalid_hf_endpoint_is_a_clear_error(hf_cache, monkeypatch, tmp_path, endpoint):
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    from zoo_core.pins import FilePin, HubPin

    pin = HubPin("org/x", "a" * 40, (FilePin("config.json", "0" * 64, 2),))
    for call in (lambda: hub.pull(pin, progress=False), lambda: hub.pull_repo("org/x", progress=False),
                 lambda: hub.cached_models(), lambda: hub.push(_push_folder(tmp_path), "org/x", token="t")):
        with pytest.raises(ZooError, match="HF_ENDPOINT=.* is not a valid Hub URL") as err:
            call()
        assert err.value.where == "HF_ENDPOINT"
    monkeypatch.delenv("HF_ENDPOINT")
    with pytest.raises(ZooError, match="endpoint=.* is not a valid Hub URL"):
        hub.pull(pin, endpoint=endpoint, progress=False)


def test_an_invalid_hf_endpoint_gives_no_traceback_from_the_cli(tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, HF_ENDPOINT="http://[::1", ZOO_HOME=str(tmp_path / "zoo"), HF_HOME=str(tmp_path / "hf"))
    r = subprocess.run([sys.executable, "-m", "zoo_core.cli", "cache", "ls"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "is not a valid Hub URL" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("repo_id", ["org/" + "a" * 97, "o" * 97 + "/a", "org/a--b", "org/a-", "org/a.",
                                     "org/" + "a" * 5000])
def test_repo_ids_the_hub_would_refuse_are_refused_before_any_request(local_hub, tmp_path, repo_id):
    folder = _push_folder(tmp_path)
    local_hub.clear_requests()
    for call in (lambda: hub.pull_repo(repo_id, progress=False),
                 lambda: hub.push(folder, repo_id, token=local_hub.token)):
        with pytest.raises(ZooError, match="invalid Hub repo id") as err:
            call()
        assert len(str(err.value)) < 2000  # a 5000-character id is cut in the message
    assert local_hub.requests == []


def test_overlong_revisions_and_file_names_are_clear_errors_before_any_download(local_hub):
    with pytest.raises(ZooError, match=r"invalid revision .*\(256 characters, at most 255\)"):
        hub.pull_repo("org/x", "a" * 256, progress=False)
    for name in ("a" * 300 + ".json", "/".join(["d" * 200] * 6) + "/x.json", "\u00e9" * 200 + ".json"):
        commit = local_hub.publish("org/long", {"model.safetensors": b"w", name: b"{}"}, allow_unsafe_paths=True)
        local_hub.clear_requests()
        with pytest.raises(ZooError, match="is too long to store") as err:
            hub.pull_repo("org/long", commit, progress=False)
        assert local_hub.downloads() == [] and "rename the file" in err.value.hint
    from zoo_core.pins import FilePin, HubPin

    pin = HubPin("org/long", commit, (FilePin("x" * 256 + ".safetensors", "0" * 64, 1),))
    local_hub.clear_requests()
    with pytest.raises(ZooError, match="is too long to store"):
        hub.pull(pin, progress=False)
    assert local_hub.requests == []


def test_an_overlong_file_name_in_a_registry_is_named_with_its_line(tmp_path):
    from zoo_core.registry import load_registry_file

    reg = tmp_path / "registry.yaml"
    reg.write_text(f"""version: 1
models:
  - id: long-name
    architecture: nice
    plugin: nice
    task: density-estimation
    summary: s
    links: {{source: "https://example.org"}}
    license: MIT
    metrics: []
    hub:
      repo_id: org/x
      revision: "{'a' * 40}"
      files:
        - {{path: {'x' * 300}.safetensors, sha256: "{'0' * 64}", size: 1}}
""")
    with pytest.raises(ZooError, match="is too long to store") as err:
        load_registry_file(reg)
    assert err.value.where.startswith(f"{reg}:")
