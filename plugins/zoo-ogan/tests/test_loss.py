"""The combined loss and its stop-gradients, against a direct computation on fixed tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from zoo_ogan.model import OGAN
from zoo_ogan.train import correlation, ogan_loss


def test_correlation_is_pearson_per_sample():
    torch.manual_seed(0)
    a, b = torch.randn(7, 16, dtype=torch.float64), torch.randn(7, 16, dtype=torch.float64)
    b[0] = 3 * a[0] + 1  # perfectly correlated
    b[1] = -a[1]
    expect = torch.stack([torch.corrcoef(torch.stack([a[i], b[i]]))[0, 1] for i in range(7)])
    torch.testing.assert_close(correlation(a, b), expect)
    assert correlation(a, b)[0].item() == pytest.approx(1.0) and correlation(a, b)[1].item() == pytest.approx(-1.0)


class _LinearE(nn.Module):
    def __init__(self, pixels, z_dim):
        super().__init__()
        self.w = nn.Parameter(torch.randn(pixels, z_dim, dtype=torch.float64) * 0.3)

    def forward(self, x):
        return x.flatten(1) @ self.w


class _LinearG(nn.Module):
    def __init__(self, z_dim, side):
        super().__init__()
        self.side = side
        self.w = nn.Parameter(torch.randn(z_dim, side * side, dtype=torch.float64) * 0.3)

    def forward(self, z):
        return torch.tanh(z @ self.w).view(-1, 1, self.side, self.side)


@pytest.fixture
def fixed():
    torch.manual_seed(1)
    E, G = _LinearE(16, 6), _LinearG(6, 4)
    x_r = torch.rand(5, 1, 4, 4, dtype=torch.float64) * 2 - 1
    z = torch.randn(5, 6, dtype=torch.float64)
    return E, G, x_r, z


def test_loss_value_equals_the_formula(fixed):
    E, G, x_r, z = fixed
    out = ogan_loss(E, G, x_r, z, rho_weight=0.5, qp_weight=0.25)
    # the same quantities with numpy, from the weights
    we, wg = E.w.detach().numpy(), G.w.detach().numpy()
    xr, zz = x_r.numpy().reshape(5, -1), z.numpy()
    xf = np.tanh(zz @ wg)
    er, ef = xr @ we, xf @ we
    t1 = er.mean(1) - ef.mean(1)
    rho = np.array([np.corrcoef(zz[i], ef[i])[0, 1] for i in range(5)])
    qp = 0.25 * t1 ** 2 / ((xr - xf) ** 2).mean(1)
    expect = np.mean(t1 + 0.0 - 0.5 * rho) + np.mean(qp)
    assert out["loss"].item() == pytest.approx(expect, rel=1e-12)
    np.testing.assert_allclose(out["t1"].detach().numpy(), t1, rtol=1e-12)
    np.testing.assert_allclose(out["t2"].detach().numpy(), 0.0, atol=1e-15)
    np.testing.assert_allclose(out["rho"].detach().numpy(), rho, rtol=1e-10)
    np.testing.assert_allclose(out["qp"].detach().numpy(), qp, rtol=1e-12)


def _grads(term, E, G):
    ge = torch.autograd.grad(term, E.w, retain_graph=True, allow_unused=True)[0]
    gg = torch.autograd.grad(term, G.w, retain_graph=True, allow_unused=True)[0]
    zero = lambda g, like: torch.zeros_like(like) if g is None else g
    return zero(ge, E.w), zero(gg, G.w)


def test_gradient_routing(fixed):
    E, G, x_r, z = fixed
    out = ogan_loss(E, G, x_r, z)
    routes = {name: _grads(out[name].mean(), E, G) for name in ("t1", "t2", "rho", "qp")}
    ge, gg = routes["t1"]
    assert ge.abs().max() > 1e-3 and gg.abs().max() == 0  # t1 reaches E only
    ge, gg = routes["t2"]
    assert ge.abs().max() < 1e-14 and gg.abs().max() > 1e-3  # t2 reaches G only (E's part cancels)
    ge, gg = routes["rho"]
    assert ge.abs().max() > 1e-3 and gg.abs().max() > 1e-3  # rho reaches both
    ge, gg = routes["qp"]
    assert ge.abs().max() > 1e-4 and gg.abs().max() == 0  # the qp term reaches E only


def test_total_gradient_equals_the_papers_two_losses(fixed):
    """E minimises t1 + qp - 0.5 rho with G fixed; G minimises avg(E(G(z))) - 0.5 rho with E fixed."""
    E, G, x_r, z = fixed
    ge, gg = _grads(ogan_loss(E, G, x_r, z)["loss"], E, G)
    x_f = G(z).detach()
    e_f = E(x_f)
    t1 = E(x_r).mean(1) - e_f.mean(1)
    e_loss = (t1 - 0.5 * correlation(z, e_f)).mean() + (0.25 * t1 ** 2 / (x_r - x_f).square().mean((1, 2, 3))).mean()
    expect_e = torch.autograd.grad(e_loss, E.w)[0]
    w = E.w.detach()
    e_of_g = G(z).flatten(1) @ w
    g_loss = (e_of_g.mean(1) - 0.5 * correlation(z, e_of_g)).mean()
    expect_g = torch.autograd.grad(g_loss, G.w)[0]
    torch.testing.assert_close(ge, expect_e, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gg, expect_g, rtol=1e-10, atol=1e-12)


def test_routing_holds_with_the_real_nets_and_batch_norm():
    torch.manual_seed(0)
    model = OGAN.from_config({"img_size": 16, "channels": 1, "z_dim": 8, "max_channels": 16}).train()
    x_r, z = torch.rand(6, 1, 16, 16) * 2 - 1, torch.randn(6, 8)
    out = ogan_loss(model.E, model.G, x_r, z)
    e_params, g_params = list(model.E.parameters()), list(model.G.parameters())

    def norm(term, params):
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
        return max(0.0 if g is None else float(g.abs().max()) for g in grads)

    assert norm(out["t1"].mean(), g_params) == 0 and norm(out["t1"].mean(), e_params) > 0
    assert norm(out["qp"].mean(), g_params) == 0
    assert norm(out["t2"].mean(), e_params) < 1e-6 < norm(out["t2"].mean(), g_params)
