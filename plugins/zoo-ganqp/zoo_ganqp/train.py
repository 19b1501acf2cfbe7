"""GAN-QP's training step for the core's Trainer, and the baselines the paper compares with.

GAN-QP (Su 2018, eq. 11 and the scripts): with Delta = T(x_r) - T(x_f), the i-th real paired with
the i-th fake, and d(x_r, x_f) the per-sample L1 or L2 distance,

    critic:     min_T  E[ -Delta + Delta^2 / (2 lambda d(x_r, x_f)) ]      lambda = 10
    generator:  min_G  E[ T(x_r) - T(x_f) ]                                (no quadratic term)

    d_L1 = mean_pixels |x_r - x_f|          d_L2 = sqrt(mean_pixels (x_r - x_f)^2)   (RMS)

Each iteration: 2 critic updates, each with a fresh real batch (the core gives every Update its
own batch) and fresh z, then 1 generator update; Adam(2e-4, betas (0.5, 0.999), eps 1e-7) for
both. D is called separately on the real and on the fake batch (each gets its own batch-norm
statistics), in both steps; the critic's fakes are made under no_grad.

Baselines with the same G and D, picked with ``--set loss=...``:

- ``wgan-gp`` (Gulrajani et al. 2017): critic E[T(x_f)] - E[T(x_r)] + 10 E[(||grad T(x_hat)|| - 1)^2]
  on x_hat = e x_r + (1 - e) x_f, e ~ U[0, 1] per sample; generator -E[T(x_f)]. The authors'
  settings: 5 critic updates per generator update, Adam(1e-4, betas (0, 0.9)); no batch norm in the
  critic (the penalty is per sample): the model is built with ``--model-set critic_norm=layer`` (or
  ``none``), and the step refuses a batch-norm critic.
- ``sgan`` (Goodfellow et al. 2014, non-saturating): critic BCE-with-logits (real 1, fake 0);
  generator -log sigmoid(T(x_f)); 1 critic update per generator update, Adam(2e-4, betas (0.5, 0.999)).

Evaluation: LeNet-FID and KID of ``eval_samples`` generated images (zoo-images' extractors round
them to 8 bits, as the scripts do before FID) against the real training split's features, with a
fixed seed in eval mode, so the figure is deterministic; a grid of ``grid_samples`` images of a fixed z is written to
``OUT/samples/step-NNNNNNNN.png`` after each validation.

The step's settings are :class:`GANQPSettings` (the metric's are zoo-images' ScoreSettings, which it
extends); ``--lr`` sets both learning rates. D's normalisation and the memory layout are the
model's (``critic_norm``, ``channels_last`` in GANQPConfig), fixed when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from zoo_core import TrainStep, Update, ZooError, model_card, shard_draw
from zoo_images.metrics import GeneratorScore, ScoreSettings

LOSSES = ("qp-l1", "qp-l2", "wgan-gp", "sgan")


@dataclass(frozen=True)
class LossSettings:
    """A loss's optimisation settings, from the paper that defines it."""

    n_critic: int  # critic updates per generator update
    lr: float
    betas: tuple[float, float]
    eps: float
    batch_norm_critic: bool  # whether the loss allows batch norm in D (WGAN-GP's per-sample penalty does not)
    source: str


LOSS_SETTINGS = {
    "qp-l1": LossSettings(2, 2e-4, (0.5, 0.999), 1e-7, True, "GAN-QP scripts (Keras Adam eps 1e-7)"),
    "qp-l2": LossSettings(2, 2e-4, (0.5, 0.999), 1e-7, True, "GAN-QP scripts (Keras Adam eps 1e-7)"),
    "wgan-gp": LossSettings(5, 1e-4, (0.0, 0.9), 1e-8, False, "Gulrajani et al. 2017, Algorithm 1 and code"),
    "sgan": LossSettings(1, 2e-4, (0.5, 0.999), 1e-8, True, "DCGAN (Radford et al. 2016) settings"),
}

# the model config a loss needs (compare.py builds its nets with it): WGAN-GP's critic has no batch norm
LOSS_MODEL_CONFIG = {"wgan-gp": {"critic_norm": "layer"}}


@dataclass
class GANQPSettings(ScoreSettings):
    """The GAN-QP step's settings (recipe defaults, then ``zoo train --set KEY=VALUE``), and the metric's.

    ``n_critic``, ``adam_betas`` and ``adam_eps`` left unset take the loss's own (LOSS_SETTINGS), as an
    unset ``--lr`` does.
    """

    loss: str = "qp-l2"  # qp-l1, qp-l2 (the scripts' main file, gan_qp_l2.py), wgan-gp, sgan
    n_critic: int | None = None  # critic updates per generator update
    qp_lambda: float = 10.0
    gp_lambda: float = 10.0
    adam_betas: list[float] | None = None
    adam_eps: float | None = None
    grid_samples: int = 64  # the fixed-z grid written after each validation
    grid_seed: int = 1
    # benchmarks/bench_throughput.py, 32 px on 2 CPU threads: torch.compile 2.23 it/s against 2.45 for
    # channels_last (the model's default layout, GANQPConfig) and 2.39 for contiguous: off
    compile: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ZooError(f"unknown loss {self.loss!r}", where="--set loss=...",
                           hint=f"use one of {', '.join(LOSSES)}")
        if self.n_critic is not None and self.n_critic < 1:
            raise ZooError(f"n_critic must be at least 1, got {self.n_critic}", where="--set n_critic=...")
        if self.adam_betas is not None and (len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas)):
            raise ZooError(f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}",
                           where="--set adam_betas=...", hint="e.g. --set adam_betas='[0.5, 0.999]'")


