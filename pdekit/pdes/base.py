"""The PDE-family contract shared by the generators, the dataset layer, inverse problems and tests.

A family is a frozen dataclass of parameters with

* ``sample_inputs(n, generator) -> dict[str, Tensor]``: random inputs (coefficients, sources,
  initial conditions), each of shape ``(n, *spatial)``, drawn from ``generator`` only;
* ``solve(inputs, ...) -> Solution``: the solutions on the inputs' device, with per-sample solver
  diagnostics;
* ``field_dims()``: the named dimensions of every field it produces (inputs and outputs), e.g.
  ``{"a": ("sample", "x", "y"), "u": ("sample", "x", "y")}``;
* ``coords()``: coordinate arrays for the dimensions other than ``sample``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

__all__ = ["Solution", "PDEFamily", "register_pde", "get_pde", "available_pdes"]


@dataclass
class Solution:
    """What ``PDEFamily.solve`` returns.

    Attributes
    ----------
    fields : dict of str to Tensor
        Output fields, each ``(n, *spatial)`` or ``(n, time, *spatial)``.
    iterations : Tensor
        ``(n,)`` integer solver iterations per sample (0 for direct or explicit solvers).
    rel_residual : Tensor
        ``(n,)`` true relative residual per sample (0 where not applicable).
    extra : dict
        Method-specific diagnostics (e.g. matvec counts, ordering used).
    """

    fields: dict[str, torch.Tensor]
    iterations: torch.Tensor
    rel_residual: torch.Tensor
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PDEFamily:
    """Base class of the PDE families. Subclasses are frozen dataclasses and set ``name``."""

    name: ClassVar[str] = ""

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def solve(self, inputs: dict[str, torch.Tensor], **kwargs) -> Solution:
        raise NotImplementedError

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    def coords(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def params(self) -> dict:
        """Parameters as a JSON-serialisable dict (stored as dataset attributes)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


_REGISTRY: dict[str, type[PDEFamily]] = {}


def register_pde(cls: type[PDEFamily]) -> type[PDEFamily]:
    """Class decorator: make a family available to :func:`get_pde` under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} must set a class attribute `name`")
    _REGISTRY[cls.name] = cls
    return cls


def available_pdes() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_pde(name: str, **params) -> PDEFamily:
    """Build a registered family by name, e.g. ``get_pde("darcy", resolution=64)``."""
    _load_builtin()
    key = name.lower().replace("_", "-")
    if key not in _REGISTRY:
        raise ValueError(
            f"unknown PDE {name!r}; available: {', '.join(sorted(_REGISTRY)) or 'none'}"
        )
    cls = _REGISTRY[key]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"{key} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(known))}"
        )
    return cls(**params)


def _load_builtin() -> None:
    # Importing the package registers the built-in families.
    import pdekit.pdes  # noqa: F401
