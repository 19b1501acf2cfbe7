"""The environment, read at call time: offline mode, cache folder, endpoint, token, client timeouts.

``huggingface_hub`` reads ``HF_ENDPOINT``, ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE``, ... once,
at import time. The hub package reads them at call time instead: it passes ``endpoint=``
and ``cache_dir=`` explicitly, decides offline mode itself, and before each client call
:func:`sync_client` sets the client's ``HF_HUB_OFFLINE`` / ``HF_HUB_DISABLE_XET`` / timeout
constants to what the environment says now. So env vars set by a test fixture, or by a
user after import, take effect in the same process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_sync_lock = threading.Lock()


def env_true(name: str) -> bool:
    """Whether env var ``name`` is set to 1 / ON / YES / TRUE (any case)."""
    value = os.environ.get(name)
    return value is not None and value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def is_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set now."""
    return env_true("HF_HUB_OFFLINE") or env_true("TRANSFORMERS_OFFLINE")


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
    """The Hub to talk to: ``endpoint``, else ``HF_ENDPOINT`` (mirrors, test hubs), else https://huggingface.co.

    Both are checked (``check_endpoint``): the client reads ``HF_ENDPOINT`` when it is imported, and
    an invalid one would make that import fail with a traceback.
    """
    check_endpoint(os.environ.get("HF_ENDPOINT"), "HF_ENDPOINT")
    if endpoint:
        check_endpoint(endpoint, "endpoint")
    return (endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def check_endpoint(url: str | None, where: str) -> None:
    """Raise ZooError unless ``url`` (if set) is an http(s) URL with a host and a valid port."""
    if not url:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        ok = False
    if not ok:
        from ..errors import ZooError

        shown = repr(url) if len(url) <= 120 else f"{url[:100]!r} … ({len(url)} characters)"
        raise ZooError(f"{where}={shown} is not a valid Hub URL", where=where,
                       hint="give the Hub's address as http(s)://HOST[:PORT][/PATH], e.g. https://huggingface.co "
                            "or a mirror's URL; unset HF_ENDPOINT for the Hub itself")


def token(value: str | bool | None) -> str | bool | None:
    """The token to send: ``value`` if given (``False``: none), else ``HF_TOKEN`` / ``HUGGING_FACE_HUB_TOKEN``.

    ``None`` lets the client fall back to the token saved by ``hf auth login``.
    """
    if value is not None:
        return value
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _as_int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


#: Bytes per chunk the client reads a download in (its own default is 10 MiB; see ``sync_client``).
DOWNLOAD_CHUNK_SIZE = 1024 * 1024


def sync_client() -> None:
    """Make huggingface_hub's import-time constants agree with the environment as it is now."""
    check_endpoint(os.environ.get("HF_ENDPOINT"), "HF_ENDPOINT")  # before the client's import reads it
    from huggingface_hub import constants

    with _sync_lock:
        constants.HF_HUB_OFFLINE = is_offline()
        constants.HF_HUB_DISABLE_XET = env_true("HF_HUB_DISABLE_XET")
        constants.HF_HUB_ETAG_TIMEOUT = _as_int(os.environ.get("HF_HUB_ETAG_TIMEOUT")) or constants.DEFAULT_ETAG_TIMEOUT
        constants.HF_HUB_DOWNLOAD_TIMEOUT = (
            _as_int(os.environ.get("HF_HUB_DOWNLOAD_TIMEOUT")) or constants.DEFAULT_DOWNLOAD_TIMEOUT)
        # the client hands each download to the file in 10 MiB chunks, which its HTTP library assembles from
        # small reads at about three times the CPU of 1 MiB ones (measured: 1.7 against 0.55 CPU s per GB);
        # a dropped connection also loses at most one chunk
        constants.DOWNLOAD_CHUNK_SIZE = DOWNLOAD_CHUNK_SIZE


def etag_timeout() -> float:
    """Seconds to wait for a metadata (HEAD / API) answer: ``HF_HUB_ETAG_TIMEOUT``, default 10."""
    return float(_as_int(os.environ.get("HF_HUB_ETAG_TIMEOUT")) or 10)


#: Default overall deadline of one pull, in seconds (4 hours: a 5.5 GB model at 0.4 MB/s).
PULL_TIMEOUT_DEFAULT = 4 * 3600


def pull_timeout() -> float | None:
    """Seconds one pull may take in all: ``ZOO_PULL_TIMEOUT`` (0 or "none": no deadline), default 4 hours.

    The client's own timeouts bound each request, not a server that trickles bytes forever.
    Anything but a finite number of seconds, not negative (``nan``, ``inf``, ``-5``, ``soon``), is a
    ZooError: ``nan`` would otherwise turn the deadline off without a word.
    """
    import math

    value = (os.environ.get("ZOO_PULL_TIMEOUT") or "").strip().lower()
    if not value:
        return float(PULL_TIMEOUT_DEFAULT)
    if value in ("none", "off"):
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        from ..errors import ZooError

        raise ZooError(f"ZOO_PULL_TIMEOUT={value!r} is not a number of seconds (finite, 0 or more)",
                       where="ZOO_PULL_TIMEOUT",
                       hint="set it to seconds (e.g. 7200), or 0 for no deadline; unset it for the default of "
                            f"{PULL_TIMEOUT_DEFAULT} s")
    return seconds or None
