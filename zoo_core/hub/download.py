"""Downloads with the real ``huggingface_hub`` client, its errors translated into ZooErrors that say what to do.

The client only checks sizes; what arrives is verified by ``verify.py`` afterwards.
``huggingface_hub`` and ``httpx2`` are imported inside the functions, never at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..errors import ZooError
from .cache import RepoCache
from .checks import COMMIT_RE
from .env import env_true, etag_timeout, sync_client
from .exceptions import HubConnectionError, HubNotFoundError, OfflineCacheMissError


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


def download(repo: RepoCache, commit: str, paths: Sequence[str], *, endpoint: str, token, progress: bool) -> None:
    """hf_hub_download every path at ``commit`` into the cache (in parallel); errors become ZooErrors."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    repo_id, repo_type, cache = repo.repo_id, repo.repo_type, repo.cache
    sync_client()
    try:
        # One metadata request without retries first: a wrong repo/revision/endpoint fails fast and clearly
        # (the download path retries connection errors for ~30 s before giving up).
        first = paths[0]
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

    def one(path: str) -> str:
        try:
            return hf_hub_download(repo_id, path, repo_type=repo_type, revision=commit, cache_dir=cache,
                                   endpoint=endpoint, token=token, etag_timeout=etag_timeout(),
                                   tqdm_class=tqdm_class)
        except Exception as exc:
            raise translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint, path=path) from exc

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
