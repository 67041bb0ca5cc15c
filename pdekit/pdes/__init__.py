"""PDE families: parameters, input samplers and solvers (one module per family)."""

from pdekit.pdes.base import PDEFamily, Solution, available_pdes, get_pde, register_pde

__all__ = ["PDEFamily", "Solution", "available_pdes", "get_pde", "register_pde"]
