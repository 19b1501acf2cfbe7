"""pytest plugin registered through the ``pytest11`` entry point: the kit's fixtures, and a private home.

Every test session that has zoo-core installed (this repository's, and any
plugin author's) runs with ``ZOO_HOME``, ``HF_HOME`` and ``XDG_CACHE_HOME`` in
a temporary folder, set before any test module is imported (huggingface_hub
reads its cache location at import time) and removed at the end, so no test
can write into the user's real caches. ``HF_HUB_CACHE`` and
``HUGGINGFACE_HUB_CACHE`` are dropped for the same reason: they would win over
``HF_HOME``.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from .fixtures_home import zoo_home  # noqa: F401
from .fixtures_hub import hf_cache, local_hub  # noqa: F401

ISOLATED = ("ZOO_HOME", "HF_HOME", "XDG_CACHE_HOME")
DROPPED = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE")
_saved: dict[str, str | None] = {}
_root: list[str] = []


def pytest_configure(config):
    """Point every cache at a fresh temporary folder for the whole session (torchrun children inherit it)."""
    if _root:  # pytester runs pytest inside pytest: keep the outer session's folder
        return
    root = tempfile.mkdtemp(prefix="zoo-test-home-")
    _root.append(root)
    for name in ISOLATED + DROPPED:
        _saved[name] = os.environ.get(name)
    for name in ISOLATED:
        os.environ[name] = os.path.join(root, name.lower())
    for name in DROPPED:
        os.environ.pop(name, None)


def pytest_unconfigure(config):
    """Give the environment back as it was and remove the session's folder."""
    if not _root:
        return
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_root.pop(), ignore_errors=True)
