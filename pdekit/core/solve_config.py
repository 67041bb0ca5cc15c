"""One value that describes a linear solve: method, tolerances, preconditioner, recycling, adjoint.

:class:`SolveConfig` is the single home of the solver settings. The command line (``pdekit generate
--method rcg --rtol 1e-9``), the ``solver:`` block of a YAML recipe, the dataset manifest
(``generator.solver``) and Python code all use its field names, and it is validated once, when it is
built. Its consumers are

* :func:`pdekit.core.sequence.solve_sequence`, the engine that solves ``N`` related systems (the
  generation path of the linear PDE families), and the families' ``solve(inputs, config)``;
* :func:`pdekit.core.diffsolve.differentiable_solve`, whose backward solve takes the settings of
  ``config.adjoint`` (or of the forward solve when that is ``None``).

Each consumer uses the fields that apply to its method and ignores the others (``restart`` means
nothing to CG, ``ordering`` nothing to a method without recycling), and refuses a method it does not
implement with a one-line :class:`~pdekit.errors.PdekitUserError`.

**The device is not a setting.** A solve runs where its inputs are (the operator's, or the
inputs', device) and returns its results there; to solve on a GPU, move the inputs first, as the
dataset generator does. So the same configuration describes a CPU and a GPU run, and a manifest
never records a machine.

Defaults, one per purpose
-------------------------
``SolveConfig()``
    Data generation: multigrid-preconditioned CG (``"mgpcg"``) to ``rtol = 1e-8`` on the true
    residual, GMRES/GCRO-DR cycle ``restart = 40`` and recycle dimension ``recycle_dim = 20``
    (the SKR setting), greedy sample ordering, one recycling chain. Each family may start from its
    own default (``family.default_solve_config``: GCRO-DR for Helmholtz, CG for heat).
:data:`DIFFERENTIABLE`
    The differentiable solve: CG to ``rtol = 1e-10`` (gradients are as accurate as the adjoint
    tolerance), GMRES restart 20 (scipy's), the adjoint solve with the same settings.

Examples
--------
>>> cfg = SolveConfig(method="rcg", rtol=1e-9, n_chains=4)
>>> SolveConfig.from_dict(cfg.to_dict()) == cfg
True
>>> SolveConfig.from_dict({"rtol": 1e-6}, base=cfg).rtol, cfg.method
(1e-06, 'rcg')
>>> SolveConfig(rtol=-1.0)
Traceback (most recent call last):
...
pdekit.errors.PdekitUserError: SolveConfig.rtol must be a finite number >= 0, got -1.0
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pdekit.errors import PdekitUserError

__all__ = [
    "SolveConfig",
    "Method",
    "Preconditioner",
    "Ordering",
    "METHODS",
    "SEQUENCE_METHODS",
    "KRYLOV_METHODS",
    "RECYCLING_METHODS",
    "DIFFERENTIABLE",
]

Method = Literal["spsolve", "cg", "gmres", "bicgstab", "minres", "mgpcg", "rcg", "gcrodr"]
Preconditioner = Literal["none", "jacobi", "mg"]
Ordering = Literal["greedy", "pca", "hilbert", "none"]

METHODS: tuple[str, ...] = get_args(Method)
#: Methods of :func:`pdekit.core.sequence.solve_sequence` (and of the linear families).
SEQUENCE_METHODS: tuple[str, ...] = ("spsolve", "cg", "gmres", "mgpcg", "rcg", "gcrodr")
#: Methods of a single (batched) Krylov solve, e.g. :func:`~pdekit.core.diffsolve.differentiable_solve`.
KRYLOV_METHODS: tuple[str, ...] = ("cg", "gmres", "bicgstab", "minres")
#: Methods that carry a recycle space along a sequence of systems.
RECYCLING_METHODS: tuple[str, ...] = ("rcg", "gcrodr")
_PRECONDITIONERS: tuple[str, ...] = get_args(Preconditioner)
_ORDERINGS: tuple[str, ...] = get_args(Ordering)


def _fail(name: str, what: str, value: Any) -> PdekitUserError:
    return PdekitUserError(f"SolveConfig.{name} must be {what}, got {value!r}")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(name, f"one of {', '.join(choices)}", value)
    return value


def _real(name: str, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise _fail(name, "a finite number >= 0", value)
    return float(value)


def _integer(name: str, value: Any, minimum: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or int(value) != value or value < minimum:
        what = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise _fail(name, what, value)
    return int(value)


@dataclass(frozen=True)
class SolveConfig:
    """The settings of a linear solve, validated once when the value is built.

    Parameters
    ----------
    method : {"mgpcg", "spsolve", "cg", "gmres", "bicgstab", "minres", "rcg", "gcrodr"}
        ``"spsolve"``: scipy's sparse direct solver (CPU). ``"cg"``, ``"gmres"``, ``"bicgstab"``,
        ``"minres"``: :mod:`pdekit.core.krylov`, batched over the systems. ``"mgpcg"``: CG
        preconditioned by the geometric multigrid V-cycle. ``"rcg"`` (deflated CG, SPD) and
        ``"gcrodr"`` (GCRO-DR(m, k)): Krylov subspace recycling along an ordered sequence. The
        sequence engine and the linear families take all but ``bicgstab`` and ``minres``; the
        differentiable solve takes the four Krylov methods.
    rtol, atol : float
        System ``i`` converges when ``||b_i - A_i x_i|| <= max(rtol ||b_i||, atol)``; both
        ``>= 0`` and finite, not both 0 (except for ``spsolve``).
    maxiter : int, optional
        Iteration cap per system (``None``: the solver's default, ``10 n``).
    preconditioner : {"none", "jacobi", "mg"}, optional
        ``None`` takes the method's default: the multigrid V-cycle for ``"mgpcg"``, otherwise none
        (a family may choose otherwise: Helmholtz uses the Laplacian's V-cycle). ``"mgpcg"``
        takes only ``"mg"``, ``"spsolve"`` only ``"none"``.
    restart : int
        GMRES / GCRO-DR cycle length ``m`` (SKR: 40).
    recycle_dim : int
        Recycle dimension ``k`` of GCRO-DR (``k < m``) and deflation vectors of ``rcg`` (SKR: 20).
    ordering : {"greedy", "pca", "hilbert", "none"}
        Solve order of the recycling methods (:func:`pdekit.core.ordering.order_samples`).
    n_chains : int
        Recycling chains solved side by side (batched); at most the number of systems.
    batch_size : int, optional
        Most systems per batched call of the non-recycling Krylov methods (``None``: all).
    adjoint : SolveConfig, optional
        Settings of the adjoint (gradient) solve of a differentiable solve; ``None`` uses this
        configuration's own. It may not have an adjoint of its own.

    Raises
    ------
    PdekitUserError
        One line naming the field, e.g. ``SolveConfig.n_chains must be an integer >= 1, got 0``.

    Examples
    --------
    >>> SolveConfig().method, SolveConfig().rtol
    ('mgpcg', 1e-08)
    >>> SolveConfig(method="gcrodr", preconditioner="mg", restart=30, recycle_dim=10).restart
    30
    >>> SolveConfig(method="spsolve", preconditioner="mg")
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: SolveConfig.preconditioner must be None or 'none' for method 'spsolve', got 'mg'
    """

    method: Method = "mgpcg"
    rtol: float = 1e-8
    atol: float = 0.0
    maxiter: int | None = None
    preconditioner: Preconditioner | None = None
    restart: int = 40
    recycle_dim: int = 20
    ordering: Ordering = "greedy"
    n_chains: int = 1
    batch_size: int | None = None
    adjoint: SolveConfig | None = None

    def __post_init__(self):
        put = object.__setattr__  # frozen: normalise numbers once (1 -> 1.0, numpy ints -> int)
        _choice("method", self.method, METHODS)
        put(self, "rtol", _real("rtol", self.rtol))
        put(self, "atol", _real("atol", self.atol))
        if self.rtol == 0 and self.atol == 0 and self.method != "spsolve":
            raise PdekitUserError(
                f"SolveConfig.rtol and SolveConfig.atol must not both be 0 (method {self.method!r} "
                "would never stop)"
            )
        put(self, "maxiter", _integer("maxiter", self.maxiter, 1, optional=True))
        if self.preconditioner is not None:
            _choice("preconditioner", self.preconditioner, _PRECONDITIONERS)
        if self.method == "mgpcg" and self.preconditioner not in (None, "mg"):
            raise _fail("preconditioner", "None or 'mg' for method 'mgpcg' (use method 'cg' "
                        "for another one)", self.preconditioner)
        if self.method == "spsolve" and self.preconditioner not in (None, "none"):
            raise _fail("preconditioner", "None or 'none' for method 'spsolve'", self.preconditioner)
        put(self, "restart", _integer("restart", self.restart, 1))
        put(self, "recycle_dim", _integer("recycle_dim", self.recycle_dim, 0))
        if self.method == "gcrodr" and self.recycle_dim >= self.restart:
            raise _fail("recycle_dim", f"< restart = {self.restart} for method 'gcrodr'",
                        self.recycle_dim)
        _choice("ordering", self.ordering, _ORDERINGS)
        put(self, "n_chains", _integer("n_chains", self.n_chains, 1))
        put(self, "batch_size", _integer("batch_size", self.batch_size, 1, optional=True))
        if self.adjoint is not None:
            if not isinstance(self.adjoint, SolveConfig):
                raise _fail("adjoint", "a SolveConfig or None", self.adjoint)
            if self.adjoint.adjoint is not None:
                raise PdekitUserError("SolveConfig.adjoint must not have an adjoint of its own")

    # -------------------------------------------------------------------------- round trip
    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-serialisable values (``adjoint`` as a nested dict or ``None``).

        Examples
        --------
        >>> SolveConfig(adjoint=SolveConfig(method="cg", rtol=1e-12)).to_dict()["adjoint"]["rtol"]
        1e-12
        """
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["adjoint"] = None if self.adjoint is None else self.adjoint.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, *, base: SolveConfig | None = None) -> SolveConfig:
        """Build a configuration from a mapping of field names (a YAML ``solver:`` block, a manifest).

        Parameters
        ----------
        d : mapping or None
            Some or all of the fields; numbers may be strings (YAML 1.1 reads ``1e-9`` as text).
            ``adjoint`` may be a mapping, whose missing fields come from the forward settings.
        base : SolveConfig, optional
            Where the missing fields come from (default ``SolveConfig()``), e.g. a family's default.

        Raises
        ------
        PdekitUserError
            For a key that is not a field (the message lists the allowed ones) or a bad value.

        Examples
        --------
        >>> SolveConfig.from_dict({"method": "cg", "rtol": "1e-6"}).rtol
        1e-06
        >>> SolveConfig.from_dict({"tol": 1e-6})
        Traceback (most recent call last):
        ...
        pdekit.errors.PdekitUserError: unknown solver option 'tol'; allowed: method, rtol, atol, maxiter, preconditioner, restart, recycle_dim, ordering, n_chains, batch_size, adjoint
        """
        base = cls() if base is None else base
        if d is None:
            return base
        if not isinstance(d, Mapping):
            raise PdekitUserError(f"solver options must map option names to values, got {d!r}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [str(k) for k in d if k not in names]
        if unknown:
            hint = " (the device comes from the inputs)" if "device" in unknown else ""
            raise PdekitUserError(
                f"unknown solver option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(names)}{hint}"
            )
        values = {k: _from_text(k, v) for k, v in d.items() if k != "adjoint"}
        forward = dataclasses.replace(base, **values, adjoint=None)
        adjoint = d.get("adjoint", base.adjoint)
        if isinstance(adjoint, Mapping):
            adjoint = cls.from_dict(adjoint, base=forward)
        return dataclasses.replace(forward, adjoint=adjoint)


def _from_text(name: str, value: Any) -> Any:
    """A number written as text in a config file (``"1e-9"``) as the number."""
    if name in ("rtol", "atol") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _fail(name, "a finite number >= 0", value) from None
    return value


#: Default of the differentiable solve (:func:`pdekit.core.diffsolve.differentiable_solve`).
DIFFERENTIABLE = SolveConfig(method="cg", rtol=1e-10, restart=20)
