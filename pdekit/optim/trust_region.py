"""Hessian-free trust regions: the Coleman-Li scaled trust-region step and two optimizers.

Every trust-region method of the package (the optimizers here and
:func:`pdekit.inverse.trust_region`) approximately solves, at every iterate,

    min_s  g^T s + 1/2 s^T B s   subject to  ||s||_W <= Delta,

with the Steihaug-Toint truncated CG (:func:`~pdekit.optim.steihaug.steihaug_cg`), through one core,
:func:`trust_region_step`, and updates the radius by :func:`update_radius`: ``Delta / 4`` (of the
step length) when ``rho < 1/4``, ``2 Delta`` (up to ``max_radius``) when ``rho > 3/4`` and the step
reached the boundary. ``B`` is the Gauss-Newton matrix ``J^T J`` (``curvature="ggn"``) or the exact
Hessian (``curvature="hessian"``), both applied matrix-free.

Bounds ``l <= x <= u`` (e.g. a positive diffusivity in an inverse problem) are handled by the
Coleman-Li affine scaling (:class:`ColemanLi`): the subproblem is solved in the variables
``s_hat = D^-1 s`` with ``D = diag(sqrt(v))``, ``v`` the distances to the bounds the gradient points
to, with the extra curvature ``diag(g * dv)``; iterates stay strictly feasible by stepping back
from the bounds (as in SciPy's ``least_squares(method="trf")``).

References
----------
.. [1] T. Steihaug, "The conjugate gradient method and trust regions in large scale
   optimization", SIAM J. Numer. Anal. 20 (1983) 626-637.
.. [2] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [3] T. F. Coleman, Y. Li, "An interior trust region approach for nonlinear minimization subject
   to bounds", SIAM J. Optim. 6 (1996) 418-445.
.. [4] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 4 and
   sec. 7.1 (Algorithm 7.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from pdekit.errors import PdekitUserError
from pdekit.optim._functional import Linearization, ParamVector, evaluate_loss
from pdekit.optim._linesearch import StepInfo
from pdekit.optim.steihaug import CGResult, dot, steihaug_cg

__all__ = [
    "BoundedTrustRegion",
    "ColemanLi",
    "TrustRegion",
    "TrustRegionOptions",
    "TrustRegionStep",
    "coleman_li_scaling",
    "max_step_fraction",
    "trust_region_step",
    "update_radius",
]

Curvature = Literal["ggn", "hessian"]
JacobianMode = Literal["matrix_free", "dense"]
Operator = Callable[[torch.Tensor], torch.Tensor]
Bound = float | torch.Tensor


def coleman_li_scaling(
    x: torch.Tensor, g: torch.Tensor, lower: Bound, upper: Bound
) -> tuple[torch.Tensor, torch.Tensor]:
    """Coleman-Li ``v`` and ``dv = dv/dx``: the distance to the bound ``-g`` points to (1 if none).

    ``v_i = u_i - x_i`` (``dv_i = -1``) where ``g_i < 0`` and ``u_i`` is finite,
    ``v_i = x_i - l_i`` (``dv_i = 1``) where ``g_i > 0`` and ``l_i`` is finite, else ``v_i = 1``,
    ``dv_i = 0``. Bounds are floats or tensors broadcastable to ``x`` (``-inf``/``inf``: none).

    Examples
    --------
    >>> v, dv = coleman_li_scaling(torch.tensor([0.5, 0.5]), torch.tensor([1.0, -1.0]), 0.0, 2.0)
    >>> v.tolist(), dv.tolist()
    ([0.5, 1.5], [1.0, -1.0])

    References
    ----------
    .. [1] T. F. Coleman, Y. Li, SIAM J. Optim. 6 (1996) 418-445, eq. (2.3).
    """
    lo = torch.as_tensor(lower, dtype=x.dtype, device=x.device)
    up = torch.as_tensor(upper, dtype=x.dtype, device=x.device)
    to_upper = (g < 0) & torch.isfinite(up)
    to_lower = (g > 0) & torch.isfinite(lo)
    one = torch.ones_like(x)
    v = torch.where(to_lower, x - lo, torch.where(to_upper, up - x, one))
    dv = torch.where(to_lower, one, torch.where(to_upper, -one, torch.zeros_like(x)))
    return v, dv


@dataclass(frozen=True)
class ColemanLi:
    """The affine scaling at one iterate: ``D = sqrt(v)`` and the extra curvature ``C = g * dv``.

    Examples
    --------
    >>> x, g = torch.tensor([0.25, 0.5]), torch.tensor([1.0, 0.0])
    >>> sc = ColemanLi.at(x, g, 0.0, 1.0)
    >>> sc.D.tolist(), sc.C.tolist(), sc.hvp(lambda u: 2 * u)(torch.ones(2)).tolist()
    ([0.5, 1.0], [1.0, 0.0], [1.5, 2.0])
    """

    D: torch.Tensor
    C: torch.Tensor

    @classmethod
    def at(cls, x: torch.Tensor, g: torch.Tensor, lower: Bound, upper: Bound) -> ColemanLi:
        v, dv = coleman_li_scaling(x, g, lower, upper)
        return cls(v.sqrt(), g * dv)

    def hvp(self, hvp: Operator) -> Operator:
        """``u -> D B D u + C u``: the curvature of the scaled subproblem."""
        return lambda u: self.D * hvp(self.D * u) + self.C * u


def max_step_fraction(x: torch.Tensor, s: torch.Tensor, lower: Bound, upper: Bound) -> float:
    """The largest ``t >= 0`` with ``x + t s`` inside the box (``inf`` if ``s`` never leaves it).

    Examples
    --------
    >>> max_step_fraction(torch.tensor([0.5]), torch.tensor([1.0]), 0.0, 1.0)
    0.5
    """
    if s.numel() == 0:
        return math.inf
    up = torch.as_tensor(upper, dtype=x.dtype, device=x.device)
    lo = torch.as_tensor(lower, dtype=x.dtype, device=x.device)
    inf = torch.full_like(x, math.inf)
    pos, neg = s > 0, s < 0
    t_up = torch.where(pos, (up - x) / torch.where(pos, s, torch.ones_like(s)), inf)
    t_lo = torch.where(neg, (lo - x) / torch.where(neg, s, -torch.ones_like(s)), inf)
    return float(torch.minimum(t_up, t_lo).min())


@dataclass(frozen=True)
class TrustRegionStep:
    """What :func:`trust_region_step` returns.

    Attributes
    ----------
    step : Tensor
        The step in the original variables, stepped back from the bounds.
    scale : float
        The step-back factor (1 when no bound was crossed).
    predicted : float
        Predicted reduction of the (scaled) quadratic model for the step taken.
    step_norm : float
        ``||scale * s_hat||_W``: the length the radius update compares with ``Delta``.
    cg : CGResult
        The Steihaug solve of the scaled subproblem.
    """

    step: torch.Tensor
    scale: float
    predicted: float
    step_norm: float
    cg: CGResult


def trust_region_step(
    hvp: Operator,
    g: torch.Tensor,
    radius: float,
    *,
    scaling: ColemanLi | None = None,
    x: torch.Tensor | None = None,
    lower: Bound = -math.inf,
    upper: Bound = math.inf,
    precond: Operator | None = None,
    metric: Operator | None = None,
    rtol: float | None = None,
    maxiter: int = 250,
    theta_min: float = 0.995,
) -> TrustRegionStep:
    """One (Coleman-Li scaled) trust-region subproblem, solved by Steihaug-CG.

    Parameters
    ----------
    hvp : callable
        ``v -> B v``.
    g : Tensor
        Gradient at ``x``.
    radius : float
        ``Delta`` (``inf``: the full inexact Newton step).
    scaling : ColemanLi, optional
        The affine scaling at ``x`` (bounds); ``None``: ``D = I``.
    x, lower, upper
        The iterate and the box; with ``x`` given, a step that would leave the box is shortened to
        ``max(theta_min, 1 - ||D g||_inf)`` times the distance to the nearest bound it crosses.
    precond, metric, rtol, maxiter
        Of :func:`~pdekit.optim.steihaug.steihaug_cg` (``W`` measures the scaled step).
    theta_min : float
        Least step-back fraction.

    Returns
    -------
    TrustRegionStep

    Examples
    --------
    >>> B = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> out = trust_region_step(lambda v: B @ v, torch.tensor([-1.0, -4.0], dtype=torch.float64),
    ...                         10.0, rtol=1e-12)
    >>> [round(v, 12) for v in out.step.tolist()], round(out.predicted, 12)
    ([1.0, 1.0], 2.5)
    """
    gh = g if scaling is None else scaling.D * g
    B = hvp if scaling is None else scaling.hvp(hvp)
    cg = steihaug_cg(B, gh, radius, precond=precond, metric=metric, rtol=rtol, maxiter=maxiter)
    step = cg.s if scaling is None else scaling.D * cg.s
    scale = 1.0
    if x is not None:
        t = max_step_fraction(x, step, lower, upper)
        if t <= 1.0:
            scale = max(theta_min, 1.0 - float(gh.abs().max())) * t
            step = scale * step
    s_hat = cg.s if scale == 1.0 else scale * cg.s
    if metric is None:
        norm = float(s_hat.norm())
    else:
        norm = math.sqrt(max(float(dot(s_hat, metric(s_hat))), 0.0))
    return TrustRegionStep(step, scale, cg.predicted_reduction(gh, scale), norm, cg)


def update_radius(
    radius: float, rho: float, step_norm: float, hit_boundary: bool, max_radius: float = math.inf
) -> float:
    """The radius after a step with gain ratio ``rho`` (NaN counts as a failure).

    ``rho < 1/4``: ``min(Delta, ||s||) / 4``; ``rho > 3/4`` with the step on the boundary (or an
    infinite radius): ``min(2 max(Delta, ||s||), max_radius)``; else unchanged.

    Examples
    --------
    >>> update_radius(1.0, 0.1, 0.5, True), update_radius(1.0, 0.9, 1.0, True, max_radius=1.5)
    (0.125, 1.5)

    References
    ----------
    .. [1] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Algorithm 4.1.
    """
    if not rho >= 0.25:
        return 0.25 * min(radius, max(step_norm, 1e-300))
    if rho > 0.75 and (hit_boundary or math.isinf(radius)):
        grown = 2 * step_norm if math.isinf(radius) else 2 * max(radius, step_norm)
        return min(grown, max_radius)
    return radius


@dataclass(frozen=True)
class TrustRegionOptions:
    """The settings :class:`TrustRegion` and :class:`BoundedTrustRegion` share (validated here)."""

    radius: float = 1.0
    max_radius: float = 1000.0
    eta: float = 0.15
    curvature: Curvature = "ggn"
    jacobian: JacobianMode = "matrix_free"
    cg_maxiter: int = 250
    cg_rtol: float | None = None

    def __post_init__(self):
        if not 0 < self.radius <= self.max_radius:
            raise PdekitUserError(
                f"need 0 < radius <= max_radius, got {self.radius}, {self.max_radius}"
            )
        if not 0 <= self.eta < 0.25:
            raise PdekitUserError(f"eta must lie in [0, 1/4), got {self.eta}")
        if self.curvature not in ("ggn", "hessian"):
            raise PdekitUserError(f"curvature must be 'ggn' or 'hessian', got {self.curvature!r}")
        if self.jacobian not in ("matrix_free", "dense"):
            raise PdekitUserError(
                f"jacobian must be 'matrix_free' or 'dense', got {self.jacobian!r}"
            )
        if self.cg_maxiter < 1:
            raise PdekitUserError(f"cg_maxiter must be >= 1, got {self.cg_maxiter}")


class _TrustRegionBase(torch.optim.Optimizer):
    """One step for both optimizers; ``lower``/``upper`` are ``None`` without bounds."""

    lower: torch.Tensor | None = None
    upper: torch.Tensor | None = None

    def _setup(self, params: Iterable, options: TrustRegionOptions) -> None:
        super().__init__(params, asdict(options))
        if len(self.param_groups) != 1:
            raise PdekitUserError(f"{type(self).__name__} supports a single parameter group")
        self.last_step: StepInfo | None = None

    def _state(self) -> dict:
        group = self.param_groups[0]
        state = self.state[group["params"][0]]
        if not state:
            state.update(n_steps=0, radius=float(group["radius"]))
        return state

    def _products(self, lin: Linearization) -> Operator:
        group = self.param_groups[0]
        if group["curvature"] == "hessian":
            return lambda v: lin.hvp(v[None])[0]
        if group["jacobian"] == "dense":
            J = lin.jacobian()
            return lambda v: J.T @ (J @ v)
        return lambda v: lin.ggn_vp(v[None])[0]

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One trust-region step; returns the loss ``1/2 ||r||^2`` before the step."""
        if closure is None:
            raise PdekitUserError(
                f"{type(self).__name__}.step needs a closure that returns the residual vector"
            )
        group = self.param_groups[0]
        state = self._state()
        state["n_steps"] += 1
        pv = ParamVector(group["params"])
        x = pv.get()
        lin = Linearization(closure, pv)
        f0, g = lin.loss, lin.gradient()
        radius = state["radius"]
        bounded = self.lower is not None
        tr = trust_region_step(
            self._products(lin), g, radius,
            scaling=ColemanLi.at(x, g, self.lower, self.upper) if bounded else None,
            x=x if bounded else None, lower=self.lower, upper=self.upper,
            rtol=group["cg_rtol"], maxiter=group["cg_maxiter"],
        )
        del lin  # frees the graph before the trial evaluation
        its = tr.cg.iterations
        if not tr.predicted > 0:  # zero gradient: nothing to do
            self.last_step = StepInfo(f0, f0, False, 0.0, radius, float("nan"), its)
            return torch.tensor(f0, dtype=torch.float64)
        trial = x + tr.step
        pv.set_(torch.minimum(torch.maximum(trial, self.lower), self.upper) if bounded else trial)
        f_new = evaluate_loss(closure)
        rho = (f0 - f_new) / tr.predicted if f_new == f_new else float("nan")
        accepted = rho == rho and rho > group["eta"] and f_new < f0
        if not accepted:
            pv.set_(x)
            f_new = f0
        state["radius"] = update_radius(radius, rho, tr.step_norm, tr.cg.hit_boundary,
                                        group["max_radius"])
        self.last_step = StepInfo(f0, f_new, accepted, 1.0 if accepted else 0.0, radius, rho,
                                  its, 2)
        return torch.tensor(f0, dtype=torch.float64)


