"""Verified, pinned pulls from the Hugging Face Hub, and pushes to it, with the real ``huggingface_hub`` client.

Files land in the standard Hugging Face cache (``<HF_HUB_CACHE>/models--org--name/``:
``blobs/``, ``snapshots/<commit>/``), so ``hf cache ls`` sees them. The client only
checks sizes; this module checks every pinned file's size and sha256 after the
download, removes anything that does not match (blob and snapshot link) and raises
:class:`~zoo_core.errors.IntegrityError`. A verified snapshot is recorded in a small
JSON marker under ``$ZOO_HOME/verified/`` (default ``~/.cache/zoo``) holding each
blob's size and mtime, so a later ``pull`` of the same pin makes no network request
and hashes nothing unless a blob changed on disk.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ... once,
at import time. This module reads them at call time instead: it passes ``endpoint=``
and ``cache_dir=`` explicitly, decides offline mode itself, and before each client call
sets the client's ``HF_HUB_OFFLINE`` / ``HF_HUB_DISABLE_XET`` / timeout constants to what
the environment says now. So env vars set by a test fixture, or by a user after import,
take effect in the same process.

Nothing here imports torch (``zoo list`` imports this module); ``huggingface_hub`` itself
is imported lazily, only by the functions that talk to the network or scan the cache.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .errors import IntegrityError, UnsafeFileError, ZooError
from .pins import FilePin, HubPin, check_repo_path, is_pickle, refuse_pickle
from .store import zoo_home

__all__ = [
    "REPO_FILE_PATTERNS",
    "HubNotFoundError",
    "HubConnectionError",
    "OfflineCacheMissError",
    "CachedModel",
    "CachedRevision",
    "pull",
    "pull_repo",
    "local_state",
    "snapshot_path",
    "cached_models",
    "remove",
    "push",
    "pin_for_folder",
    "check_pin",
    "is_offline",
    "hub_cache_dir",
    "hub_endpoint",
]

logger = logging.getLogger(__name__)

#: What ``pull_repo`` downloads by default: weights, configs, cards, text files (e.g. vocabularies).
REPO_FILE_PATTERNS = ("*.safetensors", "*.json", "*.md", "*.txt", "*.yaml", "*.yml")

_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_MARKER_VERSION = 1
_HASH_PROGRESS_MIN = 64 * 1024 * 1024  # show a "verifying" bar above this many bytes to hash
_sync_lock = threading.Lock()


class HubNotFoundError(ZooError):
    """The repo, revision or file does not exist on the Hub (or is private and no token opens it)."""


class HubConnectionError(ZooError):
    """The Hub endpoint could not be reached, or a download broke off and could not be resumed."""


class OfflineCacheMissError(ZooError):
    """Offline mode is on and the model is not (completely) in the local cache."""


# ---------------------------------------------------------------------------------------------------------------------
# environment, read at call time


def _env_true(name: str) -> bool:
    value = os.environ.get(name)
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set now."""
    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face hub cache folder: ``cache_dir``, else ``HF_HUB_CACHE``, else ``HF_HOME/hub``.

    Resolved like ``huggingface_hub.constants`` does, but from the environment as it is now.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(explicit)).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def hub_endpoint(endpoint: str | None = None) -> str:
    """The Hub to talk to: ``endpoint``, else ``HF_ENDPOINT`` (mirrors, test hubs), else https://huggingface.co."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _token(token: str | bool | None) -> str | bool | None:
    if token is not None:
        return token
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _sync_client() -> None:
    """Make huggingface_hub's import-time constants agree with the environment as it is now."""
    from huggingface_hub import constants

    with _sync_lock:
        constants.HF_HUB_OFFLINE = is_offline()
        constants.HF_HUB_DISABLE_XET = _env_true("HF_HUB_DISABLE_XET")
        constants.HF_HUB_ETAG_TIMEOUT = _as_int(os.environ.get("HF_HUB_ETAG_TIMEOUT")) or constants.DEFAULT_ETAG_TIMEOUT
        constants.HF_HUB_DOWNLOAD_TIMEOUT = (
            _as_int(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT")) or constants.DEFAULT_DOWNLOAD_TIMEOUT)


def _etag_timeout() -> float:
    return float(_as_int(os.environ.get("HF_HUB_ETAG_TIMEOUT")) or 10)


# ---------------------------------------------------------------------------------------------------------------------
# safety checks (no network)


def _check_repo_id(repo_id: str) -> None:
    if not isinstance(repo_id, str) or not _REPO_ID_RE.match(repo_id) or ".." in repo_id:
        raise ZooError(f"invalid Hub repo id {repo_id!r}", where=str(repo_id),
                       hint="a repo id looks like 'org/name' (letters, digits, '-', '_', '.')")


def check_pin(pin: HubPin) -> None:
    """Validate a pin before any network access: repo id, 40-hex commit, safe non-pickle paths, hashes.

    Raises ``UnsafeFileError`` for paths escaping the repo or pickle files, ``ZooError`` otherwise.
    """
    _check_repo_id(pin.repo_id)
    where = f"{pin.repo_id}@{pin.revision}"
    if not isinstance(pin.revision, str) or not _COMMIT_RE.match(pin.revision):
        raise ZooError(f"the pin of {pin.repo_id} names revision {pin.revision!r}, not a 40-hex commit",
                       where=pin.repo_id, hint="pin a commit sha (a branch can move under you)")
    if pin.repo_type not in ("model", "dataset"):
        raise ZooError(f"unsupported repo type {pin.repo_type!r}", where=where)
    if not pin.files:
        raise ZooError(f"the pin of {pin.repo_id} lists no files", where=where,
                       hint="list every file the model needs with its sha256 and size")
    seen = set()
    for f in pin.files:
        check_repo_path(f.path, where)
        refuse_pickle(f.path, where)
        if not re.fullmatch(r"[0-9a-f]{64}", str(f.sha256)) or int(f.size) < 0:
            raise ZooError(f"bad sha256/size for {f.path} in the pin", where=where,
                           hint="sha256 is 64 lowercase hex digits, size a byte count")
        if f.path in seen:
            raise ZooError(f"{f.path} is listed twice in the pin", where=where)
        seen.add(f.path)


# ---------------------------------------------------------------------------------------------------------------------
# cache layout and verification markers


def _repo_folder(repo_id: str, repo_type: str) -> str:
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def _storage(cache: Path, repo_id: str, repo_type: str) -> Path:
    return cache / _repo_folder(repo_id, repo_type)


def _marker_path(cache: Path, repo_id: str, repo_type: str, commit: str) -> Path:
    key = hashlib.sha1(str(cache.resolve()).encode()).hexdigest()[:16]
    return zoo_home() / "verified" / key / _repo_folder(repo_id, repo_type) / f"{commit}.json"


def _read_marker(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        if data.get("version") == _MARKER_VERSION and isinstance(data.get("files"), dict):
            return data
    except (OSError, ValueError, AttributeError):
        pass
    return {"version": _MARKER_VERSION, "files": {}}


def _write_marker(path: Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:  # a read-only ZOO_HOME only costs re-hashing next time
        logger.warning("could not record verification in %s: %s", path, exc)


def _stat(snap: Path, path: str) -> tuple[str, int, int] | None:
    """(real blob path, size, mtime_ns) of a snapshot file, or None if missing / dangling."""
    p = snap / path
    try:
        real = os.path.realpath(p)
        st = os.stat(real)
    except OSError:
        return None
    if not os.path.isfile(real):
        return None
    return real, st.st_size, st.st_mtime_ns


def _recorded(marker: dict, path: str, stat: tuple[str, int, int] | None, *, sha256: str | None = None,
              size: int | None = None) -> bool:
    """Whether the marker says this exact blob (same path, size, mtime) was verified, with this sha256/size."""
    rec = marker["files"].get(path)
    if rec is None or stat is None:
        return False
    if (rec.get("blob"), rec.get("size"), rec.get("mtime_ns")) != stat:
        return False
    if sha256 is not None and rec.get("sha256") != sha256:
        return False
    if size is not None and rec.get("size") != size:
        return False
    return True


def _hash_file(path: str, *, git_sha1: bool = False, bar=None) -> tuple[str, str | None, int]:
    size = os.path.getsize(path)
    h = hashlib.sha256()
    g = hashlib.sha1(b"blob %d\0" % size) if git_sha1 else None
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            if g is not None:
                g.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    return h.hexdigest(), g.hexdigest() if g is not None else None, size


class _NullBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


def _hash_bar(total: int, progress: bool, desc: str):
    if not progress or total < _HASH_PROGRESS_MIN or _env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        return _NullBar()
    from huggingface_hub.utils import tqdm

    # like the client's download bars: shown on a terminal (disable=None), forced on by TQDM_POSITION=-1
    disable = False if os.environ.get("TQDM_POSITION") == "-1" else None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=disable)


def _lock_for(cache: Path, repo_id: str, repo_type: str, blob_name: str):
    from huggingface_hub.utils import WeakFileLock

    lock_path = cache / ".locks" / _repo_folder(repo_id, repo_type) / f"{blob_name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return WeakFileLock(lock_path)


def _evict(cache: Path, repo_id: str, repo_type: str, commit: str, path: str) -> None:
    """Remove a bad file from the cache: its blob, every snapshot link to that blob, emptied folders, stale refs."""
    storage = _storage(cache, repo_id, repo_type)
    snaps = storage / "snapshots"
    link = snaps / commit / path
    blobs_dir = (storage / "blobs").resolve() if (storage / "blobs").exists() else None
    real = Path(os.path.realpath(link))
    in_blobs = blobs_dir is not None and real.parent == blobs_dir
    touched: set[Path] = {link.parent}
    if in_blobs:
        with _lock_for(cache, repo_id, repo_type, real.name):
            if snaps.is_dir():
                for other in snaps.rglob("*"):
                    if other.is_symlink() and Path(os.path.realpath(other)) == real:
                        other.unlink(missing_ok=True)
                        touched.add(other.parent)
            real.unlink(missing_ok=True)
    if os.path.lexists(link):
        link.unlink()
    # prune emptied folders, and snapshots that became empty (with the refs naming them)
    for folder in sorted(touched, key=lambda p: len(p.parts), reverse=True):
        d = folder
        while snaps in d.parents:
            try:
                d.rmdir()
            except OSError:
                break
            if d.parent == snaps:
                _drop_refs_to(storage, d.name)
                break
            d = d.parent
    # forget what the verification markers said about it
    marker_path = _marker_path(cache, repo_id, repo_type, commit)
    marker = _read_marker(marker_path)
    if marker["files"].pop(path, None) is not None:
        _write_marker(marker_path, marker)


def _drop_refs_to(storage: Path, commit: str) -> None:
    refs = storage / "refs"
    if not refs.is_dir():
        return
    for ref in refs.rglob("*"):
        try:
            if ref.is_file() and ref.read_text().strip() == commit:
                ref.unlink()
        except OSError:
            pass


def _clean_incompletes(cache: Path, repo_id: str, repo_type: str) -> None:
    """Remove partial downloads left by killed processes, for blobs that are now complete.

    Each ``<etag>.<uuid>.incomplete`` belongs to one download; its ``.locks/<repo>/<etag>.lock`` is held
    while it runs, so if we can take that lock at once, nobody is writing it.
    """
    from filelock import FileLock, Timeout

    blobs = _storage(cache, repo_id, repo_type) / "blobs"
    if not blobs.is_dir():
        return
    for inc in blobs.glob("*.incomplete"):
        etag = inc.name.split(".", 1)[0]
        if not (blobs / etag).is_file():
            continue
        lock_path = cache / ".locks" / _repo_folder(repo_id, repo_type) / f"{etag}.lock"
        try:
            with FileLock(str(lock_path), timeout=0):
                inc.unlink(missing_ok=True)
        except (Timeout, OSError):
            pass


def _write_ref(cache: Path, repo_id: str, repo_type: str, revision: str, commit: str) -> None:
    if revision == commit or _COMMIT_RE.match(revision):
        return
    ref = _storage(cache, repo_id, repo_type) / "refs" / revision
    try:
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.is_file() or ref.read_text() != commit:
            tmp = ref.with_name(f"{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_text(commit)
            os.replace(tmp, ref)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------------------------------
# downloads with the real client, errors translated


class _QuietTqdm:
    """A tqdm stand-in for ``progress=False`` (huggingface_hub passes extra kwargs such as ``name``)."""

    def __init__(self, *args, **kwargs):
        self.n = kwargs.get("initial", 0) or 0
        self.total = kwargs.get("total")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self.n += n or 0

    def close(self):
        pass

    def set_description(self, *a, **k):
        pass

    def refresh(self, *a, **k):
        pass

    @classmethod
    def get_lock(cls):
        return threading.RLock()

    @classmethod
    def set_lock(cls, lock):
        pass


def _translate(exc: BaseException, *, repo_id: str, revision: str, endpoint: str,
               path: str | None = None) -> ZooError:
    """Turn a huggingface_hub / httpx error into a ZooError that says what to do."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    repo_url = f"{endpoint}/{repo_id}"
    short = revision[:12] if _COMMIT_RE.match(revision) else revision
    if isinstance(exc, ZooError):
        return exc
    if isinstance(exc, GatedRepoError):
        return HubNotFoundError(f"{repo_id} is a gated repo and this token has no access", where=repo_url,
                                hint="accept the repo's conditions on its Hub page, then set HF_TOKEN")
    if isinstance(exc, RepositoryNotFoundError):
        return HubNotFoundError(
            f"Hub repository {repo_id} not found", where=repo_url,
            hint="check the repo id; if the repo is private, set HF_TOKEN (or run `hf auth login`)"
                 + ("" if endpoint == "https://huggingface.co" else f"; HF_ENDPOINT is {endpoint}"))
    if isinstance(exc, RevisionNotFoundError):
        return HubNotFoundError(
            f"revision {short} not found in {repo_id}", where=repo_url,
            hint="the pinned commit may have been deleted or the history rewritten; update the pin in the registry")
    if isinstance(exc, RemoteEntryNotFoundError):
        return HubNotFoundError(
            f"{path or 'a pinned file'} is not in {repo_id} at {short}", where=repo_url,
            hint="the pin lists a file the repo does not have at that commit; fix the pin in the registry")
    if isinstance(exc, OfflineModeIsEnabled):
        return OfflineCacheMissError(
            f"{repo_id}@{short} is not in the local cache and offline mode is on", where=repo_url,
            hint="pull it while online (unset HF_HUB_OFFLINE), then it works offline")
    if isinstance(exc, (httpx2.HTTPError, LocalEntryNotFoundError, ConnectionError, TimeoutError)) and not \
            isinstance(exc, HfHubHTTPError):
        return HubConnectionError(
            f"could not download {repo_id}@{short} from {endpoint}: {type(exc).__name__}", where=repo_url,
            hint="check the network and HF_ENDPOINT, then pull again; files already cached work with HF_HUB_OFFLINE=1")
    if isinstance(exc, HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return ZooError(f"the Hub refused access to {repo_id} (HTTP {status})", where=repo_url,
                            hint="set HF_TOKEN to a token with access (write access to push)")
        return HubConnectionError(f"the Hub answered HTTP {status} for {repo_id}@{short}", where=repo_url,
                                  hint="the Hub (or mirror) may be down; try again later")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return HubConnectionError(f"the download of {path or repo_id} was cut short", where=repo_url,
                                  hint="pull again; a partial download is never kept")
    return ZooError(f"downloading {repo_id}@{short} failed: {exc}", where=repo_url)


def _download(repo_id: str, repo_type: str, commit: str, paths: Sequence[str], *, cache: Path, endpoint: str,
              token, progress: bool) -> None:
    """hf_hub_download every path at ``commit`` into the cache (in parallel); errors become ZooErrors."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    _sync_client()
    current: dict[str, str] = {}
    try:
        # One metadata request without retries first: a wrong repo/revision/endpoint fails fast and clearly
        # (the download path retries connection errors for ~30 s before giving up).
        first = paths[0]
        current["path"] = first
        meta = get_hf_file_metadata(
            hf_hub_url(repo_id, first, repo_type=repo_type, revision=commit, endpoint=endpoint),
            token=token, timeout=_etag_timeout(), endpoint=endpoint)
        if meta.commit_hash is None or meta.etag is None:
            raise HubConnectionError(
                f"{endpoint} does not answer like a Hugging Face Hub (no X-Repo-Commit / ETag headers)",
                where=endpoint, hint="check HF_ENDPOINT (a mirror must speak the Hub's download protocol), "
                                     "proxy and firewall settings")
    except Exception as exc:  # noqa: BLE001 - translated
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        if isinstance(exc, HfHubHTTPError) and not isinstance(exc, RepositoryNotFoundError) and \
                getattr(exc.response, "status_code", 0) >= 500:
            pass  # transient server error: the download below retries
        else:
            raise _translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint, path=first) from exc

    cache.mkdir(parents=True, exist_ok=True)
    tqdm_class = None if progress and not _env_true("HF_HUB_DISABLE_PROGRESS_BARS") else _QuietTqdm

    def one(path: str) -> str:
        try:
            return hf_hub_download(repo_id, path, repo_type=repo_type, revision=commit, cache_dir=cache,
                                   endpoint=endpoint, token=token, etag_timeout=_etag_timeout(),
                                   tqdm_class=tqdm_class)
        except Exception as exc:  # noqa: BLE001 - translated
            raise _translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint, path=path) from exc

    if len(paths) == 1:
        one(paths[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(8, len(paths)), thread_name_prefix="zoo-pull") as pool:
        futures = [pool.submit(one, p) for p in paths]
        errors = [f.exception() for f in futures]
    for err in errors:
        if err is not None:
            raise err


# ---------------------------------------------------------------------------------------------------------------------
# verification shared by pull and pull_repo


@dataclass(frozen=True)
class _Expect:
    path: str
    size: int
    sha256: str | None = None  # checked when given
    git_sha1: str | None = None  # checked when given (non-LFS files listed by the tree API)


def _verify(expects: Sequence[_Expect], *, cache: Path, repo_id: str, repo_type: str, commit: str,
            marker: dict, progress: bool) -> tuple[list[tuple[_Expect, str]], list[_Expect]]:
    """Check present files against expectations; record good ones in ``marker``.

    Returns (bad: [(expect, reason)], missing: [expect]). Files the marker already vouches for are not re-hashed.
    """
    snap = _storage(cache, repo_id, repo_type) / "snapshots" / commit
    bad, missing, todo = [], [], []
    for e in expects:
        st = _stat(snap, e.path)
        if st is None:
            missing.append(e)
        elif _recorded(marker, e.path, st, sha256=e.sha256, size=e.size) and (
                e.git_sha1 is None or marker["files"][e.path].get("git_sha1") == e.git_sha1):
            continue
        elif st[1] != e.size:
            bad.append((e, f"size {st[1]} != expected {e.size}"))
        else:
            todo.append((e, st))
    bar = _hash_bar(sum(st[1] for _, st in todo), progress, f"verifying {repo_id}")
    try:
        for e, st in todo:
            sha256, git_sha1, size = _hash_file(st[0], git_sha1=e.git_sha1 is not None, bar=bar)
            if e.sha256 is not None and sha256 != e.sha256:
                bad.append((e, f"sha256 {sha256} != expected {e.sha256}"))
            elif e.git_sha1 is not None and git_sha1 != e.git_sha1:
                bad.append((e, f"git blob sha1 {git_sha1} != expected {e.git_sha1}"))
            else:
                rec = {"blob": st[0], "size": st[1], "mtime_ns": st[2], "sha256": sha256}
                if git_sha1 is not None:
                    rec["git_sha1"] = git_sha1
                marker["files"][e.path] = rec
    finally:
        bar.close()
    return bad, missing


def _integrity_error(repo_id: str, commit: str, endpoint: str, bad: list[tuple[_Expect, str]],
                     against: str) -> IntegrityError:
    names = ", ".join(e.path for e, _ in bad)
    details = "; ".join(f"{e.path}: {why}" for e, why in bad)
    return IntegrityError(
        f"{names} from {repo_id}@{commit[:12]} does not match {against} ({details}); "
        "the bad download was removed from the cache",
        where=f"{endpoint}/{repo_id}/tree/{commit}",
        hint="pull again; if it fails again, the Hub (or the mirror in HF_ENDPOINT) serves other bytes than the "
             "registry pins: check the mirror, or update the pin if the repo changed on purpose",
    )


def _pull_files(repo_id: str, repo_type: str, commit: str, expects: Sequence[_Expect], *, cache: Path,
                endpoint: str | None, token, progress: bool, extra_marker: dict | None = None) -> Path:
    storage = _storage(cache, repo_id, repo_type)
    snap = storage / "snapshots" / commit
    marker_path = _marker_path(cache, repo_id, repo_type, commit)
    marker = _read_marker(marker_path)
    endpoint_s = hub_endpoint(endpoint)

    # 1. what is already in the cache (no network): verify, evict what a local change broke
    bad, missing = _verify(expects, cache=cache, repo_id=repo_id, repo_type=repo_type, commit=commit,
                           marker=marker, progress=progress)
    for e, why in bad:
        logger.warning("cached %s of %s@%s is corrupt (%s): removed, downloading it again",
                       e.path, repo_id, commit[:12], why)
        _evict(cache, repo_id, repo_type, commit, e.path)
        marker["files"].pop(e.path, None)
    missing = list(missing) + [e for e, _ in bad]

    if missing:
        if is_offline():
            _write_marker(marker_path, _marker_meta(marker, repo_id, repo_type, commit, cache, extra_marker))
            raise OfflineCacheMissError(
                f"{repo_id}@{commit[:12]} is not (completely) in the local cache and HF_HUB_OFFLINE is set"
                f" (missing: {', '.join(e.path for e in missing)})",
                where=str(snap),
                hint="pull the model once while online (unset HF_HUB_OFFLINE); after that it works offline",
            )
        _download(repo_id, repo_type, commit, [e.path for e in missing], cache=cache, endpoint=endpoint_s,
                  token=_token(token), progress=progress)
        # 2. verify what was downloaded
        bad, still_missing = _verify(missing, cache=cache, repo_id=repo_id, repo_type=repo_type, commit=commit,
                                     marker=marker, progress=progress)
        for e, _ in bad:
            _evict(cache, repo_id, repo_type, commit, e.path)
            marker["files"].pop(e.path, None)
        _write_marker(marker_path, _marker_meta(marker, repo_id, repo_type, commit, cache, extra_marker))
        if bad:
            raise _integrity_error(repo_id, commit, endpoint_s, bad,
                                   "the pin" if extra_marker is None else "the hashes the Hub lists")
        if still_missing:
            raise HubConnectionError(
                f"{', '.join(e.path for e in still_missing)} did not arrive in the cache", where=str(snap),
                hint="pull again")
        _clean_incompletes(cache, repo_id, repo_type)
    else:
        _write_marker(marker_path, _marker_meta(marker, repo_id, repo_type, commit, cache, extra_marker))
    return snap


def _marker_meta(marker: dict, repo_id: str, repo_type: str, commit: str, cache: Path, extra: dict | None) -> dict:
    marker.update(version=_MARKER_VERSION, repo_id=repo_id, repo_type=repo_type, commit=commit,
                  cache_dir=str(cache.resolve()))
    if extra:
        marker.update(extra)
    return marker


# ---------------------------------------------------------------------------------------------------------------------
# public API


def pull(pin: HubPin, *, cache_dir: str | os.PathLike | None = None, endpoint: str | None = None,
         token: str | bool | None = None, progress: bool = True) -> Path:
    """Download every file of ``pin`` at its commit into the HF cache, verify it, and return the snapshot folder.

    Each file is fetched with ``huggingface_hub.hf_hub_download`` (progress bars unless ``progress=False``
    or ``HF_HUB_DISABLE_PROGRESS_BARS``), then its size and sha256 are checked against the pin. A mismatch
    removes the blob and its snapshot link from the cache and raises ``IntegrityError``; the next pull
    downloads again. A snapshot already verified is returned with no network access and no hashing
    (a marker under ``$ZOO_HOME/verified`` remembers each blob's size and mtime).

    Args:
        pin: repo, 40-hex commit and the expected sha256/size of every file.
        cache_dir: HF hub cache (default: ``HF_HUB_CACHE`` / ``HF_HOME/hub`` read now).
        endpoint: Hub URL (default: ``HF_ENDPOINT`` read now, else https://huggingface.co).
        token: Hub token (default: ``HF_TOKEN``, else the token saved by ``hf auth login``).
        progress: show download (and, for large files, verification) progress bars.

    Raises:
        UnsafeFileError: a pinned path escapes the repo, or names a pickle file (before any network access).
        IntegrityError: a downloaded file does not match the pin.
        OfflineCacheMissError: ``HF_HUB_OFFLINE`` is set and the files are not cached.
        HubNotFoundError: unknown repo / revision / file (or private without a token).
        HubConnectionError: the endpoint cannot be reached.
    """
    check_pin(pin)
    cache = hub_cache_dir(cache_dir)
    expects = [_Expect(path=f.path, size=int(f.size), sha256=f.sha256) for f in pin.files]
    return _pull_files(pin.repo_id, pin.repo_type, pin.revision, expects, cache=cache, endpoint=endpoint,
                       token=token, progress=progress)


def pull_repo(repo_id: str, revision: str = "main", *, repo_type: str = "model",
              cache_dir: str | os.PathLike | None = None, endpoint: str | None = None,
              token: str | bool | None = None, progress: bool = True,
              include: Sequence[str] | None = None) -> Path:
    """Download a repo with no registry pin (``load_model("hf-hub:org/repo@rev")``) and return its snapshot.

    Resolves ``revision`` to a commit, lists the repo tree at that commit, and refuses the repo if a path
    escapes it or if its only weights are pickle files. Downloads the files matching ``include`` (default
    ``REPO_FILE_PATTERNS``: safetensors, json, md, txt, yaml; pickle files never) and verifies each against
    the tree listing: sha256 for LFS files, git blob sha1 for the others. The listing is remembered, so a
    later call (or an offline one, with ``HF_HUB_OFFLINE``) needs no download; with a branch name it
    still asks the Hub which commit the branch points to, unless offline.

    Raises the same errors as :func:`pull`; ``UnsafeFileError`` for pickle-only repos.
    """
    _check_repo_id(repo_id)
    if repo_type not in ("model", "dataset"):
        raise ZooError(f"unsupported repo type {repo_type!r}", where=repo_id)
    cache = hub_cache_dir(cache_dir)
    endpoint_s = hub_endpoint(endpoint)
    storage = _storage(cache, repo_id, repo_type)
    where = f"{repo_id}@{revision}"
    patterns = tuple(include) if include is not None else REPO_FILE_PATTERNS

    # 1. which commit
    if _COMMIT_RE.match(revision):
        commit = revision
    elif is_offline():
        ref = storage / "refs" / revision
        if not ref.is_file():
            raise OfflineCacheMissError(
                f"{where} is not in the local cache and HF_HUB_OFFLINE is set", where=str(storage),
                hint="pull it once while online (unset HF_HUB_OFFLINE); after that it works offline")
        commit = ref.read_text().strip()
    else:
        commit = _resolve_revision(repo_id, revision, repo_type=repo_type, endpoint=endpoint_s, token=token)

    # 2. the file list: remembered from an earlier pull, else the tree API
    marker = _read_marker(_marker_path(cache, repo_id, repo_type, commit))
    manifest = marker.get("manifest")
    if manifest is None or marker.get("patterns") != list(patterns):
        if is_offline():
            raise OfflineCacheMissError(
                f"{repo_id}@{commit[:12]} is not in the local cache and HF_HUB_OFFLINE is set",
                where=str(storage),
                hint="pull it once while online (unset HF_HUB_OFFLINE); after that it works offline")
        manifest = _select_files(_list_tree(repo_id, commit, repo_type=repo_type, endpoint=endpoint_s, token=token),
                                 repo_id=repo_id, commit=commit, patterns=patterns)
    expects = [_Expect(path=m["path"], size=m["size"], sha256=m.get("sha256"), git_sha1=m.get("git_sha1"))
               for m in manifest]
    snap = _pull_files(repo_id, repo_type, commit, expects, cache=cache, endpoint=endpoint, token=token,
                       progress=progress, extra_marker={"manifest": manifest, "patterns": list(patterns)})
    _write_ref(cache, repo_id, repo_type, revision, commit)
    return snap


def _resolve_revision(repo_id: str, revision: str, *, repo_type: str, endpoint: str, token) -> str:
    from huggingface_hub import HfApi

    _sync_client()
    try:
        info = HfApi(endpoint=endpoint, token=_token(token)).repo_info(repo_id, revision=revision,
                                                                     repo_type=repo_type, timeout=_etag_timeout())
    except Exception as exc:  # noqa: BLE001 - translated
        raise _translate(exc, repo_id=repo_id, revision=revision, endpoint=endpoint) from exc
    if not info.sha or not _COMMIT_RE.match(info.sha):
        raise ZooError(f"{endpoint} did not say which commit {revision} of {repo_id} is", where=endpoint,
                       hint="check HF_ENDPOINT points at a Hugging Face Hub (or compatible mirror)")
    return info.sha


def _list_tree(repo_id: str, commit: str, *, repo_type: str, endpoint: str, token) -> list:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    _sync_client()
    try:
        entries = list(HfApi(endpoint=endpoint, token=_token(token)).list_repo_tree(
            repo_id, recursive=True, revision=commit, repo_type=repo_type))
    except Exception as exc:  # noqa: BLE001 - translated
        raise _translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint) from exc
    return [e for e in entries if isinstance(e, RepoFile)]


def _select_files(files: list, *, repo_id: str, commit: str, patterns: Sequence[str]) -> list[dict]:
    where = f"{repo_id}@{commit[:12]}"
    for f in files:  # refuse the whole repo if any path could escape it
        check_repo_path(f.path, where)
    chosen = [f for f in files if any(fnmatch.fnmatch(f.path, p) or fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], p)
                                      for p in patterns)]
    for f in chosen:
        refuse_pickle(f.path, where)
    if not any(f.path.endswith(".safetensors") for f in chosen):
        pickles = sorted(f.path for f in files if is_pickle(f.path))
        if pickles:
            raise UnsafeFileError(
                f"{repo_id} has pickle weights only ({', '.join(pickles[:5])}), no .safetensors",
                where=where,
                hint="pickle files can run arbitrary code when loaded; use a repo with safetensors weights, or "
                     "convert them yourself with a trusted tool and push the safetensors",
            )
        if tuple(patterns) == REPO_FILE_PATTERNS:
            raise ZooError(f"{repo_id} has no .safetensors weights", where=where,
                           hint="check the repo id and revision")
    manifest = []
    for f in sorted(chosen, key=lambda f: f.path):
        if f.lfs is not None:
            manifest.append({"path": f.path, "size": int(f.lfs.size), "sha256": f.lfs.sha256, "lfs": True})
        else:
            manifest.append({"path": f.path, "size": int(f.size), "git_sha1": f.blob_id, "lfs": False})
    return manifest


