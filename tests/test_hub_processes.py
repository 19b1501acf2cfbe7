"""zoo_core.hub across processes: killed mid-download, two pulls at once, offline with env set before import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from zoo_core import hub


ROOT = Path(__file__).resolve().parents[1]
BIG = os.urandom(2 * 1024 * 1024)
FILES = {"config.json": b'{"hidden": 8}', "model.safetensors": BIG}

PULL_SCRIPT = """
import json, sys
from zoo_core import hub
from zoo_core.errors import ZooError
from zoo_core.pins import HubPin
pin = HubPin.from_dict(json.loads(sys.argv[1]))
try:
    print(hub.pull(pin, progress=False), flush=True)
except ZooError as e:
    print(type(e).__name__, e, file=sys.stderr)
    sys.exit(3)
"""


def _pin_dict(pin) -> str:
    return json.dumps({"repo_id": pin.repo_id, "revision": pin.revision, "repo_type": pin.repo_type,
                       "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in pin.files]})


def _env(**extra) -> dict:
    env = dict(os.environ)  # the fixture's HF_ENDPOINT / HF_HUB_CACHE / ZOO_HOME
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
               HF_HUB_ETAG_TIMEOUT="5", HF_HUB_DOWNLOAD_TIMEOUT="15", **extra)
    return env


def _spawn(pin, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PULL_SCRIPT, _pin_dict(pin)], env=_env(**extra), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _incompletes(cache: Path) -> list[Path]:
    return list(cache.glob("*/blobs/*.incomplete"))


def test_pull_killed_mid_download_then_next_pull_completes(local_hub):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    local_hub.stall("org/big", "model.safetensors", after_bytes=300_000)
    proc = _spawn(pin)
    try:
        assert local_hub.wait_until_sent("org/big", "model.safetensors", 300_000, timeout=20), proc.stderr
        deadline = time.monotonic() + 5
        while not _incompletes(local_hub.cache_dir) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _incompletes(local_hub.cache_dir)  # really mid-download
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    local_hub.release_stalls()
    assert hub.local_state(pin) == "absent"
    snap = hub.pull(pin, progress=False)
    assert (snap / "model.safetensors").read_bytes() == BIG
    assert hub.local_state(pin) == "verified"
    assert not _incompletes(local_hub.cache_dir)  # the killed process's partial file was cleaned up


def test_two_processes_pull_the_same_model_at_once(local_hub):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    local_hub.stall("org/big", "model.safetensors", after_bytes=200_000)  # hold the first download mid-way
    procs = [_spawn(pin), _spawn(pin)]
    try:
        assert local_hub.wait_until_sent("org/big", "model.safetensors", 200_000, timeout=20)
        time.sleep(0.5)  # let the other process reach the file lock
        local_hub.release_stalls()
        outs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert Path(out.strip()) == local_hub.cache_dir / "models--org--big" / "snapshots" / pin.revision
    assert hub.local_state(pin, deep=True) == "verified"
    assert len(local_hub.downloads("model.safetensors")) == 1  # the file lock made the second one wait
    assert not _incompletes(local_hub.cache_dir)


def test_offline_in_a_fresh_process(local_hub):
    local_hub.publish("org/big", FILES)
    pin = local_hub.pin("org/big")
    # before any pull: a clear error naming the model
    proc = _spawn(pin, HF_HUB_OFFLINE="1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "OfflineCacheMissError" in err and "org/big" in err and "online" in err
    assert local_hub.requests == []
    # after a pull: works offline, even with the Hub gone
    hub.pull(pin, progress=False)
    local_hub.stop()
    proc = _spawn(pin, HF_HUB_OFFLINE="1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (Path(out.strip()) / "model.safetensors").read_bytes() == BIG