class TrustRegion(_TrustRegionBase):
    """Hessian-free trust-region Newton/Gauss-Newton with Steihaug-Toint truncated CG.

    ``step(closure)`` takes a closure returning the **residual vector** (see
    :class:`~pdekit.optim.GaussNewton`); each step solves one subproblem
    (:func:`trust_region_step`) and evaluates one trial point. A rejected step leaves the
    parameters unchanged.

    Parameters
    ----------
    params : iterable
    radius : float
        Initial trust-region radius ``Delta_0`` (Euclidean norm of the parameter step).
    max_radius : float
    eta : float
        Accept the step when ``rho > eta``; in ``[0, 1/4)``.
    curvature : {"ggn", "hessian"}
        ``B = J^T J`` (always positive semi-definite) or the exact Hessian of ``1/2 ||r||^2``
        (double backward; negative curvature is followed to the boundary).
    jacobian : {"matrix_free", "dense"}
        For ``"ggn"``: products ``J^T (J v)`` by ``jvp``/``vjp`` (Hessian-free), or by a ``J``
        formed once per step (fast for small models, memory ``n p``).
    cg_maxiter : int
    cg_rtol : float, optional
        Default: ``min(0.5, sqrt(||g||))``.

    Examples
    --------
    The Rosenbrock function as least squares, ``r = (10 (y - x^2), 1 - x)``:

    >>> v = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    >>> opt = TrustRegion([v], curvature="hessian")
    >>> for _ in range(60):
    ...     _ = opt.step(lambda: torch.stack([10 * (v[1] - v[0] ** 2), 1 - v[0]]))
    >>> torch.allclose(v.detach(), torch.ones(2, dtype=torch.float64), atol=1e-8)
    True

    References
    ----------
    .. [1] T. Steihaug, SIAM J. Numer. Anal. 20 (1983) 626-637.
    .. [2] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
    .. [3] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, ch. 4.
    """

    def __init__(
        self,
        params: Iterable,
        *,
        radius: float = 1.0,
        max_radius: float = 1000.0,
        eta: float = 0.15,
        curvature: Curvature = "ggn",
        jacobian: JacobianMode = "matrix_free",
        cg_maxiter: int = 250,
        cg_rtol: float | None = None,
    ):
        self._setup(params, TrustRegionOptions(radius, max_radius, eta, curvature, jacobian,
                                               cg_maxiter, cg_rtol))


