"""torchrun plumbing for the Trainer: the process group, the device, collectives and the training sampler.

Under ``torchrun --nproc-per-node N`` every process runs the same script; the
helpers here are no-ops in a single process, so the Trainer calls them
unconditionally.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import torch


def process_group():
    """``torch.distributed`` when a process group is initialised, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def init_distributed(device: str, backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun set up (``WORLD_SIZE`` > 1); return (rank, world size).

    The backend is ``backend`` if given, else NCCL for CUDA devices and gloo
    otherwise. NCCL cannot reduce sparse gradients: a step with sparse
    embeddings asks for gloo (``TrainStep.distributed_backend``), on GPUs too.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))  # collectives on objects use the current device
        dist.init_process_group(backend=backend or ("nccl" if device.startswith("cuda") else "gloo"))
    return rank(), world_size()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    pg = process_group()
    return pg.get_rank() if pg else 0


def world_size() -> int:
    """The number of processes (1 without a process group)."""
    pg = process_group()
    return pg.get_world_size() if pg else 1


def shard_draw(fn, rows: int, *shape: int, device=None) -> torch.Tensor:
    """Random numbers for this process's ``rows`` examples of the global batch: ``fn(rows * N, *shape)``
    drawn whole in every process, then rows rank, rank + N, ... kept (``fn`` is e.g. ``torch.randn``).

    The core's training sampler deals the global batch out the same way and seeds every process's
    generator alike, so N processes pair each example with the same random numbers as one process
    does: a GAN's z, WGAN-GP's interpolation weights. Without a process group it is ``fn(rows, *shape)``.
    """
    r, world = rank(), world_size()
    full = fn(rows * world, *shape, device=device)
    return full[r::world] if world > 1 else full


def is_main() -> bool:
    """Whether this is rank 0, the process that writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op in a single process)."""
    pg = process_group()
    if pg:
        pg.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (any picklable value) on every rank; the object itself in a single process."""
    pg = process_group()
    if not pg:
        return obj
    box = [obj]
    pg.broadcast_object_list(box, src=src)
    return box[0]


def resolve_device(device: str) -> str:
    """``"auto"`` becomes this rank's GPU (``LOCAL_RANK``) when there is one, else the CPU."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return "cpu"


class _SkipSampler(torch.utils.data.Sampler):
    """Wraps a sampler and drops its first ``skip`` indices, to resume mid-epoch without loading them."""

    def __init__(self, inner):
        self.inner, self.skip = inner, 0

    def __iter__(self):
        return itertools.islice(iter(self.inner), self.skip, None)

    def __len__(self):
        return max(0, len(self.inner) - self.skip)


def train_sampler(data, *, rank: int, world: int, seed: int) -> _SkipSampler:
    """The training sampler: one shuffled order per epoch (``set_epoch``), sharded over the processes.

    The N shards of a global batch are exactly the examples one process would
    see at that step, so N processes train like one. Set ``.skip`` (examples of
    this rank's shard) to resume mid-epoch and ``.inner.set_epoch(e)`` per epoch.
    """
    from torch.utils.data.distributed import DistributedSampler

    return _SkipSampler(DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                           drop_last=True))
