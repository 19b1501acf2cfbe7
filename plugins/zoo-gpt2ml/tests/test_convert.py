"""The streaming converter: name map, skipped slots, vocab variants, dtypes, shards, atomicity, CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors import safe_open
from safetensors.torch import load_file

from zoo_core import IntegrityError, ZooError, load_model
from zoo_gpt2ml import convert as conv
from zoo_gpt2ml.convert import convert, convert_checkpoint
from zoo_gpt2ml.cli import convert_command
from zoo_gpt2ml.tf_bundle import TFBundle
from zoo_gpt2ml.vocab import resolve_vocab

FIXTURES = Path(__file__).parent / "fixtures"
CLUE = FIXTURES / "clue-h16" / "model.ckpt-220000"
LEGACY = FIXTURES / "legacy-h8" / "model.ckpt-100000"


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


@pytest.fixture(scope="module")
def clue_fp32(tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "clue-fp32"
    return convert_checkpoint(CLUE, out, num_heads=2, progress=False)


def test_maps_every_tensor_and_skips_slots(clue_fp32):
    s = clue_fp32
    assert (s.mapped, s.written, s.skipped_slots, s.skipped_other) == (36, 28, 50, ["global_step"])
    assert s.global_step == 220000
    files = sorted(p.name for p in s.out_dir.iterdir())
    assert files == ["README.md", "config.json", "model.safetensors", "vocab.txt"]
    config = json.loads((s.out_dir / "config.json").read_text())
    assert config == {"architecture": "gpt2-ml", "vocab_size": 8021, "max_position_embeddings": 16,
                      "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                      "layer_norm_eps": 1e-5, "initializer_range": 0.014142135623731, "pad_token_id": 0,
                      "eos_token_id": 102}
    w = weights(s.out_dir)
    tf = TFBundle(CLUE)
    t = lambda name: torch.from_numpy(tf.read(name).copy())
    assert torch.equal(w["wte.weight"], t("newslm/embeddings/word_embed"))
    assert torch.equal(w["wpe.weight"], t("newslm/embeddings/pos_embed"))
    assert torch.equal(w["ln_embed.weight"], t("newslm/embeddings/LayerNorm_embed_norm/gamma"))
    assert torch.equal(w["ln_embed.bias"], t("newslm/embeddings/LayerNorm_embed_norm/beta"))
    for i in range(2):
        p = f"newslm/layer{i:02d}/"
        assert torch.equal(w[f"h.{i}.attn.qkv.weight"],
                           torch.cat([t(p + f"{x}_layer/kernel").T for x in ("query", "key", "value")]))
        assert torch.equal(w[f"h.{i}.attn.qkv.bias"],
                           torch.cat([t(p + f"{x}_layer/bias") for x in ("query", "key", "value")]))
        assert torch.equal(w[f"h.{i}.attn.proj.weight"], t(p + "context_projection_layer/kernel").T)
        assert torch.equal(w[f"h.{i}.attn.proj.bias"], t(p + "context_projection_layer/bias"))
        assert torch.equal(w[f"h.{i}.mlp.fc.weight"], t(p + "intermediate/kernel").T)
        assert w[f"h.{i}.mlp.fc.weight"].shape == (64, 16)
        assert torch.equal(w[f"h.{i}.mlp.fc.bias"], t(p + "intermediate/bias"))
        assert torch.equal(w[f"h.{i}.mlp.proj.weight"], t(p + "output/kernel").T)
        assert torch.equal(w[f"h.{i}.mlp.proj.bias"], t(p + "output/bias"))
        for ln, tf_ln in (("ln_0", "LayerNorm_mlp_ln0"), ("ln_1", "LayerNorm_mlp_ln1")):
            assert torch.equal(w[f"h.{i}.{ln}.weight"], t(p + tf_ln + "/gamma"))
            assert torch.equal(w[f"h.{i}.{ln}.bias"], t(p + tf_ln + "/beta"))
    assert len(w) == 28  # nothing else: no head (tied), no slots


def test_output_loads_as_the_model(clue_fp32):
    model = load_model(clue_fp32.out_dir)
    assert type(model).__name__ == "GPT2ML"
    assert set(model.state_dict()) == set(weights(clue_fp32.out_dir))
    logits = model(torch.tensor([[101, 2769, 4263]]))
    assert logits.shape == (1, 3, 8021)


def test_card_records_source_hash_licence_and_dtype(clue_fp32):
    card = (clue_fp32.out_dir / "README.md").read_text()
    digest = hashlib.sha256(Path(f"{CLUE}.data-00000-of-00001").read_bytes()).hexdigest()
    assert clue_fp32.data_sha256 == {"model.ckpt-220000.data-00000-of-00001": digest}
    assert digest in card and "model.ckpt-220000" in card
    assert "license: apache-2.0" in card and "academic research" in card
    assert "dtype **float32**" in card and "220000" in card
    assert "matches neither official release" in card  # the fixture is not the published file
    with safe_open(clue_fp32.out_dir / "model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt", "architecture": "gpt2-ml"}


def test_official_hash_is_recognised(tmp_path, monkeypatch):
    digest = hashlib.sha256(Path(f"{CLUE}.data-00000-of-00001").read_bytes()).hexdigest()
    monkeypatch.setitem(conv.OFFICIAL_SHA256, digest, "official model.ckpt-220000 (test)")
    s = convert_checkpoint(CLUE, tmp_path / "out", num_heads=2, progress=False)
    assert s.official == "official model.ckpt-220000 (test)"
    assert "This matches the official model.ckpt-220000 (test)." in (tmp_path / "out" / "README.md").read_text()


def test_legacy_checkpoint_with_bert_vocab(tmp_path):
    s = convert_checkpoint(LEGACY, tmp_path / "legacy", vocab="bert", num_heads=2, sha256=False, progress=False)
    config = json.loads((s.out_dir / "config.json").read_text())
    assert config["vocab_size"] == 21130 and config["hidden_size"] == 8
    assert (s.out_dir / "vocab.txt").read_bytes() == resolve_vocab("bert").read_bytes()
    assert s.vocab_tokens == 21128 and s.data_sha256 == {}
    card = (s.out_dir / "README.md").read_text()
    assert "21130 rows for the 21128-token BERT vocab" in card and "not hashed" in card
    assert weights(s.out_dir)["wte.weight"].shape == (21130, 8)


def test_wrong_vocab_is_refused_before_writing(tmp_path):
    with pytest.raises(ZooError, match="vocab has 8021 tokens but the checkpoint's embedding has 21130 rows") as exc:
        convert_checkpoint(LEGACY, tmp_path / "x", vocab="clue", num_heads=2, progress=False)
    assert "--vocab bert" in str(exc.value)
    assert list(tmp_path.iterdir()) == []
    custom = tmp_path / "my-vocab.txt"
    custom.write_text("\n".join(f"t{i}" for i in range(8021)) + "\n")
    s = convert_checkpoint(CLUE, tmp_path / "y", vocab=str(custom), num_heads=2, progress=False)
    assert (s.out_dir / "vocab.txt").read_text() == custom.read_text()


@pytest.mark.parametrize("dtype,torch_dtype", [("bfloat16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_outputs(tmp_path, clue_fp32, dtype, torch_dtype):
    s = convert_checkpoint(CLUE, tmp_path / dtype, dtype=dtype, num_heads=2, progress=False)
    w16, w32 = weights(s.out_dir), weights(clue_fp32.out_dir)
    assert set(w16) == set(w32)
    for name, t in w16.items():
        assert t.dtype == torch_dtype
        assert torch.equal(t, w32[name].to(torch_dtype)), name  # round-to-nearest-even, as torch casts
    size = (s.out_dir / "model.safetensors").stat().st_size
    assert size < 0.55 * (clue_fp32.out_dir / "model.safetensors").stat().st_size
    model = load_model(s.out_dir)
    assert model.wte.weight.dtype == torch_dtype


def test_sharded_output_with_hf_index(tmp_path, clue_fp32):
    s = convert_checkpoint(CLUE, tmp_path / "sharded", max_shard_size="100KB", num_heads=2, progress=False)
    index = json.loads((s.out_dir / "model.safetensors.index.json").read_text())
    shards = sorted(p.name for p in s.out_dir.glob("*.safetensors"))
    assert len(shards) >= 3 and shards == s.shards
    assert shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert set(index["weight_map"].values()) == set(shards)
    w = weights(s.out_dir)
    assert set(index["weight_map"]) == set(w)
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in w.values())
    for shard in shards[:-1]:  # each shard but the last is filled to at most the limit
        assert (s.out_dir / shard).stat().st_size <= 100_000 + 4096 or len(load_file(s.out_dir / shard)) == 1
    ref = weights(clue_fp32.out_dir)
    assert all(torch.equal(w[k], ref[k]) for k in ref)
    assert set(load_model(s.out_dir).state_dict()) == set(ref)


# -- atomicity ---------------------------------------------------------------------------

def copy_fixture(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "clue-h16", tmp_path / "ckpt")
    return tmp_path / "ckpt" / CLUE.name


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_corrupt_late_tensor_leaves_previous_output_untouched(tmp_path):
    prefix = copy_fixture(tmp_path)
    b = TFBundle(prefix)
    late = [e for e in b.file_order() if e.name.startswith("newslm/layer01/")][-1]  # among the last read
    data = Path(f"{prefix}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[late.offset + 5] ^= 0xFF
    data.write_bytes(bytes(raw))
    out = tmp_path / "out" / "model"
    out.mkdir(parents=True)
    (out / "keep.txt").write_text("previous conversion")
    with pytest.raises(IntegrityError, match=late.name):
        convert(prefix, out, num_heads=2, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert leftovers(out.parent) == []


def test_interrupt_mid_conversion_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = conv.Assembler.add

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(conv.Assembler, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        convert(CLUE, tmp_path / "model", num_heads=2, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_converted_folder_gets_the_umask_permissions(tmp_path, umask, dir_mode, file_mode):
    import os

    old = os.umask(umask)
    try:
        out = convert(CLUE, tmp_path / "model", num_heads=2, progress=False)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == dir_mode  # not the 0700 of a bare temporary folder
    for f in out.iterdir():
        assert f.stat().st_mode & 0o777 == file_mode, f.name
    assert leftovers(tmp_path) == []


def test_existing_output_only_replaced_when_allowed(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(ZooError, match="already exists"):
        convert_checkpoint(CLUE, out, num_heads=2, progress=False, overwrite=False)
    convert_checkpoint(CLUE, out, num_heads=2, progress=False)  # the library default replaces it atomically
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()
    assert leftovers(tmp_path) == []


# -- planning errors (entries edited in memory) -------------------------------------------

def test_unknown_missing_and_misshapen_tensors():
    b = TFBundle(CLUE)
    model, slots, other = conv.classify(b)
    config = conv.infer_config(model, num_heads=2)
    b.entries["newslm/layer00/output/kernel/Adam"] = b.entries["global_step"]
    b.entries["beta1_power"] = b.entries["global_step"]
    with pytest.raises(ZooError, match="1 tensor\\(s\\) the GPT2_ML converter does not know, e.g. 'beta1_power'"):
        conv.classify(b)
    del b.entries["beta1_power"]
    with pytest.raises(ZooError, match="newslm tensor\\(s\\) that GPT2_ML does not have.*output/kernel/Adam"):
        conv.plan(b, conv.classify(b)[0], config, "float32", 10**9)
    del b.entries["newslm/layer00/output/kernel/Adam"]
    gone = dict(model)
    del gone["newslm/layer01/LayerNorm_mlp_ln1/beta"]
    with pytest.raises(ZooError, match="missing from the checkpoint, e.g. 'newslm/layer01/LayerNorm_mlp_ln1/beta'"):
        conv.plan(b, gone, config, "float32", 10**9)
    with pytest.raises(ZooError,
                       match="'newslm/layer00/intermediate/kernel' has shape \\[16, 64\\], expected \\[16, 32"):
        conv.plan(b, model, dict(config, intermediate_size=32), "float32", 10**9)


def test_heads_inferred_from_64_dim_heads():
    b = TFBundle(CLUE)
    model = conv.classify(b)[0]
    with pytest.raises(ZooError, match="(?s)hidden size 16 is not a multiple of 64.*--heads"):
        conv.infer_config(model)
    fake = {n: e.__class__(**{**e.__dict__, "shape": tuple(1536 if d == 16 else d for d in e.shape)})
            for n, e in model.items()}
    assert conv.infer_config(fake)["num_attention_heads"] == 24
    with pytest.raises(ZooError, match="5 heads do not divide hidden size 16"):
        conv.infer_config(model, num_heads=5)


def test_not_a_gpt2ml_checkpoint():
    b = TFBundle(CLUE)
    b.entries = {"bert/embeddings/word_embeddings": b.entries["newslm/embeddings/word_embed"],
                 "global_step": b.entries["global_step"]}
    with pytest.raises(ZooError, match="no newslm/... tensors: it is not a GPT2_ML \\(Grover\\) checkpoint"):
        conv.classify(b)


# -- command line ------------------------------------------------------------------------

def zoo_convert(*args):
    """``zoo convert gpt2-ml ARGS`` through the core's command group (which prints a ZooError and exits 1)."""
    from zoo_core.cli import cli

    return CliRunner().invoke(cli, ["convert", "gpt2-ml", *map(str, args)])


