"""Tiny PDE families for the data tests (the real families live in pdekit/pdes/).

Importing this module registers ``fake-smooth`` (u = smoothed random a, 2-D) and ``fake-heat``
(explicit 1-D heat trajectories u(sample, time, x)).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from pdekit.pdes.base import PDEFamily, Solution, register_pde


@register_pde
@dataclass(frozen=True)
class FakeSmooth(PDEFamily):
    """u = four sweeps of neighbour averaging of a uniform random coefficient a."""

    name: ClassVar[str] = "fake-smooth"
    resolution: int = 8
    sleep: float = 0.0  # seconds per sample, to make kill tests possible

    def sample_inputs(self, n, generator):
        return {"a": torch.rand(n, self.resolution, self.resolution, generator=generator)}

    def solve(self, inputs, **kwargs):
        a = inputs["a"]
        if self.sleep:
            time.sleep(self.sleep * a.shape[0])
        u = a.clone()
        for _ in range(4):
            u = 0.2 * (u + u.roll(1, 1) + u.roll(-1, 1) + u.roll(1, 2) + u.roll(-1, 2))
        n = a.shape[0]
        return Solution(
            fields={"u": u},
            iterations=torch.full((n,), 4, dtype=torch.int64),
            rel_residual=torch.full((n,), 1e-7, dtype=torch.float64),
        )

    def field_dims(self):
        return {"a": ("sample", "x", "y"), "u": ("sample", "x", "y")}

    def coords(self):
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x}


@register_pde
@dataclass(frozen=True)
class FakeHeat(PDEFamily):
    """Explicit periodic heat steps from a random initial condition: u(sample, time, x)."""

    name: ClassVar[str] = "fake-heat"
    resolution: int = 16
    n_time: int = 6

    def sample_inputs(self, n, generator):
        return {"u0": torch.randn(n, self.resolution, generator=generator)}

    def solve(self, inputs, **kwargs):
        u = inputs["u0"]
        steps = [u]
        for _ in range(self.n_time - 1):
            u = u + 0.25 * (u.roll(1, -1) - 2 * u + u.roll(-1, -1))
            steps.append(u)
        n = u.shape[0]
        return Solution(
            fields={"u": torch.stack(steps, dim=1)},
            iterations=torch.zeros(n, dtype=torch.int64),
            rel_residual=torch.zeros(n, dtype=torch.float64),
        )

    def field_dims(self):
        return {"u": ("sample", "time", "x")}

    def coords(self):
        return {
            "time": np.arange(self.n_time) * 0.1,
            "x": np.linspace(0.0, 1.0, self.resolution, endpoint=False),
        }
