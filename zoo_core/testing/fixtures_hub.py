"""pytest fixtures for code that talks to the Hugging Face Hub: an isolated cache and a loopback Hub.

``zoo_core.testing.pytest_plugin`` re-exports these, so every plugin's tests can use them::

    def test_pull(local_hub):
        local_hub.publish("org/tiny", {"config.json": b"{}", "model.safetensors": data})
        pin = local_hub.pin("org/tiny")
        path = zoo_core.hub.pull(pin, progress=False)

Fixtures:

``hf_cache``
    An isolated Hugging Face / zoo environment in ``tmp_path`` (no server): ``HF_HOME``,
    ``HF_HUB_CACHE``, ``ZOO_HOME`` point into ``tmp_path``; ``HF_HUB_OFFLINE``,
    ``TRANSFORMERS_OFFLINE`` and ``HF_TOKEN`` are unset; ``HF_HUB_DISABLE_XET=1``,
    ``HF_HUB_DISABLE_TELEMETRY=1``, ``HF_HUB_DISABLE_PROGRESS_BARS=1``; the saved-token path is
    redirected so a developer's real token is never read. Returns the hub cache ``Path``.

``local_hub``
    ``hf_cache`` plus a started :class:`~zoo_core.testing.local_hub.LocalHub` (root in
    ``tmp_path / "localhub"``) whose endpoint is exported as ``HF_ENDPOINT``. Also points
    ``huggingface_hub.constants`` (endpoint, cache, offline, Xet) at it, so code calling the client
    directly hits the local hub too. Extra attributes: ``local_hub.cache_dir`` (the HF hub cache)
    and ``local_hub.zoo_home``. Stopped (and the client's HTTP session closed) after the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .local_hub import LocalHub

__all__ = ["hf_cache", "local_hub"]


def _client_constants(monkeypatch: pytest.MonkeyPatch, *, home: Path, cache: Path, endpoint: str | None) -> None:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub is a core dependency
        return
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    if endpoint is not None:
        monkeypatch.setattr(constants, "ENDPOINT", endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            endpoint + "/{repo_id}/resolve/{revision}/{filename}")


def _close_client_session() -> None:
    try:
        from huggingface_hub.utils import close_session
    except ImportError:  # pragma: no cover
        return
    close_session()


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated HF cache and ZOO_HOME in tmp_path, offline/token env vars cleared; returns the hub cache."""
    try:  # import the client before changing the environment: its import-time constants stay the session's
        import huggingface_hub.constants
        import huggingface_hub.utils.tqdm  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    home = tmp_path / "hf-home"
    cache = home / "hub"
    zoo_home = tmp_path / "zoo-home"
    cache.mkdir(parents=True)
    zoo_home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("ZOO_HOME", str(zoo_home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                 "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    _client_constants(monkeypatch, home=home, cache=cache, endpoint=None)
    return cache


@pytest.fixture
def local_hub(hf_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A started LocalHub exported as HF_ENDPOINT, with an isolated HF cache and ZOO_HOME (see module doc)."""
    hub = LocalHub(tmp_path / "localhub")
    hub.start()
    _close_client_session()  # no pooled connection to an earlier test's server
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    _client_constants(monkeypatch, home=hf_cache.parent, cache=hf_cache, endpoint=hub.endpoint)
    hub.cache_dir = hf_cache
    hub.zoo_home = tmp_path / "zoo-home"
    try:
        yield hub
    finally:
        hub.stop()
        _close_client_session()
