"""`zoo pull gpt2-ml` with no --from: the release files from (loopback) Google Drive and GitHub, verified, converted.

Everything goes through gdown and requests as a user's pull would, to the catalogue's real URLs, which
the `release` fixture routes to zoo_gpt2ml.testing.ReleaseHosts (HTTPS_PROXY + a test CA).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from zoo_core import load_model
from zoo_core.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
DATA = "model.ckpt-220000.data-00000-of-00001"
INDEX = "model.ckpt-220000.index"
BAIDU = "https://pan.baidu.com/s/1yiuTHXUr2DpyBqmFYLJH6A (extraction code ffz6)"


def pull(*args):
    return CliRunner().invoke(cli, ["pull", *args])


def home() -> Path:
    return Path(os.environ["ZOO_HOME"])


def assert_matches_tensorflow(model_id, fixture):
    ref = load_file(FIXTURES / fixture / "reference.safetensors")
    with torch.no_grad():
        logits = load_model(model_id)(ref["input_ids"])
    torch.testing.assert_close(logits, ref["logits"], atol=1e-4, rtol=0)


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("model_id, fixture, tag", [("gpt2-ml", "clue-h16", "v1.0"),
                                                    ("gpt2-ml-legacy", "legacy-h8", "v0.5")])
def test_clean_pull_downloads_verifies_converts_and_installs(release, model_id, fixture, tag):
    result = pull(model_id)
    assert result.exit_code == 0, result.output
    store = home() / "models" / model_id
    assert f"{model_id}: downloaded, verified and converted -> {store}" in result.output
    prefix = "model.ckpt-220000" if fixture == "clue-h16" else "model.ckpt-100000"
    for name in (f"{prefix}.index", f"{prefix}.data-00000-of-00001"):
        assert f"downloading {name}" in result.output and f"{name}: sha256 ok" in result.output
    # Drive's large-file flow: the virus-scan page first, then the form sent back with its confirm and uuid
    drive = [r.path for r in release.hosts.seen("drive.usercontent.google.com")]
    assert len(drive) == 2 and "confirm=t" not in drive[0] and "confirm=t&uuid=" in drive[1]
    # GitHub: the release URL, redirected to a signed asset URL
    assert [r.path for r in release.hosts.seen("github.com", "/releases/")] == \
        [f"/imcaspar/gpt2-ml/releases/download/{tag}/{prefix}.index"]
    assert len(release.hosts.seen("release-assets.githubusercontent.com", "sig=")) == 1
    assert not (home() / "downloads" / model_id).exists()  # converted: the 5.5 GB of TF files are not kept
    assert_matches_tensorflow(model_id, fixture)

    listed = CliRunner().invoke(cli, ["list", model_id, "--json"])
    assert '"state": "local"' in listed.output
    generated = CliRunner().invoke(cli, ["generate", "gpt2-ml", "今天", "--model", model_id,
                                         "--max-new-tokens", "3", "--seed", "0"])
    assert generated.exit_code == 0, generated.output
    assert generated.output.startswith("今天")

    before = len(release.hosts.requests)
    again = pull(model_id)
    assert again.exit_code == 0 and f"{model_id} is already in the local store: {store}" in again.output
    assert len(release.hosts.requests) == before


def test_killed_pull_resumes_with_a_range_request(release, tmp_path):
    size = (FIXTURES / "clue-h16" / DATA).stat().st_size
    stall = release.hosts.fault(DATA, "stall", at=size - 1000, times=1)
    code = ("import sys; from pathlib import Path; from zoo_core import registry; "
            "registry.MAIN_REGISTRY = Path(sys.argv[1]); from zoo_core.cli import cli; cli(['pull', 'gpt2-ml'])")
    child = subprocess.Popen([sys.executable, "-c", code, str(release.registry)], env=dict(os.environ),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    downloads = home() / "downloads" / "gpt2-ml"
    try:
        deadline = time.monotonic() + 60
        while not (stall.sent and [p for p in downloads.glob(f"{DATA}*.part") if p.stat().st_size > 0]):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the first pull never got part of the .data file"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stderr.close()
    (part,) = downloads.glob(f"{DATA}*.part")
    have = part.stat().st_size
    assert 0 < have < size
    release.hosts.release()  # the stalled connection of the killed process ends

    result = pull("gpt2-ml")
    assert result.exit_code == 0, result.output
    assert f"resuming at {have / 1e3:.1f} kB" in result.output
    ranges = [r.range for r in release.hosts.seen("drive.usercontent.google.com") if r.range]
    assert ranges == [f"bytes={have}-"]  # only the missing bytes were asked for
    assert_matches_tensorflow("gpt2-ml", "clue-h16")


def test_a_dropped_connection_is_resumed_within_the_pull(release, monkeypatch):
    """Through a plain mirror named by ZOO_GPT2ML_MIRROR: no proxy, the catalogue's URLs unused."""
    for name in release.hosts.env():
        monkeypatch.delenv(name)
    monkeypatch.setenv("ZOO_GPT2ML_MIRROR", release.hosts.mirror_url)
    cut = (FIXTURES / "clue-h16" / DATA).stat().st_size - 1000
    release.hosts.fault(DATA, "drop", at=cut, times=1)
    result = pull("gpt2-ml")
    assert result.exit_code == 0, result.output
    assert {r.host for r in release.hosts.requests} == {"127.0.0.1"}
    assert [r.path for r in release.hosts.requests if not r.range] == [f"/mirror/{INDEX}", f"/mirror/{DATA}"]
    (resumed,) = [r.range for r in release.hosts.requests if r.range]
    assert 0 < int(resumed.removeprefix("bytes=").rstrip("-")) <= cut
    assert_matches_tensorflow("gpt2-ml", "clue-h16")


