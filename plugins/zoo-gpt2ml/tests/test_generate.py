"""Nucleus sampling (Grover vs Hugging Face semantics), PAD never sampled, SEP stops, seeds, batches, cache."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoo_core import ZooError
from zoo_gpt2ml.generate import generate, top_p_filter
from zoo_gpt2ml.model import GPT2ML, GPT2MLConfig

TINY = dict(vocab_size=120, max_position_embeddings=48, hidden_size=32, num_hidden_layers=2,
            num_attention_heads=4, intermediate_size=64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT2ML.from_config(dict(TINY)).eval()
    with torch.no_grad():  # a sharper distribution than the 0.014-σ init gives
        m.wte.weight.mul_(8)
    return m


class FixedDistribution(nn.Module):
    """A language model that always predicts the same next-token distribution (for testing the sampler)."""

    def __init__(self, probs):
        super().__init__()
        self.config = GPT2MLConfig(vocab_size=len(probs), max_position_embeddings=512, hidden_size=8,
                                   num_hidden_layers=1, num_attention_heads=1, intermediate_size=8)
        self.wte = nn.Embedding(len(probs), 8)
        self.log_probs = torch.tensor(probs, dtype=torch.float32).log()
        self.calls = []

    def new_cache(self, batch_size, max_length):
        return None

    def forward(self, ids, cache=None, last_only=False):
        self.calls.append(ids.shape)
        return self.log_probs.expand(ids.shape[0], 1, -1).clone()


# Sorted probabilities 0.5, 0.3, 0.15, 0.05 (on shuffled ids), p = 0.7: the inclusive cumulative sums are
# 0.5, 0.8, 0.95, 1.0, so Grover keeps only the top token; HF also keeps the token that crosses 0.7.
CRAFTED = [0.0, 0.15, 0.5, 0.05, 0.3]


def test_top_p_filter_grover_drops_the_crossing_token():
    logits = torch.tensor(CRAFTED).log()[None]
    kept = torch.isfinite(top_p_filter(logits, 0.7, "grover"))[0]
    assert kept.tolist() == [False, False, True, False, False]
    kept = torch.isfinite(top_p_filter(logits, 0.7, "hf"))[0]
    assert kept.tolist() == [False, False, True, False, True]
    kept = torch.isfinite(top_p_filter(logits, 0.9, "grover"))[0]
    assert kept.tolist() == [False, False, True, False, True]
    # p below the top token's probability still keeps the top token
    assert torch.isfinite(top_p_filter(logits, 0.1, "grover"))[0].sum() == 1
    assert torch.isfinite(top_p_filter(logits, 1.0, "grover"))[0].tolist() == [False, True, True, True, True]


def test_sampling_follows_the_top_p_semantics():
    lm = FixedDistribution(CRAFTED)
    grover = generate(lm, [3], 200, top_p=0.7, top_p_mode="grover", seed=0, eos_token_id=None)[0, 1:]
    assert set(grover.tolist()) == {2}
    hf = generate(lm, [3], 400, top_p=0.7, top_p_mode="hf", seed=0, eos_token_id=None)[0, 1:]
    counts = torch.bincount(hf, minlength=5)
    assert set(hf.tolist()) == {2, 4}
    # renormalised over the nucleus: 0.5 / 0.8 and 0.3 / 0.8
    assert abs(counts[2].item() / 400 - 0.625) < 0.1


def test_pad_is_never_sampled_even_when_most_likely():
    lm = FixedDistribution([0.9, 0.04, 0.03, 0.03])
    out = generate(lm, [1, 2], 300, top_p=1.0, seed=0, eos_token_id=None)
    assert 0 not in out[0, 2:].tolist()
    assert out.shape == (1, 302)


def test_stops_after_sep_and_respects_min_new_tokens():
    probs = [0.0] * 110
    probs[102], probs[5], probs[6] = 0.6, 0.2, 0.2
    lm = FixedDistribution(probs)
    out = generate(lm, [5], 50, top_p=1.0, seed=1, eos_token_id=102)
    new = out[0, 1:].tolist()
    assert new[-1] == 102 and 102 not in new[:-1] and len(new) < 50
    out = generate(lm, [5], 50, top_p=1.0, seed=1, eos_token_id=102, min_new_tokens=10)
    new = out[0, 1:].tolist()
    assert 102 not in new[:10] and len(new) >= 11


def test_batch_rows_finish_independently_and_are_padded():
    probs = [0.0] * 110
    probs[102], probs[5] = 0.3, 0.7
    lm = FixedDistribution(probs)
    streamed = []
    out = generate(lm, [5], 40, top_p=1.0, seed=3, num_samples=4, streamer=lambda t: streamed.append(t.clone()))
    assert out.shape[0] == 4
    for row in out[:, 1:].tolist():
        if 102 in row:
            end = row.index(102)
            assert all(t == 0 for t in row[end + 1:])  # padded after [SEP]
    steps = torch.stack(streamed, 1)  # [B, steps]
    assert steps.shape[1] == out.shape[1] - 1
    finished_marks = steps == -1
    assert torch.equal(torch.where(finished_marks, 0, steps), out[:, 1:])


def test_seed_makes_sampling_reproducible(model):
    a = model.generate([5, 6, 7], 20, seed=123, eos_token_id=None)
    b = model.generate([5, 6, 7], 20, seed=123, eos_token_id=None)
    c = model.generate([5, 6, 7], 20, seed=124, eos_token_id=None)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a[0, :3].tolist() == [5, 6, 7]


def test_num_samples_gives_distinct_rows_with_the_same_prompt(model):
    out = model.generate(torch.tensor([[9, 10]]), 16, seed=0, num_samples=3, eos_token_id=None)
    assert out.shape == (3, 18)
    assert torch.all(out[:, :2] == torch.tensor([9, 10]))
    assert len({tuple(r) for r in out.tolist()}) == 3


def test_cached_decoding_matches_greedy_full_recompute(model):
    # top_p tiny: Grover's rule keeps only the most likely token, i.e. greedy decoding.
    out = model.generate([11, 12, 13], 15, top_p=1e-6, seed=0, eos_token_id=None)
    ids = torch.tensor([[11, 12, 13]])
    with torch.no_grad():
        for _ in range(15):
            logits = model(ids)[:, -1]
            logits[:, 0] = -math.inf  # [PAD] is never generated
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, ids)


def test_bfloat16_generation_runs(model):
    half = GPT2ML.from_config(dict(TINY)).eval()
    half.load_state_dict(model.state_dict())
    half.to(torch.bfloat16)
    out = half.generate([1, 2], 10, seed=0, eos_token_id=None)
    assert out.shape == (1, 12)


def test_bad_arguments_are_clear_errors(model):
    with pytest.raises(ZooError, match="exceeds the model's 48 positions"):
        model.generate([1] * 40, 10)
    with pytest.raises(ZooError, match="temperature"):
        model.generate([1], 2, temperature=0)
    with pytest.raises(ZooError, match="top_p_mode"):
        model.generate([1], 2, top_p_mode="nucleus")
    with pytest.raises(ZooError, match="non-empty"):
        model.generate([], 2)


def test_temperature_sharpens_the_distribution():
    lm = FixedDistribution([0.0, 0.6, 0.4])
    cold = generate(lm, [1], 300, top_p=1.0, temperature=0.2, seed=0, eos_token_id=None)[0, 1:]
    warm = generate(lm, [1], 300, top_p=1.0, temperature=1.0, seed=0, eos_token_id=None)[0, 1:]
    assert (cold == 1).sum() > (warm == 1).sum() + 50


def test_model_still_trains_after_generating():
    torch.manual_seed(0)
    m = GPT2ML.from_config(dict(TINY))
    m.generate([3, 4], 4, seed=0)  # fp32 on CPU: re-lays the weights out
    ids = torch.randint(1, TINY["vocab_size"], (2, 6))
    loss = torch.nn.functional.cross_entropy(m(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    assert m.h[0].mlp.fc.weight.grad is not None and m.wte.weight.grad.shape == m.wte.weight.shape