def _bound_vector(bound, pv: ParamVector, fill: float) -> torch.Tensor:
    """Bounds given as None, a float, or one float/tensor per parameter -> a ``(p,)`` vector."""
    if bound is None or isinstance(bound, (int, float)):
        value = fill if bound is None else float(bound)
        return torch.full((pv.p,), value, dtype=pv.dtype, device=pv.device)
    parts = list(bound)
    if len(parts) != len(pv.params):
        raise PdekitUserError(
            f"give one bound per parameter tensor ({len(pv.params)}), got {len(parts)}"
        )
    out = []
    for b, p in zip(parts, pv.params):
        if p.is_complex():
            raise PdekitUserError("bounds on complex parameters are not supported")
        b = fill if b is None else b
        out.append(torch.as_tensor(b, dtype=pv.dtype, device=pv.device).expand(p.shape).reshape(-1))
    return torch.cat(out)


class BoundedTrustRegion(_TrustRegionBase):
    """Trust region with bounds ``lower <= theta <= upper`` by Coleman-Li affine scaling.

    Iterates stay strictly inside the box (an infeasible start is moved inside). The subproblem
    is :func:`trust_region_step` with the :class:`ColemanLi` scaling at the iterate; the radius
    bounds the *scaled* step ``||s_hat||``. At a bound-constrained minimiser ``D g -> 0``.

    Parameters
    ----------
    params : iterable
    lower, upper : float, or sequence (one float/tensor/None per parameter tensor), optional
        ``None`` means unbounded on that side.
    radius, max_radius, eta, curvature, jacobian, cg_maxiter, cg_rtol
        As in :class:`TrustRegion` (``eta`` defaults to 0 here).

    Examples
    --------
    The projection of ``c = (2, -1)`` onto the box ``[0, 1]^2`` as a least-squares problem:

    >>> x = torch.tensor([0.5, 0.5], dtype=torch.float64, requires_grad=True)
    >>> c = torch.tensor([2.0, -1.0], dtype=torch.float64)
    >>> opt = BoundedTrustRegion([x], lower=0.0, upper=1.0)
    >>> for _ in range(40):
    ...     _ = opt.step(lambda: x - c)
    >>> [round(v, 6) for v in x.tolist()]
    [1.0, 0.0]

    References
    ----------
    .. [1] T. F. Coleman, Y. Li, "An interior trust region approach for nonlinear minimization
       subject to bounds", SIAM J. Optim. 6 (1996) 418-445.
    .. [2] M. A. Branch, T. F. Coleman, Y. Li, "A subspace, interior, and conjugate gradient method
       for large-scale bound-constrained minimization problems", SIAM J. Sci. Comput. 21 (1999).
    .. [3] T. Steihaug, SIAM J. Numer. Anal. 20 (1983) 626-637.
    """

    def __init__(
        self,
        params: Iterable,
        *,
        lower: float | Sequence | None = None,
        upper: float | Sequence | None = None,
        radius: float = 1.0,
        max_radius: float = 1000.0,
        eta: float = 0.0,
        curvature: Curvature = "ggn",
        jacobian: JacobianMode = "matrix_free",
        cg_maxiter: int = 250,
        cg_rtol: float | None = None,
    ):
        self._setup(params, TrustRegionOptions(radius, max_radius, eta, curvature, jacobian,
                                               cg_maxiter, cg_rtol))
        pv = ParamVector(self.param_groups[0]["params"])
        self.lower = _bound_vector(lower, pv, -math.inf)
        self.upper = _bound_vector(upper, pv, math.inf)
        if bool((self.lower >= self.upper).any()):
            raise PdekitUserError("every lower bound must be below its upper bound")
        self._make_strictly_feasible(pv)

    def _make_strictly_feasible(self, pv: ParamVector, rstep: float = 1e-10) -> None:
        x = pv.get()
        lo, up = self.lower, self.upper
        span = torch.where(torch.isfinite(up - lo), up - lo, torch.ones_like(x))
        eps_lo = lo + rstep * torch.clamp(lo.abs(), min=1.0).nan_to_num(posinf=1.0)
        eps_up = up - rstep * torch.clamp(up.abs(), min=1.0).nan_to_num(posinf=1.0)
        inner = torch.minimum(torch.maximum(x, eps_lo), eps_up)
        mid = lo + 0.5 * span
        inner = torch.where(eps_lo >= eps_up, mid, inner)  # a very tight box: its middle
        pv.set_(inner)
