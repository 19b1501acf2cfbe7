"""zoo_core.files: atomic writes that leave nothing half-written and give umask permissions."""

import os
import stat

import pytest

from zoo_core import atomic_dir, atomic_file, copy_dir, replace_dir, sha256_file, verify_sha256, write_text
from zoo_core.errors import IntegrityError, ZooError
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


# --- targets that are not regular files, and what the filesystem refuses (issue 23) ---------


def _read_fifo(path, into):
    import threading

    def reader():
        with open(path, "rb") as f:
            into.append(f.read())

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    return thread


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    thread = _read_fifo(fifo, got)
    write_text(fifo, "through the pipe\n")
    thread.join(10)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got == [b"through the pipe\n"]
    assert _leftovers(tmp_path) == []


def test_a_symlink_to_a_fifo_stays_a_symlink_to_it(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out"
    link.symlink_to(fifo)
    got = []
    thread = _read_fifo(fifo, got)
    write_text(link, "x")
    thread.join(10)
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(link).st_mode)
    assert got == [b"x"]


def test_a_symlink_to_a_regular_file_keeps_pointing_at_it(tmp_path):
    real = write_text(tmp_path / "real.txt", "old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_a_dash_is_standard_output(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    write_text("-", "to stdout\n")
    with atomic_file("-", "wb") as f:
        f.write(b"bytes too\n")
    assert capfd.readouterr().out == "to stdout\nbytes too\n"
    assert list(tmp_path.iterdir()) == []


def test_a_parent_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "f").write_text("in the way")
    with pytest.raises(ZooError, match="parent of this path is a file") as info:
        write_text(tmp_path / "f" / "out.txt", "x")
    assert info.value.where == str(tmp_path / "f" / "out.txt")
    with pytest.raises(ZooError, match="parent of this path is a file"):
        write_text(tmp_path / "f" / "sub" / "out.txt", "x")
    with pytest.raises(ZooError, match="parent of this path is a file"):
        with atomic_dir(tmp_path / "f" / "model"):
            pass
    assert (tmp_path / "f").read_text() == "in the way"


@pytest.mark.skipif(not os.path.isdir("/sys"), reason="needs a folder nobody may write (sysfs)")
def test_a_folder_that_cannot_be_written_is_a_clear_error():
    with pytest.raises(ZooError, match="cannot write") as info:
        write_text("/sys/zoo-test-output.txt", "x")
    assert info.value.hint


def test_an_output_path_that_is_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ZooError, match="is a folder"):
        write_text(tmp_path, "x")


def test_a_long_legal_name_gets_a_temporary_name_that_fits(tmp_path):
    name = "é" * 117 + ".txt"  # 238 bytes: legal, but name + the temporary's tag passes 255
    assert 230 < len(name.encode()) <= 255
    write_text(tmp_path / name, "x")
    with atomic_dir(tmp_path / ("d" * 250)) as tmp:
        (tmp / "f").write_text("y")
    with atomic_dir(tmp_path / ("d" * 250)) as tmp:  # replacing it takes a second temporary name
        (tmp / "f").write_text("z")
    assert (tmp_path / name).read_text() == "x" and (tmp_path / ("d" * 250) / "f").read_text() == "z"
    assert _leftovers(tmp_path) == []


def test_too_long_a_name_is_a_clear_error(tmp_path):
    with pytest.raises(ZooError, match="too long"):
        write_text(tmp_path / ("a" * 256), "x")


KILLED_WRITER = """
import os, sys, time
from zoo_core.files import atomic_file
with atomic_file(sys.argv[1], "wb") as f:
    f.write(b"half")
    f.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path):
    import signal
    import subprocess
    import sys

    target = tmp_path / ("v" * 200 + ".txt")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        assert len(_leftovers(tmp_path)) == 1
        write_text(tmp_path / "other.txt", "x")  # another target's write leaves a live writer's temporary alone
        assert len(_leftovers(tmp_path)) == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert len(_leftovers(tmp_path)) == 1 and not target.exists()
    write_text(target, "whole")
    assert _leftovers(tmp_path) == [] and target.read_text() == "whole"
