"""One entry point for both recycling methods, returning a full :class:`SolveResult`."""

from __future__ import annotations

from typing import Any, Literal

import torch

from pdekit.core.krylov_base import PARAMETERS, Callback, fill_doc
from pdekit.core.recycling.gcrodr import run_gcrodr
from pdekit.core.recycling.rcg import run_rcg
from pdekit.core.recycling.space import RECYCLE_PARAMETERS, RecycleRun, RecycleSpace
from pdekit.core.solve_result import SolveResult

__all__ = ["recycled_solve"]

_ENGINES = {
    "gcrodr": (run_gcrodr, {"m", "k", "selection", "adapt", "max_overhead"}),
    "rcg": (run_rcg, {"k", "n_store", "adapt", "max_overhead"}),
}


@fill_doc(params=PARAMETERS, recycle_params=RECYCLE_PARAMETERS)
def recycled_solve(
    A: Any,
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    *,
    method: Literal["gcrodr", "rcg"] = "gcrodr",
    rtol: float = 1e-5,
    atol: float = 0.0,
    maxiter: int | None = None,
    M: Any = None,
    recycle: RecycleSpace | None = None,
    callback: Callback | None = None,
    strict: bool = False,
    same_operator: bool = False,
    **options: Any,
) -> SolveResult:
    """Solve with recycling and return a :class:`SolveResult` whose ``recycle`` is the new space.

    Parameters
    ----------
    {params}
    method : {"gcrodr", "rcg"}
        GCRO-DR (any nonsingular ``A``) or deflated PCG (SPD ``A`` and ``M``).
    {recycle_params}
    **options
        ``m``, ``k`` and ``selection`` for :func:`gcrodr`; ``k`` and ``n_store`` for :func:`rcg`;
        ``adapt`` and ``max_overhead`` (the adaptive rule, default on) for both.

    Returns
    -------
    SolveResult
        ``x``, per-system ``iterations``, ``converged``, true ``rel_residual``, ``matvecs`` and the
        new :class:`RecycleSpace` in ``recycle``.

    Examples
    --------
    >>> import torch
    >>> A = torch.diag(torch.linspace(0.01, 1.0, 50, dtype=torch.float64))
    >>> b = torch.ones(50, dtype=torch.float64)
    >>> first = recycled_solve(A, b, method="rcg", k=5, rtol=1e-8)
    >>> second = recycled_solve(A, b + 0.1, method="rcg", k=5, rtol=1e-8, recycle=first.recycle)
    >>> bool(second.converged), int(second.iterations) < int(first.iterations)
    (True, True)

    References
    ----------
    .. [1] Parks et al., SIAM J. Sci. Comput. 28(5), 2006 (GCRO-DR).
    .. [2] Saad, Yeung, Erhel, Guyomarc'h, SIAM J. Sci. Comput. 21(5), 2000 (deflated CG).
    .. [3] Wang et al., ICLR 2024 (SKR: recycling over sorted sequences of PDE systems).
    """
    if method not in _ENGINES:
        raise ValueError(f"unknown recycling method {method!r}; use 'gcrodr' or 'rcg'")
    engine, names = _ENGINES[method]
    unknown = set(options) - names
    if unknown:
        raise ValueError(f"{method}: unknown options {sorted(unknown)}")
    pb = RecycleRun(method, A, b, x0, rtol, atol, maxiter, M, callback, strict)
    return engine(pb, recycle, same_operator, **options)
