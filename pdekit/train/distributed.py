"""Data-parallel runs: one :class:`Distributed` per run joins the ``torchrun`` job and tears it down.

Launch a run on several processes with ``torchrun``; each process trains on its shard of every
global batch (a :class:`torch.utils.data.DistributedSampler`) and DDP averages the gradients::

    torchrun --nproc_per_node 2 -m pdekit.cli train experiments/darcy/fno.yaml

The backend is ``nccl`` when the configured device is CUDA (each process takes
``cuda:LOCAL_RANK``) and ``gloo`` on the CPU. Without ``torchrun`` (``WORLD_SIZE`` unset or 1)
nothing is initialised and every helper is a no-op, so the same code runs on one process.

Lifetime. :meth:`Distributed.setup` creates the process group once per run, with a timeout
(``dist_timeout_s``, default 10 minutes): a collective that waits longer for a peer fails instead
of hanging. Use the object as a context manager: leaving the ``with`` block on any path (return,
error, Ctrl-C) is a *collective* teardown, every process waits for the others at a barrier before
the group is destroyed, so no process tears down the transport while another is still using it.
A failure of the group itself (a peer that crashed or stopped answering) is raised as a one-line
:class:`PeerLostError`.
"""

from __future__ import annotations

import datetime
import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["Distributed", "PeerLostError", "DEFAULT_TIMEOUT_S", "is_distributed",
           "all_reduce_sum", "barrier", "broadcast_object", "is_peer_failure"]

DEFAULT_TIMEOUT_S = 600.0
_ERROR_TEARDOWN_S = 30.0  # after an error, wait at most this long for the others at the barrier
_COMM_MARKERS = ("connection closed by peer", "connection reset by peer", "timed out waiting",
                 "gloo", "nccl", "processgroup", "socket", "broken pipe")


class PeerLostError(RuntimeError):
    """A process of the data-parallel job crashed, was killed or stopped answering in time."""


def is_peer_failure(e: BaseException) -> bool:
    """Whether ``e`` is a failure of the process group's communication (not of the model).

    gloo reports a lost peer as a plain ``RuntimeError`` ("Connection closed by peer", "Timed out
    waiting ... for recv"); only its message tells it from other runtime errors.

    Examples
    --------
    >>> is_peer_failure(RuntimeError("[pair.cc:553] Connection closed by peer [127.0.0.1]:1"))
    True
    >>> is_peer_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    False
    """
    if isinstance(e, (PeerLostError, dist.DistError)):
        return True
    if not isinstance(e, RuntimeError) or isinstance(e, torch.OutOfMemoryError):
        return False
    text = str(e).lower()
    return any(m in text for m in _COMM_MARKERS)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in the job, and the owner of the process group's lifetime.

    Build it with :meth:`setup` (once per run); the default instance is a single process.

    Examples
    --------
    >>> with Distributed.setup("cpu") as d:   # no torchrun: one process, nothing initialised
    ...     d.rank, d.world_size, d.is_main, d.enabled, d.device
    (0, 1, True, False, 'cpu')
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    owns_group: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def setup(cls, device: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> Distributed:
        """Join the ``torchrun`` job if there is one (or adopt a group that already exists).

        With ``WORLD_SIZE > 1`` in the environment, initialise the default process group
        (``env://``; ``nccl`` for CUDA, else ``gloo``) with a timeout of ``timeout_s`` seconds, and
        on CUDA pin this process to ``cuda:LOCAL_RANK``. Only a group created here is destroyed by
        :meth:`shutdown`.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        owns = False
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
            local_rank = int(os.environ.get("LOCAL_RANK", rank))
        else:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            if world <= 1:
                return cls(device=device, timeout_s=float(timeout_s))
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            if device.startswith("cuda"):
                torch.cuda.set_device(local_rank)
            dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo",
                                    init_method="env://",
                                    timeout=datetime.timedelta(seconds=float(timeout_s)))
            rank, world, owns = dist.get_rank(), dist.get_world_size(), True
        if device.startswith("cuda") and world > 1:
            device = f"cuda:{local_rank}"
        return cls(rank, world, local_rank, device, owns, float(timeout_s))

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train: ``DistributedDataParallel(model)`` in a job, else ``model``."""
        if not self.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(model, device_ids=ids)

    def shutdown(self, *, failed: bool = False) -> None:
        """Collective teardown: wait for every process at a barrier, then destroy the group.

        Does nothing unless :meth:`setup` created the group. ``failed``: this process leaves on
        an error, so wait at most 30 s (or the group timeout, if shorter) for the others, and
        skip the barrier when the error was the group's own. On a normal exit a barrier that
        fails (a peer lost after training) raises :class:`PeerLostError`.
        """
        if not (self.owns_group and dist.is_available() and dist.is_initialized()):
            return
        gc.collect()  # free unreachable DDP wrappers now: they hold the group until destroyed
        try:
            if not failed:
                self._barrier(self.timeout_s)
            else:
                self._barrier(min(self.timeout_s, _ERROR_TEARDOWN_S))
        except RuntimeError as e:
            if not failed:
                raise PeerLostError(self.describe(e)) from None
        finally:
            dist.destroy_process_group()

    def _barrier(self, timeout_s: float) -> None:
        if dist.get_backend() == "gloo":
            # gloo's barrier with its own timeout (and the missing ranks named on failure)
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s))
        else:
            dist.barrier(device_ids=[self.local_rank])

    def describe(self, e: BaseException) -> str:
        """One line for a lost peer: this process's rank and the transport's message."""
        return (f"rank {self.rank} of {self.world_size}: lost a peer process of the "
                f"data-parallel run ({_first_line(e)}); a peer crashed, was killed or did not "
                f"answer within dist_timeout_s={self.timeout_s:g}")

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if exc is not None and is_peer_failure(exc):
            if self.owns_group and dist.is_initialized():
                gc.collect()
                dist.destroy_process_group()  # the group is broken: no barrier to wait at
            return
        self.shutdown(failed=exc is not None)


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


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
