"""Solve a sequence of related sparse systems: ordering, recycling chains and batching.

A linear PDE family (Darcy, Poisson, Helmholtz) turns ``N`` sampled inputs into ``N`` systems
``A_i x_i = b_i`` on the same grid: a batched :class:`~pdekit.core.stencils.StencilOperator`
(``batch = N``, or ``1`` when every sample shares the matrix) and right-hand sides
``(N, *interior_shape)``. :func:`solve_sequence` solves them as its
:class:`~pdekit.core.solve_config.SolveConfig` says, with ``method``

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
here in the operator's dtype. The solve runs on the operator's device.

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

import numpy as np
import torch

from pdekit.core.solve_config import RECYCLING_METHODS, SEQUENCE_METHODS, SolveConfig
from pdekit.core.stencils import StencilOperator
from pdekit.errors import PdekitUserError

__all__ = ["LinearSolution", "solve_sequence", "true_residual", "build_preconditioner"]


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


def _pick_rows(t: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor | None:
    if t is None or t.shape[0] == 1:
        return t
    return t.index_select(0, idx.to(t.device))


def true_residual(op: StencilOperator, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``||b_i - A_i x_i|| / ||b_i||`` per system (``||r_i||`` where ``b_i = 0``), float64.

    Examples
    --------
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.core.stencils import laplacian
    >>> op = laplacian(Grid((5, 5)))
    >>> true_residual(op, torch.zeros(2, 3, 3, dtype=torch.float64), torch.ones(2, 3, 3)).tolist()
    [1.0, 1.0]
    """
    N = b.shape[0]
    r = (b - op.apply(x)).reshape(N, -1).to(torch.float64).norm(dim=1)
    bn = b.reshape(N, -1).to(torch.float64).norm(dim=1)
    return torch.where(bn > 0, r / torch.where(bn > 0, bn, torch.ones_like(bn)), r)


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, leave=False)


def build_preconditioner(kind: str, op: StencilOperator, coefficient: torch.Tensor | None = None,
                         reaction: float | None = None):
    """The preconditioner ``kind`` (``"none"``, ``"jacobi"`` or ``"mg"``) of a stencil operator.

    ``"mg"`` is the geometric multigrid V-cycle, built from the nodal ``coefficient`` (and
    ``reaction``) of a Dirichlet diffusion problem when given, else from the operator itself.

    Examples
    --------
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.core.stencils import laplacian
    >>> build_preconditioner("none", laplacian(Grid((9, 9)))) is None
    True
    """
    if kind == "none":
        return None
    if kind == "jacobi":
        from pdekit.core.precond import jacobi

        return jacobi(op)
    from pdekit.core.multigrid import MultigridPreconditioner, multigrid_preconditioner

    if coefficient is None:
        return multigrid_preconditioner(op)
    return MultigridPreconditioner(op.grid, coefficient, reaction=reaction)


def _check(op, b, config: SolveConfig) -> torch.Tensor:
    """Data-dependent checks (the settings were validated when ``config`` was built)."""
    if config.method not in SEQUENCE_METHODS:
        raise PdekitUserError(
            f"solve_sequence: method must be one of {', '.join(SEQUENCE_METHODS)}, "
            f"got {config.method!r}"
        )
    if not isinstance(op, StencilOperator):
        raise TypeError(f"op must be a StencilOperator, got {type(op).__name__}")
    if not isinstance(b, torch.Tensor) or b.dim() < 1:
        raise PdekitUserError("b must be a tensor of right-hand sides (N, *interior_shape)")
    N = b.shape[0]
    b = b.reshape(N, *op.grid.interior_shape)
    if op.batch not in (1, N):
        raise PdekitUserError(f"operator holds {op.batch} systems but b has {N} right-hand sides")
    if not torch.isfinite(b).all():
        raise PdekitUserError("right-hand side contains NaN or inf")
    if config.method in RECYCLING_METHODS and not config.n_chains <= max(N, 1):
        raise PdekitUserError(f"n_chains must be in [1, {N}] for {N} systems, got {config.n_chains}")
    return b.to(device=op.device, dtype=op.dtype)


