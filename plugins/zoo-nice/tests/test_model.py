"""The flow is exactly invertible, its log-determinant is right, and log_prob is prior + log|det|."""

from __future__ import annotations

import math

import pytest
import torch

from zoo_nice.model import NICE, NICEConfig

SMALL = dict(dim=6, num_couplings=4, hidden=8, hidden_layers=2)
CONFIGS = {
    "paper": NICEConfig(**SMALL),
    "su": NICEConfig.su(**SMALL),
}


def _model(cfg, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    model = NICE(cfg).to(dtype)
    with torch.no_grad():  # a non-trivial scaling, so the log-det is not 0
        model.s.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("name", CONFIGS)
def test_inverse_undoes_forward(name):
    cfg = NICEConfig(**{**CONFIGS[name].__dict__, "dim": 784, "hidden": 64})
    model = _model(cfg, dtype=torch.float32)
    x = torch.rand(16, 784)
    with torch.no_grad():
        h, _ = model(x)
        x_back = model.inverse(h)
    assert not torch.allclose(h, x, atol=1e-3)  # the flow does something
    assert (x_back - x).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", CONFIGS)
def test_log_det_matches_autograd_jacobian(name):
    model = _model(CONFIGS[name])
    x = torch.rand(3, 6, dtype=torch.float64)
    _, log_det = model(x)
    for i in range(3):
        jac = torch.autograd.functional.jacobian(lambda v: model(v.unsqueeze(0))[0].squeeze(0), x[i])  # (6, 6)
        expected = torch.linalg.slogdet(jac).logabsdet
        assert torch.allclose(log_det[i], expected, atol=1e-10), (log_det[i].item(), expected.item())


def test_coupling_layers_are_volume_preserving_and_not_identity():
    model = _model(CONFIGS["paper"])
    layer = model.couplings[1]
    x = torch.rand(6, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0)).squeeze(0), x)
    assert torch.allclose(torch.linalg.det(jac), torch.tensor(1.0, dtype=torch.float64), atol=1e-10)
    assert not torch.allclose(jac, torch.eye(6, dtype=torch.float64))


def _shifted_inputs(layer, dim=6):
    """Input coordinates a coupling layer only shifts: their Jacobian column is one-hot with a 1."""
    x = torch.rand(dim, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.unsqueeze(0)).squeeze(0), x)  # (out, in)
    return [d for d in range(dim) if (jac[:, d] != 0).sum() == 1 and jac[:, d].abs().max() == 1]


@pytest.mark.parametrize("name, expected", [("paper", [[1, 3, 5], [0, 2, 4]]), ("su", [[0, 2, 4], [1, 3, 5]])])
def test_partitions_alternate(name, expected):
    """Paper: layer 0 shifts the odd coordinates, layer 1 the even; Su (reversal first): the other way round."""
    model = _model(CONFIGS[name])
    for layer in model.couplings:
        with torch.no_grad():  # keep Su's ReLU output layer active, so m really depends on x_I1
            layer.m[-2 if name == "su" else -1].bias.fill_(1.0)
    assert _shifted_inputs(model.couplings[0]) == expected[0]
    # layer 1 sees layer 0's output, which Su's variant leaves reversed
    first = model.couplings[0]
    order = list(range(6))[::-1] if name == "su" else list(range(6))
    shifted_1 = sorted(order[d] for d in _shifted_inputs(model.couplings[1]))
    assert shifted_1 == expected[1], (first, shifted_1)


@pytest.mark.parametrize("prior", ["logistic", "gaussian"])
def test_log_prob_is_prior_plus_log_det(prior):
    cfg = NICEConfig(**SMALL, prior=prior)
    model = _model(cfg)
    x = torch.rand(5, 6, dtype=torch.float64)
    h, log_det = model(x)
    if prior == "gaussian":
        base = torch.distributions.Normal(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
    else:  # standard logistic = logit of a uniform
        uniform = torch.distributions.Uniform(torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64))
        base = torch.distributions.TransformedDistribution(
            uniform, [torch.distributions.transforms.SigmoidTransform().inv])
    expected = base.log_prob(h).sum(-1) + model.s.sum()
    assert torch.allclose(model.log_prob(x), expected, atol=1e-10)
    assert torch.allclose(log_det, model.s.sum().expand(5))


@pytest.mark.parametrize("prior", ["logistic", "gaussian"])
def test_prior_density_integrates_to_one(prior):
    model = _model(NICEConfig(dim=2, hidden=4, hidden_layers=1, prior=prior))
    grid = torch.linspace(-40, 40, 200001, dtype=torch.float64)
    h = torch.stack([grid, torch.zeros_like(grid)], -1)
    # the prior factorises: p(h1) = p(h1, 0) / p(0), and log p(0, 0) = 2 log p(0)
    log_p0 = model.prior_log_prob(torch.zeros(1, 2, dtype=torch.float64)) / 2
    density = (model.prior_log_prob(h) - log_p0).exp()
    assert math.isclose(torch.trapezoid(density, grid).item(), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("prior", ["logistic", "gaussian"])
def test_sample_is_inverse_of_prior_draws(prior):
    model = _model(NICEConfig(**SMALL, prior=prior))
    g = torch.Generator().manual_seed(3)
    x = model.sample(4000, temperature=0.5, generator=g)
    assert x.shape == (4000, 6) and torch.isfinite(x).all()
    h, _ = model(x)
    # the latent of a sample at temperature T is a prior draw scaled by T
    std = 0.5 * (math.pi / math.sqrt(3) if prior == "logistic" else 1.0)
    assert abs(h.std().item() - std) < 0.05 * std
    again = model.sample(4000, temperature=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(x, again)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="even"):
        NICEConfig(dim=7)
    with pytest.raises(ValueError, match="prior"):
        NICEConfig(prior="laplace")


def test_save_and_load_round_trip(tmp_path):
    from zoo_core import load_model

    model = _model(CONFIGS["su"], dtype=torch.float32)
    model.save_pretrained(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    x = torch.rand(4, 6)
    assert loaded.config == model.config
    assert torch.equal(loaded.log_prob(x), model.log_prob(x))
