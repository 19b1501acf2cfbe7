"""The Trainer interface: the plugin owns one training step, the core owns the loop.

A plugin subclasses :class:`TrainStep` (what one optimisation step is, how to
evaluate) and registers a :class:`zoo_core.specs.TrainerSpec` recipe. The core's
:class:`Trainer` owns everything else: seeding, data loading and sharding,
DistributedDataParallel under ``torchrun``, the progress bar, JSON-lines logs,
safetensors checkpoints, resume, and model selection on validation metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class TrainConfig:
    """Hyper-parameters the core understands; recipe-specific ones go in ``extra``.

    ``batch_size`` is the global batch: under torchrun each of the N processes
    takes ``batch_size // N`` examples of it.
    """

    out: str = "runs/model"
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    log_every: int = 50
    checkpoint_every: int = 500  # steps; a checkpoint is also written after every epoch
    keep_checkpoints: int = 2
    eval_every: int = 1  # epochs
    eval_batch_size: int = 500
    limit_train: int | None = None  # use only the first N training examples
    limit_eval: int | None = None
    num_workers: int = 0
    threads: int | None = None  # torch intra-op threads; None keeps torch's default
    resume: bool = True  # continue from the newest checkpoint in ``out`` if there is one
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Known keys become fields; unknown ones go into ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in values.items() if k in names and k != "extra"}
        extra = dict(values.get("extra", {}))
        extra.update({k: v for k, v in values.items() if k not in names})
        return cls(**known, extra=extra)


class TrainStep:
    """The plugin's half of training.

    The core calls :meth:`training_step` once per batch with the (possibly
    DDP-wrapped) model. By default the core then runs ``backward`` on the
    returned ``"loss"`` and steps the single optimizer. A step that needs
    control of its updates (a GAN's alternating D and G steps) sets
    ``manual_optimization = True`` and calls backward and ``opt.step()``
    itself; the core still checkpoints every optimizer it returned.

    ``monitor`` names the metric of :meth:`evaluate` used to pick the best
    model, and ``monitor_mode`` whether higher (``"max"``) or lower is better.
    """

    manual_optimization: bool = False
    monitor: str = "loss"
    monitor_mode: str = "min"

    def __init__(self, model: torch.nn.Module, config: TrainConfig):
        self.model = model
        self.config = config

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers; the names key their state in checkpoints."""
        return {"adam": torch.optim.Adam(self.model.parameters(), lr=self.config.lr)}

    def training_step(self, model: torch.nn.Module, batch: Any, optimizers: dict) -> dict[str, torch.Tensor]:
        """Compute the loss of one batch; return ``{"loss": tensor, ...}`` (other entries are logged)."""
        raise NotImplementedError

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, loader) -> dict[str, float]:
        """Metrics over a whole split (validation during training, test in ``zoo eval``)."""
        raise NotImplementedError

    def model_card(self, model, metrics: dict, state: dict) -> str | None:
        """The README of the best model folder; None uses the core's default card.

        ``metrics`` are the validation metrics that made it the best; ``state``
        says when: ``step``, ``epoch`` and ``elapsed`` (wall seconds of training).
        """
        return None


# --- the core's half: the loop -------------------------------------------------------------

