"""The plugin author's half of training: what one step is, the settings it reads, what it may do to the run.

A plugin subclasses :class:`TrainStep` (its losses, its optimizers, how to
evaluate, its typed ``Settings``) and lists its :class:`Update` s; after each
validation it may act on the run through :class:`Control`. :class:`TrainConfig`
holds the settings the core itself understands. The loop that runs all this is
:mod:`zoo_core.trainer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .errors import ZooError
from .typed import as_annotated, field_types, short, type_name, type_ok

if TYPE_CHECKING:
    from .checkpoint import TrainState

__all__ = ["Control", "TrainConfig", "TrainStep", "Update", "build_settings", "setting_names"]


@dataclass
class TrainConfig:
    """Hyper-parameters the core understands; recipe-specific ones go in ``extra``.

    ``batch_size`` is the global batch: under torchrun each of the N processes
    takes ``batch_size // N`` examples of it. A run lasts ``epochs`` epochs, or
    ``max_steps`` steps when that is set (over as many epochs as it takes).
    Validation runs every ``eval_every`` epochs, or every ``eval_every_steps``
    steps when that is set, and always after the last step.

    ``max_train_seconds`` ends the run at the first step that brings its
    training time (wall time without the validations) to the budget, whatever
    ``epochs`` or ``max_steps`` say; ``eval_every_seconds`` validates each time
    the training time passes another multiple of it. Together they compare
    methods at equal time (timed runs do not resume to the same step).
    """

    out: str = "runs/model"
    epochs: int = 1
    max_steps: int | None = None  # iteration-based: train this many steps, epochs notwithstanding
    batch_size: int = 64
    lr: float | None = 1e-3  # None: the step picks its own rates (a recipe whose losses each have one)
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 500  # steps; a checkpoint is also written after every epoch and validation
    keep_checkpoints: int = 1  # the newest N (resume needs only the newest: each is written whole); 0 keeps all
    eval_every: int | None = 1  # epochs; None or 0: only at the end (unless eval_every_steps)
    eval_every_steps: int | None = None  # steps; replaces the epoch schedule when set
    max_train_seconds: float | None = None  # stop once training (validation excluded) took this long
    eval_every_seconds: float | None = None  # validate every N seconds of training; replaces the schedules above
    eval_batch_size: int = 500
    eval_max_batches: int | None = None  # validation during training reads at most this many batches
    limit_train: int | None = None  # use only the first N training examples
    limit_eval: int | None = None
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    grad_clip: float | None = None  # clip each update's gradient norm (over its optimizers' parameters)
    # keep a zero-debiased EMA of the weights (TF's); it is what gets evaluated and saved. A list keeps one
    # average per decay: the first is evaluated and saved, the others are checkpointed beside it
    ema_decay: float | list[float] | None = None
    resume: bool = True  # continue from the newest checkpoint in ``out`` if there is one
    accept_changes: bool = False  # resume even where these settings differ from the checkpoint's
    progress: bool = True
    install: bool = True  # train(): copy the best model into the zoo's local store
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.check()

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Known keys become fields; unknown ones go into ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names and k != "extra"}
        given = values.get("extra", {})
        for key, found in (("extra", given), ("dataset_options", values.get("dataset_options"))):
            if found is not None and not isinstance(found, dict):
                raise ZooError(f"training setting {key} must be a mapping, got {found!r}", where=_option(key),
                               hint=f"write it as JSON, e.g. --set '{key}={{\"k\": 1}}'")
        extra = dict(given)
        extra.update({k: v for k, v in values.items() if k not in names})
        return cls(**known, extra=extra)

    def check(self) -> None:
        """Raise a ZooError naming the first setting of the wrong type or out of range."""
        import math
        import typing

        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if type_ok(value, hints[f.name]) is False:
                raise ZooError(f"training setting {f.name} must be {type_name(hints[f.name])}, got {value!r}",
                               where=_option(f.name), hint=_RANGE_HINTS.get(f.name, "see TrainConfig"))
        for name, (low, strict) in _RANGES.items():
            value = getattr(self, name)
            if value is None or isinstance(value, bool):
                continue
            if (value <= low if strict else value < low) or (isinstance(value, float) and not math.isfinite(value)):
                bound = f"greater than {low}" if strict else f"at least {low}"
                raise ZooError(f"training setting {name} must be {bound}, got {value!r}", where=_option(name),
                               hint=_RANGE_HINTS.get(name, "see TrainConfig"))
        decays = [self.ema_decay] if isinstance(self.ema_decay, (int, float)) else self.ema_decay or []
        if self.ema_decay == [] or any(not 0.0 <= d < 1.0 for d in decays) or len(set(decays)) < len(decays):
            raise ZooError(f"training setting ema_decay must be a decay in [0, 1) or a list of different ones, "
                           f"got {self.ema_decay!r}", where=_option("ema_decay"),
                           hint="use e.g. 0.999 or [0.999, 0.9999], or leave it unset")


# setting -> (bound, strict): the value must be > bound (strict) or >= bound
_RANGES = {"epochs": (1, False), "max_steps": (1, False), "batch_size": (1, False), "lr": (0, True),
           "log_every": (1, False), "checkpoint_every": (1, False), "keep_checkpoints": (0, False),
           "eval_every": (0, False), "eval_every_steps": (0, False), "max_train_seconds": (0, True),
           "eval_every_seconds": (0, False), "eval_batch_size": (1, False), "eval_max_batches": (1, False),
           "limit_train": (1, False), "limit_eval": (1, False), "num_workers": (0, False), "threads": (0, False),
           "grad_clip": (0, True)}
_RANGE_HINTS = {"batch_size": "e.g. --batch-size 64", "lr": "e.g. --lr 0.001",
                "max_steps": "e.g. --max-steps 1000, or leave it out to train for --epochs",
                "epochs": "e.g. --epochs 10"}


def _option(name: str) -> str:
    """How a user sets ``name``: its own option, or --set."""
    own = {"out", "epochs", "max_steps", "batch_size", "lr", "seed", "device", "limit_train", "limit_eval",
           "checkpoint_every", "keep_checkpoints", "log_every", "threads"}
    return f"--{name.replace('_', '-')}" if name in own else f"--set {name}=..."


# Settings that change how a run goes, not what it computes: a resume may change them freely.
# The length of a run (epochs, max_steps, max_train_seconds) is among them, so a finished run can be extended.

@dataclass(frozen=True)
class Update:
    """One optimizer update inside a training step.

    ``loss`` names a method of the step, ``(model, batch) -> {"loss": tensor,
    ...}``; ``optimizers`` names the entries of ``configure_optimizers()`` it
    steps (None: all of them). Each update of a step gets a batch of its own.

    ``backward=False`` is for a method that changes the weights itself (a
    sparse in-place update, as word2vec's SGNS does): the core then zeroes no
    gradient, calls no backward, clips nothing and steps no optimizer for it,
    and the method's dict holds only scalars to log (``"loss"`` is optional),
    e.g. ``Update("training_step", optimizers=(), backward=False)``. The
    method runs with autograd on, like any other: make the in-place update
    under ``torch.no_grad()``.
    """

    loss: str = "training_step"
    optimizers: tuple[str, ...] | None = None
    backward: bool = True

    def __post_init__(self):
        if isinstance(self.optimizers, str):
            object.__setattr__(self, "optimizers", (self.optimizers,))
        elif self.optimizers is not None:
            object.__setattr__(self, "optimizers", tuple(self.optimizers))


class TrainStep:
    """The plugin's half of training.

    One training step runs each :class:`Update` of ``updates`` in turn: it
    takes the next batch from the loader, zeroes the gradients of that
    update's optimizers, calls the update's loss method with the plain model
    (never a DDP wrapper: the core syncs gradients around it), runs backward on
    ``"loss"``, clips the gradient norm to ``config.grad_clip`` when set, and
    steps those optimizers. Then the schedulers step and the EMA updates. So an
    epoch has ``len(loader) // len(updates)`` steps.

    A GAN lists its updates, e.g. GAN-QP's two critic updates per generator
    update, each on a fresh batch::

        updates = (Update("d_loss", ("d",)), Update("d_loss", ("d",)), Update("g_loss", ("g",)))

    The D loss should not backprop into G: detach the fakes or make them under
    ``torch.no_grad()``. Gradient that reaches G there is wasted work (the G
    update zeroes G's gradients before its own backward), and under torchrun it
    is synchronised for nothing.

    Other entries of a loss method's dict are logged (scalars only). With more
    than one loss method, each method's ``"loss"`` is logged under the
    method's name; values of an update that runs twice in a step are averaged.

    ``monitor`` names the metric of :meth:`evaluate` that picks the best model
    and ``monitor_mode`` whether higher (``"max"``) or lower is better.
    ``find_unused_parameters`` is passed to DDP (None: the core turns it on
    when the updates step different optimizers or some parameter is in none).
    ``Settings`` names a dataclass of the step's own settings: ``__init__``
    builds ``self.settings`` from the run's ``config.extra`` (the recipe's
    defaults, then ``zoo train --set KEY=VALUE``), each value checked against
    its field's annotation, so a wrong type is a ZooError naming ``--set
    KEY=...``; the dataclass's field defaults are the one place for a default,
    and its ``__post_init__`` may check ranges (raise a ZooError with
    ``where="--set KEY=..."``). A setting that neither TrainConfig nor
    ``Settings`` declares (nor ``dataset_options``) is refused before the run
    starts, with the list of valid ones. Without ``Settings``,
    ``self.settings`` is None and the step has no settings of its own.
    ``distributed_backend`` picks the torch.distributed backend under torchrun
    (None: NCCL on CUDA, gloo on CPU); sparse gradients need ``"gloo"``.
    ``total_steps`` is the run's number of training steps (``max_steps``, else
    epochs × steps per epoch), set by the Trainer before the first step, for
    schedules over the whole run (None outside training, e.g. in ``zoo eval``).
    """

    updates: tuple[Update, ...] = (Update(),)
    Settings: ClassVar[type | None] = None  # a dataclass of the step's own settings, built into self.settings
    distributed_backend: str | None = None  # torch.distributed backend under torchrun (None: NCCL on CUDA, else gloo)
    monitor: str = "loss"
    monitor_mode: str = "min"
    find_unused_parameters: bool | None = None
    total_steps: int | None = None  # set by the Trainer once it knows the data

    def __init__(self, model: nn.Module, config: TrainConfig):
        self.model = model
        self.config = config
        self.settings = build_settings(type(self), config.extra)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers over ``self.model``'s parameters; the names key checkpoints and ``Update.optimizers``.

        The default is one Adam at ``config.lr``.
        """
        if self.config.lr is None:
            raise ZooError(f"{type(self).__name__} uses one Adam at --lr, and this run sets no learning rate",
                           where="--lr", hint="e.g. --lr 0.001")
        return {"adam": torch.optim.Adam(self.model.parameters(), lr=self.config.lr)}

    def configure_schedulers(self, optimizers: dict) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        """Named learning-rate schedulers, stepped once per training step (default: none)."""
        return {}

    def training_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """The loss of one batch: ``{"loss": tensor, ...other logged scalars}``."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader) -> dict[str, float]:
        """Metrics over a whole split (validation during training, test in ``zoo eval``)."""
        raise NotImplementedError

    def after_validation(self, control: Control, metrics: dict) -> None:
        """Called after every validation with its metrics; act on the run through ``control`` (default: nothing).

        Under torchrun every process calls it with the same metrics, and rank
        0's actions are the ones taken everywhere.
        """

    def state_dict(self) -> dict:
        """State the step keeps across validations (a patience counter, a stage), saved in checkpoints.

        JSON-able values and tensors; default: none.
        """
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` on resume."""

    def model_card(self, model: nn.Module, metrics: dict, state: TrainState) -> str | None:
        """The README of the best model folder; None uses the core's default card.

        ``metrics`` are the validation metrics that made it the best; ``state``
        says when (``state.step``, ``state.epochs_done``, ``state.elapsed`` in
        wall seconds of training).
        """
        return None


