"""The alias sampler draws exactly q ∝ count^0.75: its table, and a chi-square test of its draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo_nce.sampler import AliasSampler, unigram_sampler


def _zipf(n):
    return 1e6 / np.arange(1, n + 1) ** 1.1


@pytest.mark.parametrize("n", [1, 7, 1000, 200_000])
def test_table_represents_the_distribution_exactly(n):
    counts = _zipf(n)
    q = counts ** 0.75 / (counts ** 0.75).sum()
    sampler = unigram_sampler(counts)
    np.testing.assert_allclose(sampler.probabilities().numpy(), q, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sampler.log_q.exp().numpy(), q, rtol=1e-5)


def test_draw_frequencies_pass_a_chi_square_test():
    counts = _zipf(50)
    q = torch.tensor(counts ** 0.75 / (counts ** 0.75).sum(), dtype=torch.float64)
    draws = unigram_sampler(counts).sample(400_000, generator=torch.Generator().manual_seed(0))
    observed = torch.bincount(draws, minlength=50).double()
    expected = q * draws.numel()
    stat = ((observed - expected) ** 2 / expected).sum()
    p_value = torch.special.gammaincc(torch.tensor(49 / 2, dtype=torch.float64), stat / 2).item()
    assert p_value > 1e-3, (stat.item(), p_value)
    # and the test has power: plain unigram (exponent 1) draws are rejected
    q1 = torch.tensor(counts / counts.sum(), dtype=torch.float64) * draws.numel()
    stat1 = ((observed - q1) ** 2 / q1).sum()
    assert torch.special.gammaincc(torch.tensor(49 / 2, dtype=torch.float64), stat1 / 2).item() < 1e-10


def test_shapes_seeding_and_zero_weights():
    s = AliasSampler([0.0, 1.0, 0.0, 3.0])
    a = s.sample(64, 5, generator=torch.Generator().manual_seed(3))
    b = s.sample(64, 5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (64, 5) and a.dtype == torch.int64 and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {1, 3}  # classes of weight 0 are never drawn
    assert s.sample(7).shape == (7,)


@pytest.mark.parametrize("bad", [[], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="weights"):
        AliasSampler(bad)
