"""Training state, checkpoints and exact resume.

A checkpoint is one folder, written atomically (``files.atomic_dir``)::

    OUT/checkpoints/step-00001200/
        model/                       the training weights (a model folder, no card)
        ema/                         the EMA weights, when the run keeps an EMA
        ema-0.9999/                  one folder per further EMA decay, when it keeps several
        best/                        OUT/model as it was at this step (hard links), when there was one
        trainer_state.json           TrainState, optimizer hyper-parameters and scalars,
                                     scheduler and step state, Python/NumPy RNG state,
                                     the run's settings (TrainConfig)
        trainer_state.safetensors    optimizer tensors (moments, step counts), torch/CUDA RNG state

Resuming from it restores all of that, so a run stopped and resumed ends
bit-identical to one that ran straight through. ``best/`` makes that hold even
when a run died after saving a better model but before its next checkpoint:
resume puts the best model of the checkpoint's time back into ``OUT/model``.

A checkpoint is read whole and checked (:func:`read_checkpoint`) before any of
it goes into the run (:func:`apply_checkpoint`), so a damaged one
(:class:`DamagedCheckpoint`: truncated, zero-filled, not JSON) changes nothing
and the Trainer falls back to the one before it.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ZooError
from .files import atomic_dir, copy_dir, remove_stale, write_text

CHECKPOINT_DIR = "checkpoints"
LOG_NAME = "log.jsonl"
METRICS_NAME = "metrics.json"
BEST_NAME = "model"  # OUT/model: the best model folder
STATE_NAME = "trainer_state.json"
TENSORS_NAME = "trainer_state.safetensors"
MODEL_DIR, EMA_DIR, BEST_DIR = "model", "ema", "best"


@dataclass
class TrainState:
    """Where a run is; everything the loop needs to continue exactly, and what the model card reports.

    ``epoch`` is the epoch the next step draws its batches from and
    ``batch_in_epoch`` how many of that epoch's batches are used up (a step
    takes one batch per :class:`~zoo_core.trainer.Update`), so right after an
    epoch ends ``epoch`` counts the completed epochs. ``elapsed`` is wall
    seconds of training summed over resumed runs, ``eval_seconds`` the part of
    it spent validating, so ``train_seconds`` is the time the updates had.
    ``history`` holds every validation: ``{"epoch", "step", "time", **metrics}``.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    batches_per_epoch: int | None = None
    best_metric: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    best_metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    elapsed: float = 0.0
    eval_seconds: float = 0.0
    stopped: bool = False  # TrainStep.after_validation called Control.stop()
    _started: float | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def epochs_done(self) -> float:
        """Completed epochs, fractional mid-epoch."""
        if not self.batches_per_epoch:
            return float(self.epoch)
        return self.epoch + self.batch_in_epoch / self.batches_per_epoch

    def start_clock(self) -> None:
        """Start counting wall time from ``elapsed`` (call once the run is set up)."""
        self._started = time.monotonic() - self.elapsed

    def tick(self) -> float:
        """Bring ``elapsed`` up to now and return it."""
        if self._started is not None:
            self.elapsed = time.monotonic() - self._started
        return self.elapsed

    @property
    def train_seconds(self) -> float:
        """Wall seconds of training without the validations (as of the last :meth:`tick`)."""
        return self.elapsed - self.eval_seconds

    def best_record(self, monitor: str) -> dict | None:
        """The best validation, as ``metrics.json`` records it."""
        if self.best_step is None:
            return None
        return {"metric": monitor, "value": self.best_metric, "step": self.best_step, "epoch": self.best_epoch,
                "metrics": self.best_metrics}

    def to_json(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "batches_per_epoch": self.batches_per_epoch, "best_metric": self.best_metric,
                "best_step": self.best_step, "best_epoch": self.best_epoch, "best_metrics": self.best_metrics,
                "history": self.history, "elapsed": self.elapsed, "eval_seconds": self.eval_seconds,
                "stopped": self.stopped}

    @classmethod
    def from_json(cls, data: dict) -> TrainState:
        """Read :meth:`to_json`'s dict, or the plain dict of checkpoints written before TrainState existed.

        Those lack ``batches_per_epoch``; the Trainer derives ``epoch`` and
        ``batch_in_epoch`` from ``step`` for them.
        """
        if "best" in data:  # the old layout: {"step", "epoch", "best": {...}, "history", "elapsed"}
            best = data.get("best") or {}
            return cls(step=int(data["step"]), epoch=int(data.get("epoch", 0)), batches_per_epoch=None,
                       best_metric=best.get("value"), best_step=best.get("step"), best_epoch=best.get("epoch"),
                       best_metrics=dict(best.get("metrics", {})), history=list(data.get("history", [])),
                       elapsed=float(data.get("elapsed", 0.0)))
        known = {k: data[k] for k in cls().to_json() if k in data}
        return cls(**known)


