"""Checkpoint files and RNG state of a training run: seeding, atomic writes, reading back.

A trainer checkpoint is a ``torch.save`` dict tagged ``format: "pdekit-train"``; it holds the
model, optimiser, scheduler and GradScaler states, the counters, the metric history and every RNG
state (python, numpy's legacy global RNG, torch CPU and CUDA). Writes go to a temporary file in
the same folder that replaces the old file with ``os.replace``, so a kill never leaves a torn file.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from pdekit.errors import PdekitUserError

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "seed_everything",
    "rng_state",
    "set_rng_state",
    "save_atomic",
    "load_checkpoint_file",
]

CHECKPOINT_FORMAT = "pdekit-train"
CHECKPOINT_VERSION = 1


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device).

    Examples
    --------
    >>> seed_everything(3); a = torch.rand(2)
    >>> seed_everything(3); torch.equal(a, torch.rand(2))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (user code may use the legacy global RNG)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG state of this process, as tensors and python values (``weights_only`` loadable).

    Examples
    --------
    >>> state = rng_state(); a = torch.rand(2)
    >>> set_rng_state(state); torch.equal(a, torch.rand(2))
    True
    """
    # numpy's state holds an ndarray: keep it as a tensor so checkpoints load with weights_only=True
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global RNG)
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore a :func:`rng_state`."""
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy().astype(np.uint32) if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((kind, keys, pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place.

    Examples
    --------
    >>> import tempfile
    >>> p = save_atomic({"a": 1}, Path(tempfile.mkdtemp()) / "sub" / "x.pt")
    >>> torch.load(p)["a"], sorted(q.name for q in p.parent.iterdir())
    (1, ['x.pt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """Read a trainer checkpoint (on the CPU); one-line :class:`PdekitUserError` if it is not one.

    Checkpoints hold pickled python objects besides tensors (RNG states, neuraloperator's model
    metadata), so they are loaded with ``weights_only=False``: only load files you wrote.

    Examples
    --------
    >>> import tempfile
    >>> p = save_atomic({"format": CHECKPOINT_FORMAT, "epoch": 3}, Path(tempfile.mkdtemp()) / "c.pt")
    >>> load_checkpoint_file(p)["epoch"]
    3
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise PdekitUserError(f"no checkpoint at {path}") from None
    except Exception as e:  # torch raises many types for a foreign or truncated file
        raise PdekitUserError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise PdekitUserError(f"{path} is not a pdekit training checkpoint")
    return obj
