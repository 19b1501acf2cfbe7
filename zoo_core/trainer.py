"""Training: the plugin says what one step is (:mod:`zoo_core.step`), the core runs the loop.

A plugin subclasses :class:`TrainStep` (its losses, its optimizers, how to
evaluate, its typed settings) and registers a :class:`zoo_core.specs.RecipeSpec`.
The core's :class:`Trainer` builds the step's settings, then the dataset, then
the model the data sizes (:mod:`zoo_core.recipe`), then the step, and owns the
rest: seeding, data loading and sharding,
DistributedDataParallel under ``torchrun``, gradient clipping, an EMA of the
weights, the progress display, ``log.jsonl``, safetensors checkpoints with
exact resume (:mod:`zoo_core.checkpoint`, :mod:`zoo_core.resume`), validation on an epoch or a step
schedule, model selection, and what the step asks for after a validation
(:class:`Control`: reload the best weights, change the learning rate, ...).

``train(NAME)`` runs a recipe and installs the best model in the zoo's local
store; ``evaluate(NAME, model)`` scores a model with the recipe's metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt
from . import distributed as dist
from .checkpoint import TrainState, seed_everything
from .ema import EMA
from .errors import ZooError
from .files import remove_stale, write_text
from .runs import RunLock
from .evaluation import evaluate, evaluate_model, to_device
from .recipe import build_dataset, build_model, check_extra, model_config, recipe_spec, subset
from .resume import FREE_ON_RESUME, resumable, resume, saved_settings, settings_differences  # noqa: F401 - importable here
from .step import Control, TrainConfig, TrainStep, Update, build_settings
from .updates import clip_grad_norm, configure_optimizers, find_unused, resolve_updates, set_lr

__all__ = ["Control", "TrainConfig", "TrainStep", "Trainer", "Update", "build_dataset", "check_extra", "evaluate",
           "seed_everything", "train"]


# --- the core's half: the loop -------------------------------------------------------------


class _Losses(nn.Module):
    """What DDP wraps: holds the model, and ``forward(loss_name, batch)`` calls the step's loss method.

    DDP's gradient hooks fire for whatever the loss touched, while the step
    itself only ever sees the plain model.
    """

    def __init__(self, model: nn.Module, step: TrainStep):
        super().__init__()
        self.model = model
        self.step = step

    def forward(self, loss_name: str, batch):
        return getattr(self.step, loss_name)(self.model, batch)


@dataclass
class _Run:
    """Everything one ``fit`` holds."""

    out: Path
    device: str
    rank: int
    world: int
    model: nn.Module
    step: TrainStep
    optimizers: dict
    schedulers: dict
    ema: Any
    losses: nn.Module  # _Losses, DDP-wrapped under torchrun
    update_optimizers: list  # per Update: the optimizer objects it steps
    update_params: list  # per Update: the parameters it clips
    dataset: Any
    train: Any
    val: Any
    sampler: Any
    loader: Any
    local_batch: int
    batches_per_epoch: int
    total: int
    state: TrainState
    progress: Any = None
    log: Any = None
    out_of_time: bool = False  # max_train_seconds reached (rank 0's clock, for every process)
    eval_due_by_time: bool = False  # eval_every_seconds passed another multiple at this step
    interrupt: Any = None  # _Interrupt: a Ctrl-C asked to stop after this step (single process only)

    @property
    def finished(self) -> bool:
        return self.state.stopped or self.state.step >= self.total or self.out_of_time

    @property
    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model


class Trainer:
    """Runs a registered recipe: ``Trainer(recipe, config).fit()``.

    Runs unchanged under ``torchrun --nproc-per-node N``: each process takes
    ``batch_size // N`` of every global batch (one shuffled order, sharded),
    DDP averages the gradients, rank 0 validates and writes, and every process
    takes the same :class:`Control` actions.
    """

    def __init__(self, recipe, config: TrainConfig, model_set: dict | None = None):
        self.recipe = recipe_spec(recipe)
        self.config = config
        self.model_set = dict(model_set or {})  # the user's --model-set, over the recipe's model config
        self._changed: list[str] = []  # settings a resume accepted to change (accept_changes)
        check_extra(self.recipe, config)

    def build_settings(self):
        """The step's typed Settings for this run (None when the step declares none)."""
        return build_settings(self.recipe.load_step(), self.config.extra)

    def build_dataset(self):
        """The recipe's dataset object (not yet split)."""
        return build_dataset(self.recipe, self.config)

    def model_config(self, dataset=None, settings=None) -> dict:
        """The run's model config: the recipe's, ``--model-set``, then what ``dataset`` decides."""
        return model_config(self.recipe, dataset, settings, self.model_set)

    def build_model(self, dataset=None, settings=None):
        """A fresh model sized by the data (built here when ``dataset`` is not given), before any ``init_model``."""
        settings = settings if settings is not None else self.build_settings()
        dataset = dataset if dataset is not None else self.build_dataset()
        return build_model(self.recipe, self.model_config(dataset, settings))

    latest_checkpoint = staticmethod(ckpt.latest_checkpoint)

    def fit(self) -> Path:
        """Train (or resume); return the best model's folder, ``OUT/model``.

        The run folder is locked while the run goes: a second run into it is a
        ZooError naming the first. In a single process, Ctrl-C finishes the
        step, saves a checkpoint and then raises KeyboardInterrupt; a second
        Ctrl-C stops at once.
        """
        out = Path(self.config.out)
        check_run_folder(out)
        first = int(os.environ.get("RANK", "0")) == 0  # before the process group exists: torchrun's rank
        with RunLock(out) if first else contextlib.nullcontext():
            return self._fit()

    def _fit(self) -> Path:
        run = self._prepare()
        try:
            if run.world == 1:
                run.interrupt = _Interrupt.install()
            while not run.finished:
                self._train_epoch(run)
        finally:
            if run.interrupt is not None:
                run.interrupt.restore()
            if run.progress is not None:
                run.progress.close()
            if run.log is not None:
                run.log.close()
        if run.rank == 0:
            st = run.state
            record = {"best": st.best_record(run.step.monitor), "last": st.history[-1] if st.history else None,
                      "steps": st.step, "elapsed": round(st.tick(), 3), "eval_seconds": round(st.eval_seconds, 3),
                      "history": st.history}
            write_text(run.out / ckpt.METRICS_NAME, json.dumps(record, indent=2) + "\n")
        dist.barrier()
        return run.out / ckpt.BEST_NAME

    # -- setting up ---------------------------------------------------------------------

    def _prepare(self) -> _Run:
        from .model import check_device

        cfg = self.config
        step_class = self.recipe.load_step()
        device = dist.resolve_device(cfg.device)
        check_device(device)
        rank, world = dist.init_distributed(device, getattr(step_class, "distributed_backend", None))
        if cfg.batch_size % world:
            raise ZooError(f"global batch size {cfg.batch_size} does not split over {world} processes",
                           hint=f"use a batch size divisible by {world}")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        # Data first: the settings, the dataset (read once), then the model the data sizes. Reading the data
        # leaves the run's RNG stream alone, so the model starts from the same draws as before it.
        settings = build_settings(step_class, cfg.extra)
        rng = ckpt.capture_rng()
        try:
            dataset = self.build_dataset()
            config = self.model_config(dataset, settings)
        finally:
            ckpt.restore_rng(*rng)
        model = build_model(self.recipe, config).to(device)
        if not resumable(Path(cfg.out), cfg) and hasattr(dataset, "init_model"):
            dataset.init_model(model, settings)  # a fresh start only: a checkpoint holds these values
        step = step_class(model, cfg)
        optimizers = configure_optimizers(step)
        schedulers = step.configure_schedulers(optimizers)
        update_optimizers, update_params = resolve_updates(step, optimizers)
        ema = EMA(model, cfg.ema_decay) if cfg.ema_decay is not None else None
        data = self._data(dataset, rank, world, len(step.updates))
        losses = _Losses(model, step)
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            losses = DDP(losses, find_unused_parameters=find_unused(step, model, update_optimizers))
        steps_per_epoch = data["batches_per_epoch"] // len(step.updates)
        total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
        step.total_steps = total
        out = Path(cfg.out)
        run = _Run(out=out, device=device, rank=rank, world=world, model=model, step=step, optimizers=optimizers,
                   schedulers=schedulers, ema=ema, losses=losses, update_optimizers=update_optimizers,
                   update_params=update_params, total=total,
                   state=TrainState(batches_per_epoch=data["batches_per_epoch"]), **data)
        self._changed = resume(run, cfg)
        run.state.start_clock()
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            for folder in (out, out / ckpt.CHECKPOINT_DIR):  # what an earlier run killed mid-write left
                remove_stale(folder)
            ckpt.truncate_log(out / ckpt.LOG_NAME, run.state.step)
            run.log = (out / ckpt.LOG_NAME).open("a", encoding="utf-8")
            if cfg.progress:
                from .progress import Progress

                run.progress = Progress(total, initial=min(run.state.step, total), desc=self.recipe.name)
        return run

    def _data(self, dataset, rank: int, world: int, updates: int) -> dict:
        """The splits, this rank's shard of the training order and its loader."""
        cfg = self.config
        train = subset(dataset.split("train"), cfg.limit_train)
        val = subset(dataset.split("validation"), cfg.limit_eval)
        local_batch = cfg.batch_size // world
        sampler = dist.train_sampler(train, rank=rank, world=world, seed=cfg.seed)
        # Its own generator keeps the DataLoader from drawing on the global RNG, which the step owns.
        loader = torch.utils.data.DataLoader(train, batch_size=local_batch, sampler=sampler, drop_last=True,
                                             num_workers=cfg.num_workers,
                                             generator=torch.Generator().manual_seed(cfg.seed))
        batches_per_epoch = len(sampler.inner) // local_batch
        if batches_per_epoch < updates:
            raise ZooError(f"the training split has fewer than {cfg.batch_size * updates} examples "
                           f"({updates} batch(es) of {cfg.batch_size} per step)",
                           hint="lower --batch-size or raise --limit-train")
        return {"dataset": dataset, "train": train, "val": val, "sampler": sampler, "loader": loader,
                "local_batch": local_batch, "batches_per_epoch": batches_per_epoch}

    # -- the loop -----------------------------------------------------------------------

    def _train_epoch(self, run: _Run) -> None:
        st, updates = run.state, len(run.step.updates)
        run.sampler.inner.set_epoch(st.epoch)
        run.sampler.skip = st.batch_in_epoch * run.local_batch
        if hasattr(run.train, "set_epoch"):
            run.train.set_epoch(st.epoch)
        elif hasattr(run.dataset, "set_epoch"):
            run.dataset.set_epoch(st.epoch)
        run.model.train()
        batches = iter(run.loader)
        while not run.finished:
            epoch = st.epoch
            outputs = self._train_step(run, [to_device(next(batches), run.device) for _ in range(updates)])
            self._read_clock(run)
            st.batch_in_epoch += updates
            end_of_epoch = st.batch_in_epoch + updates > run.batches_per_epoch
            if end_of_epoch:
                st.epoch, st.batch_in_epoch = st.epoch + 1, 0
            self._log_step(run, outputs, epoch)
            validate = self._validation_due(run, end_of_epoch, epoch)
            if validate:
                self._validate(run, epoch)
            saved = validate or end_of_epoch or run.finished or st.step % self.config.checkpoint_every == 0
            if saved:
                self._checkpoint(run)
            if run.interrupt is not None and run.interrupt.requested:
                self._stop_interrupted(run, saved)
            if end_of_epoch:
                return

    def _stop_interrupted(self, run: _Run, saved: bool) -> None:
        """After a Ctrl-C: the step is whole, so checkpoint it (unless just done) and stop."""
        if not saved:
            self._checkpoint(run)
        if run.progress is not None:
            run.progress.close()
        step = run.state.step
        print(f"zoo: stopped at step {step}/{run.total}; checkpoint saved in "
              f"{run.out / ckpt.CHECKPOINT_DIR / f'step-{step:08d}'}. Run the same command again to resume.",
              file=sys.stderr, flush=True)
        raise KeyboardInterrupt

    def _train_step(self, run: _Run, batches: list) -> list[tuple[str, dict]]:
        """One training step: every Update on its own batch, then schedulers, EMA and the step count."""
        outputs = []
        for update, opts, params, batch in zip(run.step.updates, run.update_optimizers, run.update_params, batches):
            if not update.backward:  # the method changes the weights itself; its dict is only logged
                out = getattr(run.step, update.loss)(run.model, batch)
                if not isinstance(out, dict):
                    raise ZooError(f"{type(run.step).__name__}.{update.loss} must return a dict of scalars to log")
                outputs.append((update.loss, out))
                continue
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            out = run.losses(update.loss, batch)
            if not isinstance(out, dict) or "loss" not in out:
                raise ZooError(f"{type(run.step).__name__}.{update.loss} must return a dict with a 'loss' tensor")
            out["loss"].backward()
            if self.config.grad_clip is not None:
                clip_grad_norm(params, self.config.grad_clip)
            for opt in opts:
                opt.step()
            outputs.append((update.loss, out))
        for sched in run.schedulers.values():
            sched.step()
        if run.ema is not None:
            run.ema.update(run.model)
        run.state.step += 1
        return outputs

    def _read_clock(self, run: _Run) -> None:
        """For timed runs: has training used up ``max_train_seconds``, is a timed validation due?

        Rank 0's clock decides for every process, so all stop and validate at the same step.
        """
        cfg = self.config
        if cfg.max_train_seconds is None and not cfg.eval_every_seconds:
            return
        decision = None
        if run.rank == 0:
            st = run.state
            st.tick()
            out_of_time = cfg.max_train_seconds is not None and st.train_seconds >= float(cfg.max_train_seconds)
            due = False
            if cfg.eval_every_seconds:
                timed = [h["train_seconds"] for h in st.history if "train_seconds" in h]
                period = float(cfg.eval_every_seconds)
                due = st.train_seconds // period > (timed[-1] if timed else 0.0) // period
            decision = (out_of_time, due)
        run.out_of_time, run.eval_due_by_time = dist.broadcast_object(decision)

    def _validation_due(self, run: _Run, end_of_epoch: bool, epoch: int) -> bool:
        cfg = self.config
        if run.finished:
            return True
        if cfg.eval_every_seconds:
            return run.eval_due_by_time
        if cfg.eval_every_steps:
            return run.state.step % cfg.eval_every_steps == 0
        return end_of_epoch and bool(cfg.eval_every) and (epoch + 1) % cfg.eval_every == 0

    def _log_step(self, run: _Run, outputs: list, epoch: int) -> None:
        if run.rank != 0:
            return
        st = run.state
        if run.progress is not None:
            # this step's figures, read only when the display shows them (reading a GPU loss waits for it)
            run.progress.update(1, postfix=lambda: _scalars(outputs))
        if st.step % self.config.log_every == 0 or st.step == run.total:
            scalars = _scalars(outputs)
            self._write_log(run, {"step": st.step, "epoch": epoch, "time": round(st.tick(), 3), **scalars})

    @staticmethod
    def _write_log(run: _Run, record: dict) -> None:
        run.log.write(json.dumps(record) + "\n")
        run.log.flush()

    # -- validation, selection, control -------------------------------------------------

    def _validate(self, run: _Run, epoch: int) -> None:
        st, step = run.state, run.step
        started = st.tick()
        train_seconds = round(st.train_seconds, 3)
        metrics = None
        if run.rank == 0:
            # Evaluation must not shift the training RNG streams, or a resumed run would diverge.
            rng = ckpt.capture_rng()
            try:
                metrics = evaluate_model(step, run.eval_model, run.val, self.config, self.config.eval_max_batches)
            finally:
                ckpt.restore_rng(*rng)
        metrics = dist.broadcast_object(metrics)
        now = round(st.tick(), 3)
        clock = {"time": now, "train_seconds": train_seconds}
        st.history.append({"epoch": epoch, "step": st.step, **clock, **metrics})
        if run.rank == 0:
            self._write_log(run, {"step": st.step, "epoch": epoch, **clock, "split": "validation", **metrics})
        value = metrics.get(step.monitor)
        if value is not None and (st.best_metric is None or (value > st.best_metric if step.monitor_mode == "max"
                                                             else value < st.best_metric)):
            st.best_metric, st.best_step, st.best_epoch, st.best_metrics = value, st.step, epoch, dict(metrics)
            if run.rank == 0:
                card = step.model_card(run.eval_model, metrics, st)
                run.eval_model.save_pretrained(run.out / ckpt.BEST_NAME, card=card)
        control = Control(st, run.optimizers, run.ema is not None)
        step.after_validation(control, metrics)
        # Rank 0's decision for everyone (this also waits for rank 0 to have saved the best model).
        actions = dist.broadcast_object(control.actions)
        if actions:
            self._apply(run, actions, epoch)
        st.eval_seconds += st.tick() - started  # scoring, the best model's save, the step's pictures

    def _apply(self, run: _Run, actions: list, epoch: int) -> None:
        kinds = {a[0] for a in actions}
        if "reload_best" in kinds:
            ckpt.load_weights(run.model, run.out / ckpt.BEST_NAME)
        if "reset_optimizers" in kinds:
            fresh = run.step.configure_optimizers()
            for name, opt in run.optimizers.items():
                opt.load_state_dict(fresh[name].state_dict())
        for action in actions:
            if action[0] == "set_lr":
                set_lr(run, action[1], action[2])
        if "reset_ema" in kinds:
            run.ema.reset(run.model)
        if "stop" in kinds:
            run.state.stopped = True
        if run.rank == 0:
            done = [" ".join(str(a) for a in action if a is not None) for action in actions]
            self._write_log(run, {"step": run.state.step, "epoch": epoch, "time": round(run.state.tick(), 3),
                                  "control": done})

    def _checkpoint(self, run: _Run) -> None:
        if run.rank == 0:
            run.state.tick()
            ckpt.save_checkpoint(run.out, model=run.model, optimizers=run.optimizers, schedulers=run.schedulers,
                                 state=run.state, ema=run.ema, step_state=run.step.state_dict(),
                                 keep=self.config.keep_checkpoints,
                                 settings=saved_settings(self.config, run.step.settings))
        dist.barrier()


