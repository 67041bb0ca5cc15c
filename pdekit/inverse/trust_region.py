"""Inexact Gauss-Newton trust-region method with Steihaug-CG and Coleman-Li scaling for bounds.

Each outer iteration solves the trust-region subproblem

.. math:: \\min_{\\hat s}\\; \\hat g^T \\hat s + \\tfrac12 \\hat s^T \\hat H \\hat s
          \\quad\\text{s.t.}\\quad \\|\\hat s\\|_{R} \\le \\Delta

approximately with preconditioned Steihaug-CG (stopped by the Eisenstat-Walker forcing term, the
trust-region boundary or negative curvature), where the hat quantities are the Coleman-Li affinely
scaled ones for the box ``l <= m <= u``: ``D = diag(sqrt(v))``, ``v_i`` the distance to the bound the
gradient points to (1 if unbounded), ``g_hat = D g``, ``H_hat = D H_GN D + diag(g * dv)``, step
``s = D s_hat`` stepped back to stay strictly feasible. Without bounds ``D = I`` and this is
hIPPYlib's trust-region Newton-CG with the Gauss-Newton Hessian, preconditioned by the prior
(``R^{-1}``) and with the trust region measured in the prior norm ``||.||_R`` (mesh independent).
Radius: ``rho < 1/4`` shrinks to ``||s||/4``, ``rho > 3/4`` on the boundary doubles; steps with
``rho > eta`` are accepted.

References
----------
.. [1] T. Steihaug, "The conjugate gradient method and trust regions in large scale optimization",
   SIAM J. Numer. Anal. 20 (1983) 626-637.
.. [2] T. F. Coleman and Y. Li, "An interior trust region approach for nonlinear minimization
   subject to bounds", SIAM J. Optim. 6 (1996) 418-445.
.. [3] S. C. Eisenstat and H. F. Walker, "Choosing the forcing terms in an inexact Newton method",
   SIAM J. Sci. Comput. 17 (1996) 16-32.
.. [4] J. Nocedal and S. J. Wright, *Numerical Optimization*, 2nd ed., Springer, 2006, ch. 4 and 7.
.. [5] U. Villa, N. Petra, O. Ghattas, "hIPPYlib", ACM Trans. Math. Softw. 47 (2021) 16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pdekit.inverse.problem import Objective, dot
from pdekit.inverse.result import History, InversionResult

__all__ = ["steihaug_cg", "CGResult", "EisenstatWalker", "coleman_li_scaling", "trust_region"]


@dataclass
class CGResult:
    """Approximate minimiser ``s`` of ``g^T s + 0.5 s^T H s``; ``Hs = H s``; why CG stopped."""

    s: torch.Tensor
    Hs: torch.Tensor
    iterations: int
    reason: str  # "converged", "boundary", "negative curvature", "maxiter"

    def predicted_reduction(self, g: torch.Tensor, scale: float = 1.0) -> float:
        """``-(g^T (c s) + 0.5 c^2 s^T H s)`` for the step ``c s``."""
        return -float(scale * dot(g, self.s) + 0.5 * scale**2 * dot(self.s, self.Hs))


def _to_boundary(s, p, metric, radius) -> float:
    """``tau >= 0`` with ``||s + tau p||_W = radius``."""
    Ws, Wp = metric(s), metric(p)
    a, b, c = float(dot(p, Wp)), 2 * float(dot(s, Wp)), float(dot(s, Ws)) - radius**2
    return (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def steihaug_cg(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    g: torch.Tensor,
    *,
    precond: Callable[[torch.Tensor], torch.Tensor] | None = None,
    metric: Callable[[torch.Tensor], torch.Tensor] | None = None,
    rtol: float = 0.5,
    maxiter: int = 100,
    radius: float = math.inf,
) -> CGResult:
    """Preconditioned Steihaug-Toint CG for ``min g^T s + 0.5 s^T H s``, ``||s||_W <= radius``.

    Stops when ``||r||_P <= rtol ||g||_P`` (``r = g + H s``), on the boundary, or on negative
    curvature (then it goes to the boundary, or returns the preconditioned steepest descent
    direction ``-P g`` when the radius is infinite and no step was taken yet).

    Examples
    --------
    >>> import torch
    >>> H = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    >>> g = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> out = steihaug_cg(lambda v: H @ v, g, rtol=1e-10)
    >>> [round(v, 6) for v in out.s.tolist()], out.reason
    ([-1.0, -0.1], 'converged')
    >>> round(float(steihaug_cg(lambda v: H @ v, g, radius=0.5).s.norm()), 12)
    0.5
    """
    P = precond if precond is not None else (lambda v: v)
    W = metric if metric is not None else (lambda v: v)
    s = torch.zeros_like(g)
    Hs = torch.zeros_like(g)
    r = g.clone()
    z = P(r)
    rz = float(dot(r, z))
    if rz <= 0:
        return CGResult(s, Hs, 0, "converged")
    tol = rtol * math.sqrt(rz)
    p = -z
    for i in range(maxiter):
        Hp = hvp(p)
        curv = float(dot(p, Hp))
        if curv <= 0:
            if math.isinf(radius):
                if i == 0:
                    return CGResult(p, Hp, 1, "negative curvature")
                return CGResult(s, Hs, i + 1, "negative curvature")
            tau = _to_boundary(s, p, W, radius)
            return CGResult(s + tau * p, Hs + tau * Hp, i + 1, "negative curvature")
        alpha = rz / curv
        s_new = s + alpha * p
        if not math.isinf(radius) and float(dot(s_new, W(s_new))) >= radius**2:
            tau = _to_boundary(s, p, W, radius)
            return CGResult(s + tau * p, Hs + tau * Hp, i + 1, "boundary")
        s, Hs = s_new, Hs + alpha * Hp
        r = r + alpha * Hp
        z = P(r)
        rz_new = float(dot(r, z))
        if math.sqrt(max(rz_new, 0.0)) <= tol:
            return CGResult(s, Hs, i + 1, "converged")
        p = -z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(s, Hs, maxiter, "maxiter")


@dataclass
class EisenstatWalker:
    """Forcing terms ``eta_k`` for inexact Newton: the CG tolerance relative to ``||g_k||``.

    ``"ew2"`` is Eisenstat-Walker choice 2, ``eta_k = gamma (||g_k|| / ||g_{k-1}||)^alpha`` with the
    safeguard ``eta_k >= gamma eta_{k-1}^alpha`` when that exceeds 0.1, capped at ``eta_max``;
    ``"hippylib"`` is ``min(eta_max, sqrt(||g_k|| / ||g_0||))``; a float is a constant.

    Examples
    --------
    >>> ew = EisenstatWalker()
    >>> round(ew(1.0), 3), round(ew(0.1), 4)     # eta_max, then the safeguard 0.9 * 0.5**2
    (0.5, 0.225)
    >>> round(ew(0.001), 4)                      # 0.9 * 0.01**2, safeguard 0.9 * 0.225**2 < 0.1
    0.0001
    """

    choice: str | float = "ew2"
    eta_max: float = 0.5
    gamma: float = 0.9
    alpha: float = 2.0
    _prev_g: float | None = None
    _prev_eta: float | None = None
    _g0: float | None = None

    def __post_init__(self):
        if not isinstance(self.choice, (int, float)) and self.choice not in ("ew2", "hippylib"):
            raise ValueError(f"forcing must be 'ew2', 'hippylib' or a float, got {self.choice!r}")

    def __call__(self, gnorm: float) -> float:
        if self._g0 is None:
            self._g0 = gnorm
        if isinstance(self.choice, (int, float)):
            eta = float(self.choice)
        elif self.choice == "hippylib":
            eta = min(self.eta_max, math.sqrt(gnorm / self._g0))
        elif self._prev_g is None:
            eta = self.eta_max
        else:
            eta = self.gamma * (gnorm / self._prev_g) ** self.alpha
            safe = self.gamma * self._prev_eta**self.alpha
            if safe > 0.1:
                eta = max(eta, safe)
            eta = min(eta, self.eta_max)
        self._prev_g, self._prev_eta = gnorm, eta
        return eta


def coleman_li_scaling(m, g, lower: float, upper: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Coleman-Li ``v`` and ``dv``: distance to the bound ``-g`` points to (1 if none), its sign.

    Examples
    --------
    >>> import torch
    >>> v, dv = coleman_li_scaling(torch.tensor([0.5, 0.5]), torch.tensor([1.0, -1.0]), 0.0, 2.0)
    >>> v.tolist(), dv.tolist()
    ([0.5, 1.5], [1.0, -1.0])
    """
    v = torch.ones_like(m)
    dv = torch.zeros_like(m)
    if math.isfinite(upper):
        up = g < 0
        v = torch.where(up, upper - m, v)
        dv = torch.where(up, -torch.ones_like(m), dv)
    if math.isfinite(lower):
        lo = g > 0
        v = torch.where(lo, m - lower, v)
        dv = torch.where(lo, torch.ones_like(m), dv)
    return v, dv


