"""The generation path of the linear PDE families: solve many related sparse systems.

A linear family (Darcy, Poisson, Helmholtz) turns ``N`` sampled inputs into ``N`` systems
``A_i x_i = b_i`` on the same grid: a batched :class:`~pdekit.core.stencils.StencilOperator`
(``batch = N``, or ``1`` when every sample shares the matrix) and right-hand sides
``(N, *interior_shape)``. :func:`solve_linear_systems` solves them with one of

``"spsolve"``
    scipy's sparse direct solver on the CPU (the reference; a shared matrix is factorised once and
    every right-hand side is solved against the factors).
``"cg"``, ``"gmres"``
    :mod:`pdekit.core.krylov` without recycling, batched over the systems (``batch_size`` at a
    time, on the systems' device). ``preconditioner`` may be ``"jacobi"`` or ``"mg"``.
``"mgpcg"``
    CG preconditioned by the geometric multigrid V-cycle (:mod:`pdekit.core.multigrid`), batched
    over the systems: the GPU path for SPD diffusion problems.
``"rcg"``, ``"gcrodr"``
    Krylov subspace recycling (SKR, Wang et al. 2024): order the samples so that consecutive systems
    are similar (:func:`pdekit.core.ordering.order_samples` on ``features``), cut the order into
    ``n_chains`` contiguous chains, and solve the chains side by side (batched), each system
    starting from the recycle space its predecessor in the chain handed back. ``rcg`` is recycled
    (deflated) CG for SPD matrices, ``gcrodr`` GCRO-DR(m, k) for nonsymmetric or indefinite ones.
    Solutions are returned in the ORIGINAL sample order.

Whatever the method, the reported residual is the true ``||b_i - A_i x_i|| / ||b_i||``, recomputed
here in the operator's dtype.

References
----------
.. [1] H. Wang, Z. Hao, J. Wang, Z. Geng, Z. Wang, B. Li, F. Wu, "Accelerating data generation for
   neural operators via Krylov subspace recycling", ICLR 2024, arXiv:2401.09516.
.. [2] M. L. Parks, E. de Sturler, G. Mackey, D. D. Johnson, S. Maiti, "Recycling Krylov subspaces
   for sequences of linear systems", SIAM J. Sci. Comput. 28(5), 2006.
.. [3] Y. Saad, M. Yeung, J. Erhel, F. Guyomarc'h, "A deflated version of the conjugate gradient
   algorithm", SIAM J. Sci. Comput. 21(5), 2000.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from pdekit.core.stencils import StencilOperator

if TYPE_CHECKING:
    from pdekit.pdes.base import PDEFamily, Solution

__all__ = ["LinearMethod", "LinearSolution", "solve_linear_systems", "generate", "METHODS"]

LinearMethod = Literal["spsolve", "cg", "gmres", "mgpcg", "rcg", "gcrodr"]
Ordering = Literal["greedy", "pca", "hilbert", "none"]
Preconditioner = Literal["none", "jacobi", "mg"]
METHODS: tuple[str, ...] = ("spsolve", "cg", "gmres", "mgpcg", "rcg", "gcrodr")
_RECYCLING = ("rcg", "gcrodr")


@dataclass
class LinearSolution:
    """Solutions of ``N`` systems in the original sample order, with per-system diagnostics.

    Attributes
    ----------
    x : Tensor
        ``(N, *interior_shape)`` solutions on the unknowns.
    iterations : Tensor
        ``(N,)`` int64 Krylov iterations (0 for ``spsolve``).
    rel_residual : Tensor
        ``(N,)`` float64 true relative residuals ``||b - A x|| / ||b||``.
    converged : Tensor
        ``(N,)`` bool, ``rel_residual <= rtol`` (or the absolute test ``atol``).
    extra : dict
        ``method``, ``preconditioner``, ``ordering`` (name or ``None``), ``perm`` (solve order as a
        LongTensor, ``None`` without ordering), ``n_chains``, ``matvecs`` (batched operator
        applications summed over solver calls), ``setup_s`` and ``solve_s`` (wall seconds).
    """

    x: torch.Tensor
    iterations: torch.Tensor
    rel_residual: torch.Tensor
    converged: torch.Tensor
    extra: dict = field(default_factory=dict)


def take_systems(op: StencilOperator, idx: torch.Tensor) -> StencilOperator:
    """The systems ``idx`` of a batched stencil operator (a shared operator is returned as is)."""
    return op.take(idx)


def _pick_rows(t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    if t is None or t.shape[0] == 1:
        return t
    return t.index_select(0, idx.to(t.device))


def true_residual(op: StencilOperator, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||b_i - A_i x_i|| / ||b_i||`` per system (``||r_i||`` where ``b_i = 0``), float64."""
    N = b.shape[0]
    r = (b - op.apply(x)).reshape(N, -1).to(torch.float64).norm(dim=1)
    bn = b.reshape(N, -1).to(torch.float64).norm(dim=1)
    return torch.where(bn > 0, r / torch.where(bn > 0, bn, torch.ones_like(bn)), r)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, leave=False)


