"""Training: the plugin says what one step is (:mod:`zoo_core.step`), the core runs the loop.

A plugin subclasses :class:`TrainStep` (its losses, its optimizers, how to
evaluate) and registers a :class:`zoo_core.specs.RecipeSpec`. The core's
:class:`Trainer` owns the rest: seeding, data loading and sharding,
DistributedDataParallel under ``torchrun``, gradient clipping, an EMA of the
weights, the progress display, ``log.jsonl``, safetensors checkpoints with
exact resume (:mod:`zoo_core.checkpoint`), validation on an epoch or a step
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
import shutil
import signal
import sys
import threading
import time
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
from .step import Control, TrainConfig, TrainStep, Update, build_settings, setting_names

__all__ = ["Control", "TrainConfig", "TrainStep", "Trainer", "Update", "evaluate", "seed_everything", "train"]


FREE_ON_RESUME = frozenset({"out", "device", "threads", "num_workers", "progress", "resume", "install",
                            "log_every", "checkpoint_every", "keep_checkpoints", "epochs", "max_steps",
                            "max_train_seconds", "eval_batch_size", "accept_changes"})


def settings_differences(saved: dict | None, config: TrainConfig, saved_model: dict | None = None,
                         model_config: dict | None = None) -> list[str]:
    """What differs between a checkpoint's settings (and model config) and this run's, one line each."""
    out = []
    if saved is not None:
        now = dataclasses.asdict(config)
        then_extra, now_extra = dict(saved.get("extra") or {}), dict(now.pop("extra"))
        saved = {k: v for k, v in saved.items() if k != "extra"}
        for key in sorted(set(now) | set(saved)):
            if key not in FREE_ON_RESUME and key in saved and _json(saved[key]) != _json(now.get(key)):
                out.append(f"{key}: {saved[key]!r} in the checkpoint, {now.get(key)!r} now")
        for key in sorted(set(then_extra) | set(now_extra)):
            if _json(then_extra.get(key)) != _json(now_extra.get(key)):
                out.append(f"{key}: {then_extra.get(key)!r} in the checkpoint, {now_extra.get(key)!r} now")
    if saved_model is not None and model_config is not None:
        for key in sorted(set(saved_model) | set(model_config)):
            if _json(saved_model.get(key)) != _json(model_config.get(key)):
                out.append(f"model {key}: {saved_model.get(key)!r} in the checkpoint, {model_config.get(key)!r} now")
    return out


def _json(value):
    """A value as JSON would give it back (tuples as lists), to compare settings across a save."""
    return json.loads(json.dumps(value, default=str))




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


def _recipe_spec(recipe):
    if isinstance(recipe, str):
        from .plugins import get_recipe_spec

        return get_recipe_spec(recipe)
    return recipe


def build_model(recipe):
    """A fresh model of the recipe's architecture and model config."""
    from .plugins import get_model_spec

    recipe = _recipe_spec(recipe)
    return get_model_spec(recipe.model).load().from_config(dict(recipe.model_config))


def build_dataset(recipe, config: TrainConfig):
    """The recipe's dataset object (not yet split), with the run's seed."""
    from .plugins import get_dataset_spec

    recipe = _recipe_spec(recipe)
    options = dict(recipe.dataset_options)
    options.update(config.extra.get("dataset_options", {}))
    return get_dataset_spec(recipe.dataset).load()(seed=config.seed, **options)


def check_extra(recipe, config: TrainConfig, step_class=None) -> None:
    """Raise a ZooError listing the valid settings if ``config.extra`` holds a key nothing declares.

    Declared are TrainConfig's fields, ``dataset_options`` and the step's
    settings (:func:`zoo_core.step.setting_names`). A step still without
    ``Settings`` also reads the keys of its recipe's defaults by hand, so those
    count for it. Then the step's Settings are built once, so a wrong type is
    refused here too, before the run folder exists.
    """
    recipe = _recipe_spec(recipe)
    step_class = step_class or recipe.load_step()
    valid = ({f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}) | {"dataset_options"}
    valid |= setting_names(step_class)
    if getattr(step_class, "Settings", None) is None:
        valid |= set(recipe.defaults)  # legacy: a step reading config.extra by hand
    unknown = sorted(set(config.extra) - valid)
    if unknown:
        ours = [k for k in unknown if k in recipe.defaults and _json(recipe.defaults[k]) == _json(config.extra[k])]
        if ours:
            raise ZooError(f"recipe {recipe.name}'s defaults set {', '.join(ours)}, which {step_class.__name__} "
                           "does not declare", where=f"recipe {recipe.name} ({recipe.plugin or 'its plugin'})",
                           hint=f"declare it in {step_class.__name__}.Settings or drop it from the recipe")
        raise ZooError(f"unknown setting(s) for recipe {recipe.name}: {', '.join(unknown)}",
                       where=f"--set {unknown[0]}=...",
                       hint=f"valid settings: {', '.join(sorted(valid))}")
    build_settings(step_class, config.extra)


