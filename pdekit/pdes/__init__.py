"""PDE families: parameters, input samplers and solvers (one module per family)."""

from pdekit.pdes.base import (
    LinearFamily,
    PDEFamily,
    Solution,
    available_pdes,
    get_pde,
    register_pde,
    solve_samples,
)

__all__ = [
    "LinearFamily",
    "PDEFamily",
    "Solution",
    "available_pdes",
    "get_pde",
    "register_pde",
    "solve_samples",
]

# Built-in families register themselves on import.
from pdekit.pdes import burgers, darcy, heat, helmholtz, navier_stokes, poisson  # noqa: E402, F401