class Control:
    """What :meth:`TrainStep.after_validation` may do to the run.

    Calls are recorded and carried out right after ``after_validation``
    returns, before the checkpoint of that step (so a resume from it is
    exact), in this order whatever the order of the calls: reload the best
    weights, reset the optimizers, set learning rates, reset the EMA, stop.
    So ``reload_best(); reset_optimizers(); set_lr(lr / 10)`` restarts from
    the best model with fresh optimizer state at a tenth of the rate.
    ``state`` is the run's :class:`TrainState` (read it, do not change it).
    """

    def __init__(self, state: TrainState, optimizers: dict, has_ema: bool):
        self.state = state
        self._optimizers = optimizers
        self._has_ema = has_ema
        self.actions: list[tuple] = []

    def lr(self, optimizer: str | None = None) -> float:
        """The current learning rate of ``optimizer`` (default: the first), from its first param group."""
        return float(self._optimizer(optimizer).param_groups[0]["lr"])

    def reload_best(self) -> None:
        """Load the best model's weights (the EMA's, with an EMA) into the trained model."""
        if self.state.best_step is None:
            raise ZooError("reload_best: no validation has produced a best model yet",
                           hint="check that evaluate() returns the monitored metric (TrainStep.monitor)")
        self.actions.append(("reload_best",))

    def set_lr(self, lr: float, optimizer: str | None = None) -> None:
        """Set the learning rate of every param group of ``optimizer`` (default: of all of them).

        A scheduler of that optimizer takes ``lr`` as its base rate from then on.
        """
        if optimizer is not None:
            self._optimizer(optimizer)
        self.actions.append(("set_lr", float(lr), optimizer))

    def reset_optimizers(self) -> None:
        """Fresh optimizer state and hyper-parameters from ``configure_optimizers()`` (schedulers keep counting)."""
        self.actions.append(("reset_optimizers",))

    def reset_ema(self) -> None:
        """Restart the EMA from the current weights (after a reload, from the best ones)."""
        if not self._has_ema:
            raise ZooError("reset_ema: this run keeps no EMA", hint="set ema_decay to keep one")
        self.actions.append(("reset_ema",))

    def stop(self) -> None:
        """End the run after this validation (resuming it does not train further)."""
        self.actions.append(("stop",))

    def _optimizer(self, name: str | None):
        if name is None:
            return next(iter(self._optimizers.values()))
        if name not in self._optimizers:
            raise ZooError(f"no optimizer {name!r}",
                           hint=f"configure_optimizers() returns: {', '.join(self._optimizers)}")
        return self._optimizers[name]


