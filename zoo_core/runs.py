"""Run folders (``zoo train --out``, default ``runs/NAME``): who holds one, what they hold, removing them.

A training run locks its folder for as long as it runs (:class:`RunLock`, an
``flock`` on ``OUT/.lock``), so a second run into the same folder stops at once
and says who holds it instead of both reporting success with one lost. The
kernel drops the lock when its process dies, however it dies, so the lock of
a killed run is taken over by the next one. No torch here: ``zoo runs`` lists
and removes folders as fast as ``zoo list`` starts.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ZooError

LOCK_NAME = ".lock"
_MARKERS = ("log.jsonl", "checkpoints", "metrics.json")  # what makes a folder a run folder
_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (fd, depth): this process's locks, reentrant


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _holder(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def describe_holder(info: dict) -> str:
    """'pid 123 on host, started 2026-12-07 16:40:12' from a lock file's content."""
    parts = [f"pid {info.get('pid', '?')} on {info.get('host', '?')}"]
    if info.get("started"):
        parts.append(f"started {info['started']}")
    if info.get("command"):
        parts.append(f"running `{info['command']}`")
    return ", ".join(parts)


class RunLock:
    """Hold the lock of run folder ``out`` (``with RunLock(out):``); a ZooError names the holder if it is taken.

    Reentrant within a process: ``train()`` holds it across training and installing, and the Trainer
    inside takes it again.
    """

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)

    def __enter__(self) -> RunLock:
        import fcntl

        key = _key(self.out)
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            return self
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except FileExistsError:
            raise ZooError("the run folder is a file", where=str(self.out), hint="choose another --out") from None
        except OSError as exc:
            raise ZooError(f"cannot use the run folder: {exc.strerror}", where=str(self.out),
                           hint="choose a folder you can write to with --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            holder = describe_holder(_holder(self.out / LOCK_NAME))
            raise ZooError(f"another run is using this folder: {holder}", where=str(self.out),
                           hint="wait for it to finish, or give this run its own folder with --out") from None
        before = _holder(self.out / LOCK_NAME)
        if before.get("pid") and (before.get("pid"), before.get("host")) != (os.getpid(), socket.gethostname()):
            print(f"zoo: {self.out} was last locked by {describe_holder(before)}, which is no longer running; "
                  "taking it over", file=sys.stderr)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv[:12])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        _held[key] = (fd, 1)
        return self

    def __exit__(self, *exc) -> None:
        key = _key(self.out)
        fd, depth = _held[key]
        if depth > 1:
            _held[key] = (fd, depth - 1)
            return
        del _held[key]
        try:
            os.ftruncate(fd, 0)  # an empty lock file: nobody to report as its last holder
        except OSError:
            pass
        os.close(fd)  # closing drops the flock


def lock_holder(folder: str | os.PathLike) -> dict | None:
    """Who holds the lock of run folder ``folder`` right now (the lock file's content), or None if nobody."""
    import fcntl

    path = Path(folder) / LOCK_NAME
    if _key(Path(folder)) in _held:
        return _holder(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _holder(path) or {"pid": "?"}
    finally:
        os.close(fd)  # closing releases the probe's shared lock
    return None


@dataclass
class RunInfo:
    """What ``zoo runs`` shows of one run folder."""

    path: Path
    size: int  # bytes on disk, hard links counted once
    checkpoints: int
    checkpoint_size: int
    step: int | None  # of the newest checkpoint
    best: dict | None  # metrics.json's "best"
    modified: float
    holder: dict | None  # the live run using it, if any

    def to_json(self) -> dict:
        return {"path": str(self.path), "size": self.size, "checkpoints": self.checkpoints,
                "checkpoint_size": self.checkpoint_size, "step": self.step, "best": self.best,
                "modified": self.modified, "in_use_by": self.holder}


def _disk_usage(folder: Path, seen: set, skip: Path | None = None) -> tuple[int, float]:
    total, newest = 0, 0.0
    try:
        st = os.lstat(folder)
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
    except OSError:
        return 0, 0.0
    for root, dirs, files in os.walk(folder):
        if skip is not None and Path(root) == folder:
            dirs[:] = [d for d in dirs if folder / d != skip]
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            newest = max(newest, st.st_mtime)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total, newest


def is_run_folder(folder: Path) -> bool:
    """Whether ``folder`` holds what ``zoo train`` writes (a log, checkpoints or metrics)."""
    return any((folder / marker).exists() for marker in _MARKERS)


def find_runs(root: str | os.PathLike = "runs", depth: int = 3) -> list[Path]:
    """Run folders at ``root`` or below it (at most ``depth`` levels), sorted by path."""
    root = Path(root)
    found: list[Path] = []

    def walk(folder: Path, level: int) -> None:
        if is_run_folder(folder):
            found.append(folder)
            return
        if level >= depth:
            return
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
                              and not p.name.startswith("."))
        except OSError:
            return
        for child in children:
            walk(child, level + 1)

    if root.is_dir():
        walk(root, 0)
    return found


def run_info(folder: str | os.PathLike) -> RunInfo:
    """Size, checkpoints, newest step, best validation and current user of one run folder."""
    folder = Path(folder)
    seen: set = set()
    ck_dir = folder / "checkpoints"
    steps = sorted(p for p in ck_dir.glob("step-*") if p.is_dir()) if ck_dir.is_dir() else []
    rest, modified = _disk_usage(folder, seen, skip=ck_dir)  # first: what model/ shares with a checkpoint's best/
    ck_size, _ = _disk_usage(ck_dir, seen) if ck_dir.is_dir() else (0, 0.0)
    step = None
    for p in reversed(steps):
        number = p.name.split("-", 1)[1]
        if number.isdigit():
            step = int(number)
            break
    best = None
    try:
        best = json.loads((folder / "metrics.json").read_text(encoding="utf-8")).get("best")
    except (OSError, ValueError, AttributeError):
        pass
    return RunInfo(path=folder, size=ck_size + rest, checkpoints=len(steps), checkpoint_size=ck_size, step=step,
                   best=best, modified=modified, holder=lock_holder(folder))


def remove_run(folder: str | os.PathLike, *, checkpoints_only: bool = False) -> int:
    """Delete a run folder (or only its checkpoints); return the bytes freed. A run in progress is refused."""
    folder = Path(folder)
    if not folder.is_dir() or not is_run_folder(folder):
        raise ZooError("not a run folder (no log.jsonl, checkpoints/ or metrics.json)", where=str(folder),
                       hint="`zoo runs` lists the run folders")
    with RunLock(folder):
        target = folder / "checkpoints" if checkpoints_only else folder
        if not target.exists():
            return 0
        freed, _ = _disk_usage(target, set())
        if checkpoints_only:
            shutil.rmtree(target)
            return freed
        for child in folder.iterdir():  # the lock file goes last, with the folder
            if child.name != LOCK_NAME:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    return freed
