"""O-GAN's training step for the core's Trainer: the released code's single combined loss.

``o_gan_celeba.py`` (Su 2019), with sg = stop-gradient, avg = the mean over the z_dim components of
a code, x_r a real batch, z ~ N(0, I) and x_f = G(z)::

    t1  = avg(E(x_r)) - avg(E(sg(x_f)))                          reaches E only
    t2  = avg(E(x_f)) - avg(E(sg(x_f)))                          value 0; reaches G only
    rho = Pearson(z, E(x_f)), per sample over the z axis          reaches E and G
    qp  = 0.25 t1^2 / mean_pixels((x_r - sg(x_f))^2)             reaches E only (no square root)

    loss = mean(t1 + t2 - 0.5 rho) + mean(qp)

one RMSprop(1e-4, rho 0.99, eps 1e-7: Keras's) step for all the weights of E and G. E is called three
times (on x_r, x_f and sg(x_f)), each call with its own batch statistics, as the Keras model does.
(t2's gradient with respect to E cancels exactly: its two calls see the same input.) The ``ema_256``
variant weights rho by 1.0 (``rho_weight``) and keeps an EMA of the weights (the core's
``ema_decay``; it averages batch-norm statistics too, and it is what is evaluated, sampled and saved).

Evaluation, deterministic (fixed seeds, eval mode): LeNet-FID and KID of ``eval_samples`` samples
(zoo-images' :class:`~zoo_images.metrics.GeneratorScore`); ``z_corr``, the mean rho(z, E(G(z))) over
``corr_samples`` latents; on the split's real images (at most ``recon_samples``), ``recon_mse`` (mean
squared pixel error in [-1, 1] of x against G(N(E(x)) 0.9)) and, for MNIST scored with the
LeNet metric, ``recon_acc``: how often the LeNet class of the reconstruction equals the true label.
After each validation, ``OUT/samples/step-NNNNNNNN.png`` (a fixed-z grid) and
``OUT/samples/step-NNNNNNNN-recon.png`` (real / reconstruction pairs) are written.

The step's settings are :class:`OGANSettings` (the metric's are zoo-images' ScoreSettings, which it
extends); ``--lr`` (1e-4 in the recipes) sets RMSprop's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from zoo_core import TrainStep, Update, ZooError, model_card, shard_draw
from zoo_images.metrics import GeneratorScore, ScoreSettings

DIGIT_DATASETS = ("mnist",)  # labelled like the LeNet's classes (digits): recon_acc is meaningful only there


# --- the loss, as a function of the two networks (tested on fixed tensors) ------------------------------


def correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b``, (B, n) x 2 -> (B,).

    Centre over the n components, L2-normalise (Keras's l2_normalize: x / sqrt(max(sum x^2, eps))), dot.
    """
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    a = a * torch.rsqrt(a.square().sum(1, keepdim=True).clamp_min(eps))
    b = b * torch.rsqrt(b.square().sum(1, keepdim=True).clamp_min(eps))
    return (a * b).sum(1)


def ogan_loss(E, G, x_r: torch.Tensor, z: torch.Tensor, *, rho_weight: float = 0.5,
              qp_weight: float = 0.25) -> dict[str, torch.Tensor]:
    """The combined loss and its parts; x_r (B, C, S, S) real images in [-1, 1], z (B, z_dim).

    Returns ``loss`` (a scalar), and per sample (B,): ``t1``, ``t2``, ``rho``, ``qp``.
    """
    x_f = G(z)  # (B, C, S, S)
    x_f_ng = x_f.detach()
    z_real, z_fake, z_fake_ng = E(x_r), E(x_f), E(x_f_ng)  # (B, z_dim) each, three calls
    t1 = z_real.mean(1) - z_fake_ng.mean(1)  # (B,)
    t2 = z_fake.mean(1) - z_fake_ng.mean(1)  # (B,), zero
    rho = correlation(z, z_fake)  # (B,)
    qp = qp_weight * t1.square() / (x_r - x_f_ng).square().mean(dim=(1, 2, 3))  # (B,)
    loss = (t1 + t2 - rho_weight * rho).mean() + qp.mean()
    return {"loss": loss, "t1": t1, "t2": t2, "rho": rho, "qp": qp}


