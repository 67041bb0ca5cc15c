"""The PDE-family contract shared by the generators, the dataset layer, inverse problems and tests.

A family is a frozen dataclass of parameters with

* ``sample_inputs(n, generator) -> dict[str, Tensor]``: random inputs (coefficients, sources,
  initial conditions), each of shape ``(n, *spatial)``, drawn from ``generator`` only;
* ``solve(inputs, config=None, *, progress=False) -> Solution``: the solutions on the inputs'
  device, with per-sample solver diagnostics. Families with linear solves take a
  :class:`~pdekit.core.solve_config.SolveConfig` (``default_solve_config`` when ``None``); the
  device is the inputs' (move them to solve elsewhere);
* ``field_dims()``: the named dimensions of every field it produces (inputs and outputs), e.g.
  ``{"a": ("sample", "x", "y"), "u": ("sample", "x", "y")}``;
* ``coords()``: coordinate arrays for the dimensions other than ``sample``.

The steady linear families (Darcy, Poisson, Helmholtz) derive from :class:`LinearFamily`: they
state their physics as one assembled system ``A u = b`` (:meth:`LinearFamily.assemble`), and the
base class gives them ``operator``, ``rhs``, the discrete ``residual`` and ``solve`` (through
:func:`pdekit.core.sequence.solve_sequence`), written once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.sequence import LinearSolution, solve_sequence
from pdekit.core.solve_config import SEQUENCE_METHODS, SolveConfig
from pdekit.core.stencils import StencilOperator
from pdekit.errors import PdekitUserError

__all__ = [
    "Solution",
    "PDEFamily",
    "LinearFamily",
    "LinearSystem",
    "register_pde",
    "get_pde",
    "available_pdes",
    "solve_samples",
]


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
    """Base class of the PDE families. Subclasses are frozen dataclasses and set ``name``.

    A family that solves linear systems sets ``default_solve_config`` (a
    :class:`~pdekit.core.solve_config.SolveConfig`); one that takes no solver settings (the
    spectral time-dependent families) leaves it ``None``.
    """

    name: ClassVar[str] = ""
    default_solve_config: ClassVar[SolveConfig | None] = None

    def sample_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def solve(self, inputs: dict[str, torch.Tensor], config: SolveConfig | None = None, *,
              progress: bool = False, **overrides) -> Solution:
        raise NotImplementedError

    def field_dims(self) -> dict[str, tuple[str, ...]]:
        raise NotImplementedError

    def coords(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def params(self) -> dict:
        """Parameters as a JSON-serialisable dict (stored as dataset attributes)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def solve_config(self, config: SolveConfig | Mapping | None = None, /,
                     **overrides) -> SolveConfig | None:
        """The configuration ``solve`` would use, checked against this family.

        Parameters
        ----------
        config : SolveConfig or mapping, optional
            A configuration, or some of its fields by name (a YAML ``solver:`` block, a manifest's
            ``generator.solver``), the others from ``default_solve_config``.
        **overrides
            Fields replacing those of ``config``, e.g. ``method="spsolve"``.

        Returns
        -------
        SolveConfig or None
            ``None`` for a family without solver settings.

        Raises
        ------
        PdekitUserError
            For an unknown option, a bad value, a method the family does not implement, or any
            option given to a family that takes none.

        Examples
        --------
        >>> from pdekit.pdes import get_pde
        >>> get_pde("helmholtz").solve_config(rtol=1e-6).method
        'gcrodr'
        >>> get_pde("burgers").solve_config() is None
        True
        """
        default = self.default_solve_config
        if default is None:
            if isinstance(config, SolveConfig):
                raise PdekitUserError(f"{self.name} takes no SolveConfig (it has no solver options)")
            given = sorted({**(config or {}), **overrides})
            if given:
                raise PdekitUserError(f"{self.name} takes no solver option {given[0]!r} "
                                      "(it has no solver options)")
            return None
        if config is None:
            config = default
        elif not isinstance(config, SolveConfig):
            config = SolveConfig.from_dict(config, base=default)
        if overrides:
            config = SolveConfig.from_dict(overrides, base=config)
        return self._check_config(config)

    def _check_config(self, config: SolveConfig) -> SolveConfig:
        """Refuse what this family cannot do; fill in family-specific defaults."""
        return config


@dataclass(frozen=True)
class LinearSystem:
    """The assembled systems of ``N`` samples of a linear family (see :class:`LinearFamily`).

    Attributes
    ----------
    op : StencilOperator
        ``A``: ``N`` systems, or one matrix shared by every sample (``op.batch == 1``).
    b : Tensor
        ``(N, *interior_shape)`` right-hand sides.
    like : Tensor
        The input whose dtype and device the solutions take.
    features : Tensor, optional
        ``(N, ...)`` what the recycling methods order the samples by.
    mg_coefficient : Tensor, optional
        Nodal coefficient ``(N or 1, *grid.shape)`` of the multigrid V-cycle (``"mg"``).
    """

    op: StencilOperator
    b: torch.Tensor
    like: torch.Tensor
    features: torch.Tensor | None = None
    mg_coefficient: torch.Tensor | None = None


