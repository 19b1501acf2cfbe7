"""The hub's own error types (all :class:`~zoo_core.errors.ZooError`, so the CLI prints them with their hint)."""

from __future__ import annotations

from ..errors import ZooError


class HubNotFoundError(ZooError):
    """The repo, revision or file does not exist on the Hub (or is private and no token opens it)."""


class HubConnectionError(ZooError):
    """The Hub endpoint could not be reached, or a download broke off and could not be resumed."""


class OfflineCacheMissError(ZooError):
    """Offline mode is on and the model is not (completely) in the local cache."""