def solve_sequence(
    op: StencilOperator,
    b: torch.Tensor,
    config: SolveConfig | None = None,
    *,
    features: torch.Tensor | None = None,
    x0: torch.Tensor | None = None,
    mg_coefficient: torch.Tensor | None = None,
    mg_reaction: float | None = None,
    progress: bool = False,
) -> LinearSolution:
    """Solve ``A_i x_i = b_i`` for ``i < N`` and return the solutions in the original order.

    Parameters
    ----------
    op : StencilOperator
        ``N`` systems (``op.batch == N``) or one matrix shared by all right-hand sides.
    b : Tensor
        ``(N, *interior_shape)`` right-hand sides (or flattened ``(N, n_unknowns)``).
    config : SolveConfig, optional
        Method, tolerances, preconditioner, ordering, chains, ... (default ``SolveConfig()``:
        multigrid-preconditioned CG to ``rtol = 1e-8``). See the module notes; CG-type methods
        (``cg``, ``mgpcg``, ``rcg``) need SPD matrices.
    features : Tensor, optional
        ``(N, ...)`` per-sample features for the ordering of the recycling methods (default: the
        right-hand sides, or the operator's centre coefficients when it is batched).
    x0 : Tensor, optional
        Initial guesses ``(N, *interior_shape)`` for ``cg``, ``gmres`` and ``mgpcg``.
    mg_coefficient : Tensor, optional
        Nodal coefficient ``(N or 1, *grid.shape)`` the ``"mg"`` V-cycle is built from (with
        ``mg_reaction``), for a Dirichlet diffusion-type problem; without it the V-cycle is built
        from the operator (:func:`pdekit.core.multigrid.multigrid_preconditioner`).
    mg_reaction : float, optional
        Reaction term of that diffusion problem.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    LinearSolution

    Examples
    --------
    >>> from pdekit.core.grid import Grid
    >>> from pdekit.core.stencils import laplacian
    >>> op = laplacian(Grid((9, 9)))
    >>> b = torch.ones(3, 7, 7, dtype=torch.float64)
    >>> out = solve_sequence(op, b, SolveConfig(method="cg", rtol=1e-10))
    >>> out.x.shape, bool((out.rel_residual < 1e-10).all())
    (torch.Size([3, 7, 7]), True)

    References
    ----------
    .. [1] Wang et al., "Accelerating data generation for neural operators via Krylov subspace
       recycling", ICLR 2024 (sorting + GCRO-DR(40, 20); parallel chains, App. E.2.2).
    """
    config = SolveConfig() if config is None else config
    if not isinstance(config, SolveConfig):
        raise TypeError(f"config must be a SolveConfig, got {type(config).__name__}")
    b = _check(op, b, config)
    N = b.shape[0]
    method = config.method
    pc = config.preconditioner or ("mg" if method == "mgpcg" else "none")
    if N == 0:
        empty = torch.zeros(0, dtype=torch.long, device=b.device)
        return LinearSolution(b.clone(), empty, empty.double(), empty.bool(), {"method": method})

    t0 = time.perf_counter()
    extra = {"method": method, "preconditioner": pc, "ordering": None, "perm": None,
             "n_chains": 1, "matvecs": 0, "setup_s": 0.0}
    mg = (mg_coefficient, mg_reaction)
    if method == "spsolve":
        x, its = _spsolve(op, b, progress, extra)
        converged = None
    elif method in RECYCLING_METHODS:
        x, its, converged = _recycled(op, b, config, features, pc, mg, progress, extra)
    else:
        x, its, converged = _batched_krylov(op, b, config, x0, pc, mg, progress, extra)
    extra["solve_s"] = time.perf_counter() - t0 - extra["setup_s"]
    rel = true_residual(op, x, b)
    if converged is None:
        bn = b.reshape(N, -1).to(torch.float64).norm(dim=1)
        converged = rel * bn <= torch.clamp(config.rtol * bn, min=config.atol) * (1 + 1e-6)
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
def _batched_krylov(op, b, config: SolveConfig, x0, pc, mg, progress, extra):
    from pdekit.core.krylov import solve

    N = b.shape[0]
    kind = "cg" if config.method == "mgpcg" else config.method
    size = N if config.batch_size is None else config.batch_size
    x = torch.empty_like(b)
    its = torch.zeros(N, dtype=torch.long, device=b.device)
    conv = torch.zeros(N, dtype=torch.bool, device=b.device)
    if x0 is not None:
        x0 = x0.reshape(b.shape).to(b)
    kw = {"restart": config.restart} if kind == "gmres" else {}
    coef, reaction = mg
    with _progress(N, progress, config.method) as bar:
        for s in range(0, N, size):
            idx = torch.arange(s, min(s + size, N), device=b.device)
            A = op.take(idx)
            t0 = time.perf_counter()
            M = build_preconditioner(pc, A, _pick_rows(coef, idx), reaction)
            extra["setup_s"] += time.perf_counter() - t0
            res = solve(
                A, b[idx].reshape(len(idx), -1), kind,
                x0=None if x0 is None else x0[idx].reshape(len(idx), -1),
                rtol=config.rtol, atol=config.atol, maxiter=config.maxiter, M=M, **kw,
            )
            x[idx] = res.x.reshape(len(idx), *b.shape[1:])
            its[idx] = res.iterations.to(its.device)
            conv[idx] = res.converged.to(conv.device)
            extra["matvecs"] += int(res.matvecs)
            bar.update(len(idx))
    return x, its, conv


