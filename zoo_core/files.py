"""Atomic file and folder writes, and file hashing: the one place the zoo writes things into place.

Every writer follows the same rules: write to a temporary sibling (same folder,
so the final ``os.replace`` is a rename on one filesystem), fsync it, rename it
over the target, fsync the parent folder, and remove the temporary on any
failure, Ctrl-C included. Results get the permissions an ordinary ``open`` or
``mkdir`` would give under the process umask (``tempfile`` makes 0600 files and
0700 folders, which would leave a model saved by one user unreadable to others).

Temporary names start with ``.`` and end with ``.partial``, so a reader that
lists a folder can tell them from real content, and name the machine and process
that made them, so :func:`remove_stale` can clear what a killed writer left; the
next write of the same target does. A long target name is cut in its temporary
name, so the temporary fits where the target does (255 bytes).

Only regular files are replaced. A target that exists and is something else (a
device such as ``/dev/null``, a FIFO, a symlink to one such as ``/dev/stdout``)
is written in place, and ``-`` is standard output. A symlink to a regular file
stays a symlink: its target is replaced. What goes wrong with the filesystem (a
folder that cannot be written, a parent that is a file, a full disk) is a
ZooError naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import IO
from collections.abc import Iterator

from .errors import IntegrityError, ZooError

PARTIAL_SUFFIX = ".partial"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_OWNER = re.compile(r"[.-]h([0-9a-f]{8})-p(\d+)\.")
STALE_SUFFIXES = (PARTIAL_SUFFIX, ".removing")  # temporaries of the writers here and of weights.remove


NAME_MAX = 255  # bytes in one path component, on every filesystem the zoo runs on
_TEMP_OVERHEAD = 64  # what a temporary name adds to its target's: dots, "old-", owner tag, random part, suffix


def owner_tag() -> str:
    """What a temporary name says about its owner, so a later run can tell a dead writer's leftovers."""
    return f"h{_HOST}-p{os.getpid()}."


def temp_stem(name: str) -> str:
    """``name`` as it appears in its temporaries' names: cut (on a UTF-8 boundary) so that they fit NAME_MAX."""
    raw = name.encode("utf-8", "surrogateescape")
    room = NAME_MAX - _TEMP_OVERHEAD
    if len(raw) <= room:
        return name
    return raw[:room].decode("utf-8", "ignore")