# --- the losses, as functions of scores and images (tested on fixed tensors) -----------------------------


def qp_distance(x_r: torch.Tensor, x_f: torch.Tensor, kind: str) -> torch.Tensor:
    """d(x_r, x_f) per sample, (B,): ``"l1"`` mean |x_r - x_f|, ``"l2"`` sqrt(mean (x_r - x_f)^2)."""
    diff = (x_r - x_f).flatten(1)  # (B, C*H*W)
    if kind == "l1":
        return diff.abs().mean(1)
    if kind == "l2":
        return diff.square().mean(1).sqrt()
    raise ZooError(f"unknown GAN-QP distance {kind!r}", hint="use l1 or l2")


def qp_critic_loss(t_r: torch.Tensor, t_f: torch.Tensor, d: torch.Tensor, lam: float = 10.0) -> torch.Tensor:
    """mean(-Delta + Delta^2 / (2 lambda d)), Delta = T(x_r) - T(x_f); all (B,)."""
    delta = t_r - t_f
    return (-delta + delta.square() / (2.0 * lam * d)).mean()


def qp_generator_loss(t_r: torch.Tensor, t_f: torch.Tensor) -> torch.Tensor:
    """mean(T(x_r) - T(x_f)): the quadratic term never enters G's loss."""
    return (t_r - t_f).mean()


