"""`zoo release` publishes to the Hub; users behind olah (a Hub mirror we did not write, proxying that Hub)
then see every published entry and pull, verify and load it. Skipped unless olah is installed (see
tests/test_olah.py: `.venv-olah` or ZOO_OLAH, which .ci/run sets)."""

from __future__ import annotations

import pytest
from zoo_core.testing import free_port

from test_olah import _wait_for, run_olah
from test_release import ORG, fresh_home, list_rows, load_in_subprocess, release_cli, release_env, train  # noqa: F401

from fake_dists import run_zoo


@pytest.fixture
def olah_proxy(local_hub, tmp_path):
    """olah on a free loopback port, online, with the loopback Hub as its upstream; stopped afterwards."""
    port = free_port()
    upstream = local_hub.endpoint.split("://", 1)[1]
    basic = f'hf-scheme = "http"\nhf-netloc = "{upstream}"\nhf-lfs-netloc = "{upstream}"\n'
    with run_olah(tmp_path, port, basic, offline=False) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "log": tmp_path / "olah.log"}


def test_released_models_pull_and_load_through_olah(release_env, olah_proxy):  # noqa: F811 - the fixture
    from zoo_core.registry import load_registry_file
    from zoo_core.store import local_model_dir

    registry, tmp = release_env["registry"], release_env["tmp"]
    train("toy-fit", tmp / "runs/fit")
    train("toy-gan", tmp / "runs/gan")
    r = release_cli("--registry-file", str(registry))
    assert r.returncode == 0, r.stderr
    pins = {e.id: e.hub for e in load_registry_file(registry)}
    assert sorted(pins) == ["toy-fit-model", "toy-gan-model"]

    _wait_for(olah_proxy, f"{ORG}/toy-fit-model")
    env = {**fresh_home(tmp, "behind-olah"), "HF_ENDPOINT": olah_proxy["url"]}
    rows = list_rows(env)
    for name, pin in pins.items():
        assert rows[name]["hub"] == f"{ORG}/{name}@{pin.revision[:7]}" and rows[name]["state"] == "absent"
    r = run_zoo(["pull", "toy-gan-model"], env=env)
    assert r.returncode == 0, r.stderr
    assert f"verified {len(pins['toy-gan-model'].files)} files at {pins['toy-gan-model'].revision[:7]}" in r.stdout
    for name in pins:
        load_in_subprocess(name, local_model_dir(name), env)
    rows = list_rows(env)
    assert rows["toy-fit-model"]["state"] == rows["toy-gan-model"]["state"] == "verified"