# --- a step's typed settings -----------------------------------------------------------------


def build_settings(step_class: type, extra: dict) -> Any:
    """``step_class.Settings`` built from a run's ``config.extra``, every value type-checked; None without one.

    Only the dataclass's fields are taken from ``extra`` (the rest belongs to
    the core, the dataset or is refused by :func:`zoo_core.recipe.check_extra`);
    a field ``extra`` leaves out keeps its default. A value of the wrong type is
    a ZooError naming ``--set KEY=...``; so is whatever ``__post_init__`` rejects.
    """
    cls = getattr(step_class, "Settings", None)
    if cls is None:
        return None
    fields = _settings_fields(step_class)
    values = {k: v for k, v in extra.items() if k in fields}
    hints = field_types(cls)
    for key, value in values.items():
        expected = hints.get(key)
        if expected is not None and type_ok(value, expected) is False:
            f = fields[key]
            default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
            hint = (f"e.g. --set {key}={_as_option(default)} (its default)" if default is not dataclasses.MISSING
                    else f"write {key} as {type_name(expected)}")
            raise ZooError(f"setting {key} of {step_class.__name__} must be {type_name(expected)}, "
                           f"got {type(value).__name__} {short(value)}", where=f"--set {key}=...", hint=hint)
    missing = [name for name, f in fields.items() if name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ZooError(f"{step_class.__name__} needs setting {missing[0]}, and neither the recipe nor the command "
                       "gives it", where=f"--set {missing[0]}=...", hint=f"pass --set {missing[0]}=VALUE")
    values = {k: as_annotated(v, hints[k]) if k in hints else v for k, v in values.items()}
    try:
        return cls(**values)
    except ZooError:
        raise
    except (TypeError, ValueError, AssertionError, ArithmeticError) as exc:  # the dataclass's own checks
        given = ", ".join(f"{k}={_as_option(v)}" for k, v in values.items()) or "the defaults"
        raise ZooError(f"invalid settings for {step_class.__name__}: {exc}", where="--set",
                       hint=f"fix the value it names (this run has {given})") from None


def setting_names(step_class: type) -> set[str]:
    """The ``config.extra`` keys a step declares: the fields of its ``Settings``."""
    return set(_settings_fields(step_class))


def _settings_fields(step_class: type) -> dict[str, dataclasses.Field]:
    cls = getattr(step_class, "Settings", None)
    if cls is None:
        return {}
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise ZooError(f"{step_class.__name__}.Settings must be a dataclass, got {cls!r}",
                       where=f"{step_class.__module__}.{step_class.__qualname__}",
                       hint="decorate the settings class with @dataclasses.dataclass")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    core = sorted(set(fields) & ({f.name for f in dataclasses.fields(TrainConfig)} | {"dataset_options"}))
    if core:
        raise ZooError(f"{step_class.__name__}.Settings declares {core[0]}, which is a setting of the core "
                       "(TrainConfig)", where=f"{step_class.__module__}.{step_class.__qualname__}",
                       hint=f"drop the field and read self.config.{core[0]}")
    return fields


def _as_option(value) -> str:
    """A value as one would write it after ``--set KEY=`` (JSON, except a plain string)."""
    import json

    return value if isinstance(value, str) else json.dumps(value, default=str)