def remove_stale(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files and folders that writers killed mid-write left in ``folder``; return them.

    With ``name``, only the temporaries made for ``folder/name``.

    A temporary (``.NAME.hHOST-pPID.XXXX.partial``) is stale when it was made
    on this machine by a process that no longer runs; one without that tag was
    made by a zoo from before the tags, so by no process running now.
    Temporaries of live processes and of other machines (a shared filesystem)
    are left alone.
    """
    folder = Path(folder)
    removed = []
    prefix = f".{temp_stem(name)}." if name else "."
    try:
        with os.scandir(folder) as scan:
            entries = [folder / e.name for e in scan if e.name.startswith(prefix) and e.name.endswith(STALE_SUFFIXES)]
    except OSError:
        return removed
    for path in entries:
        owner = _OWNER.search(path.name)
        if owner is not None and (owner.group(1) != _HOST or _alive(int(owner.group(2)))):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only be read by setting it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # not thread-safe, hence only a fallback for systems without /proc
    os.umask(mask)
    return mask


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # some filesystems (and Windows) cannot open folders; durability is best effort there
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask_mode(path: str | os.PathLike, mask: int) -> int:
    executable = os.stat(path).st_mode & 0o111
    return (0o777 if executable or os.path.isdir(path) else 0o666) & ~mask


def _apply_umask(path: Path) -> None:
    """Give a file or folder (and a folder's whole content) the modes ``open``/``mkdir`` would under the umask.

    Folder contents are included because some writers (tempfile, and libraries
    that write through it) make 0600 files whatever the umask.
    """
    mask = current_umask()
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                full = os.path.join(root, name)
                if not os.path.islink(full):
                    os.chmod(full, _umask_mode(full, mask))
    os.chmod(path, _umask_mode(path, mask))


def _check_name(path: Path) -> None:
    size = len(path.name.encode("utf-8", "surrogateescape"))
    if size > NAME_MAX:
        raise ZooError(f"the file name is too long ({size} bytes; at most {NAME_MAX})", where=str(path),
                       hint="choose a shorter name")


def _special(path: Path) -> bool:
    """Whether ``path`` exists and is not a regular file or folder (following symlinks): a device, a FIFO, a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _write_error(exc: OSError, path: Path) -> ZooError:
    """The ZooError for an OSError met while writing ``path``: what went wrong and what to do."""
    target = str(path)
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ZooError(f"cannot write {path.name}: permission denied", where=target,
                        hint="choose a folder you can write to, or fix its permissions")
    if code == errno.ENOTDIR:
        return ZooError("a parent of this path is a file, not a folder", where=target,
                        hint="choose another output path, or move the file that is in the way")
    if code == errno.EISDIR:
        return ZooError("the output path is a folder", where=target, hint="give a file name inside it")
    if code == errno.ENAMETOOLONG:
        return ZooError(f"the file name is too long ({len(path.name.encode('utf-8', 'surrogateescape'))} bytes)",
                        where=target, hint=f"use a name of at most {NAME_MAX - _TEMP_OVERHEAD} bytes")
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG):
        return ZooError(f"no space left to write {path.name} ({os.strerror(code)})", where=target,
                        hint="free some space or write elsewhere")
    return ZooError(f"cannot write {path.name}: {exc.strerror or exc}", where=target,
                    hint="check the path and the filesystem, then run again")


def _ours(exc: OSError, *paths: Path) -> bool:
    """Whether an OSError raised inside a write block came from writing (no file name, or one of ``paths``)."""
    return exc.filename is None or str(exc.filename) in {str(p) for p in paths}


def _make_parent(folder: Path, target: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file (or a dangling symlink) where a folder should be
        raise ZooError("a parent of this path is a file, not a folder", where=str(target),
                       hint="choose another output path, or move the file that is in the way") from None
    except OSError as exc:
        raise _write_error(exc, target) from None


@contextlib.contextmanager
def _direct(path: Path | None, mode: str, encoding: str | None) -> Iterator[IO]:
    """Write standard output (``path`` None) or an existing non-regular file in place: nothing to rename."""
    text = mode == "w"
    where = Path("<standard output>") if path is None else path
    if path is None:
        stream = sys.stdout if text else sys.stdout.buffer
        closing = contextlib.nullcontext(stream)  # standard output stays open for whoever prints next
    else:
        try:
            closing = open(path, mode, encoding=(encoding or "utf-8") if text else None)
        except OSError as exc:
            raise _write_error(exc, where) from None
    try:
        with closing as f:
            yield f
            f.flush()
    except OSError as exc:
        if not _ours(exc, where):
            raise
        raise _write_error(exc, where) from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", *, fsync: bool = True,
                encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; on success it replaces ``path``.

    ``mode`` is ``"wb"`` or ``"w"`` (text, UTF-8 unless ``encoding`` says
    otherwise). If the block raises, ``path`` is untouched and the temporary
    is removed. ``-`` and an existing target that is not a regular file (a
    device, a FIFO, a symlink to one) are written directly, never replaced; a
    symlink to a regular file keeps pointing at it. Filesystem failures are
    ZooErrors naming ``path``.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_file mode must be 'wb' or 'w', not {mode!r}")
    if os.fspath(path) == "-":
        with _direct(None, mode, encoding) as f:
            yield f
        return
    path = Path(path)
    _check_name(path)
    if _special(path):
        with _direct(path, mode, encoding) as f:
            yield f
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # replace what the link points to, not the link
    if path.is_dir():
        raise ZooError("the output path is a folder", where=str(path), hint="give a file name inside it")
    _make_parent(path.parent, path)
    remove_stale(path.parent, path.name)  # what a killed earlier write of this file left behind
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{temp_stem(path.name)}.{owner_tag()}", suffix=PARTIAL_SUFFIX,
                                        dir=path.parent)
    except OSError as exc:
        raise _write_error(exc, path) from None
    tmp = Path(tmp_name)
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, encoding=(encoding or "utf-8") if text else None) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        _apply_umask(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if not _ours(exc, path, tmp):
            raise
        raise _write_error(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_path(path.parent, directory=True)


def write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Atomically write ``data`` to ``path``."""
    with atomic_file(path, "wb", fsync=fsync) as f:
        f.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = True) -> Path:
    """Atomically write UTF-8 ``text`` to ``path``."""
    with atomic_file(path, "w", fsync=fsync) as f:
        f.write(text)
    return Path(path)


def replace_dir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Move folder ``src`` to ``dst``; an existing ``dst`` is replaced with no moment where neither is complete.

    POSIX cannot rename a folder over a non-empty one, so the old ``dst`` is
    first renamed aside, then removed once the new one is in place.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{temp_stem(dst.name)}.old-{owner_tag()}", suffix=PARTIAL_SUFFIX,
                                    dir=dst.parent))
        os.replace(dst, old / dst.name)
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(old / dst.name, dst)  # put the old one back: never leave neither
            shutil.rmtree(old, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)
    _fsync_path(dst.parent, directory=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield an empty temporary sibling folder of ``path``; on success it becomes ``path``.

    Write the folder's whole content inside the block. An existing ``path`` is
    replaced only once the new content is complete; if the block raises, the
    temporary folder is removed and ``path`` is untouched. Temporaries of
    earlier writes of ``path`` whose process is dead are removed first.
    """
    path = Path(path)
    _check_name(path)
    if path.exists() and not path.is_dir():
        raise ZooError("the output path is a file, not a folder", where=str(path),
                       hint="choose another output folder, or move the file that is in the way")
    _make_parent(path.parent, path)
    remove_stale(path.parent, path.name)  # a killed earlier write of this folder left its temporary behind
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{temp_stem(path.name)}.{owner_tag()}", suffix=PARTIAL_SUFFIX,
                                    dir=path.parent))
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        yield tmp
        _apply_umask(tmp)
        if fsync:
            for root, _, names in os.walk(tmp):
                for name in names:
                    _fsync_path(Path(root) / name)
                _fsync_path(Path(root), directory=True)
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def copy_dir(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Atomically copy folder ``src`` to ``dst`` (replacing it), hard-linking files where the filesystem allows.

    Hard links make installing a multi-GB model into the local store free; the
    zoo never modifies a file in place (every write replaces it), so a link
    cannot leak a later change from one copy into the other.
    """
    src, dst = Path(src), Path(dst)

    def link_or_copy(a, b):
        try:
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)

    with atomic_dir(dst) as tmp:
        shutil.copytree(src, tmp, dirs_exist_ok=True, copy_function=link_or_copy)
    return dst


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raise IntegrityError if the file's sha256 is not ``expected``."""
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(f"sha256 mismatch: expected {expected}, got {actual}", where=str(path),
                             hint="the file is corrupt or not the one expected; reinstall or re-download it")