def test_cli_converts_and_reports(tmp_path):
    result = zoo_convert(CLUE.parent, tmp_path / "m", "--heads", "2", "--dtype", "bf16", "--quiet")
    assert result.exit_code == 0, result.output
    assert "36 mapped into 28; skipped 50 Adafactor slots and global_step" in result.output
    assert "bfloat16" in result.output
    again = zoo_convert(CLUE, tmp_path / "m", "--heads", "2", "--quiet")
    assert again.exit_code == 1 and "Error: the output folder already exists" in again.output
    assert "next:" in again.output and "--force" in again.output
    bad = zoo_convert(tmp_path / "nope", tmp_path / "n")
    assert bad.exit_code == 1 and "Error:" in bad.output and "no checkpoint index" in bad.output
    assert "Traceback" not in bad.output


def test_command_raises_zoo_errors_not_click_exceptions(tmp_path):
    result = CliRunner().invoke(convert_command, [str(tmp_path / "nope"), str(tmp_path / "n")])
    assert isinstance(result.exception, ZooError) and result.exception.hint


def test_cli_sigterm_mid_conversion_leaves_nothing(tmp_path, monkeypatch):
    import os
    import signal

    calls = []
    real = conv.Assembler.add

    def terminated(*args):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` would, while the shard is half written
        return real(*args)

    monkeypatch.setattr(conv.Assembler, "add", terminated)
    before = signal.getsignal(signal.SIGTERM)
    result = zoo_convert(CLUE, tmp_path / "m", "--heads", "2", "--quiet")
    assert result.exit_code == 128 + signal.SIGTERM and len(calls) == 5
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before


def test_cli_module_imports_without_torch():
    code = "import sys, zoo_gpt2ml.cli; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert proc.returncode == 0, proc.stderr


def test_card_records_the_index_hash_too(clue_fp32):
    digest = hashlib.sha256(Path(f"{CLUE}.index").read_bytes()).hexdigest()
    assert clue_fp32.index_sha256 == {"model.ckpt-220000.index": digest}
    assert digest in (clue_fp32.out_dir / "README.md").read_text()


def test_an_official_data_file_with_another_index_is_refused(tmp_path, monkeypatch):
    data = hashlib.sha256(Path(f"{CLUE}.data-00000-of-00001").read_bytes()).hexdigest()
    index = hashlib.sha256(Path(f"{CLUE}.index").read_bytes()).hexdigest()
    monkeypatch.setitem(conv.OFFICIAL_SHA256, data, "official model.ckpt-220000 (test)")
    monkeypatch.setitem(conv.OFFICIAL_INDEX_SHA256, data, "f" * 64)  # as if the fixture's .index were edited
    with pytest.raises(IntegrityError, match="is not the .index of the official") as err:
        convert_checkpoint(CLUE, tmp_path / "out", num_heads=2, progress=False)
    assert index in str(err.value) and "f" * 64 in str(err.value)
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(conv.OFFICIAL_INDEX_SHA256, data, index)
    assert convert_checkpoint(CLUE, tmp_path / "out", num_heads=2, progress=False).official
