"""Data-parallel helpers: process group set-up from the ``torchrun`` environment, reductions.

Launch a run on several processes with ``torchrun``; each process trains on its shard of every
global batch (a :class:`torch.utils.data.DistributedSampler`) and DDP averages the gradients::

    torchrun --nproc_per_node 2 -m pdekit.cli train experiments/darcy/fno.yaml

The backend is ``nccl`` when the configured device is CUDA (each process takes
``cuda:LOCAL_RANK``) and ``gloo`` on the CPU. Without ``torchrun`` (``WORLD_SIZE`` unset or 1)
nothing is initialised and every helper is a no-op, so the same code runs on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "init_distributed", "is_distributed", "all_reduce_sum", "barrier",
           "broadcast_object", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def init_distributed(device: str = "cpu") -> tuple[DistInfo, str]:
    """Join the ``torchrun`` job if there is one; return ``(info, device)``.

    With ``WORLD_SIZE > 1`` in the environment, initialise the default process group
    (``env://``; ``nccl`` for CUDA, else ``gloo``) unless it already exists, and on CUDA pin this
    process to ``cuda:LOCAL_RANK``. Otherwise return a single-process :class:`DistInfo`.
    """
    if dist.is_available() and dist.is_initialized():
        info = DistInfo(dist.get_rank(), dist.get_world_size(),
                        int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    else:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return DistInfo(), device
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if device.startswith("cuda"):
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, init_method="env://")
        info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)
    if device.startswith("cuda") and info.enabled:
        device = f"cuda:{info.local_rank}"
    return info, device


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over all processes (in place; a no-op on one process)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every process (a no-op on one process)."""
    if is_distributed():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    """Send a picklable object from ``src`` to every process (identity on one process)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def cleanup() -> None:
    """Destroy the process group if this module's user created one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
