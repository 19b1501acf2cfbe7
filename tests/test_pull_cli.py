"""`zoo pull / list / cache / push` and load_model end to end: real huggingface_hub client, local_hub server."""

import json
import os
from pathlib import Path

import torch

from fake_dists import run_zoo



def _publish_toy(local_hub, tmp_path, zoo_plugins, repo="zoo-test/toy"):
    from zoo_core import build_model

    torch.manual_seed(1)
    model = build_model("toy-mlp")
    model.save_pretrained(tmp_path / "toy")
    commit = local_hub.publish(repo, tmp_path / "toy")
    return model, local_hub.pin(repo, commit)


def _registry(tmp_path, pin, model_id="toy-demo"):
    files = "\n".join(f"        - {{path: {f.path}, sha256: \"{f.sha256}\", size: {f.size}}}" for f in pin.files)
    text = f"""version: 1
models:
  - id: {model_id}
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: toy model published to the loopback hub
    links: {{source: "https://example.org/toy"}}
    license: MIT
    metrics: []
    hub:
      repo_id: {pin.repo_id}
      revision: "{pin.revision}"
      files:
{files}
"""
    path = tmp_path / "user-registry.yaml"
    path.write_text(text)
    return path


def converter_registry(tmp_path):
    """A registry with one entry whose weights come from the toy converter (``zoo pull toy-local --from``)."""
    reg = tmp_path / "reg.yaml"
    reg.write_text("""version: 1
models:
  - id: toy-local
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: weights produced by a converter
    links: {source: "https://example.org/toy"}
    license: MIT
    metrics: []
    hub: null
    weights: {status: not-published, how: convert, instructions: "zoo pull toy-local --from DIR"}
    convert: {converter: toy-convert, options: {hidden: 4}}
""")
    return reg


def test_pull_list_load_cache_rm(local_hub, tmp_path, zoo_plugins, toy_env, monkeypatch):
    from zoo_core import load_model
    from zoo_core.registry import catalogue

    model, pin = _publish_toy(local_hub, tmp_path, zoo_plugins)
    reg = _registry(tmp_path, pin)
    env = dict(toy_env, ZOO_REGISTRY=str(reg))

    state = lambda: {r["id"]: r["state"] for r in json.loads(run_zoo(["list", "--json"], env=env).stdout)}
    assert state()["toy-demo"] == "absent"
    r = run_zoo(["pull", "toy-demo"], env=env)
    assert r.returncode == 0, r.stderr
    assert "verified 3 files" in r.stdout
    assert state()["toy-demo"] == "verified"

    monkeypatch.setenv("ZOO_REGISTRY", str(reg))
    catalogue.cache_clear()
    loaded = load_model("toy-demo")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])

    rows = json.loads(run_zoo(["cache", "ls", "--json"], env=env).stdout)
    assert [(r["id"], r["revision"], r["verified"]) for r in rows] == [("toy-demo", pin.revision, True)]
    r = run_zoo(["cache", "rm", "toy-demo", "--yes"], env=env)
    assert r.returncode == 0, r.stderr
    assert state()["toy-demo"] == "absent"
    catalogue.cache_clear()


def test_offline_pull_before_any_download_is_clear(local_hub, tmp_path, zoo_plugins, toy_env):
    _, pin = _publish_toy(local_hub, tmp_path, zoo_plugins)
    env = dict(toy_env, ZOO_REGISTRY=str(_registry(tmp_path, pin)), HF_HUB_OFFLINE="1")
    r = run_zoo(["pull", "toy-demo"], env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "offline" in r.stderr.lower()


def test_load_model_from_hf_hub_reference(local_hub, tmp_path, zoo_plugins):
    from zoo_core import load_model

    model, pin = _publish_toy(local_hub, tmp_path, zoo_plugins, repo="someone/toy")
    loaded = load_model(f"hf-hub:someone/toy@{pin.revision}")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_pull_from_source_runs_the_converter_into_the_local_store(tmp_path, zoo_plugins, toy_env):
    from safetensors.torch import save_file

    from zoo_core import build_model

    src = tmp_path / "original"
    src.mkdir()
    torch.manual_seed(2)
    original = build_model("toy-mlp", hidden=4)
    save_file(original.state_dict(), src / "weights.safetensors")
    reg = converter_registry(tmp_path)
    env = dict(toy_env, ZOO_REGISTRY=str(reg), ZOO_HOME=str(tmp_path / "home"))
    r = run_zoo(["load-check"], env=env)  # an unknown command is a usage error, not a crash
    assert r.returncode == 2
    r = run_zoo(["pull", "toy-local"], env=env)
    assert r.returncode == 1 and "zoo pull toy-local --from SOURCE" in r.stderr
    r = run_zoo(["pull", "toy-local", "--from", str(tmp_path / "missing")], env=env)
    assert r.returncode == 1 and "no weights.safetensors" in r.stderr
    assert not (tmp_path / "home" / "models" / "toy-local").exists()
    r = run_zoo(["pull", "toy-local", "--from", str(src)], env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["id"]: row for row in json.loads(run_zoo(["list", "--json"], env=env).stdout)}
    assert rows["toy-local"]["state"] == "local"
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "home" / "models" / "toy-local" / "model.safetensors")
    for k, v in original.state_dict().items():
        assert torch.equal(v, stored[k])