@dataclass(frozen=True)
class LinearFamily(PDEFamily):
    """A steady linear family: ``A(inputs) u = b(inputs)`` on :attr:`grid`, ``u = 0`` on its boundary.

    Subclasses implement :meth:`assemble` (their physics) and may narrow ``methods`` and
    ``preconditioners``; ``solve``, ``operator``, ``rhs`` and ``residual`` are written once here.
    Everything is computed in float64 on the inputs' device.
    """

    methods: ClassVar[tuple[str, ...]] = SEQUENCE_METHODS
    preconditioners: ClassVar[tuple[str, ...]] = ("none", "jacobi", "mg")
    default_solve_config: ClassVar[SolveConfig | None] = SolveConfig()
    solution_field: ClassVar[str] = "u"

    @property
    def grid(self) -> Grid:
        raise NotImplementedError

    def assemble(self, inputs: dict[str, torch.Tensor]) -> LinearSystem:
        """Validate ``inputs`` and build the systems (the family's physics)."""
        raise NotImplementedError

    def operator(self, inputs: dict[str, torch.Tensor]) -> StencilOperator:
        """The batched stencil operator ``A`` of the samples (differentiable in the inputs)."""
        return self.assemble(inputs).op

    def rhs(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The right-hand sides ``b``, ``(N, *interior_shape)``."""
        return self.assemble(inputs).b

    def residual(self, inputs: dict[str, torch.Tensor],
                 outputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The discrete residual ``A u - b`` on the unknowns, ``(N, *interior_shape)``, float64.

        ``outputs[solution_field]`` is ``u`` on the full grid ``(N, *grid.shape)`` (its boundary
        values are not used). Written in torch: differentiable in ``u`` and in the inputs.
        """
        system = self.assemble(inputs)
        u = outputs[self.solution_field]
        u = self.grid.interior(u.to(device=system.op.device, dtype=system.op.dtype))
        return system.op.apply(u) - system.b

    def solve(self, inputs: dict[str, torch.Tensor], config: SolveConfig | None = None, *,
              progress: bool = False, **overrides) -> Solution:
        """Solve every sample; ``u`` on the full grid (0 on the boundary).

        Parameters
        ----------
        inputs : dict
            The family's input fields, ``(N, *grid.shape)`` each.
        config : SolveConfig, optional
            Solver settings (default: ``default_solve_config``); see
            :func:`pdekit.core.sequence.solve_sequence`.
        progress : bool
            tqdm progress bar.
        **overrides
            Fields of ``config`` to replace, e.g. ``method="spsolve"`` (see :meth:`solve_config`).

        Returns
        -------
        Solution
            ``fields[solution_field]`` ``(N, *grid.shape)`` in the dtype and on the device of the
            inputs; per-sample iterations and true relative residuals; ``extra`` of the solve.
        """
        config = self.solve_config(config, **overrides)
        system = self.assemble(inputs)
        res = solve_sequence(system.op, system.b, config, features=system.features,
                             mg_coefficient=system.mg_coefficient, progress=progress)
        return _to_solution({self.solution_field: self.grid.extend(res.x)}, res, system.like)

    def _check_config(self, config: SolveConfig) -> SolveConfig:
        if config.method not in self.methods:
            raise PdekitUserError(f"{self.name}: method must be one of {', '.join(self.methods)}, "
                                  f"got {config.method!r}")
        if config.preconditioner not in (None, *self.preconditioners):
            raise PdekitUserError(f"{self.name}: preconditioner must be one of "
                                  f"{', '.join(self.preconditioners)}, got {config.preconditioner!r}")
        return config


def _to_solution(fields: dict, res: LinearSolution, like: torch.Tensor) -> Solution:
    """A :class:`Solution` with fields cast to ``like``'s dtype and device."""
    out = {k: v.to(device=like.device, dtype=like.dtype) for k, v in fields.items()}
    return Solution(
        fields=out,
        iterations=res.iterations.to(like.device),
        rel_residual=res.rel_residual.to(like.device),
        extra=res.extra,
    )


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


def solve_samples(
    family: PDEFamily | str,
    n: int,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    config: SolveConfig | None = None,
    progress: bool = False,
    **overrides,
) -> tuple[dict[str, torch.Tensor], Solution]:
    """Sample ``n`` inputs of a family from ``seed`` and solve them, in memory (no files).

    Parameters
    ----------
    family : PDEFamily or str
        A family object or a registered name (built with its default parameters).
    n : int
        Number of samples.
    seed : int
        Seed of the :class:`torch.Generator` (created on ``device``) that draws the inputs.
    device : str or torch.device, optional
        Where inputs are drawn, hence solved (default CPU).
    config : SolveConfig, optional
        Solver settings of ``family.solve`` (its default when ``None``).
    progress : bool
        tqdm progress bar.
    **overrides
        Fields of ``config`` to replace (``method``, ``rtol``, ``ordering``, ``n_chains``, ...).

    Returns
    -------
    inputs : dict of str to Tensor
    solution : Solution

    Examples
    --------
    >>> from pdekit.pdes.poisson import Poisson
    >>> inputs, sol = solve_samples(Poisson(resolution=17), 2, seed=0, method="spsolve")
    >>> sol.fields["u"].shape
    torch.Size([2, 17, 17])
    """
    from pdekit.pdes._validation import check_n_samples

    if isinstance(family, str):
        family = get_pde(family)
    if not isinstance(family, PDEFamily):
        raise TypeError(f"family must be a PDEFamily or a name, got {type(family).__name__}")
    n = check_n_samples(n)
    gen = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    inputs = family.sample_inputs(n, gen)
    kw = {"progress": True} if progress else {}
    if config is None and not overrides:
        return inputs, family.solve(inputs, **kw)
    return inputs, family.solve(inputs, config, **kw, **overrides)
