"""An exponential moving average of a model's weights (``TrainConfig.ema_decay``).

Built on ``torch.optim.swa_utils.AveragedModel`` with ``use_buffers=True``, so
buffers (BatchNorm running statistics) are averaged along with the parameters.
After the first update the average is the weights of that step; after that
``ema = decay * ema + (1 - decay) * weights`` once per training step.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """The averaged copy of ``model``; ``.module`` is a plain model of the same class (save it, evaluate it)."""

    def __init__(self, model: nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        if not 0.0 <= decay < 1.0:
            from .errors import ZooError

            raise ZooError(f"ema_decay must be in [0, 1), got {decay}", hint="use e.g. 0.999, or leave it unset")
        self.decay = float(decay)
        self._averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True)
        self._averaged.requires_grad_(False)

    @property
    def module(self) -> nn.Module:
        """The averaged model itself (same class as the trained one)."""
        return self._averaged.module

    @property
    def updates(self) -> int:
        """How many updates the average holds (0: not yet updated, it still holds the initial weights)."""
        return int(self._averaged.n_averaged)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights (and buffers) of ``model`` into the average."""
        self._averaged.update_parameters(model)

    @torch.no_grad()
    def reset(self, model: nn.Module) -> None:
        """Restart the average from the current weights of ``model`` (the next update averages with them)."""
        for mine, theirs in zip(self._state_tensors(self.module), self._state_tensors(model)):
            mine.copy_(theirs)
        self._averaged.n_averaged.fill_(1)

    @staticmethod
    def _state_tensors(module: nn.Module):
        yield from module.parameters()
        yield from module.buffers()

    def set_updates(self, n: int) -> None:
        """Restore the update count (the averaged weights themselves load into ``.module``)."""
        self._averaged.n_averaged.fill_(int(n))