class _Interrupt:
    """SIGINT while training: the first asks the loop to stop after the current step (with a checkpoint),
    the second stops at once, as Ctrl-C always does."""

    def __init__(self, previous):
        self.requested = False
        self._previous = previous

    @classmethod
    def install(cls) -> _Interrupt | None:
        if threading.current_thread() is not threading.main_thread():
            return None  # signal handlers belong to the main thread; elsewhere Ctrl-C stays as it is
        previous = signal.getsignal(signal.SIGINT)
        if previous is signal.SIG_IGN:
            return None  # a parent chose to ignore Ctrl-C for us (nohup, a background job)
        handler = cls(previous)
        signal.signal(signal.SIGINT, handler._handle)
        return handler

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nzoo: interrupted: finishing this step and saving a checkpoint (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous if self._previous is not None else signal.default_int_handler)


def check_run_folder(out: Path) -> None:
    """Refuse an output folder inside the zoo's own store: installing the model would delete the run."""
    from .store import zoo_home

    store = (zoo_home() / "models").resolve()
    if out.resolve().is_relative_to(store):
        raise ZooError("the run folder is inside the zoo's model store, where installing the trained model "
                       "would replace it (checkpoints, log and all)", where=str(out),
                       hint="train into a folder of your own with --out (default runs/NAME); "
                            "the best model is copied into the store at the end")