def _configure_optimizers(step: TrainStep) -> dict:
    """``step.configure_optimizers()``; a run without a learning rate for a step that needs one says so."""
    try:
        return step.configure_optimizers()
    except TypeError:
        if step.config.lr is not None:
            raise
        raise ZooError(f"{type(step).__name__} builds its optimizers from --lr, and this run sets no learning rate",
                       where="--lr", hint="e.g. --lr 0.001") from None


def _subset(data, limit):
    if limit is not None and limit < len(data):
        return torch.utils.data.Subset(data, range(limit))
    return data


class Trainer:
    """Runs a registered recipe: ``Trainer(recipe, config).fit()``.

    Runs unchanged under ``torchrun --nproc-per-node N``: each process takes
    ``batch_size // N`` of every global batch (one shuffled order, sharded),
    DDP averages the gradients, rank 0 validates and writes, and every process
    takes the same :class:`Control` actions.
    """

    def __init__(self, recipe, config: TrainConfig):
        self.recipe = _recipe_spec(recipe)
        self.config = config
        self._changed: list[str] = []  # settings a resume accepted to change (accept_changes)
        check_extra(self.recipe, config)

    def build_model(self):
        """A fresh model of the recipe's architecture."""
        return build_model(self.recipe)

    def build_dataset(self):
        """The recipe's dataset object (not yet split)."""
        return build_dataset(self.recipe, self.config)

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
        device = dist.resolve_device(cfg.device)
        check_device(device)
        rank, world = dist.init_distributed(device, getattr(self.recipe.load_step(), "distributed_backend", None))
        if cfg.batch_size % world:
            raise ZooError(f"global batch size {cfg.batch_size} does not split over {world} processes",
                           hint=f"use a batch size divisible by {world}")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        model = self.build_model().to(device)
        step = self.recipe.load_step()(model, cfg)
        optimizers = _configure_optimizers(step)
        schedulers = step.configure_schedulers(optimizers)
        update_optimizers, update_params = self._resolve_updates(step, optimizers)
        ema = EMA(model, cfg.ema_decay) if cfg.ema_decay is not None else None
        data = self._data(rank, world, len(step.updates))
        losses = _Losses(model, step)
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            losses = DDP(losses, find_unused_parameters=self._find_unused(step, model, update_optimizers))
        steps_per_epoch = data["batches_per_epoch"] // len(step.updates)
        total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
        out = Path(cfg.out)
        run = _Run(out=out, device=device, rank=rank, world=world, model=model, step=step, optimizers=optimizers,
                   schedulers=schedulers, ema=ema, losses=losses, update_optimizers=update_optimizers,
                   update_params=update_params, total=total,
                   state=TrainState(batches_per_epoch=data["batches_per_epoch"]), **data)
        self._resume(run)
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

    def _data(self, rank: int, world: int, updates: int) -> dict:
        """The splits, this rank's shard of the training order and its loader."""
        cfg = self.config
        dataset = self.build_dataset()
        train = _subset(dataset.split("train"), cfg.limit_train)
        val = _subset(dataset.split("validation"), cfg.limit_eval)
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

    @staticmethod
    def _resolve_updates(step: TrainStep, optimizers: dict) -> tuple[list, list]:
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

    @staticmethod
    def _find_unused(step: TrainStep, model: nn.Module, update_optimizers: list) -> bool:
        if step.find_unused_parameters is not None:
            return bool(step.find_unused_parameters)
        if len({tuple(id(o) for o in opts) for opts in update_optimizers}) > 1:
            return True
        stepped = {id(p) for opts in update_optimizers for o in opts for g in o.param_groups for p in g["params"]}
        return any(p.requires_grad and id(p) not in stepped for p in model.parameters())

    def _resume(self, run: _Run) -> None:
        """Continue from the newest checkpoint that reads back whole; damaged newer ones are set aside."""
        import sys

        found = ckpt.checkpoints(run.out) if self.config.resume else []
        if not found:
            if run.rank == 0:
                self._start_fresh(run)
            return
        loaded, damaged = None, []
        for folder in reversed(found):
            try:
                meta = ckpt.read_checkpoint_meta(folder)
                self._check_settings(run, meta)
                loaded = ckpt.read_checkpoint(meta, model=run.model, ema=run.ema)
                break
            except ckpt.DamagedCheckpoint as exc:
                damaged.append((folder, exc))
        dist.barrier()  # every process has read before rank 0 moves anything
        if run.rank == 0:
            for folder, exc in damaged:
                aside = ckpt.set_aside(folder)
                then = f"resuming from {loaded.folder.name}" if loaded else "no checkpoint is left to resume from"
                print(f"zoo: checkpoint {folder.name} is damaged ({exc.what}; {exc.where}); {then}. "
                      f"It was moved to {aside}: delete it once you have looked.", file=sys.stderr)
        if loaded is None:
            raise ZooError(f"every checkpoint under {run.out / ckpt.CHECKPOINT_DIR} is damaged",
                           where=str(damaged[0][1].where), hint="start over with --no-resume (the damaged "
                           "checkpoints were renamed *.damaged)")
        fresh = {name: [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
                 for name, opt in run.optimizers.items()}
        state, step_state = ckpt.apply_checkpoint(loaded, model=run.model, optimizers=run.optimizers,
                                                  schedulers=run.schedulers, ema=run.ema)
        if self._changed:
            _take_hyperparameters(run, fresh)
        found = loaded.folder
        run.step.load_state_dict(step_state)
        updates = len(run.step.updates)
        if state.batches_per_epoch is None:  # a checkpoint from before TrainState: one batch per step
            per_epoch = run.batches_per_epoch // updates
            state.epoch, state.batch_in_epoch = divmod(state.step, per_epoch)
            state.batch_in_epoch *= updates
        elif state.batches_per_epoch != run.batches_per_epoch:
            raise ZooError(f"{found} was written with {state.batches_per_epoch} batches per epoch, this run has "
                           f"{run.batches_per_epoch}", hint="resume with the batch size and data limits that "
                           "wrote it, or start over with --no-resume")
        state.batches_per_epoch = run.batches_per_epoch
        run.state = state
        if run.rank == 0:
            ckpt.restore_best(found, run.out)
            written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((found / ckpt.STATE_NAME).stat().st_mtime))
            print(f"zoo: resuming from step {state.step}/{run.total} (checkpoint of {written}) in {run.out}; "
                  "--no-resume starts over", file=sys.stderr)
        dist.barrier()

    def _start_fresh(self, run: _Run) -> None:
        """Say that the run starts from step 0, and why; --no-resume clears the checkpoints it will not use."""
        old = ckpt.checkpoints(run.out)
        if old:  # --no-resume: left there, they would outrank this run's own checkpoints on the next resume
            for folder in old:
                shutil.rmtree(folder, ignore_errors=True)
            why = f" (--no-resume: removed its {len(old)} earlier checkpoint(s))"
        elif (run.out / ckpt.LOG_NAME).is_file() and (run.out / ckpt.LOG_NAME).stat().st_size:
            why = " (the run there stopped before its first checkpoint)"
        else:
            why = ""
        print(f"zoo: starting fresh in {run.out}{why}", file=sys.stderr)

    def _check_settings(self, run: _Run, meta) -> None:
        """A resume with other settings than the checkpoint's is an error listing them (unless accepted)."""
        import sys

        model_config = {k: v for k, v in run.model.config_dict().items() if k != "architecture"} \
            if hasattr(run.model, "config_dict") else None
        changes = settings_differences(meta.settings, self.config, meta.model_config, model_config)
        model_changes = [c for c in changes if c.startswith("model ")]
        if model_changes:
            raise ZooError(f"{meta.folder} was written by another model: " + "; ".join(model_changes),
                           where=str(meta.folder), hint="resume with the model settings that wrote it "
                           "(--model-set), or start over with --no-resume")
        if changes and not self.config.accept_changes:
            raise ZooError(f"the run in {run.out} was started with other settings than these:\n    "
                           + "\n    ".join(changes), where=str(meta.folder),
                           hint="resume with the settings that wrote it, pass --accept-changes to go on with "
                                "the new ones from here, or start over with --no-resume")
        if changes and run.rank == 0:
            print("zoo: resuming with changed settings (--accept-changes): " + "; ".join(changes), file=sys.stderr)
        self._changed = changes

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
            outputs = self._train_step(run, [_to_device(next(batches), run.device) for _ in range(updates)])
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
                metrics = _evaluate_model(step, run.eval_model, run.val, self.config, self.config.eval_max_batches)
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
                _set_lr(run, action[1], action[2])
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
                                 keep=self.config.keep_checkpoints, settings=_json(dataclasses.asdict(self.config)))
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


