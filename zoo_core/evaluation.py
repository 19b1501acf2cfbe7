"""Scoring a model with a recipe's metrics: validation during training, and ``zoo eval`` after it."""

from __future__ import annotations

import torch

from .recipe import build_dataset, recipe_spec, subset
from .step import TrainConfig, TrainStep

__all__ = ["device_of", "evaluate", "evaluate_model", "to_device"]


def device_of(model) -> torch.device:
    """The device of a model's first parameter."""
    return next(model.parameters()).device


def to_device(batch, device):
    """A batch (a tensor, or lists, tuples and dicts of them) moved to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class _DeviceLoader:
    """Moves each batch of a loader to a device, stopping after ``max_batches`` when set."""

    def __init__(self, loader, device, max_batches: int | None = None):
        self.loader, self.device, self.max_batches = loader, device, max_batches

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if self.max_batches is not None and i >= self.max_batches:
                return
            yield to_device(batch, self.device)

    def __len__(self):
        n = len(self.loader)
        return n if self.max_batches is None else min(n, self.max_batches)


def evaluate_model(step: TrainStep, model, data, config: TrainConfig, max_batches: int | None = None) -> dict:
    """``step.evaluate`` over ``data`` in eval mode and without gradients; the model's mode is restored."""
    # A private generator: iterating a DataLoader otherwise draws a seed from the global RNG.
    loader = torch.utils.data.DataLoader(data, batch_size=config.eval_batch_size,
                                         generator=torch.Generator().manual_seed(config.seed))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            metrics = step.evaluate(model, _DeviceLoader(loader, device_of(model), max_batches))
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in metrics.items()}


def evaluate(recipe, model, split: str = "test", config: TrainConfig | None = None) -> dict[str, float]:
    """Score ``model`` on one split of the recipe's dataset with the recipe's ``TrainStep.evaluate``.

    ``recipe`` is a recipe name or RecipeSpec; ``config`` defaults to the
    recipe's defaults (its ``limit_eval``, ``eval_batch_size``, ``seed`` and
    ``extra`` apply). The model is left in eval mode.
    """
    recipe = recipe_spec(recipe)
    config = config or TrainConfig.from_dict(recipe.defaults)
    data = subset(build_dataset(recipe, config).split(split), config.limit_eval)
    step = recipe.load_step()(model, config)
    model.eval()
    return evaluate_model(step, model, data, config)
