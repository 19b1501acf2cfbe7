"""Fixtures for `zoo pull gpt2-ml` against loopback stand-ins of Google Drive and GitHub (zoo_gpt2ml.testing)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from zoo_core import registry
from zoo_gpt2ml.testing import ReleaseHosts
from zoo_core.testing.pytest_plugin import *  # noqa: F403  (the zoo's test kit: fixtures, private caches)

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_OF = {"gpt2-ml": FIXTURES / "clue-h16", "gpt2-ml-legacy": FIXTURES / "legacy-h8"}


@dataclass
class Release:
    """The loopback hosts serving the fixture checkpoints at the catalogue's URLs, and the test's catalogue."""

    hosts: ReleaseHosts
    registry: Path  # the shipped registry.yaml with the fixtures' sha256 and sizes
    data: dict  # that registry, parsed: edit it and call write() to change an entry

    def entry(self, model_id: str) -> dict:
        return next(m for m in self.data["models"] if m["id"] == model_id)

    def source(self, model_id: str, suffix: str) -> dict:
        return next(s for s in self.entry(model_id)["weights"]["sources"] if s["name"].endswith(suffix))

    def write(self) -> None:
        self.registry.write_text(yaml.safe_dump(self.data, allow_unicode=True, sort_keys=False))
        registry.catalogue.cache_clear()


@pytest.fixture
def release(tmp_path, monkeypatch):
    """Drive and GitHub as loopback hosts (through HTTPS_PROXY) serving the fixtures where the catalogue says.

    The URLs are the shipped catalogue's; only each file's sha256 and size are the fixture's, and the
    converter gets ``num_heads=2`` (the fixtures have 8- and 16-wide models).
    """
    data = yaml.safe_load(registry.MAIN_REGISTRY.read_text())
    hosts = ReleaseHosts(tmp_path / "hosts")
    for model_id, folder in FIXTURE_OF.items():
        entry = next(m for m in data["models"] if m["id"] == model_id)
        entry["convert"]["options"]["num_heads"] = 2
        for s in entry["weights"]["sources"]:
            if not s.get("sha256"):
                continue
            path = folder / s["name"]
            s["sha256"], s["size"] = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size
            if m := re.fullmatch(r"https://drive\.google\.com/file/d/([-\w]+)", s["url"]):
                hosts.add_drive_file(m.group(1), path)
            elif m := re.fullmatch(r"https://github\.com/([^/]+/[^/]+)/releases/download/([^/]+)/([^/]+)", s["url"]):
                hosts.add_release_asset(m.group(1), m.group(2), path, m.group(3))
            else:
                raise AssertionError(f"the catalogue names a host the loopback server does not play: {s['url']}")
    out = Release(hosts, tmp_path / "registry.yaml", data)
    out.write()
    monkeypatch.setattr(registry, "MAIN_REGISTRY", out.registry)
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE", "ZOO_GPT2ML_MIRROR",
                 "ZOO_PULL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in hosts.env().items():
        monkeypatch.setenv(name, value)
    yield out
    hosts.close()
    registry.catalogue.cache_clear()
