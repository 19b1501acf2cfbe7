"""The LeNet training step (recipe ``lenet-mnist``): cross-entropy on MNIST as [-1, 1] images.

Adam (``lr``, default 1e-3) with the learning rate halved every ``lr_halflife_steps`` steps (800,
about two epochs at batch 128), dropout 0.5 before the classifier, and random translations of up
to ``shift`` pixels (2; the vacated border is the background -1), drawn from the torch RNG the
core seeds and checkpoints, so a resumed run is exact. The model with the best validation accuracy
is kept; ``zoo eval lenet-mnist`` reports the test accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo_core import TrainStep, model_card


def random_shift(x: torch.Tensor, shift: int, background: float = -1.0) -> torch.Tensor:
    """Translate each image of (B, C, H, W) by independent integer offsets in [-shift, shift] (torch RNG)."""
    if shift <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), value=background)
    offsets = torch.randint(0, 2 * shift + 1, (b, 2)).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


@dataclass
class LeNetSettings:
    """The LeNet step's settings (recipe defaults, then ``zoo train --set KEY=VALUE``)."""

    lr_halflife_steps: float = 800  # the learning rate halves every 800 steps (~2 epochs); 0 keeps it constant
    shift: int = 2  # random translations of up to 2 px


class LeNetStep(TrainStep):
    """Cross-entropy with Adam; evaluation: ``accuracy`` (monitored, max), ``loss``, ``examples``."""

    Settings = LeNetSettings
    monitor = "accuracy"
    monitor_mode = "max"

    def configure_optimizers(self):
        return {"adam": torch.optim.Adam(self.model.parameters(), lr=self.config.lr)}

    def configure_schedulers(self, optimizers):
        halflife = float(self.settings.lr_halflife_steps)
        if halflife <= 0:
            return {}
        return {"decay": torch.optim.lr_scheduler.ExponentialLR(optimizers["adam"], gamma=0.5 ** (1.0 / halflife))}

    def training_step(self, model, batch):
        x, y = batch[0], batch[1]  # (B, 1, 28, 28) in [-1, 1], (B,)
        x = random_shift(x, self.settings.shift)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "train_accuracy": (logits.argmax(1) == y).float().mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        correct, total, loss = 0, 0, 0.0
        for batch in loader:
            x, y = batch[0], batch[1]
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            total += y.shape[0]
        n = max(total, 1)
        return {"accuracy": correct / n, "loss": loss / n, "examples": float(total)}

    def model_card(self, model, metrics, state):
        split = f"MNIST validation ({int(metrics.get('examples', 0)):,} images)"
        recorded = {
            "validation accuracy": {"value": round(metrics.get("accuracy", float("nan")), 4), "dataset": split,
                                    "protocol": "top-1, images pixel/255*2-1, 28x28"},
            "validation loss": {"value": round(metrics.get("loss", float("nan")), 4), "dataset": split,
                                "protocol": "mean cross-entropy (nats)"},
        }
        cfg = self.config
        s = self.settings
        notes = (
            f"Trained with `zoo train lenet-mnist` (zoo-images) for {state.step:,} steps "
            f"({round(state.epochs_done, 2):g} epochs, {state.elapsed / 60:.1f} minutes): Adam lr {cfg.lr} halved "
            f"every {s.lr_halflife_steps} steps, batch {cfg.batch_size}, random shifts of up to {s.shift} px, "
            f"seed {cfg.seed}. Its penultimate layer (128 units) is the feature space of LeNet-FID and KID "
            "(zoo_images.metrics.LeNetFeatures); `zoo eval lenet-mnist --model <this folder>` gives the test "
            "accuracy."
        )
        return model_card(
            model.config_dict(), title="LeNet on MNIST (the LeNet-FID feature network)",
            summary="A LeNet classifier of MNIST digits; its penultimate activations replace Inception's for "
                    "FID and KID on MNIST, as in Bińkowski et al., Demystifying MMD GANs (ICLR 2018).",
            license="apache-2.0", metrics=recorded, source="arXiv 1801.01401 (the practice); LeCun et al. 1998",
            notes=notes)
