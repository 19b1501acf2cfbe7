"""Downloads with the real ``huggingface_hub`` client, its errors translated into ZooErrors that say what to do.

The client only checks sizes; what arrives is verified by ``verify.py`` afterwards.
``huggingface_hub`` and ``httpx2`` are imported inside the functions, never at import time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from ..errors import ZooError
from .cache import RepoCache
from .checks import COMMIT_RE
from .env import env_true, etag_timeout, pull_timeout, sync_client
from .exceptions import HubConnectionError, HubNotFoundError, OfflineCacheMissError
from .stream import fetch_blob
from .verify import Expect


class QuietTqdm:
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


def translate(exc: BaseException, *, repo_id: str, revision: str, endpoint: str,
              path: str | None = None, action: str = "pull") -> ZooError:
    """Turn a huggingface_hub / httpx error into a ZooError that says what to do (``action``: pull or push)."""
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
    short = revision[:12] if COMMIT_RE.match(revision) else revision
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
        if action == "push":
            return HubConnectionError(f"could not push to {repo_id} at {endpoint}: {type(exc).__name__}",
                                      where=repo_url, hint="check the network and HF_ENDPOINT, then push again")
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


#: Files at least this large are fetched by :func:`~zoo_core.hub.stream.fetch_blob`, hashed as they are
#: written (one more metadata request each); smaller ones by ``hf_hub_download``, hashed once in place.
STREAM_HASH_MIN = 8 * 1024 * 1024


def download(repo: RepoCache, commit: str, expects: Sequence[Expect], *, endpoint: str, token, progress: bool,
             on_file=None) -> None:
    """hf_hub_download every expected file at ``commit`` into the cache (in parallel); errors become ZooErrors.

    ``on_file(expect, hashed)``, if given, runs in the download's thread as soon as that file is in
    place; ``hashed`` is the :class:`~zoo_core.hub.stream.Hashed` digests computed while the file was
    written, or None when the caller must hash the file itself (small files, Xet files, a download the
    writer could not vouch for). Large files (``STREAM_HASH_MIN``) and files a killed pull left partly
    downloaded are fetched by ``fetch_blob`` (hashed on the way, partial files resumed with HTTP Range).
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    repo_id, repo_type, cache = repo.repo_id, repo.repo_type, repo.cache
    deadline = pull_timeout()  # a bad ZOO_PULL_TIMEOUT is reported before any request
    sync_client()
    first = expects[0].path
    try:
        # One metadata request without retries first: a wrong repo/revision/endpoint fails fast and clearly
        # (the download path retries connection errors for ~30 s before giving up).
        meta = get_hf_file_metadata(
            hf_hub_url(repo_id, first, repo_type=repo_type, revision=commit, endpoint=endpoint),
            token=token, timeout=etag_timeout(), endpoint=endpoint)
        if meta.commit_hash is None or meta.etag is None:
            raise HubConnectionError(
                f"{endpoint} does not answer like a Hugging Face Hub (no X-Repo-Commit / ETag headers)",
                where=endpoint, hint="check HF_ENDPOINT (a mirror must speak the Hub's download protocol), "
                                     "proxy and firewall settings")
    except Exception as exc:
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        if isinstance(exc, HfHubHTTPError) and not isinstance(exc, RepositoryNotFoundError) and \
                getattr(exc.response, "status_code", 0) >= 500:
            pass  # transient server error: the download below retries
        else:
            raise translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint, path=first) from exc

    cache.mkdir(parents=True, exist_ok=True)
    tqdm_class = None if progress and not env_true("HF_HUB_DISABLE_PROGRESS_BARS") else QuietTqdm
    # parts left by an earlier, killed pull (looked for once: our own downloads make new ones)
    leftovers = repo.blobs.is_dir() and any(repo.blobs.glob("*.incomplete"))
    by_path = {e.path: e for e in expects}

    def one(path: str) -> None:
        e = by_path[path]
        hashed = None
        try:
            if leftovers or e.size >= STREAM_HASH_MIN:
                url = hf_hub_url(repo_id, path, repo_type=repo_type, revision=commit, endpoint=endpoint)
                hashed = fetch_blob(repo, url, endpoint=endpoint, token=token, tqdm_class=tqdm_class,
                                    displayed_filename=path, git_sha1=e.git_sha1 is not None)
            hf_hub_download(repo_id, path, repo_type=repo_type, revision=commit, cache_dir=cache,
                            endpoint=endpoint, token=token, etag_timeout=etag_timeout(), tqdm_class=tqdm_class)
        except Exception as exc:
            raise translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint, path=path) from exc
        if on_file is not None:
            on_file(e, hashed)

    _run_with_deadline(one, list(by_path), deadline, where=f"{endpoint}/{repo_id}",
                       what=f"{repo_id}@{commit[:12]}")


def _run_with_deadline(one, paths: Sequence[str], seconds: float | None, *, where: str, what: str) -> None:
    """Run ``one(path)`` for every path, at most 8 at a time, and give up after ``seconds`` in all.

    The downloads run in daemon threads: one that a deadline abandons cannot keep the program
    alive, and what it had written stays on disk for the next pull to resume from.
    """
    paths = list(dict.fromkeys(paths))  # a path listed twice is downloaded once, and counted once
    results: dict[str, BaseException | None] = {}
    pending = list(paths)
    slots = threading.Semaphore(min(8, len(paths)))
    done = threading.Condition()

    def worker(path):
        try:
            one(path)
            outcome = None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            outcome = exc
        finally:
            slots.release()
        with done:
            results[path] = outcome
            done.notify_all()

    deadline = None if seconds is None else time.monotonic() + seconds
    with done:
        while len(results) < len(paths):
            while pending and slots.acquire(blocking=False):
                threading.Thread(target=worker, args=(pending.pop(0),), daemon=True, name="zoo-pull").start()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise HubConnectionError(
                    f"the pull of {what} did not finish within {seconds:g} s (ZOO_PULL_TIMEOUT); "
                    f"{len(results)} of {len(paths)} files arrived",
                    where=where,
                    hint="pull again (what arrived is kept, and a partial file resumes where it stopped), or "
                         "raise ZOO_PULL_TIMEOUT (seconds, 0 for no deadline) for a slow connection")
            done.wait(timeout=0.2 if left is None else min(left, 0.2))
    for path in paths:
        if results[path] is not None:
            raise results[path]
