"""Pull, list and load through a Hub mirror that we did not write: olah (a self-hosted Hugging Face mirror).

Every other Hub test runs against our own LocalHub, which shares our reading of
the protocol. olah serves plain git repositories offline, the way a user in
China runs a mirror behind ``HF_ENDPOINT``. It lives in a virtualenv of its
own (its dependencies are not ours): ``.ci/run`` makes ``.venv-olah`` and sets
``ZOO_OLAH`` to its ``olah-cli``; without either, the tests are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from zoo_core.testing import free_port

from fake_dists import run_zoo
from test_pull_cli import _registry

ROOT = Path(__file__).resolve().parents[1]


def _olah_cli() -> str:
    explicit = os.environ.get("ZOO_OLAH")
    if explicit:
        assert Path(explicit).is_file(), f"ZOO_OLAH={explicit} does not exist"  # CI asked for it: never skip
        return explicit
    local = ROOT / ".venv-olah" / "bin" / "olah-cli"
    if not local.is_file():
        pytest.skip("olah is not installed (python3 -m venv .venv-olah && .venv-olah/bin/pip install olah==0.5.4)")
    return str(local)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=zoo", "-c", "user.email=zoo@localhost", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def _mirror_repo(mirrors: Path, repo_id: str, folder: Path, lfs: tuple[str, ...]) -> str:
    """A git repo of ``folder``'s files under ``mirrors/models/``, ``lfs`` files stored as Git-LFS pointers."""
    repo = mirrors / "models" / repo_id
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for src in folder.iterdir():
        data = src.read_bytes()
        if src.name in lfs:
            oid = hashlib.sha256(data).hexdigest()
            obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
            obj.parent.mkdir(parents=True, exist_ok=True)
            obj.write_bytes(data)
            data = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()
        (repo / src.name).write_bytes(data)
    (repo / ".gitattributes").write_text("".join(f"{name} filter=lfs diff=lfs merge=lfs -text\n" for name in lfs))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "publish")
    return _git(repo, "rev-parse", "HEAD")


@contextlib.contextmanager
def run_olah(tmp_path, port: int, basic: str, *, offline: bool):
    """olah-cli on 127.0.0.1:``port`` with ``basic`` added to its [basic] settings, its log in
    ``tmp_path/olah.log``; terminated on exit. Yields the process."""
    config = tmp_path / "olah.toml"
    config.write_text(f"""[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{tmp_path / 'olah-cache'}"
mirror-scheme = "http"
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"
{basic}
[accessibility]
offline = {"true" if offline else "false"}
""")
    with open(tmp_path / "olah.log", "wb") as log:
        proc = subprocess.Popen([_olah_cli(), "-c", str(config)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def olah(tmp_path):
    """An olah mirror serving ``tmp_path/mirrors`` offline on a free loopback port; stopped afterwards."""
    port = free_port()
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    with run_olah(tmp_path, port, f'mirrors-path = ["{mirrors}"]\n', offline=True) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "mirrors": mirrors, "proc": proc, "log": tmp_path / "olah.log"}


def _wait_for(olah, repo_id: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:  # its "/" page is a 500; a repo's revision API answers once it is up
        try:
            with urllib.request.urlopen(f"{olah['url']}/api/models/{repo_id}/revision/main", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if olah["proc"].poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"olah did not come up: {olah['log'].read_text()[-2000:]}")
        time.sleep(0.3)


@pytest.mark.parametrize("lfs", [("model.safetensors",), ()], ids=["lfs-weights", "plain-git-weights"])
def test_pull_list_and_load_through_olah(olah, tmp_path, zoo_plugins, toy_env, monkeypatch, lfs):
    from zoo_core import build_model, load_model
    from zoo_core.hub import pin_for_folder
    from zoo_core.registry import catalogue

    torch.manual_seed(3)
    model = build_model("toy-mlp")
    model.save_pretrained(tmp_path / "toy")
    commit = _mirror_repo(olah["mirrors"], "org/toy", tmp_path / "toy", lfs)
    _wait_for(olah, "org/toy")
    pin = pin_for_folder(tmp_path / "toy", "org/toy", commit)
    reg = _registry(tmp_path, pin)
    env = dict(toy_env, HF_ENDPOINT=olah["url"], ZOO_REGISTRY=str(reg))

    r = run_zoo(["pull", "toy-demo"], env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row["state"] for row in json.loads(run_zoo(["list", "--json"], env=env).stdout)}
    assert rows["toy-demo"] == "verified"

    monkeypatch.setenv("HF_ENDPOINT", olah["url"])
    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    catalogue.cache_clear()
    for ref in ("toy-demo", f"hf-hub:org/toy@{commit}"):
        loaded = load_model(ref)
        assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items()), ref
    catalogue.cache_clear()

    (tmp_path / "wrong").mkdir()
    wrong = _registry(tmp_path / "wrong", _with_wrong_sha(pin), "toy-wrong")
    r = run_zoo(["pull", "toy-wrong"], env=dict(env, ZOO_REGISTRY=str(wrong)))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "pin of org/toy" in r.stderr and "is wrong" in r.stderr
    rows = {row["id"]: row["state"] for row in json.loads(run_zoo(["list", "--json"], env=env).stdout)}
    assert rows["toy-demo"] == "verified"  # the wrong pin deleted nothing

    r = run_zoo(["pull", "hf-hub:org/missing@main"], env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr and "not found" in r.stderr


def _with_wrong_sha(pin):
    import dataclasses

    files = tuple(dataclasses.replace(f, sha256="0" * 64) if f.path == "model.safetensors" else f for f in pin.files)
    return dataclasses.replace(pin, files=files)