CHECKPOINT_DIR = "checkpoints"
LOG_NAME = "log.jsonl"
METRICS_NAME = "metrics.json"
STATE_NAME = "trainer_state.json"
TENSORS_NAME = "trainer_state.safetensors"


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed(device: str) -> tuple[int, int]:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1); return (rank, world size)."""
    import os

    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    if _dist():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(device: str) -> str:
    """``"auto"`` becomes this rank's GPU when there is one, else the CPU."""
    import os

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (if present) and torch."""
    import random

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


class _SkipSampler(torch.utils.data.Sampler):
    """Wraps a sampler and drops its first ``skip`` indices, to resume mid-epoch without loading them."""

    def __init__(self, inner):
        self.inner, self.skip = inner, 0

    def __iter__(self):
        import itertools

        return itertools.islice(iter(self.inner), self.skip, None)

    def __len__(self):
        return max(0, len(self.inner) - self.skip)


def _flatten_optimizers(optimizers: dict) -> tuple[dict, dict]:
    """Split optimizer state dicts into tensors (for safetensors) and JSON-able scalars."""
    tensors, meta = {}, {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        scalars: dict = {}
        for pid, state in sd["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{pid}.{key}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(pid), {})[key] = value
        meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
    return tensors, meta


def _unflatten_optimizers(optimizers: dict, tensors: dict, meta: dict) -> None:
    for name, opt in optimizers.items():
        state: dict = {}
        for pid, values in meta[name]["scalars"].items():
            state.setdefault(int(pid), {}).update(values)
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                pid, _, field_name = key[len(prefix):].partition(".")
                state.setdefault(int(pid), {})[field_name] = value
        opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})


def _rng_state() -> dict:
    state = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            state[f"rng.cuda.{i}"] = s
    return state


def _set_rng_state(tensors: dict) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


class Trainer:
    """Runs a registered recipe: ``Trainer(recipe, config).fit()``.

    Runs unchanged under ``torchrun --nproc-per-node N``: each process takes
    ``batch_size // N`` of every global batch (a DistributedSampler shards one
    shuffled order, so the N shards of a step are exactly the examples one
    process would see), DDP averages the gradients, and only rank 0 writes.
    """

    def __init__(self, recipe, config: TrainConfig, *, model_overrides: dict | None = None):
        self.recipe = recipe
        self.config = config
        self.model_overrides = dict(recipe.model_config, **(model_overrides or {}))

    # -- building blocks ---------------------------------------------------------------

    def build_model(self):
        """A fresh model of the recipe's architecture."""
        from .plugins import get_model_spec

        cls = get_model_spec(self.recipe.model).load()
        return cls.from_config(self.model_overrides)

    def build_dataset(self):
        """The recipe's dataset object (not yet split)."""
        from .plugins import get_dataset_spec

        cls = get_dataset_spec(self.recipe.dataset).load()
        options = dict(self.recipe.dataset_options)
        options.update(self.config.extra.get("dataset_options", {}))
        return cls(seed=self.config.seed, **options)

    def _subset(self, data, limit):
        if limit is not None and limit < len(data):
            return torch.utils.data.Subset(data, range(limit))
        return data

    # -- the loop ---------------------------------------------------------------------------

    def fit(self):
        """Train; return the folder of the best model (by the step's monitored metric)."""
        import json
        from pathlib import Path

        from torch.nn.parallel import DistributedDataParallel as DDP
        from torch.utils.data import DataLoader
        from torch.utils.data.distributed import DistributedSampler

        cfg = self.config
        device = resolve_device(cfg.device)
        rank, world = init_distributed(device)
        if cfg.batch_size % world:
            from .errors import ZooError

            raise ZooError(f"global batch size {cfg.batch_size} does not split over {world} processes",
                           hint=f"use a batch size divisible by {world}")
        out = Path(cfg.out)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed)
        model = self.build_model().to(device)
        step_impl = self.recipe.load_step()(model, cfg)
        optimizers = step_impl.configure_optimizers()
        dataset = self.build_dataset()
        train = self._subset(dataset.split("train"), cfg.limit_train)
        val = self._subset(dataset.split("validation"), cfg.limit_eval)

        sampler = _SkipSampler(DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True,
                                                  seed=cfg.seed, drop_last=True))
        # Its own generator keeps the DataLoader from drawing on the global RNG, which the step owns.
        loader = DataLoader(train, batch_size=cfg.batch_size // world, sampler=sampler, drop_last=True,
                            num_workers=cfg.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
        steps_per_epoch = len(sampler.inner) // (cfg.batch_size // world)
        if steps_per_epoch == 0:
            from .errors import ZooError

            raise ZooError(f"the training split has fewer than {cfg.batch_size} examples",
                           hint="lower --batch-size or raise --limit-train")
        wrapped = DDP(model) if world > 1 else model

        import time

        state = {"step": 0, "epoch": 0, "best": None, "history": [], "elapsed": 0.0}
        ckpt = self.latest_checkpoint(out) if cfg.resume else None
        if ckpt is not None:
            state = self._load_checkpoint(ckpt, model, optimizers)
            state.setdefault("elapsed", 0.0)
        # Wall seconds of training so far, summed across resumed runs.
        started = time.monotonic() - state["elapsed"]
        self._clock = lambda: time.monotonic() - started
        total = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)

        bar = None
        if rank == 0 and cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=state["step"], desc=self.recipe.name, unit="step", dynamic_ncols=True)
        log = None
        if rank == 0:
            out.mkdir(parents=True, exist_ok=True)
            _truncate_log(out / LOG_NAME, state["step"])
            log = (out / LOG_NAME).open("a")
        try:
            while state["step"] < total:
                epoch = state["step"] // steps_per_epoch
                sampler.inner.set_epoch(epoch)
                sampler.skip = (state["step"] % steps_per_epoch) * (cfg.batch_size // world)
                if hasattr(train, "set_epoch"):
                    train.set_epoch(epoch)
                elif hasattr(dataset, "set_epoch"):
                    dataset.set_epoch(epoch)
                model.train()
                for batch in loader:
                    batch = _to_device(batch, device)
                    if not step_impl.manual_optimization:
                        for opt in optimizers.values():
                            opt.zero_grad(set_to_none=True)
                    logs = step_impl.training_step(wrapped, batch, optimizers)
                    if not step_impl.manual_optimization:
                        logs["loss"].backward()
                        for opt in optimizers.values():
                            opt.step()
                    state["step"] += 1
                    if rank == 0:
                        scalars = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()}
                        if bar is not None:
                            bar.update(1)
                            bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items()}, refresh=False)
                        if state["step"] % cfg.log_every == 0 or state["step"] == total:
                            log.write(json.dumps({"step": state["step"], "epoch": epoch,
                                                  "time": round(self._clock(), 3), **scalars}) + "\n")
                            log.flush()
                    end_of_epoch = state["step"] % steps_per_epoch == 0
                    done = state["step"] >= total
                    if end_of_epoch or done:
                        if (epoch + 1) % cfg.eval_every == 0 or done:
                            self._validate(step_impl, model, val, state, epoch, out, rank, log)
                    if state["step"] % cfg.checkpoint_every == 0 or end_of_epoch or done:
                        self._save_checkpoint(out, model, optimizers, state, rank)
                    if done or end_of_epoch:
                        break
        finally:
            if bar is not None:
                bar.close()
            if log is not None:
                log.close()
        if rank == 0:
            (out / METRICS_NAME).write_text(json.dumps({"best": state["best"], "history": state["history"]},
                                                       indent=2) + "\n")
        if _dist():
            _dist().barrier()
        return out / "model"

    # -- validation and selection -----------------------------------------------------

    def _validate(self, step_impl, model, val, state, epoch, out, rank, log):
        import json

        if rank == 0:
            # Evaluation must not shift the training RNG stream, or a resumed run would diverge.
            rng = _rng_state()
            loader = _eval_loader(val, self.config)
            model.eval()
            metrics = {k: float(v) for k, v in step_impl.evaluate(model, _DeviceLoader(loader, _device_of(model)))
                       .items()}
            model.train()
            _set_rng_state(rng)
            now = round(self._clock(), 3)
            state["history"].append({"epoch": epoch, "step": state["step"], "time": now, **metrics})
            log.write(json.dumps({"step": state["step"], "epoch": epoch, "time": now, "split": "validation",
                                  **metrics}) + "\n")
            log.flush()
            value = metrics.get(step_impl.monitor)
            better = value is not None and (
                state["best"] is None
                or (value > state["best"]["value"] if step_impl.monitor_mode == "max"
                    else value < state["best"]["value"]))
            if better:
                state["best"] = {"metric": step_impl.monitor, "value": value, "step": state["step"],
                                 "epoch": epoch, "metrics": metrics}
                card = step_impl.model_card(model, metrics, {"step": state["step"], "epoch": epoch,
                                                             "elapsed": round(self._clock(), 1)})
                model.save_pretrained(out / "model", card=card)
        if _dist():
            _dist().barrier()

    # -- checkpoints ------------------------------------------------------------------

    @staticmethod
    def latest_checkpoint(out):
        """The newest complete checkpoint folder under ``out``, or None."""
        from pathlib import Path

        folder = Path(out) / CHECKPOINT_DIR
        if not folder.is_dir():
            return None
        done = [p for p in folder.glob("step-*") if (p / STATE_NAME).is_file()]
        return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)

    def _save_checkpoint(self, out, model, optimizers, state, rank):
        import json
        import shutil
        import tempfile
        from pathlib import Path

        from safetensors.torch import save_file

        from .model import replace_dir

        if rank == 0:
            folder = Path(out) / CHECKPOINT_DIR
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"step-{state['step']:08d}"
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
            try:
                model.save_pretrained(tmp / "model", card="")
                tensors, meta = _flatten_optimizers(optimizers)
                tensors.update(_rng_state())
                save_file(tensors, tmp / TENSORS_NAME)
                state["elapsed"] = self._clock()
                (tmp / STATE_NAME).write_text(json.dumps({**state, "optimizers": meta}, indent=1))
                replace_dir(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            kept = sorted((p for p in folder.glob("step-*") if (p / STATE_NAME).is_file()),
                          key=lambda p: int(p.name.split("-")[1]))
            for old in kept[:-self.config.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        if _dist():
            _dist().barrier()

    def _load_checkpoint(self, folder, model, optimizers) -> dict:
        import json

        from safetensors.torch import load_file

        from .model import read_weights

        model.load_state_dict(read_weights(folder / "model", device=_device_of(model)), strict=False)
        model.tie_weights()
        saved = json.loads((folder / STATE_NAME).read_text())
        tensors = load_file(folder / TENSORS_NAME)
        _unflatten_optimizers(optimizers, tensors, saved.pop("optimizers"))
        _set_rng_state(tensors)
        return saved


def _truncate_log(path, step: int) -> None:
    """Drop log lines past ``step``: a run that died after its last checkpoint logged steps it will redo."""
    import json

    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
    if len(kept) != len(lines):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        tmp.replace(path)


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


def _eval_loader(data, config: TrainConfig):
    # A private generator: iterating a DataLoader otherwise draws a seed from the global RNG.
    return torch.utils.data.DataLoader(data, batch_size=config.eval_batch_size,
                                       generator=torch.Generator().manual_seed(config.seed))


class _DeviceLoader:
    """Moves each batch of a loader to a device."""

    def __init__(self, loader, device):
        self.loader, self.device = loader, device

    def __iter__(self):
        return (_to_device(b, self.device) for b in self.loader)

    def __len__(self):
        return len(self.loader)


def evaluate(recipe, model, split: str = "test", config: TrainConfig | None = None) -> dict[str, float]:
    """Evaluate a model on one split of the recipe's dataset with the recipe's step."""
    config = config or TrainConfig.from_dict(recipe.defaults)
    trainer = Trainer(recipe, config)
    data = trainer._subset(trainer.build_dataset().split(split), config.limit_eval)
    step_impl = recipe.load_step()(model, config)
    loader = _eval_loader(data, config)
    model.eval()
    with torch.no_grad():
        return {k: float(v) for k, v in step_impl.evaluate(model, _DeviceLoader(loader, _device_of(model))).items()}