def test_push_publishes_a_folder_and_prints_its_pin(local_hub, tmp_path, zoo_plugins):
    from zoo_core import build_model, hub, load_model

    torch.manual_seed(3)
    model = build_model("toy-mlp")
    model.save_pretrained(tmp_path / "m")
    r = run_zoo(["push", str(tmp_path / "m"), "me/pushed", "-m", "first"], env={"HF_TOKEN": local_hub.token})
    assert r.returncode == 0, r.stderr
    commit = r.stdout.split(" at ")[1].split()[0]
    assert len(commit) == 40 and f'revision: {commit}' in r.stdout.replace("'", "")
    loaded = load_model(hub.pull(local_hub.pin("me/pushed", commit)))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    (tmp_path / "m" / "extra.bin").write_bytes(b"x")
    r = run_zoo(["push", str(tmp_path / "m"), "me/pushed"], env={"HF_TOKEN": local_hub.token})
    assert r.returncode == 1 and "pickle" in r.stderr


def _flip_a_bit_keeping_mtime(path: Path) -> None:
    real = path.resolve()
    st = real.stat()
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0x01
    real.write_bytes(bytes(data))
    os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_cache_verify_finds_a_flipped_bit_that_list_cannot_and_repairs_it(local_hub, tmp_path, zoo_plugins,
                                                                          toy_env):
    _, pin = _publish_toy(local_hub, tmp_path, zoo_plugins)
    env = dict(toy_env, ZOO_REGISTRY=str(_registry(tmp_path, pin)))
    state = lambda: {r["id"]: r["state"] for r in json.loads(run_zoo(["list", "--json"], env=env).stdout)}
    assert run_zoo(["pull", "toy-demo"], env=env).returncode == 0
    weights = local_hub.cache_dir / "models--zoo-test--toy" / "snapshots" / pin.revision / "model.safetensors"
    good = weights.read_bytes()
    _flip_a_bit_keeping_mtime(weights)
    assert state()["toy-demo"] == "verified"  # what `zoo list` rests on: size and mtime (its help says so)
    assert "re-hashes every byte" in run_zoo(["list"], env=env).stdout

    r = run_zoo(["cache", "verify", "toy-demo", "--no-repair", "--json"], env=env)
    assert r.returncode == 1
    [row] = json.loads(r.stdout)
    assert row["outcome"] == "corrupt" and row["files"]["model.safetensors"] == "corrupt"
    assert row["files"]["config.json"] == "ok"
    assert state()["toy-demo"] == "absent"  # the bad blob is gone, never loaded

    assert run_zoo(["pull", "toy-demo"], env=env).returncode == 0
    _flip_a_bit_keeping_mtime(weights)
    local_hub.clear_requests()
    r = run_zoo(["cache", "verify"], env=env)  # every cached model
    assert r.returncode == 0, r.stderr
    assert "toy-demo: repaired (model.safetensors)" in r.stdout
    assert weights.read_bytes() == good
    assert len(local_hub.downloads()) == 1 and local_hub.downloads("model.safetensors")  # only the bad file
    assert state()["toy-demo"] == "verified"
    r = run_zoo(["cache", "verify", "toy-demo"], env=env)
    assert r.returncode == 0 and "toy-demo: verified" in r.stdout


