"""zoo_core.files: atomic writes that leave nothing half-written and give umask permissions."""

import os
import stat

import pytest

from zoo_core import atomic_dir, atomic_file, copy_dir, replace_dir, sha256_file, verify_sha256, write_text
from zoo_core.errors import IntegrityError
from zoo_core.files import PARTIAL_SUFFIX, current_umask


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]


def test_current_umask_reads_without_changing(umask022):
    assert current_umask() == 0o022
    assert os.umask(0o022) == 0o022


def test_files_and_folders_get_umask_permissions_not_tempfile_ones(tmp_path, umask022):
    write_text(tmp_path / "a.txt", "hi")
    assert _mode(tmp_path / "a.txt") == 0o644
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "w.bin").write_bytes(b"x")
    assert _mode(tmp_path / "model") == 0o755 and _mode(tmp_path / "model" / "sub") == 0o755
    os.umask(0o077)
    write_text(tmp_path / "private.txt", "s")
    assert _mode(tmp_path / "private.txt") == 0o600


def test_a_failing_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    target = write_text(tmp_path / "state.json", "old")
    with pytest.raises(RuntimeError):
        with atomic_file(target, "w") as f:
            f.write("new, half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "m"
    with atomic_dir(target) as tmp:
        (tmp / "config.json").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "config.json").write_text("2")
            raise KeyboardInterrupt
    assert (target / "config.json").read_text() == "1"
    with atomic_dir(target) as tmp:
        (tmp / "other.json").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["other.json"]  # replaced, not merged
    assert _leftovers(tmp_path) == []


def test_replace_dir_puts_the_old_folder_back_when_the_move_fails(tmp_path, monkeypatch):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "f").write_text("old")
    src = tmp_path / "src"
    src.mkdir()
    real = os.replace
    calls = []

    def flaky(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise OSError("injected")
        return real(a, b)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(OSError):
        replace_dir(src, dst)
    monkeypatch.undo()
    assert (dst / "f").read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_copy_dir_copies_everything_and_hashes_match(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "x.bin").write_bytes(b"abc")
    copy_dir(src, tmp_path / "dst")
    assert (tmp_path / "dst" / "a" / "x.bin").read_bytes() == b"abc"
    digest = sha256_file(tmp_path / "dst" / "a" / "x.bin")
    verify_sha256(src / "a" / "x.bin", digest)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        verify_sha256(src / "a" / "x.bin", "0" * 64)


def test_save_pretrained_leaves_a_folder_others_can_read(tmp_path, zoo_plugins, umask022):
    from zoo_core import build_model

    folder = build_model("toy-mlp").save_pretrained(tmp_path / "m")
    assert _mode(folder) == 0o755
    assert {_mode(p) for p in folder.iterdir()} == {0o644}
