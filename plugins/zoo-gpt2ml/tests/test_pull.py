"""`zoo pull gpt2-ml`: from a user's TensorFlow checkpoint, and from the Hub once a repo is published.

The download of the official release files is tested in test_fetch.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from zoo_core import load_model, registry
from zoo_core.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
CKPT = FIXTURES / "clue-h16" / "model.ckpt-220000"


@pytest.fixture
def fresh_catalogue():
    registry.catalogue.cache_clear()
    yield
    registry.catalogue.cache_clear()


def _logits(model):
    ref = load_file(FIXTURES / "clue-h16" / "reference.safetensors")
    with torch.no_grad():
        return model(ref["input_ids"]), ref["logits"]


def test_pull_from_checkpoint_fills_the_local_store(tmp_path, monkeypatch, fresh_catalogue):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    before = runner.invoke(cli, ["list", "gpt2-ml", "--json"])
    assert '"state": "not published"' in before.output
    result = runner.invoke(cli, ["pull", "gpt2-ml", "--from", str(CKPT), "--option", "num_heads=2"])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(cli, ["list", "gpt2-ml", "--json"])
    assert '"state": "local"' in listed.output
    ours, theirs = _logits(load_model("gpt2-ml"))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_plain_pull_fetches_a_published_repo(local_hub, tmp_path, monkeypatch, fresh_catalogue):
    from zoo_gpt2ml.convert import convert

    folder = convert(CKPT, tmp_path / "converted", num_heads=2, progress=False)
    commit = local_hub.publish("zoo/gpt2-ml", folder)
    pin = local_hub.pin("zoo/gpt2-ml", commit)
    # The shipped registry with the gpt2-ml entry as it will read once its Hub repo exists.
    data = yaml.safe_load(registry.MAIN_REGISTRY.read_text())
    entry = next(m for m in data["models"] if m["id"] == "gpt2-ml")
    entry["hub"] = {"repo_id": pin.repo_id, "revision": pin.revision,
                    "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in pin.files]}
    published = tmp_path / "registry.yaml"
    published.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    monkeypatch.setattr(registry, "MAIN_REGISTRY", published)

    result = CliRunner().invoke(cli, ["pull", "gpt2-ml"])
    assert result.exit_code == 0, result.output
    assert f"verified {len(pin.files)} files" in result.output
    assert {p.path for p in pin.files} >= {"config.json", "vocab.txt", "README.md"}
    ours, theirs = _logits(load_model("gpt2-ml"))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)