# --- state dicts to safetensors + JSON ------------------------------------------------------


def encode_state(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of a (nested) state dict; tensors go into ``tensors`` under dotted keys.

    Dicts whose keys are not all strings (optimizer state is keyed by
    parameter index) become ``{"__items__": [[key, value], ...]}``, so
    :func:`decode_state` gives the keys back with their types. Tuples come back
    as lists.
    """
    if torch.is_tensor(obj):
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: encode_state(v, f"{key}.{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, encode_state(v, f"{key}.{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [encode_state(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ZooError(f"cannot checkpoint a {type(obj).__name__} in the training state", where=key,
                   hint="state dicts may hold tensors, numbers, strings, lists and dicts")


def decode_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode_state`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {k: decode_state(v, tensors) for k, v in obj["__items__"]}
        return {k: decode_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode_state(v, tensors) for v in obj]
    return obj


def _flatten_optimizers(optimizers: dict) -> tuple[dict, dict]:
    """Split optimizer state dicts into tensors (for safetensors) and JSON-able scalars.

    Tensors are keyed ``optim.NAME.PARAM_INDEX.FIELD``; the JSON side holds the
    param groups and the non-tensor per-parameter values (SparseAdam's int step).
    """
    tensors, meta = {}, {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict = {}
        for pid, state in sd["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[key] = encode_state(value, f"optim.{name}.{pid}.{key}",
                                                                         tensors)
        meta[name] = {"param_groups": encode_state(sd["param_groups"], f"optim.{name}.groups", tensors),
                      "scalars": scalars}
    return tensors, meta


# --- RNG -----------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (if present) and torch (CPU and every CUDA device)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """Every RNG stream the run draws from: (tensors, JSON-able values).

    CUDA state is taken from the current device only, and only once CUDA is
    in use, so a CPU run never initialises CUDA and a torchrun rank never
    touches another rank's GPU.
    """
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    version, internal, gauss = random.getstate()
    meta: dict = {"python": [version, list(internal), gauss]}
    np = sys.modules.get("numpy")
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        tensors["rng.numpy"] = torch.from_numpy(keys.astype("int64"))
        meta["numpy"] = [kind, int(pos), int(has_gauss), float(cached)]
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict | None = None) -> None:
    """Put back what :func:`capture_rng` took."""
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        if "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        else:  # checkpoints that saved every device's state
            legacy = tensors.get(f"rng.cuda.{torch.cuda.current_device()}")
            if legacy is not None:
                torch.cuda.set_rng_state(legacy)
    meta = meta or {}
    if "python" in meta:
        version, internal, gauss = meta["python"]
        random.setstate((version, tuple(internal), gauss))
    np = sys.modules.get("numpy")
    if np is not None and "numpy" in meta and "rng.numpy" in tensors:
        kind, pos, has_gauss, cached = meta["numpy"]
        np.random.set_state((kind, tensors["rng.numpy"].numpy().astype("uint32"), pos, has_gauss, cached))


# --- checkpoint folders --------------------------------------------------------------------


def _step_of(folder: Path) -> int:
    return int(folder.name.split("-")[1])


def checkpoints(out: str | Path) -> list[Path]:
    """The complete checkpoint folders under ``out``, oldest first."""
    folder = Path(out) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    done = [p for p in folder.glob("step-*") if p.name.split("-")[1].isdigit() and (p / STATE_NAME).is_file()]
    return sorted(done, key=_step_of)


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint folder under ``out``, or None."""
    found = checkpoints(out)
    return found[-1] if found else None


def prune_checkpoints(out: str | Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints (all when ``keep`` <= 0); remove leftovers of killed writes
    (those of live processes and other machines stay: see :func:`zoo_core.files.remove_stale`)."""
    found = checkpoints(out)
    if keep > 0:
        for old in found[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    remove_stale(Path(out) / CHECKPOINT_DIR)


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def ema_dir(ema, decay: float) -> str:
    """The checkpoint folder of one of ``ema``'s averages: ``ema/`` for the one evaluated and saved,
    ``ema-DECAY/`` for each further decay."""
    return EMA_DIR if decay == ema.decay else f"{EMA_DIR}-{decay}"


def save_checkpoint(out: str | Path, *, model, optimizers: dict, schedulers: dict, state: TrainState,
                    ema=None, step_state: dict | None = None, keep: int = 2, settings: dict | None = None) -> Path:
    """Write the checkpoint of ``state.step`` (call on one process only) and prune old ones.

    ``settings`` (the run's TrainConfig as a dict) are kept so that a resume can tell when they changed.
    """
    from safetensors.torch import save_file

    out = Path(out)
    target = out / CHECKPOINT_DIR / f"step-{state.step:08d}"
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp / MODEL_DIR, card="")
        if ema is not None:
            for decay, module in ema.modules.items():
                module.save_pretrained(tmp / ema_dir(ema, decay), card="")
        if _has_model(out / BEST_NAME):
            copy_dir(out / BEST_NAME, tmp / BEST_DIR)
        tensors, optim_meta = _flatten_optimizers(optimizers)
        sched_meta = {name: encode_state(s.state_dict(), f"sched.{name}", tensors) for name, s in schedulers.items()}
        step_meta = encode_state(step_state or {}, "step", tensors)
        rng_tensors, rng_meta = capture_rng()
        tensors.update(rng_tensors)
        save_file(tensors, tmp / TENSORS_NAME)
        saved = {"state": state.to_json(), "optimizers": optim_meta, "schedulers": sched_meta, "rng": rng_meta,
                 "ema": None if ema is None else {"updates": ema.updates, "decays": list(ema.decays),
                                                  "zero_debiased": True}, "train_step": step_meta,
                 "settings": settings}
        (tmp / STATE_NAME).write_text(json.dumps(_strict_floats(saved), indent=1, allow_nan=False), encoding="utf-8")
    prune_checkpoints(out, keep)
    return target


def _strict_floats(obj: Any) -> Any:
    """A copy of ``obj`` with NaN and infinities as ``{"__float__": "nan"}``: a diverged run's losses and metrics
    must not make its checkpoints unreadable (strict JSON, as :func:`read_checkpoint_meta` reads it, has no NaN)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, dict):
        return {k: _strict_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict_floats(v) for v in obj]
    return obj


def _loose_floats(obj: Any) -> Any:
    """The inverse of :func:`_strict_floats`."""
    if isinstance(obj, dict):
        if set(obj) == {"__float__"} and obj["__float__"] in ("nan", "inf", "-inf"):
            return float(obj["__float__"])
        return {k: _loose_floats(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_loose_floats(v) for v in obj]
    return obj


def load_weights(module, folder: str | Path) -> None:
    """Copy a model folder's weights into ``module`` in place (its parameters stay the same objects).

    Every name, shape and dtype is checked before the first tensor is copied,
    so damage never leaves the module half loaded.
    """
    from .reader import read_weights

    device = next(module.parameters()).device
    expected = module.state_dict()
    tensors = read_weights(folder, device=device, expected=expected)
    with torch.no_grad():
        module.load_state_dict(tensors, strict=False)
    module.tie_weights()


class DamagedCheckpoint(ZooError):
    """A checkpoint folder whose files cannot be read back (truncated, zero-filled, not what they claim)."""


@dataclass
class Checkpoint:
    """A checkpoint read whole and checked, not yet put into a run (see :func:`apply_checkpoint`)."""

    folder: Path
    saved: dict  # trainer_state.json
    model_config: dict  # model/config.json, without "architecture"
    tensors: dict = field(default_factory=dict)  # trainer_state.safetensors
    weights: dict | None = None
    ema_weights: dict | None = None
    optimizers: dict = field(default_factory=dict)  # name -> optimizer state dict
    schedulers: dict = field(default_factory=dict)  # name -> scheduler state dict
    state: TrainState | None = None
    step_state: dict = field(default_factory=dict)

    @property
    def settings(self) -> dict | None:
        """The TrainConfig (as a dict) of the run that wrote it; None for checkpoints from before it was kept."""
        return self.saved.get("settings")


def read_checkpoint_meta(folder: str | Path) -> Checkpoint:
    """The small part of a checkpoint (trainer state JSON, model config), or :class:`DamagedCheckpoint`."""
    from .reader import read_config, read_json

    folder = Path(folder)
    try:
        saved = _loose_floats(read_json(folder / STATE_NAME, STATE_NAME, limit=1 << 30))
        if not isinstance(saved, dict) or not isinstance(saved.get("state", saved), dict):
            raise ZooError(f"{STATE_NAME} is not a trainer state", where=str(folder / STATE_NAME))
        TrainState.from_json(saved.get("state", saved))
        _, model_config = read_config(folder / MODEL_DIR)
    except (ZooError, KeyError, TypeError, ValueError) as exc:
        raise _damaged(folder, exc) from None
    return Checkpoint(folder, saved, model_config)


def read_checkpoint(folder: str | Path | Checkpoint, *, model, ema=None) -> Checkpoint:
    """Read a checkpoint whole (weights checked against ``model``, optimizer state decoded) without touching
    the run; :class:`DamagedCheckpoint` if any of it is damaged."""
    from .reader import read_header, read_tensors, read_weights

    ck = folder if isinstance(folder, Checkpoint) else read_checkpoint_meta(folder)
    folder, saved = ck.folder, ck.saved
    try:
        device = next(model.parameters()).device
        ck.weights = read_weights(folder / MODEL_DIR, device=device, expected=model.state_dict())
        if ema is not None and all((folder / ema_dir(ema, d)).is_dir() for d in ema.decays):
            ck.ema_weights = {d: read_weights(folder / ema_dir(ema, d), device=device, expected=m.state_dict())
                              for d, m in ema.modules.items()}
        path = folder / TENSORS_NAME
        ck.tensors = read_tensors({path: read_header(path)})
        rng = ck.tensors.get("rng.torch")
        if rng is None or rng.dtype != torch.uint8 or rng.shape != torch.get_rng_state().shape:
            raise ZooError(f"{TENSORS_NAME} has no usable RNG state", where=str(path))
        ck.optimizers = {name: _decode_optimizer(name, meta, ck.tensors)
                         for name, meta in saved.get("optimizers", {}).items()}
        ck.schedulers = {name: decode_state(meta, ck.tensors) for name, meta in (saved.get("schedulers") or {}).items()}
        ck.state = TrainState.from_json(saved.get("state", saved))
        ck.step_state = decode_state(saved.get("train_step") or {}, ck.tensors)
    except (ZooError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _damaged(folder, exc) from None
    return ck


def _damaged(folder: Path, exc: Exception) -> DamagedCheckpoint:
    if isinstance(exc, ZooError):
        return DamagedCheckpoint(exc.what, where=exc.where or str(folder), hint=exc.hint)
    return DamagedCheckpoint(f"{type(exc).__name__}: {exc}", where=str(folder))


def _decode_optimizer(name: str, meta: dict, tensors: dict) -> dict:
    state: dict = {}
    for pid, values in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(decode_state(values, tensors))
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix) and not key.startswith(f"{prefix}groups."):
            pid, _, field_name = key[len(prefix):].partition(".")
            if pid.isdigit() and field_name and "." not in field_name:  # dotted: nested, decoded above
                state.setdefault(int(pid), {})[field_name] = value
    return {"state": state, "param_groups": decode_state(meta["param_groups"], tensors)}


def apply_checkpoint(ck: Checkpoint, *, model, optimizers: dict, schedulers: dict,
                     ema=None) -> tuple[TrainState, dict]:
    """Put a checkpoint read by :func:`read_checkpoint` into the run's objects and the RNG.

    Returns (state, the step's own state). What does not fit the run (another
    optimizer, no EMA) is a ZooError raised before the weights are touched.
    """
    folder = ck.folder
    for name in optimizers:
        if name not in ck.optimizers:
            raise ZooError(f"the checkpoint has no state for optimizer {name!r} (it has: {', '.join(ck.optimizers)})",
                           where=str(folder),
                           hint="resume with the recipe that wrote it, or start over with --no-resume")
    if ema is not None and ck.ema_weights is None:
        raise ZooError("the checkpoint has no EMA weights but this run keeps an EMA", where=str(folder),
                       hint="resume with the settings that wrote it (ema_decay), or start over with --no-resume")
    for name, opt in optimizers.items():
        try:
            opt.load_state_dict(ck.optimizers[name])
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ZooError(f"the checkpoint's state of optimizer {name!r} does not fit this run's: {exc}",
                           where=str(folder), hint="resume with the recipe and model settings that wrote it, "
                                                   "or start over with --no-resume") from None
    for name, sched in schedulers.items():
        if name in ck.schedulers:
            sched.load_state_dict(ck.schedulers[name])
    with torch.no_grad():
        model.load_state_dict(ck.weights, strict=False)
        model.tie_weights()
        if ema is not None:
            for decay, module in ema.modules.items():
                module.load_state_dict(ck.ema_weights[decay], strict=False)
                module.tie_weights()
            ema.set_updates((ck.saved.get("ema") or {}).get("updates", 1))
    restore_rng(ck.tensors, ck.saved.get("rng"))
    return ck.state, ck.step_state


def load_checkpoint(folder: str | Path, *, model, optimizers: dict, schedulers: dict,
                    ema=None) -> tuple[TrainState, dict]:
    """Restore a checkpoint into the run's objects and the RNG; return (state, the step's own state).

    Everything is read and checked first (:class:`DamagedCheckpoint` if any
    of it is damaged), so a failed load changes nothing.
    """
    ck = read_checkpoint(folder, model=model, ema=ema)
    return apply_checkpoint(ck, model=model, optimizers=optimizers, schedulers=schedulers, ema=ema)


def set_aside(folder: str | Path) -> Path:
    """Rename a damaged checkpoint so that no resume picks it again; return its new path."""
    folder = Path(folder)
    target = folder.with_name(f"{folder.name}.damaged")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(folder, target)
    return target


def restore_best(checkpoint: str | Path, out: str | Path) -> None:
    """Put the checkpoint's copy of the best model back into ``OUT/model`` (call on one process only).

    A damaged copy is not put back: ``OUT/model`` stays as it is, and a warning says so.
    """
    from .reader import read_config, read_headers

    best = Path(checkpoint) / BEST_DIR
    if not _has_model(best):
        return
    try:
        read_config(best)
        read_headers(best)
    except ZooError as exc:
        print(f"zoo: the best model saved in {Path(checkpoint).name} is damaged ({exc.what}; {exc.where}); "
              f"{Path(out) / BEST_NAME} is left as it is", file=sys.stderr)
        return
    copy_dir(best, Path(out) / BEST_NAME)


# --- the log -------------------------------------------------------------------------------


def truncate_log(path: str | Path, step: int) -> list[int]:
    """Drop log lines past ``step``: a run that died after its last checkpoint logged steps it will redo.

    A line that cannot be read back (cut off mid-write, zero-filled by a
    crash, not a JSON record) is dropped too, with a warning on stderr naming
    the file and its line numbers, which are returned.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    tail = lines.pop()  # what follows the last newline: a line cut off mid-write, or nothing
    kept, damaged = [], []
    for number, raw in enumerate(lines, 1):
        record = _log_record(raw)
        if record is None:
            damaged.append(number)
        elif record.get("step", 0) <= step:
            kept.append(raw + b"\n")
    if tail.strip(b"\0 \t\r"):
        damaged.append(len(lines) + 1)
    if damaged:
        shown = ", ".join(map(str, damaged[:10])) + (" ..." if len(damaged) > 10 else "")
        print(f"zoo: skipped {len(damaged)} damaged line(s) of {path} (line {shown}): cut off mid-write or "
              "not a JSON record; the run goes on without them", file=sys.stderr)
    if len(kept) != len(lines) or tail:
        write_text(path, b"".join(kept).decode("utf-8"))
    return damaged


def _log_record(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step", 0)
    return record if isinstance(step, int) and not isinstance(step, bool) else None
