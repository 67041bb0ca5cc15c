"""PDE families: parameters, input samplers and solvers (one module per family)."""

from pdekit.pdes.base import PDEFamily, Solution, available_pdes, get_pde, register_pde

__all__ = ["PDEFamily", "Solution", "available_pdes", "get_pde", "register_pde"]

# Built-in families register themselves on import.
from pdekit.pdes import burgers, darcy, heat, helmholtz, navier_stokes, poisson  # noqa: E402, F401