def _preconditioner(kind: str, op: StencilOperator, coefficient: torch.Tensor | None, reaction):
    if kind == "none":
        return None
    if kind == "jacobi":
        from pdekit.core.precond import jacobi

        return jacobi(op)
    from pdekit.core.multigrid import MultigridPreconditioner, multigrid_preconditioner

    if coefficient is None:
        return multigrid_preconditioner(op)
    return MultigridPreconditioner(op.grid, coefficient, reaction=reaction)


def solve_linear_systems(
    op: StencilOperator,
    b: torch.Tensor,
    *,
    method: LinearMethod = "mgpcg",
    rtol: float = 1e-8,
    atol: float = 0.0,
    maxiter: int | None = None,
    x0: torch.Tensor | None = None,
    features: torch.Tensor | None = None,
    ordering: Ordering = "greedy",
    n_chains: int = 1,
    preconditioner: Preconditioner | None = None,
    mg_coefficient: torch.Tensor | None = None,
    mg_reaction: float | None = None,
    restart: int = 40,
    recycle_dim: int = 20,
    batch_size: int | None = None,
    progress: bool = False,
) -> LinearSolution:
    """Solve ``A_i x_i = b_i`` for ``i < N`` and return the solutions in the original order.

    Parameters
    ----------
    op : StencilOperator
        ``N`` systems (``op.batch == N``) or one matrix shared by all right-hand sides.
    b : Tensor
        ``(N, *interior_shape)`` right-hand sides (or flattened ``(N, n_unknowns)``).
    method : {"spsolve", "cg", "gmres", "mgpcg", "rcg", "gcrodr"}
        See the module notes. CG-type methods (``cg``, ``mgpcg``, ``rcg``) need SPD matrices.
    rtol, atol : float
        System ``i`` converges when ``||b_i - A_i x_i|| <= max(rtol ||b_i||, atol)``.
    maxiter : int, optional
        Iteration cap per system (the solvers' default otherwise).
    x0 : Tensor, optional
        Initial guesses ``(N, *interior_shape)`` for ``cg``, ``gmres`` and ``mgpcg``.
    features : Tensor, optional
        ``(N, ...)`` per-sample features for the ordering of the recycling methods (default: the
        right-hand sides, or the operator's centre coefficients when it is batched).
    ordering : {"greedy", "pca", "hilbert", "none"}
        Solve order of the recycling methods (ignored by the others).
    n_chains : int
        Independent recycling chains solved side by side (batched); ``1 <= n_chains <= N``.
    preconditioner : {"none", "jacobi", "mg"}, optional
        For ``cg``, ``gmres``, ``rcg`` and ``gcrodr`` (default ``"none"``; ``mgpcg`` always uses
        ``"mg"``). ``"mg"`` needs a Dirichlet diffusion-type problem: the V-cycle is built from
        ``mg_coefficient`` (nodal, ``(N or 1, *grid.shape)``) and ``mg_reaction``, or from the
        operator itself (:func:`pdekit.core.multigrid.multigrid_preconditioner`).
    restart, recycle_dim : int
        GMRES/GCRO-DR cycle length ``m`` and recycle dimension ``k`` (SKR: 40 and 20); ``rcg``
        keeps ``recycle_dim`` deflation vectors.
    batch_size : int, optional
        Most systems per batched call of the non-recycling Krylov methods (default: all).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    LinearSolution

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.core.stencils import laplacian
    >>> op = laplacian(Grid((9, 9)))
    >>> b = torch.ones(3, 7, 7, dtype=torch.float64)
    >>> out = solve_linear_systems(op, b, method="cg", rtol=1e-10)
    >>> out.x.shape, bool((out.rel_residual < 1e-10).all())
    (torch.Size([3, 7, 7]), True)

    References
    ----------
    .. [1] Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (sorting + GCRO-DR(40, 20); parallel chains, App. E.2.2).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if not isinstance(op, StencilOperator):
        raise TypeError(f"op must be a StencilOperator, got {type(op).__name__}")
    if not (rtol >= 0 and atol >= 0) or (rtol == 0 and atol == 0 and method != "spsolve"):
        raise ValueError(f"need rtol >= 0 and atol >= 0, not both 0; got rtol={rtol}, atol={atol}")
    ish = op.grid.interior_shape
    if not isinstance(b, torch.Tensor) or b.dim() < 1:
        raise ValueError("b must be a tensor of right-hand sides (N, *interior_shape)")
    N = b.shape[0]
    b = b.reshape(N, *ish)
    if op.batch not in (1, N):
        raise ValueError(f"operator holds {op.batch} systems but b has {N} right-hand sides")
    if not torch.isfinite(b).all():
        raise ValueError("right-hand side contains NaN or inf")
    b = b.to(device=op.device, dtype=op.dtype)
    pc = preconditioner or "none"
    if method == "mgpcg":
        if pc not in ("none", "mg"):
            raise ValueError(f"mgpcg uses the multigrid preconditioner, got preconditioner={pc!r}")
        pc = "mg"
    if pc not in ("none", "jacobi", "mg"):
        raise ValueError(f"unknown preconditioner {pc!r}; use 'none', 'jacobi' or 'mg'")
    if method == "spsolve" and pc != "none":
        raise ValueError("spsolve takes no preconditioner")
    if method in _RECYCLING and not 1 <= int(n_chains) <= max(N, 1):
        raise ValueError(f"n_chains must be in [1, {N}], got {n_chains}")
    if N == 0:
        empty = torch.zeros(0, dtype=torch.long, device=b.device)
        return LinearSolution(b.clone(), empty, empty.double(), empty.bool(), {"method": method})

    t0 = time.perf_counter()
    extra = {"method": method, "preconditioner": pc, "ordering": None, "perm": None,
             "n_chains": 1, "matvecs": 0, "setup_s": 0.0}
    if method == "spsolve":
        x, its = _spsolve(op, b, progress, extra)
        converged = None
    elif method in _RECYCLING:
        x, its, converged = _recycled(
            op, b, method, rtol, atol, maxiter, features, ordering, int(n_chains), pc,
            mg_coefficient, mg_reaction, restart, recycle_dim, progress, extra,
        )
    else:
        x, its, converged = _batched_krylov(
            op, b, "gmres" if method == "gmres" else "cg", rtol, atol, maxiter, x0, pc,
            mg_coefficient, mg_reaction, restart, batch_size, progress, extra,
        )
    extra["solve_s"] = time.perf_counter() - t0 - extra["setup_s"]
    rel = true_residual(op, x, b)
    if converged is None:
        bn = b.reshape(N, -1).to(torch.float64).norm(dim=1)
        converged = rel * bn <= torch.clamp(rtol * bn, min=atol) * (1 + 1e-6)
    return LinearSolution(x, its, rel, converged.to(rel.device), extra)


# ------------------------------------------------------------------------------------- direct
def _spsolve(op: StencilOperator, b: torch.Tensor, progress: bool, extra: dict):
    import scipy.sparse.linalg as spla

    N = b.shape[0]
    B = b.reshape(N, -1).detach().cpu().to(torch.float64).numpy()
    X = np.empty_like(B)
    t0 = time.perf_counter()
    with _progress(N, progress, "spsolve") as bar:
        if op.batch == 1:  # one matrix: factorise once, solve every right-hand side
            lu = spla.splu(op.to_scipy(0).tocsc())
            extra["setup_s"] = time.perf_counter() - t0
            extra["factorizations"] = 1
            X[:] = lu.solve(np.ascontiguousarray(B.T)).T
            bar.update(N)
        else:
            for i in range(N):
                X[i] = spla.spsolve(op.to_scipy(i).tocsc(), B[i])
                bar.update(1)
            extra["factorizations"] = N
    x = torch.from_numpy(X).to(device=b.device, dtype=b.dtype).reshape(b.shape)
    return x, torch.zeros(N, dtype=torch.long, device=b.device)


# -------------------------------------------------------------------------- batched Krylov
def _batched_krylov(op, b, kind, rtol, atol, maxiter, x0, pc, coef, reaction, restart, batch_size,
                    progress, extra):
    from pdekit.core.krylov import solve

    N = b.shape[0]
    size = N if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    x = torch.empty_like(b)
    its = torch.zeros(N, dtype=torch.long, device=b.device)
    conv = torch.zeros(N, dtype=torch.bool, device=b.device)
    if x0 is not None:
        x0 = x0.reshape(b.shape).to(b)
    kw = {"restart": restart} if kind == "gmres" else {}
    with _progress(N, progress, extra["method"]) as bar:
        for s in range(0, N, size):
            idx = torch.arange(s, min(s + size, N), device=b.device)
            A = take_systems(op, idx)
            t0 = time.perf_counter()
            M = _preconditioner(pc, A, _pick_rows(coef, idx), reaction)
            extra["setup_s"] += time.perf_counter() - t0
            res = solve(
                A, b[idx].reshape(len(idx), -1), kind,
                x0=None if x0 is None else x0[idx].reshape(len(idx), -1),
                rtol=rtol, atol=atol, maxiter=maxiter, M=M, **kw,
            )
            x[idx] = res.x.reshape(len(idx), *b.shape[1:])
            its[idx] = res.iterations.to(its.device)
            conv[idx] = res.converged.to(conv.device)
            extra["matvecs"] += int(res.matvecs)
            bar.update(len(idx))
    return x, its, conv


# -------------------------------------------------------------------------------- recycling
def _recycled(op, b, method, rtol, atol, maxiter, features, ordering, n_chains, pc, coef, reaction,
              restart, recycle_dim, progress, extra):
    from pdekit.core.ordering import order_samples, split_chains
    from pdekit.core.recycling import recycled_solve

    N = b.shape[0]
    if features is None:
        features = b if op.batch == 1 else torch.as_tensor(op.c0).expand(N, *b.shape[1:])
    if features.shape[0] != N:
        raise ValueError(f"features hold {features.shape[0]} samples but there are {N} systems")
    t0 = time.perf_counter()
    perm = order_samples(features.detach().reshape(N, -1), ordering).to(b.device)
    chains = [c.to(b.device) for c in split_chains(perm, n_chains)]
    shared = op.batch == 1 and (coef is None or coef.shape[0] == 1)
    M_shared = _preconditioner(pc, op, coef, reaction) if shared else None
    extra["setup_s"] += time.perf_counter() - t0
    extra.update(ordering=ordering, perm=perm, n_chains=n_chains)
    x = torch.empty_like(b)
    its = torch.zeros(N, dtype=torch.long, device=b.device)
    conv = torch.zeros(N, dtype=torch.bool, device=b.device)
    opts = {"k": recycle_dim} if method == "rcg" else {"m": restart, "k": recycle_dim}
    recycle = None
    with _progress(N, progress, method) as bar:
        for j in range(len(chains[0])):
            n_active = sum(1 for c in chains if len(c) > j)  # the first chains are the longer ones
            idx = torch.stack([c[j] for c in chains[:n_active]])
            if recycle is not None and n_active < recycle.n_chains:
                recycle = _first_chains(recycle, n_active)
            A = take_systems(op, idx)
            if shared:
                M = M_shared
            else:
                t0 = time.perf_counter()
                M = _preconditioner(pc, A, _pick_rows(coef, idx), reaction)
                extra["setup_s"] += time.perf_counter() - t0
            res = recycled_solve(
                A, b[idx].reshape(n_active, -1), method=method, rtol=rtol, atol=atol,
                maxiter=maxiter, M=M, recycle=recycle, same_operator=shared, **opts,
            )
            recycle = res.recycle
            x[idx] = res.x.reshape(n_active, *b.shape[1:])
            its[idx] = res.iterations.to(its.device)
            conv[idx] = res.converged.to(conv.device)
            extra["matvecs"] += int(res.matvecs)
            bar.update(n_active)
    return x, its, conv


def _first_chains(recycle, n: int):
    """The recycle spaces of the first ``n`` chains (chains are independent)."""
    P = None if recycle.P is None else recycle.P[:n]
    return dataclasses.replace(recycle, U=recycle.U[:n], C=recycle.C[:n], P=P,
                               rank=recycle.rank[:n])


# ------------------------------------------------------------------- helpers of the families
def check_n_samples(n) -> int:
    """A positive integer number of samples, or a one-line ValueError."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"number of samples must be a positive integer, got {n!r}")
    return int(n)