@dataclass
class OGANSettings(ScoreSettings):
    """The O-GAN step's settings (recipe defaults, then ``zoo train --set KEY=VALUE``), and the metric's."""

    rho_weight: float = 0.5  # o_gan_celeba.py; the ema_256 variant uses 1.0
    qp_weight: float = 0.25
    rmsprop_alpha: float = 0.99  # Keras's RMSprop rho
    rmsprop_eps: float = 1e-7  # Keras's epsilon
    corr_samples: int = 2000  # latents for z_corr
    recon_samples: int = 10_000  # real images reconstructed per evaluation (at most)
    recon_pairs: int = 32  # real / reconstruction pairs drawn after each validation
    grid_samples: int = 64  # the fixed-z grid written after each validation
    grid_seed: int = 1

    def __post_init__(self):
        if self.qp_weight < 0:
            raise ZooError(f"qp_weight must be >= 0, got {self.qp_weight}", where="--set qp_weight=...")


# --- the step --------------------------------------------------------------------------------------------


class OGANStep(TrainStep):
    """O-GAN on the core's Trainer: one update of all weights per step; monitors LeNet-FID (lower is better)."""

    updates = (Update("training_step", ("rmsprop",)),)
    Settings = OGANSettings
    monitor = "fid"
    monitor_mode = "min"

    def __init__(self, model, config):
        super().__init__(model, config)
        self.score = GeneratorScore(self.settings, channels=model.config.channels, batch_size=config.eval_batch_size,
                                    dataset_options=config.extra.get("dataset_options"))
        self._pictures = None  # the last evaluation's grid and pairs, written in after_validation
        self._pairs = None  # (real, reconstruction) of the evaluation's first batch

    def configure_optimizers(self):
        s = self.settings
        if self.config.lr is None:
            raise ZooError("O-GAN's RMSprop needs a learning rate, and this run sets none", where="--lr",
                           hint="e.g. --lr 0.0001 (the release's)")
        return {"rmsprop": torch.optim.RMSprop(self.model.parameters(), lr=self.config.lr, alpha=s.rmsprop_alpha,
                                               eps=s.rmsprop_eps)}

    def training_step(self, model, batch):
        x_r = batch[0] if isinstance(batch, (list, tuple)) else batch  # (B, C, S, S)
        # every process draws the global batch's z and keeps its rows: N processes train like one
        z = shard_draw(torch.randn, x_r.shape[0], model.config.z_dim, device=x_r.device)  # (B, z_dim)
        out = ogan_loss(model.E, model.G, x_r, z, rho_weight=self.settings.rho_weight,
                        qp_weight=self.settings.qp_weight)
        return {"loss": out["loss"], "t_loss": out["t1"].detach().mean(), "z_corr": out["rho"].detach().mean(),
                "qp": out["qp"].detach().mean()}

    # -- evaluation -----------------------------------------------------------------------------------

    @torch.no_grad()
    def z_corr(self, model, device) -> dict:
        """Mean rho(z, E(G(z))) over ``corr_samples`` fixed-seed latents (eval mode), and ``z_dirs``.

        rho is a Pearson correlation over z's components, so an encoder that recovers k of z_dim directions
        exactly scores about sqrt(k / z_dim): rho is capped by the code size. ``z_dirs`` = mean(rho^2) * z_dim
        estimates k, the directions recovered, a figure comparable across code sizes.
        """
        n = self.settings.corr_samples
        gen = torch.Generator().manual_seed(self.settings.eval_seed + 1)
        total, squares, batch = 0.0, 0.0, int(self.config.eval_batch_size)
        for start in range(0, n, batch):
            z = model.noise(min(batch, n - start), generator=gen, device=device)
            rho = correlation(z, model.encode(model(z)))  # (B,)
            total += float(rho.sum())
            squares += float(rho.square().sum())
        return {"z_corr": total / n, "z_dirs": squares / n * model.config.z_dim}

    @torch.no_grad()
    def reconstruction(self, model, loader, device) -> dict:
        """recon_mse (and recon_acc for digit datasets scored by LeNet) over at most ``recon_samples`` images."""
        limit = self.settings.recon_samples
        classify = None
        if self.score.feature_net == "lenet" and self.settings.fid_dataset in DIGIT_DATASETS:
            classify = self.score.reference(device)[0].classify
        sq_err, agree, n, first = 0.0, 0, 0, None
        for batch in loader:
            x, labels = (batch[0], batch[1]) if isinstance(batch, (list, tuple)) else (batch, None)
            x = x[: limit - n].to(device)
            recon = model.reconstruct(x)  # (B, C, S, S)
            sq_err += float((recon - x).square().mean(dim=(1, 2, 3)).sum())
            if classify is not None and labels is not None:
                agree += int((classify(recon.float().cpu()) == labels[: x.shape[0]].cpu()).sum())
            if first is None:
                first = (x.float().cpu(), recon.float().cpu())
            n += x.shape[0]
            if n >= limit:
                break
        if n == 0:
            raise ZooError("the evaluation split has no images to reconstruct", hint="check --limit-eval")
        out = {"recon_mse": sq_err / n}
        if classify is not None:
            out["recon_acc"] = agree / n
        self._pairs = first
        return out

    @torch.no_grad()
    def evaluate(self, model, loader):
        """LeNet-FID, KID, z_corr, recon_mse (and recon_acc); keeps a fixed-z grid and pairs for after_validation."""
        s = self.settings
        device = next(model.parameters()).device
        metrics = self.score(model, device)
        metrics.update(self.z_corr(model, device))
        metrics.update(self.reconstruction(model, loader, device))
        grid_gen = torch.Generator().manual_seed(s.grid_seed)
        grid = model.sample(s.grid_samples, generator=grid_gen, device=device).float().cpu()
        real, recon = self._pairs
        self._pictures = (grid, real[:s.recon_pairs], recon[:s.recon_pairs])
        return metrics

    def after_validation(self, control, metrics):
        """Write the validation's sample grid and reconstruction pairs under OUT/samples/ (rank 0)."""
        if self._pictures is None:
            return
        from zoo_images.pictures import save_grid, save_pairs

        (grid, real, recon), self._pictures = self._pictures, None
        folder = Path(self.config.out) / "samples"
        save_grid(grid, folder / f"step-{control.state.step:08d}.png")
        save_pairs(real, recon, folder / f"step-{control.state.step:08d}-recon.png")

    def model_card(self, model, metrics, state):
        data = self.settings.fid_dataset
        protocols = {"fid": self.score.protocol(), "kid": self.score.protocol(),
                     "z_corr": "mean Pearson rho(z, E(G(z))) of fixed-seed latents, eval mode",
                     "z_dirs": "directions of z recovered, mean(rho^2) * z_dim (does not scale with z_dim)",
                     "recon_mse": "mean squared pixel error in [-1, 1] of G(0.9 N(E(x))) on the validation split",
                     "recon_acc": "LeNet class of the reconstruction equals the label, validation split"}
        recorded = {name: {"value": round(float(metrics[name]), 6), "dataset": data, "protocol": protocol}
                    for name, protocol in protocols.items() if name in metrics}
        ema = f", EMA {self.config.ema_decay}" if self.config.ema_decay is not None else ""
        notes = (f"Trained here: RMSprop lr {self.config.lr}, rho weight "
                 f"{self.settings.rho_weight}{ema}, batch {self.config.batch_size}; best at step {state.step} "
                 f"({state.elapsed:.0f} s).")
        return model_card(model.config_dict(), title="O-GAN", license="Apache-2.0", metrics=recorded,
                          summary="O-GAN (Su 2019, arXiv 1903.01931): a GAN whose discriminator is also an encoder. "
                                  "`model.eval(); model.sample(64)`, `model.encode(x)`, `model.reconstruct(x)`.",
                          source="https://github.com/bojone/o-gan", notes=notes)
