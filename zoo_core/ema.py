"""Exponential moving averages of a model's weights (``TrainConfig.ema_decay``), zero-debiased.

The originals average with Keras/TF's ``assign_moving_average(..., zero_debias=True)``: a hidden
accumulator starts at zero, ``biased_t = d * biased_{t-1} + (1 - d) * w_t``, and the average is
``biased_t / (1 - d^t)``. So the average never holds the initial weights: after one update it *is*
the step-1 weights, after t updates it is the weights seen so far with weights proportional to
d^(t-i). The same numbers come from one update rule on the average itself,

    ema_t = ema_{t-1} + (w_t - ema_{t-1}) * (1 - d) / (1 - d^t)

which needs no second copy of the weights and resumes exactly from (ema_t, t). Floating-point
buffers (BatchNorm running statistics) are averaged too, as the originals' ``model.weights`` are;
integer buffers (``num_batches_tracked``) are copied.

Several decays can be kept at once (O-GAN's 256 px script keeps 0.999 and 0.9999): the first one is
the average that is evaluated and saved; the others are checkpointed beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from .errors import ZooError


def _state_tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from module.parameters()
    yield from module.buffers()


def debiased_rate(decay: float, t: int) -> float:
    """How much the t-th update's weights move the average: ``(1 - d) / (1 - d^t)``, 1 for the first."""
    return (1.0 - decay) / (1.0 - decay ** t)


class EMA:
    """Zero-debiased moving averages of ``model`` for one or more decays.

    ``.module`` is the first decay's average: a plain model of the same class (save it, evaluate it).
    ``.modules`` maps every decay to its average.
    """

    def __init__(self, model: nn.Module, decay: float | Sequence[float]):
        decays = (decay,) if isinstance(decay, (int, float)) else tuple(decay)
        if not decays:
            raise ZooError("ema_decay is an empty list", hint="give one decay such as 0.999, or leave it unset")
        for d in decays:
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0.0 <= d < 1.0:
                raise ZooError(f"ema_decay must be in [0, 1), got {d!r}", hint="use e.g. 0.999, or leave it unset")
        if len(set(decays)) != len(decays):
            raise ZooError(f"ema_decay lists a decay twice: {list(decays)}", hint="give each decay once")
        self.decays = tuple(float(d) for d in decays)
        self.modules = {d: copy.deepcopy(model).requires_grad_(False) for d in self.decays}
        self._count = 0

    @property
    def decay(self) -> float:
        """The decay of the average that is evaluated and saved."""
        return self.decays[0]

    @property
    def module(self) -> nn.Module:
        """The average that is evaluated and saved (the first decay's)."""
        return self.modules[self.decays[0]]

    @property
    def updates(self) -> int:
        """How many weights the average holds (0: none yet; it still holds the weights it was made from)."""
        return self._count

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights (and buffers) of ``model`` into every average."""
        self._count += 1
        current = list(_state_tensors(model))
        for d, module in self.modules.items():
            rate = debiased_rate(d, self._count)
            for mine, theirs in zip(_state_tensors(module), current):
                if mine.is_floating_point():
                    mine.lerp_(theirs.to(mine.dtype), rate)
                else:
                    mine.copy_(theirs)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Restart every average: it holds the current weights of ``model`` until the next update, which
        then starts a new zero-debiased average (the originals' ``EMAer.initialize()`` at a learning-rate drop)."""
        current = list(_state_tensors(model))
        for module in self.modules.values():
            for mine, theirs in zip(_state_tensors(module), current):
                mine.copy_(theirs)
        self._count = 0

    def set_updates(self, n: int) -> None:
        """Restore the update count on resume (the averaged weights themselves load into ``.modules``)."""
        self._count = int(n)