def check_resolution(resolution, minimum: int = 3) -> None:
    """Grid nodes per dimension (boundary included) must be an integer ``>= minimum``."""
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < minimum:
        raise ValueError(f"resolution must be an integer >= {minimum}, got {resolution!r}")


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")


def input_field(inputs: dict, name: str, shape: tuple[int, ...], *, n: int | None = None):
    """``inputs[name]`` as a finite floating tensor of shape ``(n, *shape)`` (one-line errors)."""
    if not isinstance(inputs, dict) or name not in inputs:
        have = ", ".join(sorted(inputs)) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(f"inputs need a field {name!r} (got {have})")
    t = inputs[name]
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise ValueError(f"input {name!r} must be a floating-point tensor")
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
        raise ValueError(
            f"input {name!r} must have shape (n, {', '.join(map(str, shape))}), got {tuple(t.shape)}"
        )
    if n is not None and t.shape[0] != n:
        raise ValueError(f"input {name!r} has {t.shape[0]} samples, expected {n}")
    if not torch.isfinite(t).all():
        raise ValueError(f"input {name!r} contains NaN or inf")
    return t


def to_solution(fields: dict, res: LinearSolution, like: torch.Tensor) -> Solution:
    """A :class:`~pdekit.pdes.base.Solution` with fields cast to ``like``'s dtype and device."""
    from pdekit.pdes.base import Solution

    out = {k: v.to(device=like.device, dtype=like.dtype) for k, v in fields.items()}
    return Solution(
        fields=out,
        iterations=res.iterations.to(like.device),
        rel_residual=res.rel_residual.to(like.device),
        extra=res.extra,
    )