def _take_hyperparameters(run: _Run, fresh: dict) -> None:
    """After an accepted change of settings: the optimizers keep their state but take the new settings'
    hyper-parameters (``fresh``: each optimizer's param groups as ``configure_optimizers`` made them now).

    A learning rate a scheduler has moved keeps its place on the schedule: the new base rate times the
    factor the schedule had reached.
    """
    for name, opt in run.optimizers.items():
        for group, new in zip(opt.param_groups, fresh.get(name, [])):
            factor = group["lr"] / group["initial_lr"] if group.get("initial_lr") else 1.0
            group.update(new)
            group["lr"] = new.get("initial_lr", new["lr"]) * factor
    for sched in run.schedulers.values():
        sched.base_lrs = [g.get("initial_lr", g["lr"]) for g in sched.optimizer.param_groups]


def _set_lr(run: _Run, lr: float, name: str | None) -> None:
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


# --- evaluation ----------------------------------------------------------------------------


def _device_of(model) -> torch.device:
    return next(model.parameters()).device


def _to_device(batch, device):
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


class _DeviceLoader:
    """Moves each batch of a loader to a device, stopping after ``max_batches`` when set."""

    def __init__(self, loader, device, max_batches: int | None = None):
        self.loader, self.device, self.max_batches = loader, device, max_batches

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if self.max_batches is not None and i >= self.max_batches:
                return
            yield _to_device(batch, self.device)

    def __len__(self):
        n = len(self.loader)
        return n if self.max_batches is None else min(n, self.max_batches)


