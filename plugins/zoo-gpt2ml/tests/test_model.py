"""The GPT2_ML module against a hand-written forward pass, the KV cache, the tied head and the limits."""

from __future__ import annotations

import math

import pytest
import torch

from zoo_core import ZooError
from zoo_gpt2ml.model import GPT2ML, GPT2MLConfig, num_parameters

TINY = dict(vocab_size=97, max_position_embeddings=32, hidden_size=48, num_hidden_layers=3,
            num_attention_heads=4, intermediate_size=96)


def make_model(seed: int = 0, **overrides) -> GPT2ML:
    torch.manual_seed(seed)
    model = GPT2ML.from_config({**TINY, **overrides}).eval()
    # Non-trivial LayerNorm parameters and biases, so that mixing up LN0/LN1 or dropping a bias shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def reference_forward(sd: dict, c: GPT2MLConfig, ids: torch.Tensor) -> torch.Tensor:
    """GPT2_ML written out from the TF code's equations with plain tensor ops (float64)."""
    sd = {k: v.double() for k, v in sd.items()}
    B, T = ids.shape
    H, nh = c.hidden_size, c.num_attention_heads
    hd = H // nh

    def layer_norm(x, prefix):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * sd[prefix + ".weight"] + sd[prefix + ".bias"]

    def dense(x, prefix):  # TF Dense with kernel [in, out] = our weight transposed
        return x @ sd[prefix + ".weight"].T + sd[prefix + ".bias"]

    h = layer_norm(sd["wte.weight"][ids] + sd["wpe.weight"][torch.arange(T)], "ln_embed")
    mask = torch.tril(torch.ones(T, T, dtype=torch.float64))
    for i in range(c.num_hidden_layers):
        p = f"h.{i}."
        Wq, Wk, Wv = sd[p + "attn.qkv.weight"].split(H, 0)
        bq, bk, bv = sd[p + "attn.qkv.bias"].split(H, 0)
        q = (h @ Wq.T + bq).view(B, T, nh, hd).permute(0, 2, 1, 3)
        k = (h @ Wk.T + bk).view(B, T, nh, hd).permute(0, 2, 1, 3)
        v = (h @ Wv.T + bv).view(B, T, nh, hd).permute(0, 2, 1, 3)
        scores = q @ k.transpose(-1, -2) / math.sqrt(hd)
        scores = scores * mask - 1e10 * (1 - mask)  # Grover's masking constant
        ctx = (torch.softmax(scores, -1) @ v).permute(0, 2, 1, 3).reshape(B, T, H)
        x = h + dense(ctx, p + "attn.proj")  # no LayerNorm before attention
        x_norm = layer_norm(x, p + "ln_0")
        inter = dense(x_norm, p + "mlp.fc")
        inter = 0.5 * inter * (1.0 + torch.erf(inter / math.sqrt(2.0)))  # exact GELU
        h = layer_norm(x + dense(inter, p + "mlp.proj"), p + "ln_1")  # residual on un-normalised x
    return h @ sd["wte.weight"].T  # tied head, no bias, no final LN


def test_forward_matches_hand_written_reference():
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 11))
    with torch.no_grad():
        ours = model(ids).double()
    ref = reference_forward(model.state_dict(), model.config, ids)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_state_dict_names_and_shapes_follow_the_contract():
    c = GPT2MLConfig()  # mega, built on meta: no memory
    with torch.device("meta"):
        model = GPT2ML(c)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    H, I, V = 1536, 6144, 8021
    expected = {"wte.weight": (V, H), "wpe.weight": (1024, H), "ln_embed.weight": (H,), "ln_embed.bias": (H,)}
    for i in range(48):
        p = f"h.{i}."
        expected.update({p + "attn.qkv.weight": (3 * H, H), p + "attn.qkv.bias": (3 * H,),
                         p + "attn.proj.weight": (H, H), p + "attn.proj.bias": (H,),
                         p + "ln_0.weight": (H,), p + "ln_0.bias": (H,),
                         p + "mlp.fc.weight": (I, H), p + "mlp.fc.bias": (I,),
                         p + "mlp.proj.weight": (H, I), p + "mlp.proj.bias": (H,),
                         p + "ln_1.weight": (H,), p + "ln_1.bias": (H,)})
    assert shapes == expected
    # The checkpoint's 772 model tensors, with each layer's 6 q/k/v kernels and biases fused into 2.
    assert len(shapes) == 772 - 48 * 4
    # The parameter count of the released 220k-step checkpoint.
    assert model.num_parameters() == num_parameters(c) == 1_373_809_152
    assert list(model.buffers()) == []