# ------------------------------------------------------------------------------- generator
def generate(
    family: PDEFamily | str,
    n: int,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    **solve_kwargs,
) -> tuple[dict[str, torch.Tensor], Solution]:
    """Sample ``n`` inputs of a family from ``seed`` and solve them: the in-memory generator.

    Parameters
    ----------
    family : PDEFamily or str
        A family object or a registered name (built with its default parameters).
    n : int
        Number of samples.
    seed : int
        Seed of the :class:`torch.Generator` (created on ``device``) that draws the inputs.
    device : str or torch.device, optional
        Where inputs are drawn and solved (default CPU).
    **solve_kwargs
        Passed to ``family.solve`` (``method``, ``rtol``, ``ordering``, ``n_chains``, ``progress``...).

    Returns
    -------
    inputs : dict of str to Tensor
    solution : Solution

    Examples
    --------
    >>> from pdekit.pdes.poisson import Poisson
    >>> inputs, sol = generate(Poisson(resolution=17), 2, seed=0, method="spsolve")
    >>> sol.fields["u"].shape
    torch.Size([2, 17, 17])
    """
    from pdekit.pdes.base import PDEFamily, get_pde

    if isinstance(family, str):
        family = get_pde(family)
    if not isinstance(family, PDEFamily):
        raise TypeError(f"family must be a PDEFamily or a name, got {type(family).__name__}")
    n = check_n_samples(n)
    gen = torch.Generator(device=device or "cpu").manual_seed(int(seed))
    inputs = family.sample_inputs(n, gen)
    return inputs, family.solve(inputs, **solve_kwargs)
