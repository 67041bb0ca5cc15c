"""Steihaug-Toint truncated conjugate gradients: the inner solver of every Newton-type method here.

:func:`steihaug_cg` approximately minimises the quadratic model ``g^T s + 1/2 s^T H s`` subject to
``||s||_W <= radius``. It is preconditioned CG started at ``s = 0`` that stops

* when the preconditioned residual ``||g + H s||_P`` drops below ``rtol ||g||_P``,
* when an iterate leaves the trust region (it returns the boundary point on the last direction),
* on negative (or zero) curvature: it follows the last direction to the boundary, or, with an
  infinite radius, returns the steps taken so far (the preconditioned steepest descent direction
  ``-P g`` if none was taken yet).

With ``radius=inf`` it is the inexact-Newton CG of hIPPYlib's Newton-CG. The trust-region methods
(:mod:`pdekit.optim.trust_region`, :func:`pdekit.inverse.trust_region`) and the Gauss-Newton-CG
driver of :mod:`pdekit.inverse` use it; the mini-batch optimizer
:class:`~pdekit.optim.GaussNewtonCG` solves its damped, warm-started system with
:func:`pdekit.core.krylov.cg` instead.

Vectors may have any shape (a parameter field ``(n, n)`` or a flat ``(p,)`` vector); inner products
are :func:`dot`.

References
----------
.. [1] T. Steihaug, "The conjugate gradient method and trust regions in large scale
   optimization", SIAM J. Numer. Anal. 20 (1983) 626-637.
.. [2] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Springer 2006, Algorithm 7.2.
.. [3] U. Villa, N. Petra, O. Ghattas, "hIPPYlib: an extensible software framework for large-scale
   inverse problems governed by PDEs: Part I", ACM Trans. Math. Softw. 47 (2021) 16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["CGResult", "dot", "steihaug_cg"]

StopReason = Literal["converged", "boundary", "negative curvature", "maxiter"]
Operator = Callable[[torch.Tensor], torch.Tensor]


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean inner product of two tensors of any (equal) shape, as a 0-d tensor.

    Examples
    --------
    >>> float(dot(torch.ones(2, 3), torch.full((2, 3), 2.0)))
    12.0
    """
    return (a * b).sum()


@dataclass(frozen=True)
class CGResult:
    """What :func:`steihaug_cg` returns.

    Attributes
    ----------
    s : Tensor
        The approximate minimiser of ``g^T s + 1/2 s^T H s``.
    Hs : Tensor
        ``H s`` (for the predicted reduction, without an extra product).
    iterations : int
        CG iterations, i.e. products with ``H``.
    reason : {"converged", "boundary", "negative curvature", "maxiter"}
        Why CG stopped.

    Examples
    --------
    >>> H = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    >>> out = steihaug_cg(lambda v: H @ v, torch.tensor([-1.0, -4.0], dtype=torch.float64), 0.5)
    >>> out.reason, out.hit_boundary
    ('boundary', True)
    """

    s: torch.Tensor
    Hs: torch.Tensor
    iterations: int
    reason: StopReason

    @property
    def hit_boundary(self) -> bool:
        """Whether the step was cut at the trust-region boundary (or by negative curvature)."""
        return self.reason in ("boundary", "negative curvature")

    def predicted_reduction(self, g: torch.Tensor, scale: float = 1.0) -> float:
        """``-(g^T (c s) + 1/2 c^2 s^T H s)`` for the step ``c s``, ``c = scale``."""
        gs, sHs = float(dot(g, self.s)), float(dot(self.s, self.Hs))
        return -(scale * gs + 0.5 * scale**2 * sHs)


def _to_boundary(s: torch.Tensor, p: torch.Tensor, metric: Operator, radius: float) -> float:
    """The ``tau >= 0`` with ``||s + tau p||_W = radius`` (``||s||_W <= radius``)."""
    Ws, Wp = metric(s), metric(p)
    a, b, c = float(dot(p, Wp)), 2 * float(dot(s, Wp)), float(dot(s, Ws)) - radius**2
    if not a > 0:
        return 0.0
    return (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def steihaug_cg(
    hvp: Operator,
    g: torch.Tensor,
    radius: float = math.inf,
    *,
    precond: Operator | None = None,
    metric: Operator | None = None,
    rtol: float | None = None,
    maxiter: int = 250,
) -> CGResult:
    """Preconditioned Steihaug-Toint CG for ``min g^T s + 1/2 s^T H s``, ``||s||_W <= radius``.

    Parameters
    ----------
    hvp : callable
        ``v -> H v`` for a vector shaped like ``g``.
    g : Tensor
        Gradient (any shape).
    radius : float
        Trust-region radius in the ``W`` norm; ``inf`` (default) for an inexact Newton solve.
    precond : callable, optional
        ``v -> P v``, ``P`` SPD, approximately ``H^-1`` (default: identity).
    metric : callable, optional
        ``v -> W v``: the trust-region norm ``||s||_W = sqrt(s^T W s)`` (default: Euclidean). With
        ``W = P^-1`` the CG iterates grow monotonically in that norm, as Steihaug's proof needs.
    rtol : float, optional
        Stop when ``||g + H s||_P <= rtol ||g||_P``; default ``min(0.5, sqrt(||g||_P))``
        (Nocedal & Wright).
    maxiter : int
        Most CG iterations (products with ``H``).

    Returns
    -------
    CGResult

    Examples
    --------
    >>> H = torch.diag(torch.tensor([1.0, 10.0], dtype=torch.float64))
    >>> g = torch.tensor([1.0, 1.0], dtype=torch.float64)
    >>> out = steihaug_cg(lambda v: H @ v, g, rtol=1e-10)
    >>> [round(v, 6) for v in out.s.tolist()], out.reason
    ([-1.0, -0.1], 'converged')
    >>> out = steihaug_cg(lambda v: H @ v, g, 0.5)
    >>> round(float(out.s.norm()), 12), out.reason
    (0.5, 'boundary')

    References
    ----------
    .. [1] T. Steihaug, SIAM J. Numer. Anal. 20 (1983) 626-637.
    .. [2] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed., Algorithm 7.2.
    """
    P = precond if precond is not None else (lambda v: v)
    W = metric if metric is not None else (lambda v: v)
    bounded = not math.isinf(radius)
    s = torch.zeros_like(g)
    Hs = torch.zeros_like(g)
    r = g.clone()  # residual g + H s
    z = P(r)
    rz = float(dot(r, z))
    if not rz > 0:
        return CGResult(s, Hs, 0, "converged")
    gnorm = math.sqrt(rz)
    tol = (min(0.5, math.sqrt(gnorm)) if rtol is None else rtol) * gnorm
    p = -z
    for i in range(maxiter):
        Hp = hvp(p)
        curv = float(dot(p, Hp))
        if not curv > 0:  # negative or zero curvature (or NaN)
            if bounded:
                tau = _to_boundary(s, p, W, radius)
                return CGResult(s + tau * p, Hs + tau * Hp, i + 1, "negative curvature")
            if i == 0:
                return CGResult(p, Hp, 1, "negative curvature")
            return CGResult(s, Hs, i + 1, "negative curvature")
        alpha = rz / curv
        s_new = s + alpha * p
        if bounded and float(dot(s_new, W(s_new))) >= radius**2:
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
