"""How a step's updates are carried out: its optimizers, which parameters each update steps and clips,
and changes of learning rate along the way."""

from __future__ import annotations

import torch
from torch import nn

from .errors import ZooError
from .step import TrainStep

__all__ = ["clip_grad_norm", "configure_optimizers", "find_unused", "resolve_updates", "set_lr"]


def configure_optimizers(step: TrainStep) -> dict:
    """``step.configure_optimizers()``; a run without a learning rate for a step that needs one says so."""
    try:
        return step.configure_optimizers()
    except TypeError:
        if step.config.lr is not None:
            raise
        raise ZooError(f"{type(step).__name__} builds its optimizers from --lr, and this run sets no learning rate",
                       where="--lr", hint="e.g. --lr 0.001") from None


def resolve_updates(step: TrainStep, optimizers: dict) -> tuple[list, list]:
    """Per Update of ``step``: the optimizer objects it steps and the parameters it clips (checked by name)."""
    if not step.updates:
        raise ZooError(f"{type(step).__name__}.updates is empty", hint="list at least one Update")
    for name in optimizers:
        if "." in name:
            raise ZooError(f"optimizer name {name!r} contains a dot", hint="name optimizers without dots")
    opts, params = [], []
    for update in step.updates:
        if not callable(getattr(step, update.loss, None)):
            raise ZooError(f"{type(step).__name__} has no loss method {update.loss!r}",
                           hint="Update.loss names a method (model, batch) -> {'loss': ...}")
        names = update.optimizers if update.optimizers is not None else tuple(optimizers)
        unknown = [n for n in names if n not in optimizers]
        if unknown:
            raise ZooError(f"Update({update.loss!r}) names unknown optimizer(s) {', '.join(unknown)}",
                           hint=f"configure_optimizers() returns: {', '.join(optimizers)}")
        chosen = [optimizers[n] for n in names]
        seen: dict[int, torch.Tensor] = {}
        for opt in chosen:
            for group in opt.param_groups:
                for p in group["params"]:
                    seen.setdefault(id(p), p)
        opts.append(chosen)
        params.append(list(seen.values()))
    return opts, params





def find_unused(step: TrainStep, model: nn.Module, update_optimizers: list) -> bool:
    """DDP's find_unused_parameters: the step's choice, else on when the updates step different optimizers
    or some trainable parameter is in none."""
    if step.find_unused_parameters is not None:
        return bool(step.find_unused_parameters)
    if len({tuple(id(o) for o in opts) for opts in update_optimizers}) > 1:
        return True
    stepped = {id(p) for opts in update_optimizers for o in opts for g in o.param_groups for p in g["params"]}
    return any(p.requires_grad and id(p) not in stepped for p in model.parameters())


def set_lr(run, lr: float, name: str | None) -> None:
    """Set the rate of optimizer ``name`` (None: all) of a run, its schedulers' base rate with it."""
    for opt_name, opt in run.optimizers.items():
        if name is not None and opt_name != name:
            continue
        for group in opt.param_groups:
            group["lr"] = lr
            if "initial_lr" in group:
                group["initial_lr"] = lr
        for sched in run.schedulers.values():
            if sched.optimizer is opt:
                sched.base_lrs = [lr] * len(opt.param_groups)


def clip_grad_norm(params, max_norm: float) -> torch.Tensor:
    """Scale the gradients of ``params`` so their global 2-norm is at most ``max_norm``; return the norm before.

    ``torch.nn.utils.clip_grad_norm_`` itself when every gradient is dense; a
    sparse gradient (``nn.Embedding(sparse=True)``) is coalesced so that rows
    repeated in the batch count once, and scaled like the rest.
    """
    grads = [p.grad for p in params if p.grad is not None]
    sparse = [g for g in grads if g.is_sparse]
    if not sparse:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    dense = [g for g in grads if not g.is_sparse]
    norms = [torch.linalg.vector_norm(g) for g in dense]
    norms += [torch.linalg.vector_norm(g.coalesce().values()) for g in sparse]
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device))
    return total