def snapshot_path(pin: HubPin, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The snapshot folder of ``pin`` in the HF cache if every pinned file is there, else None (no hashing)."""
    if not _pin_paths_safe(pin):
        return None
    snap = _storage(hub_cache_dir(cache_dir), pin.repo_id, pin.repo_type) / "snapshots" / pin.revision
    if not snap.is_dir() or any(_stat(snap, f.path) is None for f in pin.files):
        return None
    return snap


def _pin_paths_safe(pin: HubPin) -> bool:
    try:
        _check_repo_id(pin.repo_id)
        if not _COMMIT_RE.match(str(pin.revision)):
            return False
        for f in pin.files:
            check_repo_path(f.path, pin.repo_id)
    except ZooError:
        return False
    return True


def local_state(pin: HubPin, cache_dir: str | os.PathLike | None = None, *, deep: bool = False) -> str:
    """Where ``pin`` stands locally, without network: ``"absent"``, ``"pulled"``, ``"verified"`` or ``"corrupt"``.

    ``absent``: some pinned file is not in the cache. ``verified``: every file matches the pin and was
    hashed since it last changed on disk. ``corrupt``: a file's size differs from the pin (or, with
    ``deep=True``, its sha256). ``pulled``: everything is there but not (or no longer) known to be
    verified; ``deep=True`` hashes those files to decide between ``verified`` and ``corrupt``. Fast by
    default (a stat per file), for ``zoo list``.
    """
    if not _pin_paths_safe(pin):
        return "absent"  # `pull` explains what is wrong with the pin
    cache = hub_cache_dir(cache_dir)
    snap = _storage(cache, pin.repo_id, pin.repo_type) / "snapshots" / pin.revision
    marker_path = _marker_path(cache, pin.repo_id, pin.repo_type, pin.revision)
    marker = _read_marker(marker_path)
    state = "verified"
    stats = []
    for f in pin.files:
        st = _stat(snap, f.path)
        if st is None:
            return "absent"
        stats.append((f, st))
    for f, st in stats:
        if st[1] != int(f.size):
            return "corrupt"
        if not _recorded(marker, f.path, st, sha256=f.sha256, size=int(f.size)):
            state = "pulled"
    if state == "pulled" and deep:
        for f, st in stats:
            if _recorded(marker, f.path, st, sha256=f.sha256, size=int(f.size)):
                continue
            sha256, _, _ = _hash_file(st[0])
            if sha256 != f.sha256:
                return "corrupt"
            marker["files"][f.path] = {"blob": st[0], "size": st[1], "mtime_ns": st[2], "sha256": sha256}
        _write_marker(marker_path, _marker_meta(marker, pin.repo_id, pin.repo_type, pin.revision, cache, None))
        state = "verified"
    return state


@dataclass(frozen=True)
class CachedRevision:
    """One cached commit of a repo (``zoo cache ls``)."""

    commit: str
    refs: tuple[str, ...]
    size_on_disk: int
    nb_files: int
    snapshot_path: Path
    last_modified: float
    verified: bool  # every file of the snapshot was verified by zoo and has not changed since


@dataclass(frozen=True)
class CachedModel:
    """One cached repo (``zoo cache ls``)."""

    repo_id: str
    repo_type: str
    repo_path: Path
    size_on_disk: int
    nb_files: int
    revisions: tuple[CachedRevision, ...]
    last_accessed: float
    last_modified: float


def cached_models(cache_dir: str | os.PathLike | None = None) -> list[CachedModel]:
    """Every repo in the HF cache (via ``huggingface_hub.scan_cache_dir``), sorted by repo id; [] if no cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = hub_cache_dir(cache_dir)
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return []
    for warning in info.warnings:
        logger.warning("skipping a damaged cache entry: %s", warning)
    out = []
    for repo in info.repos:
        revisions = []
        for rev in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            marker = _read_marker(_marker_path(cache, repo.repo_id, repo.repo_type, rev.commit_hash))
            files = [p.relative_to(rev.snapshot_path).as_posix() for p in rev.snapshot_path.rglob("*")
                     if not p.is_dir()]
            verified = bool(files) and all(
                _recorded(marker, f, _stat(rev.snapshot_path, f)) for f in files)
            revisions.append(CachedRevision(
                commit=rev.commit_hash, refs=tuple(sorted(rev.refs)), size_on_disk=rev.size_on_disk,
                nb_files=rev.nb_files, snapshot_path=rev.snapshot_path, last_modified=rev.last_modified,
                verified=verified))
        out.append(CachedModel(repo_id=repo.repo_id, repo_type=repo.repo_type, repo_path=repo.repo_path,
                               size_on_disk=repo.size_on_disk, nb_files=repo.nb_files, revisions=tuple(revisions),
                               last_accessed=repo.last_accessed, last_modified=repo.last_modified))
    return sorted(out, key=lambda m: (m.repo_type, m.repo_id))


