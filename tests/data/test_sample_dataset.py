"""The committed sample dataset (data/sample) is intact and readable the documented ways."""

from pathlib import Path

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import diffusion
from pdekit.data import PDEDataset, open_xarray, verify

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_sample_dataset_verifies_and_loads():
    report = verify(SAMPLE)
    assert report.ok, report.problems
    ds = PDEDataset(SAMPLE, split="train", inputs=("a",), targets=("u",))
    assert len(ds) == 200
    x, y = ds[0]
    assert x.shape == (1, 32, 32) and y.shape == (1, 32, 32)
    xr = open_xarray(SAMPLE, "test")
    assert xr["u"].shape == (50, 32, 32)


def test_sample_solutions_satisfy_the_discrete_darcy_equation():
    xr = open_xarray(SAMPLE, "test")
    a = torch.from_numpy(np.asarray(xr["a"][:4], dtype=np.float64))
    u = torch.from_numpy(np.asarray(xr["u"][:4], dtype=np.float64))
    g = Grid((32, 32))
    op = diffusion(g, a)
    res = op.apply(g.interior(u)) - 1.0
    # float32 storage limits the residual; a wrong solution would be off by O(1)
    assert float(res.abs().max()) < 1e-2
    assert float(u[:, 0, :].abs().max()) == 0.0
