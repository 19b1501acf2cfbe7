"""Resuming a run: the newest checkpoint that reads back whole, and only with the settings that wrote it.

A checkpoint keeps the run's settings (TrainConfig, with the step's typed
Settings filled in) and its model's config. A resume with other settings is an
error listing what changed, unless ``accept_changes`` says to go on with the
new ones; a resume with another model config is always an error. Damaged
checkpoints are set aside, not deleted.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import time

from . import checkpoint as ckpt
from . import distributed as dist
from .errors import ZooError
from .step import TrainConfig
from .typed import field_defaults, json_value

__all__ = ["FREE_ON_RESUME", "resumable", "resume", "saved_settings", "settings_differences"]

# Settings that change how a run goes, not what it computes: a resume may change them freely.
# The length of a run (epochs, max_steps, max_train_seconds) is among them, so a finished run can be extended.
FREE_ON_RESUME = frozenset({"out", "device", "threads", "num_workers", "progress", "resume", "install",
                            "log_every", "checkpoint_every", "keep_checkpoints", "epochs", "max_steps",
                            "max_train_seconds", "eval_batch_size", "accept_changes"})


def saved_settings(config: TrainConfig, settings=None) -> dict:
    """What a checkpoint keeps of a run's settings: TrainConfig as JSON, ``extra`` with every typed setting."""
    values = json_value(dataclasses.asdict(config))
    if settings is not None:
        values["extra"] = {**values["extra"], **json_value(dataclasses.asdict(settings))}
    return values


def settings_differences(saved: dict | None, config: TrainConfig, saved_model: dict | None = None,
                         model_config: dict | None = None, settings=None, model_defaults: dict | None = None
                         ) -> list[str]:
    """What differs between a checkpoint's settings (and model config) and this run's, one line each.

    With the step's typed ``settings``, a setting one side leaves out counts
    as its dataclass default (a checkpoint written before the step had
    Settings kept only what its recipe and ``--set`` gave), and a setting the
    checkpoint has that nothing declares any more is left out (it cannot change the run). The same
    holds for the model config with ``model_defaults`` (its dataclass's defaults): a field added to a
    model since the checkpoint was written counts as its default there.
    """
    out = []
    if saved is not None:
        now = json_value(dataclasses.asdict(config))
        then_extra, now_extra = dict(saved.get("extra") or {}), dict(now.pop("extra"))
        if settings is not None:
            then_extra = {**field_defaults(type(settings)), **then_extra}
            now_extra = {**now_extra, **json_value(dataclasses.asdict(settings))}
            then_extra = {k: v for k, v in then_extra.items() if k in now_extra or k == "dataset_options"}
        saved = {k: v for k, v in saved.items() if k != "extra"}
        for key in sorted(set(now) | set(saved)):
            if key not in FREE_ON_RESUME and key in saved and json_value(saved[key]) != now.get(key):
                out.append(f"{key}: {saved[key]!r} in the checkpoint, {now.get(key)!r} now")
        for key in sorted(set(then_extra) | set(now_extra)):
            if json_value(then_extra.get(key)) != json_value(now_extra.get(key)):
                out.append(f"{key}: {then_extra.get(key)!r} in the checkpoint, {now_extra.get(key)!r} now")
    if saved_model is not None and model_config is not None:
        saved_model = {**(model_defaults or {}), **saved_model}
        for key in sorted(set(saved_model) | set(model_config)):
            if json_value(saved_model.get(key)) != json_value(model_config.get(key)):
                out.append(f"model {key}: {saved_model.get(key)!r} in the checkpoint, {model_config.get(key)!r} now")
    return out


def resumable(out, config: TrainConfig) -> list:
    """The checkpoints a run into ``out`` resumes from (newest last); none with ``resume=False``.

    A run with any starts from one of them or stops with an error: it never starts fresh.
    """
    return ckpt.checkpoints(out) if config.resume else []


def resume(run, config: TrainConfig) -> list[str]:
    """Continue ``run`` from the newest checkpoint that reads back whole; damaged newer ones are set aside.

    Without a checkpoint (or with ``resume=False``) the run starts fresh.
    Returns the setting changes a resume accepted (``accept_changes``).
    """
    found = resumable(run.out, config)
    if not found:
        if run.rank == 0:
            _start_fresh(run)
        return []
    loaded, damaged, changed = None, [], []
    for folder in reversed(found):
        try:
            meta = ckpt.read_checkpoint_meta(folder)
            changed = _check_settings(run, config, meta)
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
    if changed:
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
    return changed


def _start_fresh(run) -> None:
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


def _check_settings(run, config: TrainConfig, meta) -> list[str]:
    """A resume with other settings than the checkpoint's is an error listing them (unless accepted)."""
    model_config = {k: v for k, v in run.model.config_dict().items() if k != "architecture"} \
        if hasattr(run.model, "config_dict") else None
    config_class = type(getattr(run.model, "config", None))
    model_defaults = field_defaults(config_class) if dataclasses.is_dataclass(config_class) else None
    changes = settings_differences(meta.settings, config, meta.model_config, model_config, run.step.settings,
                                   model_defaults)
    model_changes = [c for c in changes if c.startswith("model ")]
    if model_changes:
        raise ZooError(f"{meta.folder} was written by another model: " + "; ".join(model_changes),
                       where=str(meta.folder), hint="resume with the model settings that wrote it "
                       "(--model-set), or start over with --no-resume")
    if changes and not config.accept_changes:
        raise ZooError(f"the run in {run.out} was started with other settings than these:\n    "
                       + "\n    ".join(changes), where=str(meta.folder),
                       hint="resume with the settings that wrote it, pass --accept-changes to go on with "
                            "the new ones from here, or start over with --no-resume")
    if changes and run.rank == 0:
        print("zoo: resuming with changed settings (--accept-changes): " + "; ".join(changes), file=sys.stderr)
    return changes


def _take_hyperparameters(run, fresh: dict) -> None:
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
