"""The Trainer interface: the plugin owns one training step, the core owns the loop.

A plugin subclasses :class:`TrainStep` (what one optimisation step is, how to
evaluate) and registers a :class:`zoo_core.specs.TrainerSpec` recipe. The core's
:class:`Trainer` owns everything else: seeding, data loading and sharding,
DistributedDataParallel under ``torchrun``, the progress bar, JSON-lines logs,
safetensors checkpoints, resume, and model selection on validation metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainConfig:
    """Hyper-parameters the core understands; recipe-specific ones go in ``extra``.

    ``batch_size`` is the global batch: under torchrun each of the N processes
    takes ``batch_size // N`` examples of it.
    """

    out: str = "runs/model"
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 500  # steps; a checkpoint is also written after every epoch
    keep_checkpoints: int = 2
    eval_every: int = 1  # epochs
    eval_batch_size: int = 500
    limit_train: int | None = None  # use only the first N training examples
    limit_eval: int | None = None
    num_workers: int = 0
    resume: bool = True  # continue from the newest checkpoint in ``out`` if there is one
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Known keys become fields; unknown ones go into ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names and k != "extra"}
        extra = dict(values.get("extra", {}))
        extra.update({k: v for k, v in values.items() if k not in names})
        return cls(**known, extra=extra)


class TrainStep:
    """The plugin's half of training.

    The core calls :meth:`training_step` once per batch with the (possibly
    DDP-wrapped) model. By default the core then runs ``backward`` on the
    returned ``"loss"`` and steps the single optimizer. A step that needs
    control of its updates (a GAN's alternating D and G steps) sets
    ``manual_optimization = True`` and calls backward and ``opt.step()``
    itself; the core still checkpoints every optimizer it returned.

    ``monitor`` names the metric of :meth:`evaluate` used to pick the best
    model, and ``monitor_mode`` whether higher (``"max"``) or lower is better.
    """

    manual_optimization: bool = False
    monitor: str = "loss"
    monitor_mode: str = "min"

    def __init__(self, model: torch.nn.Module, config: TrainConfig):
        self.model = model
        self.config = config

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers; the names key their state in checkpoints."""
        return {"adam": torch.optim.Adam(self.model.parameters(), lr=self.config.lr)}

    def training_step(self, model: torch.nn.Module, batch: Any, optimizers: dict) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch; return ``{"loss": tensor, ...}`` (other entries are logged)."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader) -> dict[str, float]:
        """Metrics over a whole split (validation during training, test in ``zoo eval``)."""
        raise NotImplementedError

    def model_card(self, model, metrics: dict) -> str | None:
        """The README of the trained model folder; None uses the core's default card."""
        return None
