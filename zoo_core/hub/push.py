"""Pushing a model folder to the Hub, and the pin (registry ``hub`` block) that describes what was pushed.

``push`` refuses pickle files before any network access; ``pin_for_folder`` hashes the local
files, so the pin vouches for exactly the bytes that were uploaded.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from ..errors import UnsafeFileError, ZooError
from ..files import sha256_file
from ..pins import FilePin, HubPin, check_repo_path, refuse_pickle
from .checks import COMMIT_RE, check_repo_id
from .download import translate
from .env import hub_endpoint, is_offline, sync_client
from .env import token as env_token

#: what ``push`` never uploads: git metadata and the client's own upload cache
UPLOAD_IGNORE = (".git", ".git/*", "*/.git", "*/.git/*", ".cache/huggingface", ".cache/huggingface/*",
                 "*/.cache/huggingface", "*/.cache/huggingface/*")


def folder_files(folder: Path) -> list[Path]:
    """The files of ``folder`` that ``push`` uploads, sorted.

    A symlink whose target lies outside the folder (a file or a folder) raises
    ``UnsafeFileError``: the upload would publish whatever it points to, a
    private file anywhere on disk. Links that stay inside the folder are fine.
    A file to upload that is not a regular file (FIFO, socket, device, broken
    link) raises ``ZooError``: the upload would hang on it or fail halfway.
    """
    root = folder.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):  # symlinked folders are listed, not entered
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            if p.is_symlink() and not _resolved(p).is_relative_to(root):
                raise UnsafeFileError(
                    f"{p.relative_to(folder).as_posix()} is a symlink to {os.readlink(p)}, outside the folder",
                    where=str(p),
                    hint="pushing it would upload that target; copy what the model needs into the folder "
                         "or remove the link")
        for name in filenames:
            p = Path(dirpath, name)
            if not any(fnmatch.fnmatch(p.relative_to(folder).as_posix(), pat) for pat in UPLOAD_IGNORE):
                _check_regular(p, folder)
                out.append(p)
    return sorted(out)


def _resolved(p: Path) -> Path:
    try:
        return p.resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13)
        raise ZooError(f"{p.name} is a symlink loop", where=str(p),
                       hint="remove the link or point it at a file inside the folder, then push again") from None


def _check_regular(p: Path, folder: Path) -> None:
    """Raise ZooError unless ``p`` (or what its link points to) is a regular file: reading a FIFO would
    wait forever for a writer, a device never ends, a dangling link cannot be read."""
    rel = p.relative_to(folder).as_posix()
    try:
        mode = p.stat().st_mode
    except OSError as exc:
        raise ZooError(f"{rel} cannot be read ({exc.strerror})", where=str(p),
                       hint="remove it (a broken link?) or move it out of the folder, then push again") from None
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise ZooError(f"{rel} is {kind}, not a regular file: nothing was uploaded", where=str(p),
                       hint="push uploads regular files only; move it out of the folder, then push again")


def push(folder: str | os.PathLike, repo_id: str, *, token: str | bool | None = None, endpoint: str | None = None,
         private: bool = False, message: str | None = None, repo_type: str = "model") -> str:
    """Upload a model folder to the Hub and return the new commit sha (40 hex).

    Creates the repo if needed (``HfApi.create_repo(exist_ok=True)``) and uploads with
    ``HfApi.upload_folder``. Refuses folders holding pickle files (``UnsafeFileError``) before any
    network access. Build the registry entry with ``pin_for_folder(folder, repo_id, commit)``.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    if not folder.is_dir():
        raise ZooError(f"not a folder: {folder}", where=str(folder), hint="push a model folder (save_pretrained)")
    files = folder_files(folder)
    if not files:
        raise ZooError("the folder is empty", where=str(folder))
    for p in files:
        refuse_pickle(p.relative_to(folder).as_posix(), str(folder))
    if is_offline():
        raise ZooError("cannot push while HF_HUB_OFFLINE is set", where=repo_id, hint="unset HF_HUB_OFFLINE")
    from huggingface_hub import HfApi

    endpoint_s = hub_endpoint(endpoint)
    sync_client()
    api = HfApi(endpoint=endpoint_s, token=env_token(token))
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                                 commit_message=message or f"Upload {folder.name} with zoo")
    except Exception as exc:
        raise translate(exc, repo_id=repo_id, revision="main", endpoint=endpoint_s, action="push") from exc
    if not info.oid or not COMMIT_RE.match(info.oid):
        raise ZooError(f"the Hub did not return a commit for the upload to {repo_id}", where=endpoint_s)
    return info.oid


def pin_for_folder(folder: str | os.PathLike, repo_id: str, commit: str, *, repo_type: str = "model",
                   files: Iterable[str] | None = None) -> HubPin:
    """A ``HubPin`` for ``folder`` as pushed to ``repo_id`` at ``commit``: sha256 and size computed locally.

    ``files`` restricts the pin to those relative paths (default: every file ``push`` uploads).
    """
    folder = Path(folder)
    if files is None:
        rels = [p.relative_to(folder).as_posix() for p in folder_files(folder)]
    else:
        rels = sorted(files)
    pins = []
    for rel in rels:
        check_repo_path(rel, repo_id)
        path = folder / rel
        size = os.path.getsize(path)
        pins.append(FilePin(path=rel, sha256=sha256_file(path), size=size))
    return HubPin(repo_id=repo_id, revision=commit, files=tuple(pins), repo_type=repo_type)
