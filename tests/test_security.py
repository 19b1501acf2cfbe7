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
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(ZooError, match="could not push") as err:
        hub.push(folder, "org/pushed", token="x")
    assert "push again" in str(err.value) and "pull" not in str(err.value)