def test_verify_from_python_reports_local_models_as_unpinned(tmp_path, zoo_plugins, monkeypatch):
    import zoo_core
    from zoo_core.registry import catalogue

    monkeypatch.setenv("ZOO_REGISTRY", str(converter_registry(tmp_path)))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    catalogue.cache_clear()
    assert zoo_core.verify() == []
    from safetensors.torch import save_file

    from zoo_core import build_model

    (tmp_path / "original").mkdir()
    save_file(build_model("toy-mlp", hidden=4).state_dict(), tmp_path / "original" / "weights.safetensors")
    zoo_core.pull("toy-local", source=str(tmp_path / "original"))
    [result] = zoo_core.verify()
    assert (result.id, result.outcome) == ("toy-local", "local (no pin)")
    catalogue.cache_clear()


def test_pull_accepts_an_hf_hub_reference_like_load_model(local_hub, tmp_path, zoo_plugins, toy_env):
    _, pin = _publish_toy(local_hub, tmp_path, zoo_plugins, repo="someone/unlisted")
    r = run_zoo(["pull", f"hf-hub:someone/unlisted@{pin.revision}"], env=toy_env)
    assert r.returncode == 0, r.stderr
    folder = Path(r.stdout.strip().rsplit("-> ", 1)[1])
    assert folder.name == pin.revision and (folder / "model.safetensors").is_file()
    r = run_zoo(["pull", "hf-hub:someone/unlisted@main", "--from", "x"], env=toy_env)
    assert r.returncode == 1 and "nothing to convert" in r.stderr


def test_a_hub_that_never_answers_gives_one_clear_line_in_bounded_time(tmp_path, toy_env, zoo_plugins, local_hub):
    import socket
    import time

    _, pin = _publish_toy(local_hub, tmp_path, zoo_plugins)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    env = dict(toy_env, ZOO_REGISTRY=str(_registry(tmp_path, pin)), HF_ENDPOINT=f"http://127.0.0.1:{silent.getsockname()[1]}",
               HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    try:
        start = time.monotonic()
        r = run_zoo(["pull", "toy-demo"], env=env)
        took = time.monotonic() - start
    finally:
        silent.close()
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "could not download" in r.stderr and "HF_ENDPOINT" in r.stderr
    assert "retry" not in r.stderr.lower()
    assert took < 30


def test_cache_ls_labels_snapshots_of_a_repo_that_several_entries_share(local_hub, tmp_path, zoo_plugins, toy_env):
    _, pin1 = _publish_toy(local_hub, tmp_path / "a", zoo_plugins)
    _, pin2 = _publish_toy(local_hub, tmp_path / "b", zoo_plugins)  # a second commit of the same repo
    (tmp_path / "a").mkdir(exist_ok=True)
    (tmp_path / "b").mkdir(exist_ok=True)
    first = _registry(tmp_path / "a", pin1, "toy-old").read_text()
    second = _registry(tmp_path / "b", pin2, "toy-new").read_text().split("models:\n", 1)[1]
    reg = tmp_path / "shared.yaml"
    reg.write_text(first + second)
    env = dict(toy_env, ZOO_REGISTRY=str(reg))
    for name in ("toy-new", "toy-old"):
        assert run_zoo(["pull", name], env=env).returncode == 0
    stray = local_hub.publish("zoo-test/toy", {"config.json": b"{}", "model.safetensors": b"x"})
    assert run_zoo(["pull", f"hf-hub:zoo-test/toy@{stray}"], env=env).returncode == 0
    listed = json.loads(run_zoo(["cache", "ls", "--json"], env=env).stdout)
    rows = {(r["id"], r["revision"], r["pinned"]) for r in listed}
    assert rows == {("toy-old", pin1.revision, True), ("toy-new", pin2.revision, True),
                    ("toy-new, toy-old", stray, False)}
    lines = run_zoo(["cache", "ls"], env=env).stdout.splitlines()
    assert lines[0].split() == ["id", "size", "revision", "pinned", "path"] and len(lines) == 4
    assert len({line.index(" MB") for line in lines[1:]}) == 1  # padded: the columns line up
    assert {line.index("/") for line in lines[1:]} == {lines[0].index("path")}
