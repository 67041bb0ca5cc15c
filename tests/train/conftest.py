"""Fixtures for the trainer tests: a tiny Darcy dataset folder and a training config factory.

``train-toy-darcy`` solves the FNO-convention Darcy problem ``-div(a grad u) = 1``, ``u = 0`` on
the boundary, on a 17 x 17 node grid with scipy's sparse direct solver on the assembled
``pdekit.core.stencils.diffusion`` operator, so ``u`` is the exact discrete solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import diffusion
from pdekit.data import generate
from pdekit.pdes.base import PDEFamily, Solution, get_pde, register_pde
from pdekit.train.config import config_from_dict


def solve_darcy(a: torch.Tensor, f: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Exact discrete solution on the full grid (float64) for one coefficient ``(n, n)``.

    ``f`` is a constant or a full-grid ``(n, n)`` source field.
    """
    grid = Grid(tuple(a.shape))
    op = diffusion(grid, a.to(torch.float64))
    if isinstance(f, torch.Tensor):
        f = f.to(torch.float64)
    b = op.rhs(f)[0].reshape(-1).numpy()
    u = spla.spsolve(op.to_scipy().tocsc(), b)
    return grid.extend(torch.from_numpy(u).reshape(grid.interior_shape))


@register_pde
@dataclass(frozen=True)
class ToyDarcy(PDEFamily):
    """Piecewise-constant a in {3, 12} from thresholded smoothed noise; u solves Darcy with f = 1."""

    name: ClassVar[str] = "train-toy-darcy"
    resolution: int = 17

    def sample_inputs(self, n, generator):
        z = torch.randn(n, self.resolution, self.resolution, generator=generator)
        for _ in range(3):
            z = 0.2 * (z + z.roll(1, 1) + z.roll(-1, 1) + z.roll(1, 2) + z.roll(-1, 2))
        return {"a": torch.where(z > 0, 12.0, 3.0)}

    def solve(self, inputs, **kwargs):
        a = inputs["a"]
        u = torch.stack([solve_darcy(ai) for ai in a]).to(a.dtype)
        n = a.shape[0]
        return Solution(fields={"u": u}, iterations=torch.zeros(n, dtype=torch.int64),
                        rel_residual=torch.zeros(n, dtype=torch.float64))

    def field_dims(self):
        return {"a": ("sample", "x", "y"), "u": ("sample", "x", "y")}

    def coords(self):
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny tensors: one thread is faster and immune to a busy machine's oversubscription."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def darcy_ds(tmp_path_factory):
    """train-toy-darcy at 17 x 17: 16 train samples, 8 test samples."""
    out = tmp_path_factory.mktemp("toy-darcy") / "ds"
    generate(get_pde("train-toy-darcy", resolution=17), out, {"train": 16, "test": 8},
             shard_size=8, seed=1)
    return out


@pytest.fixture
def make_config(darcy_ds, tmp_path):
    """``make_config(**overrides) -> TrainConfig``: tiny, fast, no progress bar, no plots."""

    def make(**kw):
        data = {
            "dataset": str(darcy_ds),
            "model": {"name": "tinymodels:TinyConv"},
            "epochs": 3,
            "batch_size": 4,
            "optimizer": {"lr": 3e-3},
            "eval": {"subsamples": [1]},
            "out_dir": str(tmp_path / "run"),
            "progress": False,
            "plots": False,
        }
        for k, v in kw.items():
            if isinstance(v, dict) and isinstance(data.get(k), dict):
                data[k] = {**data[k], **v}
            else:
                data[k] = v
        return config_from_dict(data)

    return make
