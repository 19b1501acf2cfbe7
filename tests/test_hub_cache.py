"""zoo_core.hub.cache (RepoCache, Marker) without a server, and the rule that the local hub's handler uses only
the public API of its store."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo_core.hub import cache as hub_cache
from zoo_core.hub.cache import MARKER_VERSION, Marker, RepoCache

C1 = "1" * 40
C2 = "2" * 40
ROOT = Path(__file__).resolve().parents[1]
LOCAL_HUB = ROOT / "zoo_core" / "testing" / "local_hub"


@pytest.fixture
def zoo_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "zoo-home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    return home


def _snapshot_file(repo: RepoCache, commit: str, path: str, blob: str, data: bytes) -> Path:
    """Lay out one file the way huggingface_hub does: blobs/<etag>, snapshots/<commit>/<path> -> relative link."""
    repo.blobs.mkdir(parents=True, exist_ok=True)
    (repo.blobs / blob).write_bytes(data)
    link = repo.snapshot(commit) / path
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(repo.blobs / blob, link.parent))
    return link


# ---------------------------------------------------------------------------------------------------------------------
# RepoCache: layout


def test_repo_cache_layout_matches_the_hf_cache(tmp_path, zoo_home):
    cache = tmp_path / "hub"
    repo = RepoCache(cache, "org/tiny", "model")
    assert repo.folder_name == "models--org--tiny"
    assert repo.storage == cache / "models--org--tiny"
    assert repo.blobs == repo.storage / "blobs"
    assert repo.snapshots == repo.storage / "snapshots"
    assert repo.refs == repo.storage / "refs"
    assert repo.snapshot(C1) == repo.storage / "snapshots" / C1
    assert repo.lock_path("abc") == cache / ".locks" / "models--org--tiny" / "abc.lock"
    assert RepoCache(cache, "org/data", "dataset").storage == cache / "datasets--org--data"
    assert RepoCache(cache, "solo", "model").folder_name == "models--solo"


def test_markers_live_under_zoo_home_keyed_by_the_cache(tmp_path, zoo_home):
    cache = tmp_path / "hub"
    repo = RepoCache(cache, "org/tiny", "model")
    key = hashlib.sha1(str(cache.resolve()).encode()).hexdigest()[:16]
    assert repo.marker_path(C1) == zoo_home / "verified" / key / "models--org--tiny" / f"{C1}.json"
    assert repo.markers_dir == repo.marker_path(C1).parent
    other = RepoCache(tmp_path / "other-hub", "org/tiny", "model")
    assert other.marker_path(C1) != repo.marker_path(C1)  # two caches never share a marker


def test_repo_cache_is_a_frozen_value(tmp_path):
    a = RepoCache(tmp_path, "org/tiny", "model")
    assert a == RepoCache(tmp_path, "org/tiny", "model") and len({a, RepoCache(tmp_path, "org/tiny", "model")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.repo_id = "org/other"


def test_stat_follows_the_snapshot_link(tmp_path):
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    _snapshot_file(repo, C1, "sub/config.json", "etag1", b"{}")
    real, size, mtime_ns = repo.stat(C1, "sub/config.json")
    assert Path(real) == (repo.blobs / "etag1").resolve() and size == 2
    assert mtime_ns == os.stat(repo.blobs / "etag1").st_mtime_ns
    assert repo.stat(C1, "missing.json") is None
    (repo.blobs / "etag1").unlink()
    assert repo.stat(C1, "sub/config.json") is None  # dangling link


def test_refs_round_trip_and_commits_are_not_refs(tmp_path):
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    assert repo.read_ref("main") is None
    repo.write_ref("main", C1)
    assert repo.read_ref("main") == C1 and (repo.refs / "main").read_text() == C1
    repo.write_ref("main", C2)
    assert repo.read_ref("main") == C2
    repo.write_ref(C1, C1)  # a commit sha is not written as a ref
    assert not (repo.refs / C1).exists()
    assert sorted(p.name for p in repo.refs.iterdir()) == ["main"]  # no temporary left behind


def test_evict_removes_blob_links_empty_snapshots_refs_and_marker_entry(tmp_path, zoo_home):
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    _snapshot_file(repo, C1, "model.safetensors", "bad", b"corrupt")
    _snapshot_file(repo, C2, "model.safetensors", "bad", b"corrupt")  # the same blob, linked from another commit
    _snapshot_file(repo, C2, "config.json", "good", b"{}")
    repo.write_ref("main", C1)
    repo.write_ref("dev", C2)
    marker = repo.marker(C1)
    marker.record("model.safetensors", repo.stat(C1, "model.safetensors"), "0" * 64)
    marker.save()

    repo.evict(C1, "model.safetensors")

    assert not (repo.blobs / "bad").exists()
    assert not os.path.lexists(repo.snapshot(C2) / "model.safetensors")  # every link to the bad blob went
    assert not repo.snapshot(C1).exists() and repo.read_ref("main") is None  # emptied snapshot and its ref
    assert (repo.snapshot(C2) / "config.json").read_bytes() == b"{}" and repo.read_ref("dev") == C2
    assert "model.safetensors" not in repo.marker(C1).files


def test_forget_markers_one_commit_or_all(tmp_path, zoo_home):
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    for c in (C1, C2):
        assert Marker(repo.marker_path(c)).stamp(repo, c).save()
    repo.forget_markers(C1)
    assert not repo.marker_path(C1).exists() and repo.marker_path(C2).exists()
    repo.forget_markers()
    assert not repo.markers_dir.exists()


# ---------------------------------------------------------------------------------------------------------------------
# Marker


def test_marker_round_trip(tmp_path, zoo_home):
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    marker = repo.marker(C1)
    assert marker.files == {} and marker.get("commit") is None  # nothing written yet
    st = ("/blobs/a", 5, 123)
    marker.record("a.json", st, "a" * 64)
    marker.record("b.txt", ("/blobs/b", 3, 456), "b" * 64, git_sha1="c" * 40)
    assert marker.stamp(repo, C1, {"patterns": ["*.json"]}).save()

    again = repo.marker(C1)
    assert again.data == marker.data
    assert again.get("repo_id") == "org/tiny" and again.get("repo_type") == "model" and again.get("commit") == C1
    assert again.get("cache_dir") == str((tmp_path / "hub").resolve()) and again.get("patterns") == ["*.json"]
    assert again.files["a.json"] == {"blob": "/blobs/a", "size": 5, "mtime_ns": 123, "sha256": "a" * 64}
    assert again.files["b.txt"]["git_sha1"] == "c" * 40
    assert json.loads(repo.marker_path(C1).read_text())["version"] == MARKER_VERSION


def test_marker_recorded_only_for_the_same_blob_and_hashes(tmp_path):
    marker = Marker(tmp_path / "m.json")
    st = ("/blobs/a", 5, 123)
    marker.record("a.json", st, "a" * 64, git_sha1="1" * 40)
    assert marker.recorded("a.json", st)
    assert marker.recorded("a.json", st, sha256="a" * 64, size=5, git_sha1="1" * 40)
    assert not marker.recorded("a.json", None)  # the file is gone
    assert not marker.recorded("a.json", ("/blobs/a", 5, 124))  # touched since
    assert not marker.recorded("a.json", ("/blobs/a", 6, 123))  # other size
    assert not marker.recorded("a.json", ("/blobs/other", 5, 123))  # other blob
    assert not marker.recorded("a.json", st, sha256="b" * 64)  # verified against another pin
    assert not marker.recorded("a.json", st, size=6)
    assert not marker.recorded("a.json", st, git_sha1="2" * 40)
    assert not marker.recorded("other.json", st)


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"version": 999, "files": {}}', '{"version": 1}',
                                     '{"version": 1, "files": []}'])
def test_unreadable_or_foreign_marker_loads_empty(tmp_path, content):
    path = tmp_path / "m.json"
    path.write_text(content)
    marker = Marker.load(path)
    assert marker.files == {} and marker.data == {"version": MARKER_VERSION, "files": {}}
    assert marker.path == path


def test_marker_forget(tmp_path):
    path = tmp_path / "m.json"
    marker = Marker(path)
    marker.record("a.json", ("/blobs/a", 1, 1), "a" * 64)
    marker.record("b.json", ("/blobs/b", 1, 1), "b" * 64)
    assert marker.forget("a.json") is True
    assert marker.forget("a.json") is False  # already forgotten
    assert marker.forget("never.json") is False
    assert not marker.recorded("a.json", ("/blobs/a", 1, 1))
    marker.save()
    assert set(Marker.load(path).files) == {"b.json"}


def _leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


def test_marker_save_is_atomic_and_leaves_no_partial_file(tmp_path, monkeypatch, caplog):
    path = tmp_path / "verified" / "m.json"
    marker = Marker(path)
    marker.record("a.json", ("/blobs/a", 1, 1), "a" * 64)
    assert marker.save()
    assert marker.save()  # overwriting too
    assert _leftovers(path.parent, "m.json") == []
    before = path.read_text()

    # fail between writing the new content and renaming it into place (a full disk, a crash)
    real_replace = os.replace

    def failing_replace(src, dst, *a, **k):
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst, *a, **k)

    marker.record("b.json", ("/blobs/b", 2, 2), "b" * 64)
    with monkeypatch.context() as m, caplog.at_level(logging.WARNING, logger="zoo_core.hub"):
        m.setattr(os, "replace", failing_replace)
        assert marker.save() is False  # a marker that cannot be written only costs a re-hash later
    assert "could not record verification" in caplog.text
    assert path.read_text() == before  # the old marker, whole
    assert _leftovers(path.parent, "m.json") == []  # and no partial file beside it
    assert set(Marker.load(path).files) == {"a.json"}


def test_marker_save_into_an_unwritable_place_warns_instead_of_raising(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    marker = Marker(blocker / "sub" / "m.json")  # its parent cannot be created
    with caplog.at_level(logging.WARNING, logger="zoo_core.hub"):
        assert marker.save() is False
    assert "could not record verification" in caplog.text


def test_marker_writes_go_through_zoo_core_files(tmp_path, monkeypatch):
    calls = []
    real = hub_cache.write_text

    def spy(path, text, **kw):
        calls.append(Path(path))
        return real(path, text, **kw)

    monkeypatch.setattr(hub_cache, "write_text", spy)
    repo = RepoCache(tmp_path / "hub", "org/tiny", "model")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))
    Marker(repo.marker_path(C1)).save()
    repo.write_ref("main", C1)
    assert calls == [repo.marker_path(C1), repo.refs / "main"]


# ---------------------------------------------------------------------------------------------------------------------
# the package surface


def test_importing_the_hub_adds_neither_torch_nor_the_client():
    code = ("import sys, zoo_core; before = set(sys.modules); import zoo_core.hub; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in new if m.split('.')[0] in ('torch', 'huggingface_hub', 'httpx2')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_all_there():
    from zoo_core import hub

    for name in hub.__all__:
        assert hasattr(hub, name), name
    assert {"pull", "pull_repo", "snapshot_path", "local_state", "cached_models", "remove", "push",
            "pin_for_folder", "check_pin", "is_offline", "hub_cache_dir", "hub_endpoint", "HubNotFoundError",
            "HubConnectionError", "OfflineCacheMissError", "CachedModel", "CachedRevision",
            "REPO_FILE_PATTERNS"} <= set(hub.__all__)


# ---------------------------------------------------------------------------------------------------------------------
# the local hub's handler talks to its store through the public API only


def _private_accesses(source: str) -> list[str]:
    """Every ``x._name`` whose ``x`` is not ``self`` (the handler's own state), and ``getattr(x, "_name")``.

    ``self.server.hub.store._lock``, ``store._repos``, ``self.store._resolve(...)`` all count; dunders do not.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = node.attr
            on_self = isinstance(node.value, ast.Name) and node.value.id == "self"
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and not on_self:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2:
            arg = node.args[1]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("_"):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_private_access_check_catches_what_it_should():
    bad = (
        "class H:\n"
        "    def f(self):\n"
        "        with self.server.hub.store._lock:\n"
        "            repo = self.store._get_repo('model', 'x')\n"
        "        hub = self.hub\n"
        "        hub._log.append(1)\n"
        "        getattr(hub, '_repos')\n"
    )
    assert len(_private_accesses(bad)) == 4
    ok = "class H:\n    def f(self):\n        self._record = self.store.snapshot('model', 'x', 'main').__class__\n"
    assert _private_accesses(ok) == []


@pytest.mark.parametrize("module", ["handler.py", "server.py"])
def test_local_hub_uses_only_public_store_api(module):
    source = (LOCAL_HUB / module).read_text()
    assert _private_accesses(source) == []


def test_handler_never_locks_the_store_itself():
    tree = ast.parse((LOCAL_HUB / "handler.py").read_text())
    locks = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and "lock" in n.attr.lower()]
    assert locks == []  # every store method takes the store's lock itself