def remove(repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None, *,
           repo_type: str = "model") -> int:
    """Delete a cached repo (all revisions) or one revision (commit sha, unique sha prefix, or ref name).

    Uses ``scan_cache_dir().delete_revisions(...)``; blobs still used by other revisions stay. Returns the
    bytes freed (0 if nothing matched). A repo folder the scanner reports as damaged is removed whole.
    """
    import shutil

    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = hub_cache_dir(cache_dir)
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return 0
    repo = next((r for r in info.repos if r.repo_id == repo_id and r.repo_type == repo_type), None)
    folder = _storage(cache, repo_id, repo_type)
    if repo is None:
        if revision is None and folder.is_dir():  # damaged beyond what scan_cache_dir accepts
            freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            shutil.rmtree(folder, ignore_errors=True)
            _forget_markers(cache, repo_id, repo_type, None)
            return freed
        return 0
    if revision is None:
        commits = [r.commit_hash for r in repo.revisions]
    else:
        commits = [r.commit_hash for r in repo.revisions
                   if r.commit_hash == revision or revision in r.refs
                   or (len(revision) >= 7 and r.commit_hash.startswith(revision))]
        if len(commits) > 1:
            raise ZooError(f"{revision!r} matches several cached revisions of {repo_id}", where=str(folder),
                           hint="give more characters of the commit sha")
    if not commits:
        return 0
    strategy = info.delete_revisions(*commits)
    freed = strategy.expected_freed_size
    strategy.execute()
    for c in commits:
        _forget_markers(cache, repo_id, repo_type, c)
    return freed