def _evaluate_model(step: TrainStep, model, data, config: TrainConfig, max_batches: int | None = None) -> dict:
    # A private generator: iterating a DataLoader otherwise draws a seed from the global RNG.
    loader = torch.utils.data.DataLoader(data, batch_size=config.eval_batch_size,
                                         generator=torch.Generator().manual_seed(config.seed))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            metrics = step.evaluate(model, _DeviceLoader(loader, _device_of(model), max_batches))
    finally:
        model.train(was_training)
    return {k: float(v) for k, v in metrics.items()}


def evaluate(recipe, model, split: str = "test", config: TrainConfig | None = None) -> dict[str, float]:
    """Score ``model`` on one split of the recipe's dataset with the recipe's ``TrainStep.evaluate``.

    ``recipe`` is a recipe name or RecipeSpec; ``config`` defaults to the
    recipe's defaults (its ``limit_eval``, ``eval_batch_size``, ``seed`` and
    ``extra`` apply). The model is left in eval mode.
    """
    recipe = _recipe_spec(recipe)
    config = config or TrainConfig.from_dict(recipe.defaults)
    data = _subset(build_dataset(recipe, config).split(split), config.limit_eval)
    step = recipe.load_step()(model, config)
    model.eval()
    return _evaluate_model(step, model, data, config)


# --- the whole thing -----------------------------------------------------------------------


def train(name, config: TrainConfig | dict | None = None, **overrides) -> Path:
    """Train recipe ``name`` and install its best model in the zoo's local store; return that folder.

    ``config`` is a complete TrainConfig (used as given) or a dict; without
    one, the recipe's defaults apply. ``overrides`` set TrainConfig fields (or
    ``extra`` keys) on top; ``out`` defaults to ``runs/NAME``. Once the run has
    finished, rank 0 copies ``OUT/model`` to ``local_model_dir(id)`` for every
    catalogue entry whose ``recipe`` is ``name`` (unless ``install=False``),
    so ``load_model(id)`` finds it. Without such an entry the model stays in
    ``OUT/model``, which is then returned.
    """
    recipe = _recipe_spec(name)
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
        return _train_and_install(recipe, config)


def _train_and_install(recipe, config: TrainConfig) -> Path:
    best = Trainer(recipe, config).fit()
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