# -------------------------------------------------------------------------------- recycling
def _recycled(op, b, config: SolveConfig, features, pc, mg, progress, extra):
    from pdekit.core.ordering import order_samples, split_chains
    from pdekit.core.recycling import recycled_solve

    N = b.shape[0]
    method, coef, reaction = config.method, *mg
    if features is None:
        features = b if op.batch == 1 else torch.as_tensor(op.c0).expand(N, *b.shape[1:])
    if features.shape[0] != N:
        raise PdekitUserError(f"features hold {features.shape[0]} samples but there are {N} systems")
    t0 = time.perf_counter()
    perm = order_samples(features.detach().reshape(N, -1), config.ordering).to(b.device)
    chains = [c.to(b.device) for c in split_chains(perm, config.n_chains)]
    shared = op.batch == 1 and (coef is None or coef.shape[0] == 1)
    M_shared = build_preconditioner(pc, op, coef, reaction) if shared else None
    extra["setup_s"] += time.perf_counter() - t0
    extra.update(ordering=config.ordering, perm=perm, n_chains=config.n_chains)
    x = torch.empty_like(b)
    its = torch.zeros(N, dtype=torch.long, device=b.device)
    conv = torch.zeros(N, dtype=torch.bool, device=b.device)
    opts = ({"k": config.recycle_dim} if method == "rcg"
            else {"m": config.restart, "k": config.recycle_dim})
    recycle = None
    with _progress(N, progress, method) as bar:
        for j in range(len(chains[0])):
            n_active = sum(1 for c in chains if len(c) > j)  # the first chains are the longer ones
            idx = torch.stack([c[j] for c in chains[:n_active]])
            if recycle is not None and n_active < recycle.n_chains:
                recycle = _first_chains(recycle, n_active)
            A = op.take(idx)
            if shared:
                M = M_shared
            else:
                t0 = time.perf_counter()
                M = build_preconditioner(pc, A, _pick_rows(coef, idx), reaction)
                extra["setup_s"] += time.perf_counter() - t0
            res = recycled_solve(
                A, b[idx].reshape(n_active, -1), method=method, rtol=config.rtol,
                atol=config.atol, maxiter=config.maxiter, M=M, recycle=recycle,
                same_operator=shared, **opts,
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