def test_head_is_tied_to_the_word_embedding():
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (1, 5))
    assert not any("head" in k for k in model.state_dict())
    with torch.no_grad():
        before = model(ids)
        model.wte.weight[7].add_(1.0)  # changes the head's row 7 as well as the input embedding
        after = model(ids)
    assert not torch.equal(before[..., 7], after[..., 7])
    model.tie_weights()  # must not break the tie (nothing to re-tie)
    assert model.num_parameters() == num_parameters(model.config)


def test_kv_cache_decoding_equals_full_forward():
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 20))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache(2, 20)
        pieces = [model(ids[:, :6], cache=cache), model(ids[:, 6:11], cache=cache)]  # prefill, then a chunk
        pieces += [model(ids[:, t:t + 1], cache=cache) for t in range(11, 20)]  # then one token at a time
    assert cache.length == 20
    torch.testing.assert_close(torch.cat(pieces, 1), full, rtol=1e-5, atol=1e-5)


def test_last_only_returns_the_last_position():
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(model(ids, last_only=True), model(ids)[:, -1:])


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_close_to_fp32(dtype):
    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (2, 12))
    with torch.no_grad():
        ref = model(ids)
        half = model.to(dtype)
        cache = half.new_cache(2, 12)
        out = torch.cat([half(ids[:, :8], cache=cache), half(ids[:, 8:], cache=cache)], 1)
    assert out.dtype == dtype and cache.keys[0].dtype == dtype
    assert torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_position_limit_is_a_clear_error():
    model = make_model()
    with pytest.raises(ZooError, match="exceeds max_position_embeddings=32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    cache = model.new_cache(1, 32)
    with torch.no_grad():
        model(torch.zeros(1, 30, dtype=torch.long), cache=cache)
        with pytest.raises(ZooError, match="30 cached"):
            model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    with pytest.raises(ZooError, match="max_position_embeddings"):
        model.new_cache(1, 33)


def test_init_is_truncated_normal_and_skipped_on_meta():
    torch.manual_seed(0)
    model = GPT2ML.from_config(dict(TINY))
    std = model.config.initializer_range
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(p) == 0, name
        elif ".ln" in name or name.startswith("ln"):
            assert torch.all(p == 1), name
        else:
            assert p.abs().max() <= 2 * std + 1e-7, name
            assert 0.5 * std < p.std() < std, name  # a ±2σ truncated normal has std ≈ 0.88σ
    with torch.device("meta"):
        meta = GPT2ML.from_config(dict(TINY))
    assert all(p.is_meta for p in meta.parameters())


def test_bad_config_is_a_clear_error():
    with pytest.raises(ZooError, match="not divisible"):
        GPT2MLConfig(hidden_size=50, num_attention_heads=4)


def test_save_and_load_folder_round_trip(tmp_path):
    from zoo_core import load_model

    model = make_model()
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m", dtype=torch.bfloat16)
    assert loaded.wte.weight.dtype == torch.bfloat16
    ids = torch.randint(0, TINY["vocab_size"], (1, 6))
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "m")(ids), model(ids))


def test_decode_layout_keeps_values_and_saves_contiguous(tmp_path):
    from zoo_core import load_model

    model = make_model()
    ids = torch.randint(0, TINY["vocab_size"], (1, 7))
    with torch.no_grad():
        before = model(ids)
        model.set_decode_layout()
        assert not model.h[0].mlp.fc.weight.is_contiguous()  # fp32 on CPU: column-major
        torch.testing.assert_close(model(ids), before, rtol=1e-5, atol=1e-5)
    assert all(t.is_contiguous() for t in model.state_dict().values())
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")  # weights memory-mapped from the file: re-laid out in their own pages
    loaded.set_decode_layout()
    assert not loaded.h[1].attn.qkv.weight.is_contiguous()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), before, rtol=1e-5, atol=1e-5)
        model.to(torch.bfloat16).set_decode_layout()  # bf16: back to row-major
    assert model.h[0].mlp.fc.weight.is_contiguous() and model.wte.weight.is_contiguous()