def _interior(m, lower, upper, frac=1e-6):
    width = (upper - lower) if math.isfinite(upper - lower) else 1.0
    lo = lower + frac * width if math.isfinite(lower) else -math.inf
    hi = upper - frac * width if math.isfinite(upper) else math.inf
    if not (math.isfinite(lo) or math.isfinite(hi)):
        return m
    return m.clamp(min=lo if math.isfinite(lo) else None, max=hi if math.isfinite(hi) else None)


def _max_fraction(m, s, lower, upper) -> float:
    """Largest ``t <= 1`` with ``m + t s`` inside the box."""
    t = torch.ones_like(m)
    if math.isfinite(upper):
        pos = s > 0
        t = torch.where(pos, torch.clamp((upper - m) / torch.where(pos, s, 1), max=1.0), t)
    if math.isfinite(lower):
        neg = s < 0
        t = torch.where(neg, torch.clamp((lower - m) / torch.where(neg, s, -1), max=1.0), t)
    return float(t.min())


def trust_region(
    objective: Objective,
    m0: torch.Tensor,
    *,
    max_iter: int = 30,
    gtol: float = 1e-6,
    radius: float | None = None,
    eta: float = 0.05,
    forcing: str | float = "ew2",
    max_cg: int = 100,
    theta_min: float = 0.995,
    callback: Callable[[dict], None] | None = None,
) -> InversionResult:
    """Gauss-Newton trust-region method (Steihaug-CG, Coleman-Li scaling for bounds).

    Parameters
    ----------
    objective : Objective
    m0 : Tensor
        Initial parameter (moved strictly inside the bounds of the model's parameterisation).
    max_iter : int
        Outer iterations (accepted or rejected).
    gtol : float
        Stop when the scaled, prior-preconditioned gradient norm drops by this factor.
    radius : float, optional
        Initial radius in the prior norm; ``None``: the first step is the full Gauss-Newton step
        and its norm becomes the radius.
    eta : float
        Acceptance threshold on ``rho = actual / predicted reduction`` (hIPPYlib: 0.05).
    forcing : {"ew2", "hippylib"} or float
        CG tolerance; see :class:`EisenstatWalker`.
    max_cg : int
        CG iterations per subproblem (each costs two linearised PDE solves).
    theta_min : float
        Minimum step-back fraction from the bounds (Coleman-Li).
    callback : callable, optional
        Called with each history record.

    Returns
    -------
    InversionResult

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.inverse import (DarcyModel, H1Smoothness, InverseProblem, LogCoefficient,
    ...                             Observations, SubsampledObservation)
    >>> g = Grid((13, 13))
    >>> model = DarcyModel(g, parameterisation=LogCoefficient(lower=0.5, upper=2.0))
    >>> problem = InverseProblem(model, H1Smoothness(g, gamma=1e-4, delta=1e-4))
    >>> X, Y = g.mesh()
    >>> truth = 0.5 * torch.sin(torch.pi * X) * torch.sin(torch.pi * Y)
    >>> obs = Observations.synthetic(SubsampledObservation(g, 2), model.solve(truth), 1e-3,
    ...                              torch.Generator().manual_seed(0))
    >>> res = trust_region(problem.objective(obs), torch.zeros(13, 13, dtype=torch.float64))
    >>> lo, hi = model.parameterisation.bounds
    >>> bool(res.m.min() >= lo and res.m.max() <= hi), res.diagnostics["converged"]
    (True, True)
    """
    lower, upper = objective.model.parameterisation.bounds
    prior = objective.prior
    bounded = math.isfinite(lower) or math.isfinite(upper)
    # Without bounds: hIPPYlib's prior preconditioner and prior-norm region. With bounds, the
    # Coleman-Li scaling D changes every iteration and the prior no longer matches D H D: use
    # the Euclidean norm of the scaled step, as Coleman and Li do.
    has_p = not bounded and prior.precondition(torch.zeros_like(m0)) is not None
    P = prior.precondition if has_p else None
    W = (lambda v: prior.hessian_apply(m0, v)) if has_p else None
    norm_W = (
        (lambda v: math.sqrt(max(float(dot(v, W(v))), 0.0))) if W else (lambda v: float(v.norm()))
    )
    m = _interior(m0.detach().to(torch.float64).clone(), lower, upper)
    hist = History(objective.counter)
    ew = EisenstatWalker(forcing)
    ev, g = objective.value_and_gradient(m)
    delta = math.inf if radius is None else float(radius)
    gnorm0 = None
    converged, message = False, "maximum iterations reached"
    for k in range(max_iter + 1):
        v, dv = coleman_li_scaling(m, g, lower, upper)
        D = v.sqrt()
        gh = D * g
        gnorm = math.sqrt(max(float(dot(gh, P(gh) if P else gh)), 0.0))
        gnorm0 = gnorm if gnorm0 is None else gnorm0
        rec = hist.add(k, ev, gnorm, radius=delta)
        if callback:
            callback(rec)
        if gnorm <= gtol * gnorm0:
            converged, message = True, "gradient tolerance reached"
            break
        if k == max_iter:
            break
        H = objective.gauss_newton_hessian(m)
        C = g * dv

        def hvp(s, H=H, D=D, C=C):
            return D * H(D * s) + C * s

        cg = steihaug_cg(hvp, gh, precond=P, metric=W, rtol=ew(gnorm), maxiter=max_cg, radius=delta)
        step = D * cg.s
        frac = _max_fraction(m, step, lower, upper)
        scale = 1.0 if frac >= 1 else max(theta_min, 1 - float(gh.abs().max())) * frac
        step = scale * step
        pred = cg.predicted_reduction(gh, scale)
        trial = objective.evaluate(m + step)
        ared = ev.value - trial.value
        rho = ared / pred if pred > 0 else -math.inf
        s_norm = norm_W(scale * cg.s)
        if rho < 0.25:
            delta = 0.25 * s_norm
        elif rho > 0.75 and (cg.reason == "boundary" or math.isinf(delta)):
            delta = max(2 * delta, 2 * s_norm) if not math.isinf(delta) else 2 * s_norm
        hist.records[-1].update(cg_iterations=cg.iterations, cg_stop=cg.reason, rho=rho)
        if rho > eta:
            m = m + step
            ev, g = objective.value_and_gradient(m)
        if delta < 1e-12 * max(1.0, norm_W(m)):
            message = "trust region collapsed"
            break
    return hist.result(objective, m, "trust-region", converged, message)
