"""Each loss equals its equation computed by hand; NCE's optimum is the normalised density, γ → log Z."""

from __future__ import annotations

import math

import pytest
import torch

from zoo_nce.losses import negative_sampling_loss, nce_loss, sampled_softmax_loss
from zoo_nce.sampler import AliasSampler


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


POS = torch.tensor([1.5, -0.3], dtype=torch.float64)  # (B=2,)
NOISE = torch.tensor([[0.2, -1.0, 2.0], [0.7, 0.1, -0.4]], dtype=torch.float64)  # (B, k=3)
LOGQ_POS = torch.tensor([-2.0, -1.2], dtype=torch.float64)
LOGQ_NOISE = torch.tensor([[-1.0, -3.0, -0.5], [-2.2, -0.9, -1.7]], dtype=torch.float64)


def test_nce_loss_is_equation_3_by_hand():
    gamma, k = 0.8, 3
    expected = []
    for b in range(2):
        d = POS[b].item() - gamma - math.log(k) - LOGQ_POS[b].item()
        total = -math.log(_sig(d))
        for j in range(3):
            dj = NOISE[b, j].item() - gamma - math.log(k) - LOGQ_NOISE[b, j].item()
            total -= math.log(1 - _sig(dj))
        expected.append(total)
    got = nce_loss(POS, NOISE, LOGQ_POS, LOGQ_NOISE, log_z=gamma, reduction="none")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))
    assert nce_loss(POS, NOISE, LOGQ_POS, LOGQ_NOISE, log_z=gamma).item() == pytest.approx(sum(expected) / 2)


def test_shared_noise_equals_the_same_noise_repeated_per_example():
    shared, shared_q = NOISE[0], LOGQ_NOISE[0]  # (k,)
    repeated, repeated_q = shared.expand(2, -1), shared_q.expand(2, -1)
    torch.testing.assert_close(nce_loss(POS, shared, LOGQ_POS, shared_q, log_z=0.3),
                               nce_loss(POS, repeated, LOGQ_POS, repeated_q, log_z=0.3))
    torch.testing.assert_close(sampled_softmax_loss(POS, shared, LOGQ_POS, shared_q),
                               sampled_softmax_loss(POS, repeated, LOGQ_POS, repeated_q))
    torch.testing.assert_close(negative_sampling_loss(POS, shared), negative_sampling_loss(POS, repeated))


def test_negative_sampling_is_sgns_by_hand():
    expected = [-math.log(_sig(POS[b].item())) - sum(math.log(1 - _sig(NOISE[b, j].item())) for j in range(3))
                for b in range(2)]
    torch.testing.assert_close(negative_sampling_loss(POS, NOISE, reduction="none"),
                               torch.tensor(expected, dtype=torch.float64))
    # NCE with γ = 0 and log(k q) = 0 is negative sampling
    zero_offset = torch.full_like(LOGQ_NOISE, -math.log(3))
    torch.testing.assert_close(nce_loss(POS, NOISE, -math.log(3), zero_offset, reduction="sum"),
                               negative_sampling_loss(POS, NOISE, reduction="sum"))


def test_sampled_softmax_is_corrected_cross_entropy_by_hand():
    hits = torch.tensor([[False, True, False], [False, False, False]])
    expected = []
    for b in range(2):
        logits = [POS[b].item() - LOGQ_POS[b].item()]
        logits += [NOISE[b, j].item() - LOGQ_NOISE[b, j].item() for j in range(3) if not hits[b, j]]
        expected.append(-(logits[0] - math.log(sum(math.exp(v) for v in logits))))
    got = sampled_softmax_loss(POS, NOISE, LOGQ_POS, LOGQ_NOISE, accidental_hits=hits, reduction="none")
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64))


def test_nce_learned_normaliser_converges_to_log_z():
    """Fixed unnormalised scores G = log p + log Z: the learned γ alone must find log Z."""
    torch.manual_seed(0)
    p = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04], dtype=torch.float64)
    log_z_true = 2.5
    scores = p.log() + log_z_true  # G(x), (n,)
    noise = AliasSampler(torch.ones(6))  # uniform q
    gamma = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([gamma], lr=0.05)
    gen = torch.Generator().manual_seed(0)
    k = 4
    for _ in range(400):
        x = torch.multinomial(p, 2048, replacement=True, generator=gen)  # data
        y = noise.sample(2048, k, generator=gen)  # noise, (B, k)
        loss = nce_loss(scores[x], scores[y], noise.log_q[x].double(), noise.log_q[y].double(), log_z=gamma)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert gamma.item() == pytest.approx(log_z_true, abs=0.05)


def test_nce_optimum_is_the_normalised_distribution():
    """Free scores θ and γ: exp(θ − γ) becomes p itself (sums to 1), under a non-uniform noise q."""
    torch.manual_seed(0)
    p = torch.tensor([0.5, 0.2, 0.12, 0.08, 0.06, 0.04], dtype=torch.float64)
    q = AliasSampler(torch.tensor([1.0, 1.0, 2.0, 2.0, 3.0, 3.0]))
    theta = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    gamma = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta, gamma], lr=0.05)
    gen = torch.Generator().manual_seed(1)
    log_q = q.log_q.double()
    for _ in range(600):
        x = torch.multinomial(p, 4096, replacement=True, generator=gen)
        y = q.sample(4096, 5, generator=gen)
        loss = nce_loss(theta[x], theta[y], log_q[x], log_q[y], log_z=gamma)
        opt.zero_grad()
        loss.backward()
        opt.step()
    fitted = (theta - gamma).exp().detach()
    assert fitted.sum().item() == pytest.approx(1.0, abs=0.03)
    torch.testing.assert_close(fitted, p, atol=0.02, rtol=0)


def test_bad_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        negative_sampling_loss(POS, NOISE, reduction="avg")