def _scalars(outputs: list[tuple[str, dict]]) -> dict[str, float]:
    """The logged figures of one step (see TrainStep: loss per method, repeats averaged)."""
    several = len({name for name, _ in outputs}) > 1
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for name, out in outputs:
        for key, value in out.items():
            if torch.is_tensor(value):
                if value.numel() != 1:
                    continue
                value = float(value.detach())
            elif isinstance(value, (int, float)):
                value = float(value)
            else:
                continue
            key = name if several and key == "loss" else key
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
    return {k: sums[k] / counts[k] for k in sums}


# --- the whole thing -----------------------------------------------------------------------


def train(name, config: TrainConfig | dict | None = None, *, model_set: dict | None = None, **overrides) -> Path:
    """Train recipe ``name`` and install its best model in the zoo's local store; return that folder.

    ``config`` is a complete TrainConfig (used as given) or a dict; without
    one, the recipe's defaults apply. ``overrides`` set TrainConfig fields (or
    ``extra`` keys) on top; ``out`` defaults to ``runs/NAME``. Once the run has
    finished, rank 0 copies ``OUT/model`` to ``local_model_dir(id)`` for every
    catalogue entry whose ``recipe`` is ``name`` (unless ``install=False``),
    so ``load_model(id)`` finds it. Without such an entry the model stays in
    ``OUT/model``, which is then returned. ``model_set`` (``--model-set``)
    changes fields of the recipe's model config; a value the data decides
    otherwise is a ZooError naming the key.
    """
    recipe = recipe_spec(name)
    if isinstance(config, TrainConfig):
        values = dataclasses.asdict(config)
    else:
        values = dict(recipe.defaults)
        values.setdefault("out", f"runs/{recipe.name}")
        values.update(config or {})
    values.update(overrides)
    config = TrainConfig.from_dict(values)
    check_extra(recipe, config)  # before the lock makes the run folder: a typo leaves nothing behind
    check_run_folder(Path(config.out))
    with RunLock(config.out) if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext():
        return _train_and_install(recipe, config, model_set)


def _train_and_install(recipe, config: TrainConfig, model_set: dict | None = None) -> Path:
    best = Trainer(recipe, config, model_set).fit()
    if not config.install or not (best / "config.json").is_file():
        return best
    from .registry import entries_for_recipe
    from .store import local_model_dir

    entries = entries_for_recipe(recipe.name)
    if not entries:
        if dist.is_main():
            print(f"zoo: no catalogue entry names recipe {recipe.name!r}; the model stays in {best}",
                  file=sys.stderr)
        return best
    if dist.is_main():
        from .files import copy_dir

        for entry in entries:
            copy_dir(best, local_model_dir(entry.id))
    dist.barrier()
    return local_model_dir(entries[0].id)
