"""Weights shipped inside an installed package (a catalogue entry's ``package`` block): listed as verified,
pulled as "already there", loaded by id, covered by ``zoo cache verify``, refused when damaged."""

import os

import pytest
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.errors import IntegrityError, RegistryError, UnsafeFileError, ZooError


@pytest.fixture
def catalogue_file(monkeypatch):
    from zoo_core.registry import catalogue

    def use(path):
        monkeypatch.setenv("ZOO_REGISTRY", str(path))
        catalogue.cache_clear()

    yield use
    catalogue.cache_clear()


def _entry(module: str, files, *, path: str = "weights/toy", extra: str = "") -> str:
    listed = "".join(f"\n        - {{path: {f['path']}, sha256: {f['sha256']}, size: {f['size']}}}" for f in files)
    return f"""version: 1
models:
  - id: toy-shipped
    architecture: toy-mlp
    plugin: toy
    task: regression
    summary: weights that ship inside a package
    links: {{source: "https://example.org/toy"}}
    license: MIT
    metrics: []
    hub: null{extra}
    package:
      module: {module}
      path: {path}
      files:{listed}
"""


@pytest.fixture
def shipped(tmp_path, monkeypatch, zoo_plugins, catalogue_file):
    """A package ``toyship`` on sys.path holding a toy model folder, and a catalogue entry pinning it."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    site = tmp_path / "site"
    folder = site / "toyship" / "weights" / "toy"
    folder.mkdir(parents=True)
    (site / "toyship" / "__init__.py").write_text("raise RuntimeError('finding the weights must not import me')\n")
    model = zoo_core.build_model("toy-mlp", hidden=4)
    model.save_pretrained(folder)
    files = [{"path": p.name, "sha256": zoo_core.sha256_file(p), "size": p.stat().st_size}
             for p in sorted(folder.iterdir())]
    reg = tmp_path / "reg.yaml"
    reg.write_text(_entry("toyship", files))
    monkeypatch.syspath_prepend(str(site))
    catalogue_file(reg)
    return model, folder, files


def test_shipped_weights_are_verified_pulled_loaded_and_verified_again(shipped):
    model, folder, _ = shipped
    assert zoo_core.model_state("toy-shipped") == "verified"
    assert zoo_core.pull("toy-shipped") == folder
    loaded = zoo_core.load_model("toy-shipped")
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    (v,) = [v for v in zoo_core.verify() if v.id == "toy-shipped"]
    assert v.outcome == "verified" and set(v.files.values()) == {"ok"}
    assert [c for c in zoo_core.cached() if c.id == "toy-shipped"] == []  # not a cache: nothing to remove


def test_damaged_shipped_weights_are_refused_and_left_in_place(shipped):
    _, folder, _ = shipped
    assert zoo_core.model_state("toy-shipped") == "verified"  # hashed once, then vouched for by size and mtime
    target = folder / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    st = target.stat()
    target.write_bytes(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert zoo_core.model_state("toy-shipped") == "corrupt"
    with pytest.raises(IntegrityError, match="model.safetensors \\(corrupt\\)") as err:
        zoo_core.load_model("toy-shipped")
    assert "reinstall" in err.value.hint
    (v,) = zoo_core.verify("toy-shipped")
    assert v.outcome == "corrupt" and v.files["model.safetensors"] == "corrupt" and target.exists()
    target.unlink()
    assert zoo_core.model_state("toy-shipped") == "corrupt"
    with pytest.raises(IntegrityError, match="model.safetensors \\(absent\\)"):
        zoo_core.pull("toy-shipped")


def test_cache_verify_rehashes_what_the_marker_vouches_for(shipped):
    """A change that keeps size and mtime fools the marker (as it does for the Hub cache), not ``verify``."""
    _, folder, _ = shipped
    assert zoo_core.model_state("toy-shipped") == "verified"
    target = folder / "config.json"
    st = target.stat()
    data = bytearray(target.read_bytes())
    data[-1] = ord(" ") if data[-1] != ord(" ") else ord("\n")
    with open(target, "r+b") as f:  # same inode, same size
        f.write(bytes(data))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert zoo_core.model_state("toy-shipped") == "verified"
    (v,) = zoo_core.verify("toy-shipped")
    assert v.outcome == "corrupt"


def test_a_package_that_is_not_installed(shipped, tmp_path, catalogue_file):
    _, _, files = shipped
    reg = tmp_path / "absent.yaml"
    reg.write_text(_entry("no_such_package_here", files))
    catalogue_file(reg)
    assert zoo_core.model_state("toy-shipped") == "absent"
    with pytest.raises(ZooError, match="not installed"):
        zoo_core.load_model("toy-shipped")
    assert [v for v in zoo_core.verify() if v.id == "toy-shipped"] == []


def test_zoo_pull_and_info_say_the_weights_ship_with_the_package(shipped):
    from zoo_core.cli import cli

    _, folder, _ = shipped
    r = CliRunner().invoke(cli, ["pull", "toy-shipped"])
    assert r.exit_code == 0, r.output
    assert "ships with the installed package toyship: already there, verified 3 files" in r.output
    assert str(folder) in r.output
    r = CliRunner().invoke(cli, ["info", "toy-shipped"])
    assert "ship with the package toyship (weights/toy, 3 files" in r.output and "state: verified" in r.output
    r = CliRunner().invoke(cli, ["cache", "verify"])
    assert r.exit_code == 0 and "toy-shipped: verified" in r.output


def test_the_schema_of_the_package_block(shipped, tmp_path, catalogue_file):
    _, _, files = shipped
    from zoo_core.registry import parse_registry

    ok = parse_registry(_entry("toyship", files), "t.yaml")
    assert ok[0].package.module == "toyship" and ok[0].to_json()["package"]["path"] == "weights/toy"
    with pytest.raises(UnsafeFileError, match="escapes"):
        parse_registry(_entry("toyship", files, path="../elsewhere"), "t.yaml")
    with pytest.raises(UnsafeFileError, match="escapes"):
        parse_registry(_entry("toyship", [{**files[0], "path": "../x.json"}]), "t.yaml")
    with pytest.raises(UnsafeFileError, match="pickle"):
        parse_registry(_entry("toyship", [{**files[0], "path": "model.bin"}]), "t.yaml")
    with pytest.raises(RegistryError, match="package"):
        parse_registry(_entry("not a module", files), "t.yaml")
    both = _entry("toyship", files).replace("hub: null", "hub: {repo_id: a/b, revision: " + "0" * 40 + ", files: "
                                            f"[{{path: x, sha256: {'0' * 64}, size: 1}}]}}")
    with pytest.raises(RegistryError):
        parse_registry(both, "t.yaml")
    neither = _entry("toyship", files).split("    package:")[0]
    with pytest.raises(RegistryError, match="weights"):
        parse_registry(neither, "t.yaml")
