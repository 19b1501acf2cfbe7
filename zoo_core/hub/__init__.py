"""Verified, pinned pulls from the Hugging Face Hub, and pushes to it, with the real ``huggingface_hub`` client.

Files land in the standard Hugging Face cache (``<HF_HUB_CACHE>/models--org--name/``:
``blobs/``, ``snapshots/<commit>/``), so ``hf cache ls`` sees them. The client only
checks sizes; this package checks every pinned file's size and sha256 (large files
while they are written, the others as soon as they arrive) before the pull returns,
removes anything that does not match (blob and snapshot link) and raises
:class:`~zoo_core.errors.IntegrityError`. A verified snapshot is recorded in a small
JSON marker under ``$ZOO_HOME/verified/`` (default ``~/.cache/zoo``) holding each
blob's size and mtime, so a later ``pull`` of the same pin makes no network request
and hashes nothing unless a blob changed on disk.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ... once,
at import time. This package reads them at call time instead (see ``env.py``), so env vars
set by a test fixture, or by a user after import, take effect in the same process.

Nothing here imports torch (``zoo list`` imports this package); ``huggingface_hub`` itself
is imported lazily, only by the functions that talk to the network or scan the cache.

One job per module:

- ``env``: the environment read at call time (offline, cache folder, endpoint, token, client sync, timeouts)
- ``checks``: repo id and pin validation, before any network access
- ``cache``: ``RepoCache`` (one repo's paths in the cache: storage, refs, locks, eviction, markers)
  and ``Marker`` (what was verified, per blob)
- ``download``: the client's downloads, its errors translated into ZooErrors
- ``stream``: large files fetched with the client's ``http_get`` and hashed while they are written
- ``verify``: hashing what is cached against what is expected
- ``pull``: ``pull``, ``pull_repo``, ``snapshot_path``, ``local_state``, ``recheck``
- ``manage``: ``cached_models``, ``remove``
- ``push``: ``push``, ``pin_for_folder``

Use it as ``from zoo_core import hub; hub.pull(pin)``: the names below are the public API.
"""

from __future__ import annotations

from .checks import check_pin
from .env import hub_cache_dir, hub_endpoint, is_offline
from .exceptions import HubConnectionError, HubNotFoundError, OfflineCacheMissError
from .manage import CachedModel, CachedRevision, cached_models, remove
from .pull import REPO_FILE_PATTERNS, local_state, pull, pull_repo, recheck, snapshot_path
from .push import pin_for_folder, push

__all__ = [
    "REPO_FILE_PATTERNS",
    "CachedModel",
    "CachedRevision",
    "HubConnectionError",
    "HubNotFoundError",
    "OfflineCacheMissError",
    "cached_models",
    "check_pin",
    "hub_cache_dir",
    "hub_endpoint",
    "is_offline",
    "local_state",
    "pin_for_folder",
    "pull",
    "pull_repo",
    "push",
    "recheck",
    "remove",
    "snapshot_path",
]

