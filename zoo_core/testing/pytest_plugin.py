"""The kit's pytest plugin: its fixtures, and a private home for the caches. Opt-in, one line.

Installing zoo-core registers nothing with pytest: another project's test
session in the same environment keeps its own ``HF_HOME``. A test suite that
wants the kit says so in its ``tests/conftest.py``::

    from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit)

(``pytest_plugins = ["zoo_core.testing.pytest_plugin"]`` works too, but pytest
refuses it in a conftest.py below the folder pytest starts from, e.g. a plugin's
``tests/`` when this repository's whole suite runs from its root; the import
works from anywhere.) The line brings the fixtures ``zoo_home``, ``hf_cache``
and ``local_hub``, and runs the session with ``ZOO_HOME``, ``HF_HOME`` and
``XDG_CACHE_HOME`` in a temporary folder, set at ``pytest_configure``, before
pytest imports any test module (huggingface_hub reads its cache location at
import time), and removed at the end, so no test writes into the user's real
caches. ``HF_HUB_CACHE`` and ``HUGGINGFACE_HUB_CACHE`` are dropped for the same
reason: they would win over ``HF_HOME``.

The hooks carry names of their own (``specname``), so a conftest that defines
its own ``pytest_configure`` keeps it, and several conftests of one session
(this repository has one per plugin) isolate it once.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from .fixtures_home import zoo_home
from .fixtures_hub import hf_cache, local_hub

__all__ = ["hf_cache", "local_hub", "pytest_configure_zoo_home", "pytest_unconfigure_zoo_home", "zoo_home"]

ISOLATED = ("ZOO_HOME", "HF_HOME", "XDG_CACHE_HOME")
DROPPED = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE")
_saved: dict[str, str | None] = {}
_session: list = []  # (the pytest config that made the folder, the folder)


@pytest.hookimpl(specname="pytest_configure", tryfirst=True)
def pytest_configure_zoo_home(config):
    """Point every cache at a fresh temporary folder for the whole session (torchrun children inherit it)."""
    if _session:  # a second conftest with the line, or pytester's pytest inside pytest: keep the first folder
        return
    root = tempfile.mkdtemp(prefix="zoo-test-home-")
    _session.append((config, root))
    for name in ISOLATED + DROPPED:
        _saved[name] = os.environ.get(name)
    for name in ISOLATED:
        os.environ[name] = os.path.join(root, name.lower())
    for name in DROPPED:
        os.environ.pop(name, None)


@pytest.hookimpl(specname="pytest_unconfigure", trylast=True)
def pytest_unconfigure_zoo_home(config):
    """Give the environment back as it was and remove the session's folder."""
    if not _session or _session[0][0] is not config:  # only the session that made the folder gives it back
        return
    for name, value in _saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(_session.pop()[1], ignore_errors=True)