def _forget_markers(cache: Path, repo_id: str, repo_type: str, commit: str | None) -> None:
    import shutil

    if commit is None:
        shutil.rmtree(_marker_path(cache, repo_id, repo_type, "x").parent, ignore_errors=True)
    else:
        _marker_path(cache, repo_id, repo_type, commit).unlink(missing_ok=True)


_UPLOAD_IGNORE = (".git", ".git/*", "*/.git", "*/.git/*", ".cache/huggingface", ".cache/huggingface/*",
                  "*/.cache/huggingface", "*/.cache/huggingface/*")


def _folder_files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir() or any(fnmatch.fnmatch(rel, pat) for pat in _UPLOAD_IGNORE):
            continue
        out.append(p)
    return out


def push(folder: str | os.PathLike, repo_id: str, *, token: str | bool | None = None, endpoint: str | None = None,
         private: bool = False, message: str | None = None, repo_type: str = "model") -> str:
    """Upload a model folder to the Hub and return the new commit sha (40 hex).

    Creates the repo if needed (``HfApi.create_repo(exist_ok=True)``) and uploads with
    ``HfApi.upload_folder``. Refuses folders holding pickle files (``UnsafeFileError``) before any
    network access. Build the registry entry with ``pin_for_folder(folder, repo_id, commit)``.
    """
    folder = Path(folder)
    _check_repo_id(repo_id)
    if not folder.is_dir():
        raise ZooError(f"not a folder: {folder}", where=str(folder), hint="push a model folder (save_pretrained)")
    files = _folder_files(folder)
    if not files:
        raise ZooError("the folder is empty", where=str(folder))
    for p in files:
        refuse_pickle(p.relative_to(folder).as_posix(), str(folder))
    if is_offline():
        raise ZooError("cannot push while HF_HUB_OFFLINE is set", where=repo_id, hint="unset HF_HUB_OFFLINE")
    from huggingface_hub import HfApi

    endpoint_s = hub_endpoint(endpoint)
    _sync_client()
    api = HfApi(endpoint=endpoint_s, token=_token(token))
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                                 commit_message=message or f"Upload {folder.name} with zoo")
    except Exception as exc:  # noqa: BLE001 - translated
        raise _translate(exc, repo_id=repo_id, revision="main", endpoint=endpoint_s) from exc
    if not info.oid or not _COMMIT_RE.match(info.oid):
        raise ZooError(f"the Hub did not return a commit for the upload to {repo_id}", where=endpoint_s)
    return info.oid


def pin_for_folder(folder: str | os.PathLike, repo_id: str, commit: str, *, repo_type: str = "model",
                   files: Iterable[str] | None = None) -> HubPin:
    """A ``HubPin`` for ``folder`` as pushed to ``repo_id`` at ``commit``: sha256 and size computed locally.

    ``files`` restricts the pin to those relative paths (default: every file ``push`` uploads).
    """
    folder = Path(folder)
    if files is None:
        rels = [p.relative_to(folder).as_posix() for p in _folder_files(folder)]
    else:
        rels = sorted(files)
    pins = []
    for rel in rels:
        check_repo_path(rel, repo_id)
        sha256, _, size = _hash_file(str(folder / rel))
        pins.append(FilePin(path=rel, sha256=sha256, size=size))
    return HubPin(repo_id=repo_id, revision=commit, files=tuple(pins), repo_type=repo_type)