def test_corrupt_download_is_refused_and_nothing_else_is_touched(release):
    legacy = pull("gpt2-ml-legacy", "--from", str(FIXTURES / "legacy-h8" / "model.ckpt-100000"),
                  "--option", "num_heads=2")
    assert legacy.exit_code == 0, legacy.output
    models = home() / "models"
    before = tree(models)
    release.hosts.fault(DATA, "corrupt")

    result = pull("gpt2-ml")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{DATA} from drive.google.com does not match the catalogue" in result.output
    assert "nothing was installed" in result.output
    assert tree(models) == before  # the other model is intact, and no gpt2-ml appeared
    downloads = home() / "downloads" / "gpt2-ml"
    assert sorted(p.name for p in downloads.iterdir() if not p.name.startswith(".")) == [INDEX]  # verified, kept

    del release.hosts.faults[DATA]
    github = len(release.hosts.seen("github.com"))
    again = pull("gpt2-ml")
    assert again.exit_code == 0, again.output
    assert f"{INDEX}: already downloaded, sha256 ok" in again.output
    assert len(release.hosts.seen("github.com")) == github  # the good .index was not fetched again
    assert_matches_tensorflow("gpt2-ml", "clue-h16")


@pytest.mark.parametrize("name, kind, said", [
    (DATA, "missing", f"Google Drive refused {DATA}: it gave no download link (the file is gone,"),
    (DATA, "quota", f"Google Drive refused {DATA}: Too many users have viewed or downloaded this file recently."),
    (INDEX, "missing", f"github.com answered HTTP 404 for {INDEX}"),
])
def test_a_refused_download_names_the_other_ways(release, name, kind, said):
    release.hosts.fault(name, kind)
    result = pull("gpt2-ml")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert said in result.output
    hint = next(line for line in result.output.splitlines() if line.strip().startswith("next:"))
    assert BAIDU in hint and "`zoo pull gpt2-ml --from /path/to/model.ckpt-220000`" in hint \
        and "ZOO_GPT2ML_MIRROR" in hint
    assert not (home() / "models" / "gpt2-ml").exists()


def test_a_stalled_server_meets_the_pull_deadline(release, monkeypatch):
    monkeypatch.setenv("ZOO_PULL_TIMEOUT", "3")
    release.hosts.fault(DATA, "stall", at=100_000)
    t0 = time.monotonic()
    result = pull("gpt2-ml")
    elapsed = time.monotonic() - t0
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "did not finish within 3 s (ZOO_PULL_TIMEOUT)" in result.output
    assert elapsed < 15
    assert not (home() / "models" / "gpt2-ml").exists()
    assert (home() / "downloads" / "gpt2-ml" / INDEX).is_file()  # what arrived is kept for the next pull


def test_not_enough_disk_for_download_and_conversion_is_refused_before_downloading(release):
    downloads = home() / "downloads" / "gpt2-ml"
    downloads.mkdir(parents=True)
    free = shutil.disk_usage(downloads).free
    # The .data alone would fit (0.6 of the free space); with its converted weights it would not.
    release.source("gpt2-ml", ".data-00000-of-00001")["size"] = int(free * 0.6)
    release.write()
    result = pull("gpt2-ml")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "not enough free disk space to pull gpt2-ml" in result.output
    assert f"of converted weights) and {downloads} has" in result.output
    assert release.hosts.requests == []


def test_from_path_still_converts_what_the_user_downloaded(release):
    result = pull("gpt2-ml", "--from", str(FIXTURES / "clue-h16" / "model.ckpt-220000"), "--option", "num_heads=2")
    assert result.exit_code == 0, result.output
    assert release.hosts.requests == []
    assert_matches_tensorflow("gpt2-ml", "clue-h16")


def test_a_host_that_ignores_range_gets_the_file_again_from_the_start(release, monkeypatch):
    for name in release.hosts.env():
        monkeypatch.delenv(name)
    monkeypatch.setenv("ZOO_GPT2ML_MIRROR", release.hosts.mirror_url)
    downloads = home() / "downloads" / "gpt2-ml"
    downloads.mkdir(parents=True)
    (downloads / f"{DATA}k3j9x0qa.part").write_bytes((FIXTURES / "clue-h16" / DATA).read_bytes()[:1000])
    release.hosts.fault(DATA, "no-range")
    result = pull("gpt2-ml")
    assert result.exit_code == 0, result.output
    assert "resuming at 1.0 kB" in result.output and f"127.0.0.1 cannot resume {DATA}" in result.output
    assert [r.range for r in release.hosts.seen(name=DATA)] == [None, "bytes=1000-", None]
    assert_matches_tensorflow("gpt2-ml", "clue-h16")
