"""The GAN-QP losses and the baselines' on fixed tensors; what reaches G's gradient; how D is called."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from zoo_core import TrainConfig, Update, ZooError
from zoo_ganqp.model import GANQP
from zoo_images.gan import BatchNorm2d, LayerNorm2d
from zoo_ganqp.train import (
    GANQPStep,
    gradient_penalty,
    qp_critic_loss,
    qp_distance,
    qp_generator_loss,
    sgan_critic_loss,
    sgan_generator_loss,
    wgan_critic_loss,
)

TINY = {"img_size": 16, "channels": 1, "z_dim": 8, "max_channels": 16}

# Two 1x2x2 "images" per side, numbers chosen by hand.
X_R = torch.tensor([[[[1.0, -1.0], [0.5, 0.0]]], [[[0.0, 0.0], [0.0, 1.0]]]])
X_F = torch.tensor([[[[0.0, 1.0], [0.5, -1.0]]], [[[0.0, 0.5], [0.0, -1.0]]]])
# |diffs|: sample 0: 1, 2, 0, 1 ; sample 1: 0, 0.5, 0, 2
T_R = torch.tensor([2.0, -1.0])
T_F = torch.tensor([0.5, 1.0])  # Delta = 1.5, -2.0


def _step(loss="qp-l2", **extra):
    model = GANQP.from_config({**TINY, "critic_norm": "layer" if loss == "wgan-gp" else "batch"})
    return model, GANQPStep(model, TrainConfig(lr=None, batch_size=4, extra={"loss": loss, **extra}))


def test_l1_and_l2_distances_as_defined():
    assert qp_distance(X_R, X_F, "l1").tolist() == pytest.approx([4 / 4, 2.5 / 4])
    assert qp_distance(X_R, X_F, "l2").tolist() == pytest.approx([math.sqrt(6 / 4), math.sqrt(4.25 / 4)])
    with pytest.raises(ZooError):
        qp_distance(X_R, X_F, "l3")


@pytest.mark.parametrize("kind,d", [("l1", [1.0, 0.625]), ("l2", [math.sqrt(1.5), math.sqrt(1.0625)])])
def test_qp_critic_loss_equals_the_hand_computed_value(kind, d):
    loss = qp_critic_loss(T_R, T_F, qp_distance(X_R, X_F, kind), lam=10.0)
    # mean over the pairs of -Delta + Delta^2 / (2 * 10 * d)
    expect = ((-1.5 + 1.5 ** 2 / (20 * d[0])) + (2.0 + 2.0 ** 2 / (20 * d[1]))) / 2
    assert loss.item() == pytest.approx(expect, rel=1e-6)
    # the script's form: mean(-Delta + 0.5 * Delta^2 / (10 * d))
    delta, dn = T_R - T_F, 10 * qp_distance(X_R, X_F, kind)
    assert loss.item() == pytest.approx(torch.mean(-delta + 0.5 * delta ** 2 / dn).item(), rel=1e-6)


def test_qp_generator_loss_has_no_quadratic_term():
    assert qp_generator_loss(T_R, T_F).item() == pytest.approx(((2.0 - 0.5) + (-1.0 - 1.0)) / 2)


def test_wgan_gp_critic_loss_and_penalty_on_fixed_tensors():
    assert wgan_critic_loss(T_R, T_F).item() == pytest.approx(0.75 - 0.5)
    e = torch.tensor([0.25, 0.5]).view(2, 1, 1, 1)
    # a linear critic has gradient w everywhere: penalty (||w|| - 1)^2
    w = torch.tensor([1.0, 2.0, 2.0, 0.0]).view(1, 1, 2, 2)  # ||w|| = 3
    assert gradient_penalty(lambda x: (x * w).flatten(1).sum(1), X_R, X_F, e).item() == pytest.approx(4.0)
    # T(x) = sum x^2: gradient 2 x_hat, x_hat = e x_r + (1 - e) x_f
    x_hat = e * X_R + (1 - e) * X_F
    norms = (2 * x_hat).flatten(1).norm(dim=1)
    expect = ((norms - 1) ** 2).mean().item()
    assert gradient_penalty(lambda x: x.square().flatten(1).sum(1), X_R, X_F, e).item() == pytest.approx(expect)
    # and the penalty is differentiable in the critic's parameters (double backward)
    v = torch.ones(1, 1, 2, 2, requires_grad=True)
    gradient_penalty(lambda x: (x * v).square().flatten(1).sum(1), X_R, X_F, e).backward()
    assert v.grad is not None and torch.isfinite(v.grad).all()


def test_sgan_losses_on_fixed_tensors():
    sig = torch.sigmoid
    expect_d = -(torch.log(sig(T_R)).mean() + torch.log(1 - sig(T_F)).mean())
    assert sgan_critic_loss(T_R, T_F).item() == pytest.approx(expect_d.item(), rel=1e-6)
    assert sgan_generator_loss(T_F).item() == pytest.approx(-torch.log(sig(T_F)).mean().item(), rel=1e-6)


def test_updates_and_optimisers_per_loss():
    d, g = Update("d_loss", ("d",)), Update("g_loss", ("g",))
    _, qp = _step("qp-l1")
    assert qp.updates == (d, d, g)
    assert _step("wgan-gp")[1].updates == (d,) * 5 + (g,)
    assert _step("sgan")[1].updates == (d, g)
    assert _step("qp-l2", n_critic=3)[1].updates == (d, d, d, g)
    opts = qp.configure_optimizers()
    for name, part in (("d", qp.model.D), ("g", qp.model.G)):
        group = opts[name].param_groups[0]
        assert (group["lr"], group["betas"], group["eps"]) == (2e-4, (0.5, 0.999), 1e-7)
        assert {id(p) for p in group["params"]} == {id(p) for p in part.parameters()}
    model, wgan = _step("wgan-gp")
    group = wgan.configure_optimizers()["d"].param_groups[0]
    assert (group["lr"], group["betas"]) == (1e-4, (0.0, 0.9))
    # WGAN-GP's penalty is per sample: a batch-norm critic is refused, with the model setting that fixes it
    with pytest.raises(ZooError, match="without batch norm") as refused:
        GANQPStep(GANQP.from_config(TINY), TrainConfig(lr=None, batch_size=4, extra={"loss": "wgan-gp"}))
    assert refused.value.where == "--set loss=wgan-gp" and "--model-set critic_norm=layer" in refused.value.hint
    for norm in ("layer", "none"):
        model = GANQP.from_config({**TINY, "critic_norm": norm})
        GANQPStep(model, TrainConfig(lr=None, batch_size=4, extra={"loss": "wgan-gp"})).configure_optimizers()
        assert not any(isinstance(m, BatchNorm2d) for m in model.D.modules())
        assert any(isinstance(m, LayerNorm2d) for m in model.D.modules()) == (norm == "layer")
    with pytest.raises(ZooError):
        _step("lsgan")


def _batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 16, 16, generator=g) * 2 - 1, torch.zeros(n, dtype=torch.long))


@pytest.mark.parametrize("loss", ["qp-l1", "qp-l2"])
def test_generator_gradient_is_the_gradient_of_its_loss_alone(loss):
    torch.manual_seed(0)
    model, step = _step(loss)
    model.train()
    batch = _batch()
    torch.manual_seed(1)
    out = step.g_loss(model, batch)
    grads = torch.autograd.grad(out["loss"], list(model.G.parameters()))

    # by hand: the same z (same RNG state), mean(D(x_r) - D(x_f)), D called on each batch separately
    torch.manual_seed(1)
    z = torch.randn(4, TINY["z_dim"])
    x_f = model.G(z)
    hand = (model.D(batch[0]) - model.D(x_f)).mean()
    assert out["loss"].item() == pytest.approx(hand.item(), rel=1e-6)
    expect = torch.autograd.grad(hand, list(model.G.parameters()))
    for a, b in zip(grads, expect):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)

    # and it is not the gradient with the critic's quadratic term
    torch.manual_seed(1)
    z = torch.randn(4, TINY["z_dim"])
    x_f = model.G(z)
    t_r, t_f = model.D(batch[0]), model.D(x_f)
    with_quadratic = -qp_critic_loss(t_r, t_f, qp_distance(batch[0], x_f, loss[-2:]))
    other = torch.autograd.grad(with_quadratic, list(model.G.parameters()))
    assert any(not torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(grads, other))


@pytest.mark.parametrize("loss", ["qp-l2", "wgan-gp", "sgan"])
def test_critic_loss_never_reaches_the_generator(loss):
    torch.manual_seed(0)
    model, step = _step(loss)
    step.configure_optimizers()
    model.train()
    out = step.d_loss(model, _batch())
    out["loss"].backward()
    assert all(p.grad is None for p in model.G.parameters())
    assert all(p.grad is not None for p in model.D.parameters())


@pytest.mark.parametrize("loss", ["qp-l2", "wgan-gp", "sgan"])
def test_critic_step_loss_equals_the_hand_computed_loss(loss):
    torch.manual_seed(0)
    model, step = _step(loss)
    step.configure_optimizers()
    model.train()
    batch = _batch()
    torch.manual_seed(3)
    got = step.d_loss(model, batch)["loss"]
    torch.manual_seed(3)
    x_r = batch[0]
    with torch.no_grad():
        x_f = model.G(torch.randn(4, TINY["z_dim"]))
    t_r, t_f = model.D(x_r), model.D(x_f)
    if loss == "qp-l2":
        delta = t_r - t_f
        d = torch.sqrt(((x_r - x_f) ** 2).mean((1, 2, 3)))
        expect = torch.mean(-delta + delta ** 2 / (2 * 10 * d))
    elif loss == "wgan-gp":
        e = torch.rand(4, 1, 1, 1)
        expect = t_f.mean() - t_r.mean() + 10 * gradient_penalty(model.D, x_r, x_f, e)
    else:
        expect = F.softplus(-t_r).mean() + F.softplus(t_f).mean()
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)


def test_critic_is_called_separately_on_the_real_and_the_fake_batch_in_both_steps():
    torch.manual_seed(0)
    model, step = _step("qp-l2")
    model.train()
    calls = []
    model.D.register_forward_hook(lambda m, inputs, out: calls.append(inputs[0].shape[0]))
    step.d_loss(model, _batch())
    assert calls == [4, 4]
    calls.clear()
    step.g_loss(model, _batch())
    assert calls == [4, 4]


def test_settings_are_typed_with_defaults_in_one_place():
    _, step = _step()
    s = step.settings
    assert (s.loss, s.n_critic, s.qp_lambda, s.gp_lambda, s.compile) == ("qp-l2", None, 10.0, 10.0, False)
    assert (s.eval_samples, s.kid_subsets, s.fid_dataset, s.fid_split) == (10_000, 10, "mnist", "train")  # the metric's
    assert step.n_critic == 2  # unset: the loss's own
    for loss, extra, where in (("lsgan", {}, "--set loss=..."), ("qp-l2", {"n_critic": 0}, "--set n_critic=..."),
                               ("qp-l2", {"qp_lambda": "ten"}, "--set qp_lambda=..."),
                               ("qp-l2", {"adam_betas": [0.5]}, "--set adam_betas=..."),
                               ("qp-l2", {"eval_samples": 1.5}, "--set eval_samples=...")):
        with pytest.raises(ZooError) as refused:
            _step(loss, **extra)
        assert refused.value.where == where, (extra, refused.value)
    _, step = _step("qp-l1", adam_betas=[0.0, 0.9], adam_eps=1e-8)
    group = step.configure_optimizers()["g"].param_groups[0]
    assert (group["betas"], group["eps"], group["lr"]) == ((0.0, 0.9), 1e-8, 2e-4)