def gradient_penalty(critic, x_r: torch.Tensor, x_f: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's E[(||grad_x T(x_hat)||_2 - 1)^2], x_hat = e x_r + (1 - e) x_f, e (B, 1, 1, 1)."""
    x_hat = (e * x_r + (1.0 - e) * x_f).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def wgan_critic_loss(t_r: torch.Tensor, t_f: torch.Tensor) -> torch.Tensor:
    """E[T(x_f)] - E[T(x_r)] (add gp_lambda * gradient_penalty)."""
    return t_f.mean() - t_r.mean()


def sgan_critic_loss(t_r: torch.Tensor, t_f: torch.Tensor) -> torch.Tensor:
    """BCE with logits: -log sigmoid(T(x_r)) - log(1 - sigmoid(T(x_f)))."""
    return (F.binary_cross_entropy_with_logits(t_r, torch.ones_like(t_r))
            + F.binary_cross_entropy_with_logits(t_f, torch.zeros_like(t_f)))


def sgan_generator_loss(t_f: torch.Tensor) -> torch.Tensor:
    """Non-saturating: mean(-log sigmoid(T(x_f)))."""
    return F.softplus(-t_f).mean()


# --- the step --------------------------------------------------------------------------------------------


class GANQPStep(TrainStep):
    """GAN-QP (or a baseline, ``loss``) on the core's Trainer; monitors LeNet-FID (lower is better)."""

    Settings = GANQPSettings
    monitor = "fid"
    monitor_mode = "min"

    def __init__(self, model, config):
        super().__init__(model, config)
        s = self.settings
        self.loss = s.loss
        self.loss_settings = LOSS_SETTINGS[self.loss]
        if not self.loss_settings.batch_norm_critic and model.config.critic_norm == "batch":
            raise ZooError(f"loss {self.loss} needs a critic without batch norm (its gradient penalty is per "
                           "sample; batch norm mixes the samples of a batch), but the model's critic_norm is batch",
                           where=f"--set loss={self.loss}",
                           hint="build the model with --model-set critic_norm=layer (the WGAN-GP authors' "
                                "choice) or critic_norm=none")
        self.n_critic = s.n_critic or self.loss_settings.n_critic
        # An instance attribute: the core reads step.updates after building the step.
        self.updates = (Update("d_loss", ("d",)),) * self.n_critic + (Update("g_loss", ("g",)),)
        self.score = GeneratorScore(s, channels=model.config.channels, batch_size=config.eval_batch_size,
                                    dataset_options=config.extra.get("dataset_options"))
        self._nets_cache: dict = {}
        self._grid = None  # the last evaluation's fixed-z samples, written in after_validation

    # -- optimisers ----------------------------------------------------------------------------------

    def configure_optimizers(self):
        model, s, own = self.model, self.settings, self.loss_settings
        lr = self.config.lr if self.config.lr is not None else own.lr
        betas = tuple(s.adam_betas or own.betas)
        eps = s.adam_eps if s.adam_eps is not None else own.eps
        return {"d": torch.optim.Adam(model.D.parameters(), lr=lr, betas=betas, eps=eps),
                "g": torch.optim.Adam(model.G.parameters(), lr=lr, betas=betas, eps=eps)}

    # -- helpers --------------------------------------------------------------------------------------

    def _nets(self, model):
        """(G, D) as called in the losses: the model's own, or torch.compile'd copies (``compile``)."""
        if not self.settings.compile:
            return model.G, model.D
        key = id(model)
        if key not in self._nets_cache:
            self._nets_cache = {key: (torch.compile(model.G), torch.compile(model.D))}
        return self._nets_cache[key]

    def _images(self, batch) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, C, S, S) in [-1, 1]
        return x.contiguous(memory_format=torch.channels_last) if self.model.config.channels_last else x

    def _noise(self, model, x: torch.Tensor) -> torch.Tensor:
        # every process draws the global batch's z and keeps its rows: N processes train like one
        return shard_draw(torch.randn, x.shape[0], model.config.z_dim, device=x.device)  # (B, z_dim), N(0, I)

    # -- the losses -----------------------------------------------------------------------------------

    def d_loss(self, model, batch):
        G, D = self._nets(model)
        x_r = self._images(batch)  # (B, C, S, S)
        with torch.no_grad():  # the critic's loss must not reach G
            x_f = G(self._noise(model, x_r))  # (B, C, S, S)
        t_r, t_f = D(x_r), D(x_f)  # (B,), (B,): two calls, two sets of batch statistics
        out = {"d_real": t_r.detach().mean(), "d_fake": t_f.detach().mean()}
        if self.loss in ("qp-l1", "qp-l2"):
            d = qp_distance(x_r, x_f, self.loss[-2:])  # (B,)
            lam = self.settings.qp_lambda
            loss = qp_critic_loss(t_r, t_f, d, lam)
            out["qp_ratio"] = ((t_r - t_f).detach().abs() / (lam * d)).mean()  # optimum <= 1
        elif self.loss == "wgan-gp":
            e = shard_draw(torch.rand, x_r.shape[0], 1, 1, 1, device=x_r.device)  # (B, 1, 1, 1)
            gp = gradient_penalty(model.D, x_r, x_f, e)  # double backward: the uncompiled critic
            loss = wgan_critic_loss(t_r, t_f) + self.settings.gp_lambda * gp
            out["gp"] = gp.detach()
        else:
            loss = sgan_critic_loss(t_r, t_f)
        out["loss"] = loss
        return out

    def g_loss(self, model, batch):
        G, D = self._nets(model)
        x_r = self._images(batch)
        x_f = G(self._noise(model, x_r))  # fresh z
        if self.loss in ("qp-l1", "qp-l2"):
            with torch.no_grad():  # T(x_r) does not depend on G: its value, without a graph through D
                t_r = D(x_r)
            loss = qp_generator_loss(t_r, D(x_f))
        elif self.loss == "wgan-gp":
            loss = -D(x_f).mean()
        else:
            loss = sgan_generator_loss(D(x_f))
        return {"loss": loss}

    # -- evaluation -----------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self, model, loader):
        """LeNet-FID and KID of ``eval_samples`` fixed-seed samples; also keeps a fixed-z grid for after_validation."""
        device = next(model.parameters()).device
        metrics = self.score(model, device)
        grid_gen = torch.Generator().manual_seed(self.settings.grid_seed)
        self._grid = model.sample(self.settings.grid_samples, generator=grid_gen, device=device).float().cpu()
        return metrics

    def after_validation(self, control, metrics):
        """Write the validation's sample grid (fixed z) as OUT/samples/step-NNNNNNNN.png (rank 0)."""
        if self._grid is None:
            return
        from zoo_images.pictures import save_grid

        grid, self._grid = self._grid, None
        save_grid(grid, Path(self.config.out) / "samples" / f"step-{control.state.step:08d}.png")

    def model_card(self, model, metrics, state):
        data = self.settings.fid_dataset
        protocol = self.score.protocol()
        recorded = {name: {"value": round(float(metrics[name]), 6), "dataset": data, "protocol": protocol}
                    for name in ("fid", "kid") if name in metrics}
        s = self.loss_settings
        notes = (f"Trained here with loss {self.loss} ({self.n_critic} critic updates per generator update, "
                 f"Adam lr {self.config.lr if self.config.lr is not None else s.lr}, betas {s.betas}), "
                 f"batch {self.config.batch_size}, best at step {state.step} of training "
                 f"({state.elapsed:.0f} s).")
        return model_card(model.config_dict(), title="GAN-QP", license="Apache-2.0", metrics=recorded,
                          summary="GAN-QP (Su 2018, arXiv 1811.07296): a GAN whose critic needs no Lipschitz "
                                  "constraint. Sample with `model.eval(); model.sample(64)`.",
                          source="https://github.com/bojone/gan-qp", notes=notes)
