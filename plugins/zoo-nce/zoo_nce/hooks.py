"""zoo-nce's plugin hooks: registration only (no torch import here, so `zoo list` stays fast)."""

from __future__ import annotations

from zoo_core import hookimpl  # noqa: F401
