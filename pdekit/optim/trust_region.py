"""Hessian-free trust regions: Steihaug-Toint truncated CG, and Coleman-Li scaling for bounds.

:class:`TrustRegion` minimises ``L = 1/2 ||r||^2`` by approximately solving, at every step,

    min_s  g^T s + 1/2 s^T B s   subject to  ||s|| <= Delta,

with the Steihaug-Toint truncated CG (:func:`steihaug_cg`), where ``B`` is the Gauss-Newton matrix
``J^T J`` (``curvature="ggn"``) or the exact Hessian (``curvature="hessian"``), both applied
matrix-free. The step is accepted when the gain ratio ``rho = ared / pred`` exceeds ``eta``; the
radius shrinks to ``Delta / 4`` when ``rho < 1/4`` and doubles (up to ``max_radius``) when
``rho > 3/4`` and the step reached the boundary.

:class:`BoundedTrustRegion` adds bounds ``l <= theta <= u`` (e.g. a positive diffusivity in an
inverse problem) by the Coleman-Li affine scaling: the subproblem is solved in the variables
``s_hat = D^-1 s`` with ``D = diag(sqrt(v))``, ``v`` the distances to the bounds the gradient points
to, with the extra curvature ``diag(|g| * |dv|)``; iterates stay strictly feasible by stepping back
from the bounds (as in SciPy's ``least_squares(method="trf")``).

Steihaug's CG is its own algorithm (it stops on negative curvature and at the boundary); the
unconstrained CG solves of :mod:`pdekit.optim.gn_cg` use :func:`pdekit.core.krylov.cg`.

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
from typing import Literal

import torch

from pdekit.optim._functional import Linearization, ParamVector, evaluate_loss
from pdekit.optim._linesearch import StepInfo

__all__ = ["TrustRegion", "BoundedTrustRegion", "steihaug_cg"]

Curvature = Literal["ggn", "hessian"]
JacobianMode = Literal["matrix_free", "dense"]


def _boundary_tau(z: torch.Tensor, d: torch.Tensor, radius: float) -> float:
    """The ``tau >= 0`` with ``||z + tau d|| = radius`` (``||z|| <= radius``)."""
    a, b, c = float(d @ d), 2 * float(z @ d), float(z @ z) - radius**2
    disc = math.sqrt(max(b * b - 4 * a * c, 0.0))
    return (-b + disc) / (2 * a) if a > 0 else 0.0


def steihaug_cg(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    g: torch.Tensor,
    radius: float,
    *,
    rtol: float | None = None,
    maxiter: int = 250,
) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """Steihaug-Toint truncated CG for ``min g^T s + 1/2 s^T B s``, ``||s|| <= radius``.

    Parameters
    ----------
    hvp : callable
        ``hvp(v) -> B v`` for a ``(p,)`` vector.
    g : Tensor
        Gradient ``(p,)``.
    radius : float
    rtol : float, optional
        Stop when ``||B s + g|| <= rtol ||g||``; default ``min(0.5, sqrt(||g||))`` (Nocedal & Wright).
    maxiter : int

    Returns
    -------
    s : Tensor
        The step.
    Bs : Tensor
        ``B s`` (for the predicted reduction, without an extra product).
    iterations : int
    hit_boundary : bool

    Examples
    --------
    >>> B = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> g = torch.tensor([-1.0, -4.0], dtype=torch.float64)
    >>> s, Bs, its, hit = steihaug_cg(lambda v: B @ v, g, 10.0, rtol=1e-12)
    >>> [round(v, 12) for v in s.tolist()], hit
    ([1.0, 1.0], False)
    >>> s, _, _, hit = steihaug_cg(lambda v: B @ v, g, 0.5)
    >>> round(float(s.norm()), 12), hit
    (0.5, True)

    References
    ----------
    .. [1] T. Steihaug, SIAM J. Numer. Anal. 20 (1983) 626-637.
    .. [2] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.2.
    """
    gnorm = float(g.norm())
    z = torch.zeros_like(g)
    Bz = torch.zeros_like(g)
    if gnorm == 0:
        return z, Bz, 0, False
    tol = (min(0.5, math.sqrt(gnorm)) if rtol is None else rtol) * gnorm
    res = g.clone()  # residual of B z + g
    d = -res
    rr = float(res @ res)
    for it in range(1, maxiter + 1):
        Bd = hvp(d)
        dBd = float(d @ Bd)
        if not dBd > 0:  # negative (or zero) curvature: go to the boundary along d
            tau = _boundary_tau(z, d, radius)
            return z + tau * d, Bz + tau * Bd, it, True
        alpha = rr / dBd
        z_next = z + alpha * d
        if float(z_next.norm()) >= radius:
            tau = _boundary_tau(z, d, radius)
            return z + tau * d, Bz + tau * Bd, it, True
        z, Bz = z_next, Bz + alpha * Bd
        res = res + alpha * Bd
        rr_new = float(res @ res)
        if math.sqrt(rr_new) <= tol:
            return z, Bz, it, False
        d = -res + (rr_new / rr) * d
        rr = rr_new
    return z, Bz, maxiter, False


class _TrustRegionBase(torch.optim.Optimizer):
    def _state(self) -> dict:
        group = self.param_groups[0]
        state = self.state[group["params"][0]]
        if not state:
            state.update(n_steps=0, radius=float(group["radius"]))
        return state

    def _products(self, lin: Linearization) -> Callable[[torch.Tensor], torch.Tensor]:
        group = self.param_groups[0]
        if group["curvature"] == "hessian":
            return lambda v: lin.hvp(v[None])[0]
        if group["jacobian"] == "dense":
            J = lin.jacobian()
            return lambda v: J.T @ (J @ v)
        return lambda v: lin.ggn_vp(v[None])[0]

    def _update_radius(self, state: dict, rho: float, step_norm: float, hit: bool) -> None:
        group = self.param_groups[0]
        if not rho == rho or rho < 0.25:
            state["radius"] = 0.25 * min(state["radius"], max(step_norm, 1e-300))
        elif rho > 0.75 and hit:
            state["radius"] = min(2 * state["radius"], group["max_radius"])


class TrustRegion(_TrustRegionBase):
    """Hessian-free trust-region Newton/Gauss-Newton with Steihaug-Toint truncated CG.

    ``step(closure)`` takes a closure returning the **residual vector** (see
    :class:`~pdekit.optim.GaussNewton`); each step solves one subproblem and evaluates one trial
    point. A rejected step leaves the parameters unchanged.

    Parameters
    ----------
    params : iterable
    radius : float
        Initial trust-region radius ``Delta_0`` (Euclidean norm of the parameter step).
    max_radius : float
    eta : float
        Accept the step when ``rho > eta``.
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
        if not radius > 0 or not max_radius >= radius:
            raise ValueError(f"need 0 < radius <= max_radius, got {radius}, {max_radius}")
        if not 0 <= eta < 0.25:
            raise ValueError(f"eta must lie in [0, 1/4), got {eta}")
        if curvature not in ("ggn", "hessian"):
            raise ValueError(f"curvature must be 'ggn' or 'hessian', got {curvature!r}")
        if jacobian not in ("matrix_free", "dense"):
            raise ValueError(f"jacobian must be 'matrix_free' or 'dense', got {jacobian!r}")
        defaults = dict(radius=radius, max_radius=max_radius, eta=eta, curvature=curvature,
                        jacobian=jacobian, cg_maxiter=cg_maxiter, cg_rtol=cg_rtol)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("TrustRegion supports a single parameter group")
        self.last_step: StepInfo | None = None

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One trust-region step; returns the loss ``1/2 ||r||^2`` before the step."""
        if closure is None:
            raise ValueError("TrustRegion.step needs a closure that returns the residual vector")
        group = self.param_groups[0]
        state = self._state()
        state["n_steps"] += 1
        pv = ParamVector(group["params"])
        lin = Linearization(closure, pv)
        f0 = lin.loss
        g = lin.gradient()
        radius = state["radius"]
        s, Bs, its, hit = steihaug_cg(self._products(lin), g, radius, rtol=group["cg_rtol"],
                                      maxiter=group["cg_maxiter"])
        del lin
        pred = -(float(g @ s) + 0.5 * float(s @ Bs))
        theta = pv.get()
        if not pred > 0:  # zero gradient: nothing to do
            self.last_step = StepInfo(f0, f0, False, 0.0, radius, float("nan"), its)
            return torch.tensor(f0, dtype=torch.float64)
        pv.set_(theta + s)
        f_new = evaluate_loss(closure)
        rho = (f0 - f_new) / pred if f_new == f_new else float("nan")
        accepted = rho == rho and rho > group["eta"] and f_new < f0
        if not accepted:
            pv.set_(theta)
            f_new = f0
        self._update_radius(state, rho, float(s.norm()), hit)
        self.last_step = StepInfo(f0, f_new, accepted, 1.0 if accepted else 0.0, radius, rho,
                                  its, 2)
        return torch.tensor(f0, dtype=torch.float64)


def _bound_vector(bound, pv: ParamVector, fill: float) -> torch.Tensor:
    """Bounds given as None, a float, or one float/tensor per parameter -> a ``(p,)`` vector."""
    if bound is None or isinstance(bound, (int, float)):
        value = fill if bound is None else float(bound)
        return torch.full((pv.p,), value, dtype=pv.dtype, device=pv.device)
    parts = list(bound)
    if len(parts) != len(pv.params):
        raise ValueError(f"give one bound per parameter tensor ({len(pv.params)}), got {len(parts)}")
    out = []
    for b, p in zip(parts, pv.params):
        if p.is_complex():
            raise ValueError("bounds on complex parameters are not supported")
        b = fill if b is None else b
        out.append(torch.as_tensor(b, dtype=pv.dtype, device=pv.device).expand(p.shape).reshape(-1))
    return torch.cat(out)


class BoundedTrustRegion(_TrustRegionBase):
    """Trust region with bounds ``lower <= theta <= upper`` by Coleman-Li affine scaling.

    Iterates stay strictly inside the box (an infeasible start is moved inside). At ``theta``
    with gradient ``g``, let ``v_i = u_i - theta_i`` if ``g_i < 0`` and ``u_i`` is finite,
    ``v_i = theta_i - l_i`` if ``g_i > 0`` and ``l_i`` is finite, else 1; ``D = diag(sqrt(v))``.
    The Steihaug subproblem is solved for ``s_hat`` with gradient ``D g`` and curvature
    ``D B D + diag(|g_i| [v_i from a finite bound])``; the step ``s = D s_hat`` is shortened to
    ``theta_step = max(0.995, 1 - ||D g||_inf)`` times the distance to the nearest bound it would
    cross. At a bound-constrained minimiser ``D g -> 0``.

    Parameters
    ----------
    params : iterable
    lower, upper : float, or sequence (one float/tensor/None per parameter tensor), optional
        ``None`` means unbounded on that side.
    radius, max_radius, eta, curvature, jacobian, cg_maxiter, cg_rtol
        As in :class:`TrustRegion`; the radius bounds the *scaled* step ``||s_hat||``.

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
        if not radius > 0 or not max_radius >= radius:
            raise ValueError(f"need 0 < radius <= max_radius, got {radius}, {max_radius}")
        if curvature not in ("ggn", "hessian"):
            raise ValueError(f"curvature must be 'ggn' or 'hessian', got {curvature!r}")
        defaults = dict(radius=radius, max_radius=max_radius, eta=eta, curvature=curvature,
                        jacobian=jacobian, cg_maxiter=cg_maxiter, cg_rtol=cg_rtol)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("BoundedTrustRegion supports a single parameter group")
        pv = ParamVector(self.param_groups[0]["params"])
        self.lower = _bound_vector(lower, pv, -math.inf)
        self.upper = _bound_vector(upper, pv, math.inf)
        if bool((self.lower >= self.upper).any()):
            raise ValueError("every lower bound must be below its upper bound")
        self._make_strictly_feasible(pv)
        self.last_step: StepInfo | None = None

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

    def _scaling(self, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coleman-Li ``v`` and ``|dv|`` (1 where ``v`` comes from a finite bound)."""
        lo, up = self.lower, self.upper
        to_upper = (g < 0) & torch.isfinite(up)
        to_lower = (g > 0) & torch.isfinite(lo)
        v = torch.ones_like(x)
        v = torch.where(to_upper, up - x, v)
        v = torch.where(to_lower, x - lo, v)
        dv = (to_upper | to_lower).to(x.dtype)
        return v, dv

    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One scaled trust-region step; returns the loss ``1/2 ||r||^2`` before the step."""
        if closure is None:
            raise ValueError("BoundedTrustRegion.step needs a closure returning the residual")
        group = self.param_groups[0]
        state = self._state()
        state["n_steps"] += 1
        pv = ParamVector(group["params"])
        x = pv.get()
        lin = Linearization(closure, pv)
        f0 = lin.loss
        g = lin.gradient()
        v, dv = self._scaling(x, g)
        D = v.sqrt()
        g_h = D * g
        C = g.abs() * dv
        B = self._products(lin)

        def hvp_scaled(u: torch.Tensor) -> torch.Tensor:
            return D * B(D * u) + C * u

        radius = state["radius"]
        s_h, Bs_h, its, hit = steihaug_cg(hvp_scaled, g_h, radius, rtol=group["cg_rtol"],
                                          maxiter=group["cg_maxiter"])
        del lin
        s = D * s_h
        # step back from the bounds (strict feasibility)
        with torch.no_grad():
            t_up = torch.where(s > 0, (self.upper - x) / torch.where(s > 0, s, 1.0), math.inf)
            t_lo = torch.where(s < 0, (self.lower - x) / torch.where(s < 0, s, 1.0), math.inf)
            t_max = float(torch.minimum(t_up, t_lo).min()) if s.numel() else math.inf
        if t_max <= 1.0:
            theta_back = max(0.995, 1.0 - float(g_h.abs().max()))
            scale = theta_back * t_max
            s_h, Bs_h = scale * s_h, scale * Bs_h
            s = D * s_h
        pred = -(float(g_h @ s_h) + 0.5 * float(s_h @ Bs_h))
        if not pred > 0:
            self.last_step = StepInfo(f0, f0, False, 0.0, radius, float("nan"), its)
            return torch.tensor(f0, dtype=torch.float64)
        pv.set_(torch.minimum(torch.maximum(x + s, self.lower), self.upper))  # round-off only
        f_new = evaluate_loss(closure)
        rho = (f0 - f_new) / pred if f_new == f_new else float("nan")
        accepted = rho == rho and rho > group["eta"] and f_new < f0
        if not accepted:
            pv.set_(x)
            f_new = f0
        self._update_radius(state, rho, float(s_h.norm()), hit)
        self.last_step = StepInfo(f0, f_new, accepted, 1.0 if accepted else 0.0, radius, rho,
                                  its, 2)
        return torch.tensor(f0, dtype=torch.float64)
