"""Training state, checkpoints and exact resume.

A checkpoint is one folder, written atomically (``files.atomic_dir``)::

    OUT/checkpoints/step-00001200/
        model/                       the training weights (a model folder, no card)
        ema/                         the EMA weights, when the run keeps an EMA
        best/                        OUT/model as it was at this step (hard links), when there was one
        trainer_state.json           TrainState, optimizer hyper-parameters and scalars,
                                     scheduler and step state, Python/NumPy RNG state
        trainer_state.safetensors    optimizer tensors (moments, step counts), torch/CUDA RNG state

Resuming from it restores all of that, so a run stopped and resumed ends
bit-identical to one that ran straight through. ``best/`` makes that hold even
when a run died after saving a better model but before its next checkpoint:
resume puts the best model of the checkpoint's time back into ``OUT/model``.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .files import PARTIAL_SUFFIX, atomic_dir, copy_dir, write_text

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
    from .errors import ZooError

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


def _unflatten_optimizers(optimizers: dict, tensors: dict, meta: dict) -> None:
    for name, opt in optimizers.items():
        if name not in meta:
            from .errors import ZooError

            raise ZooError(f"the checkpoint has no state for optimizer {name!r} (it has: {', '.join(meta)})",
                           hint="resume with the recipe that wrote it, or start over with --no-resume")
        state: dict = {}
        for pid, values in meta[name]["scalars"].items():
            state.setdefault(int(pid), {}).update(decode_state(values, tensors))
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix) and not key.startswith(f"{prefix}groups."):
                pid, _, field_name = key[len(prefix):].partition(".")
                if pid.isdigit() and field_name and "." not in field_name:  # dotted: nested, decoded above
                    state.setdefault(int(pid), {})[field_name] = value
        opt.load_state_dict({"state": state, "param_groups": decode_state(meta[name]["param_groups"], tensors)})


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
    """Keep the newest ``keep`` checkpoints (all when ``keep`` <= 0); remove leftovers of killed writes."""
    found = checkpoints(out)
    if keep > 0:
        for old in found[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    for stale in (Path(out) / CHECKPOINT_DIR).glob(f".step-*{PARTIAL_SUFFIX}"):
        shutil.rmtree(stale, ignore_errors=True)


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file()


def save_checkpoint(out: str | Path, *, model, optimizers: dict, schedulers: dict, state: TrainState,
                    ema=None, step_state: dict | None = None, keep: int = 2) -> Path:
    """Write the checkpoint of ``state.step`` (call on one process only) and prune old ones."""
    from safetensors.torch import save_file

    out = Path(out)
    target = out / CHECKPOINT_DIR / f"step-{state.step:08d}"
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp / MODEL_DIR, card="")
        if ema is not None:
            ema.module.save_pretrained(tmp / EMA_DIR, card="")
        if _has_model(out / BEST_NAME):
            copy_dir(out / BEST_NAME, tmp / BEST_DIR)
        tensors, optim_meta = _flatten_optimizers(optimizers)
        sched_meta = {name: encode_state(s.state_dict(), f"sched.{name}", tensors) for name, s in schedulers.items()}
        step_meta = encode_state(step_state or {}, "step", tensors)
        rng_tensors, rng_meta = capture_rng()
        tensors.update(rng_tensors)
        save_file(tensors, tmp / TENSORS_NAME)
        saved = {"state": state.to_json(), "optimizers": optim_meta, "schedulers": sched_meta, "rng": rng_meta,
                 "ema": None if ema is None else {"updates": ema.updates}, "train_step": step_meta}
        (tmp / STATE_NAME).write_text(json.dumps(saved, indent=1), encoding="utf-8")
    prune_checkpoints(out, keep)
    return target


def load_weights(module, folder: str | Path) -> None:
    """Copy a model folder's weights into ``module`` in place (its parameters stay the same objects)."""
    from .model import read_weights

    device = next(module.parameters()).device
    with torch.no_grad():
        module.load_state_dict(read_weights(folder, device=device), strict=False)
    module.tie_weights()


def load_checkpoint(folder: str | Path, *, model, optimizers: dict, schedulers: dict,
                    ema=None) -> tuple[TrainState, dict]:
    """Restore a checkpoint into the run's objects and the RNG; return (state, the step's own state)."""
    from safetensors.torch import load_file

    from .errors import ZooError

    folder = Path(folder)
    load_weights(model, folder / MODEL_DIR)
    saved = json.loads((folder / STATE_NAME).read_text(encoding="utf-8"))
    tensors = load_file(folder / TENSORS_NAME)
    _unflatten_optimizers(optimizers, tensors, saved.pop("optimizers"))
    for name, sched in schedulers.items():
        if name in saved.get("schedulers", {}):
            sched.load_state_dict(decode_state(saved["schedulers"][name], tensors))
    if ema is not None:
        if not (folder / EMA_DIR).is_dir():
            raise ZooError("the checkpoint has no EMA weights but this run keeps an EMA", where=str(folder),
                           hint="resume with the settings that wrote it (ema_decay), or start over with --no-resume")
        load_weights(ema.module, folder / EMA_DIR)
        ema.set_updates((saved.get("ema") or {}).get("updates", 1))
    state = TrainState.from_json(saved.get("state", saved))
    step_state = decode_state(saved.get("train_step") or {}, tensors)
    restore_rng(tensors, saved.get("rng"))
    return state, step_state


def restore_best(checkpoint: str | Path, out: str | Path) -> None:
    """Put the checkpoint's copy of the best model back into ``OUT/model`` (call on one process only)."""
    best = Path(checkpoint) / BEST_DIR
    if _has_model(best):
        copy_dir(best, Path(out) / BEST_NAME)


# --- the log -------------------------------------------------------------------------------


def truncate_log(path: str | Path, step: int) -> None:
    """Drop log lines past ``step``: a run that died after its last checkpoint logged steps it will redo.

    A last line cut off mid-write is dropped too.
    """
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if line.endswith("\n") and record.get("step", 0) <= step:
            kept.append(line)
    if len(kept) != len(lines):
        write_text(path, "".join(kept))
