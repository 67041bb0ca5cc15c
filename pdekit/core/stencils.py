"""Finite-difference operators on structured grids, matrix-free and assembled.

Every operator here is a *compact stencil*: on each unknown node ``i`` it combines the node itself and
its two neighbours along every dimension,

.. math:: (A u)_i = c^0_i u_i + \\sum_d \\left(c^-_{d,i} u_{i - e_d} + c^+_{d,i} u_{i + e_d}\\right),

with per-node coefficient arrays ``c0``, ``cm[d]``, ``cp[d]`` (broadcastable to
``(B, *grid.interior_shape)``). The boundary conditions carried by the :class:`~pdekit.core.grid.Grid`
decide what a neighbour outside the unknowns means: a Dirichlet boundary node (known value, moved to
the right-hand side by :meth:`StencilOperator.rhs`), a mirrored ghost node for Neumann, or the
wrapped node for periodic dimensions. Stencils only *shift* fields; the physics is in how the
coefficients are built (:func:`laplacian`, :func:`diffusion`, :func:`helmholtz`,
:func:`advection_diffusion`).

All operators apply to batches ``(B, *interior_shape)`` (or flattened ``(B, n)`` through
:meth:`StencilOperator.matvec`) on any device and dtype, and assemble to torch sparse CSR
(:meth:`StencilOperator.assemble`) or ``scipy.sparse`` (:meth:`StencilOperator.to_scipy`).

The grid convention used throughout pdekit is the node-centred grid, boundary nodes included (as
in the FNO benchmark data [2]_): an ``n x n`` grid of nodes ``x_i = i/(n-1)``, ``u = 0`` on the
boundary nodes, and the 5-point flux-form stencil with harmonic-mean face coefficients [1]_ on the
interior nodes: ``diffusion(Grid((n, n)), a)``.

References
----------
.. [1] S. V. Patankar, *Numerical Heat Transfer and Fluid Flow*, Hemisphere, 1980, ch. 4: the
   flux (control-volume) form of ``-div(a grad u)`` with the harmonic mean of the two nodal
   coefficients as the interface coefficient.
.. [2] Z. Li, N. Kovachki, K. Azizzadenesheli, B. Liu, K. Bhattacharya, A. Stuart,
   A. Anandkumar, "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from pdekit.core.grid import Grid
from pdekit.core.linop import LinearOperator

__all__ = [
    "StencilOperator",
    "laplacian",
    "diffusion",
    "helmholtz",
    "advection_diffusion",
    "face_coefficients",
    "check_coefficient",
]


def check_coefficient(a: torch.Tensor, grid: Grid, name: str = "a", *, positive: bool = True):
    """Validate a nodal coefficient field ``(..., *grid.shape)``; raise a one-line ValueError."""
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"coefficient {name} must be a torch.Tensor, got {type(a).__name__}")
    if a.dim() < grid.ndim or tuple(a.shape[a.dim() - grid.ndim :]) != grid.shape:
        raise ValueError(
            f"coefficient {name} must have shape (..., {', '.join(map(str, grid.shape))}) "
            f"to match the grid, got {tuple(a.shape)}"
        )
    if a.dim() > grid.ndim + 1:
        raise ValueError(
            f"coefficient {name} may have at most one batch dimension, got {tuple(a.shape)}"
        )
    if not torch.isfinite(a).all():
        raise ValueError(f"coefficient {name} contains NaN or inf")
    if positive and not (a > 0).all():
        raise ValueError(
            f"coefficient {name} must be positive everywhere (min {float(a.min()):.3g})"
        )


def _pad_dim(t: torch.Tensor, dim: int, kind: str) -> torch.Tensor:
    """Extend ``t`` by one node on each side of ``dim`` following a boundary condition."""
    n = t.shape[dim]
    if kind == "neumann":
        lo, hi = t.narrow(dim, 1, 1), t.narrow(dim, n - 2, 1)
    elif kind == "periodic":
        lo, hi = t.narrow(dim, n - 1, 1), t.narrow(dim, 0, 1)
    else:
        raise ValueError(f"cannot pad a {kind} dimension")
    return torch.cat([lo, t, hi], dim=dim)


def face_coefficients(a: torch.Tensor, grid: Grid) -> list[torch.Tensor]:
    """Harmonic-mean face coefficients ``2 a_i a_j / (a_i + a_j)`` along every dimension.

    ``a`` holds nodal values ``(..., *grid.shape)``. Entry ``d`` of the result has the interior shape
    except along ``d``, where it has ``m_d + 1`` faces between the ``m_d`` unknowns and their
    outer neighbours (boundary nodes, ghost nodes or wrapped nodes).
    """
    nd = grid.ndim
    faces = []
    for d, bc in enumerate(grid.bc):
        t = a
        for e, bce in enumerate(grid.bc):
            if e != d and bce.kind == "dirichlet":
                t = t.narrow(t.dim() - nd + e, 1, t.shape[t.dim() - nd + e] - 2)
        dim = t.dim() - nd + d
        if bc.kind != "dirichlet":  # Dirichlet dims already include the boundary nodes
            t = _pad_dim(t, dim, bc.kind)
        left, right = t.narrow(dim, 0, t.shape[dim] - 1), t.narrow(dim, 1, t.shape[dim] - 1)
        faces.append(2 * left * right / (left + right))
    return faces


class StencilOperator:
    """A compact (2*ndim+1 point) stencil on the unknowns of a :class:`Grid`.

    Parameters
    ----------
    grid : Grid
    c0 : Tensor
        Centre coefficients, broadcastable to ``(B, *grid.interior_shape)``.
    cm, cp : sequence of Tensor
        Coefficients of the lower / upper neighbour along each dimension.
    symmetric : bool
        Whether the assembled matrix is symmetric (lets solvers skip the transpose).
    name : str

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> A = laplacian(Grid((5,), bc="dirichlet"))
    >>> A.to_scipy().toarray() * 0.25**2
    array([[ 2., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  2.]])
    """

    def __init__(self, grid: Grid, c0, cm: Sequence, cp: Sequence, *, symmetric: bool, name: str):
        if len(cm) != grid.ndim or len(cp) != grid.ndim:
            raise ValueError("need one lower and one upper coefficient per dimension")
        self.grid = grid
        self.c0 = c0
        self.cm = list(cm)
        self.cp = list(cp)
        self.symmetric = symmetric
        self.name = name
        tensors = [t for t in [c0, *cm, *cp] if isinstance(t, torch.Tensor)]
        self.batch = 1
        for t in tensors:
            if t.dim() > grid.ndim and t.shape[0] > 1:
                self.batch = int(t.shape[0])
        self.coefficient: torch.Tensor | None = None
        self.reaction = None
        self.dtype = tensors[0].dtype if tensors else torch.get_default_dtype()
        self.device = tensors[0].device if tensors else torch.device("cpu")

    # ------------------------------------------------------------------ shapes
    @property
    def shape(self) -> tuple[int, int]:
        n = self.grid.n_unknowns
        return (n, n)

    def _check_field(self, u: torch.Tensor) -> torch.Tensor:
        ish = self.grid.interior_shape
        if u.dim() == self.grid.ndim:
            u = u.unsqueeze(0)
        if u.dim() != self.grid.ndim + 1 or tuple(u.shape[1:]) != ish:
            raise ValueError(
                f"{self.name}: expected unknowns of shape (B, {', '.join(map(str, ish))}), "
                f"got {tuple(u.shape)}"
            )
        if self.batch > 1 and u.shape[0] != self.batch:
            raise ValueError(
                f"{self.name}: operator holds {self.batch} coefficient sets but got a batch of {u.shape[0]}"
            )
        return u

    # ------------------------------------------------------------------ apply
    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """Apply to unknowns of shape ``(B, *interior_shape)`` (or one field ``(*interior_shape)``).

        Dirichlet boundary values are treated as zero here; see :meth:`rhs` for the lift.
        """
        single = u.dim() == self.grid.ndim
        u = self._check_field(u)
        y = self.c0 * u
        for d, bc in enumerate(self.grid.bc):
            dim = d + 1
            m = u.shape[dim]
            cm, cp = self.cm[d], self.cp[d]
            # interior neighbours (fused multiply-adds into y, no temporaries)
            _fma(y.narrow(dim, 1, m - 1), _narrow(cm, dim, 1, m - 1), u.narrow(dim, 0, m - 1))
            _fma(y.narrow(dim, 0, m - 1), _narrow(cp, dim, 0, m - 1), u.narrow(dim, 1, m - 1))
            if bc.kind == "neumann":  # mirrored ghosts u_{-1} = u_1, u_m = u_{m-2}
                _fma(y.narrow(dim, 0, 1), _narrow(cm, dim, 0, 1), u.narrow(dim, 1, 1))
                _fma(y.narrow(dim, m - 1, 1), _narrow(cp, dim, m - 1, 1), u.narrow(dim, m - 2, 1))
            elif bc.kind == "periodic":
                _fma(y.narrow(dim, 0, 1), _narrow(cm, dim, 0, 1), u.narrow(dim, m - 1, 1))
                _fma(y.narrow(dim, m - 1, 1), _narrow(cp, dim, m - 1, 1), u.narrow(dim, 0, 1))
        return y[0] if single else y

    def matvec(self, X: torch.Tensor) -> torch.Tensor:
        """Apply to flattened unknowns ``(B, n)`` (C order over the interior shape)."""
        B = X.shape[0]
        return self.apply(X.reshape(B, *self.grid.interior_shape)).reshape(B, -1)

    def as_linear_operator(self) -> LinearOperator:
        return LinearOperator(self.shape, self.matvec, symmetric=self.symmetric)

    def __matmul__(self, X: torch.Tensor) -> torch.Tensor:
        return self.as_linear_operator() @ X

    def diagonal(self) -> torch.Tensor:
        """Diagonal of the matrix as a ``(B, *interior_shape)`` tensor (for Jacobi smoothing)."""
        # Neighbours are never the node itself (grids have >= 2 periodic / >= 3 other nodes).
        shape = (self.batch, *self.grid.interior_shape)
        return torch.zeros(shape, dtype=self.dtype, device=self.device) + self.c0

    def rhs(self, f: torch.Tensor) -> torch.Tensor:
        """Right-hand side for the unknowns: ``f`` on the unknowns minus the Dirichlet lift.

        ``f`` may be a scalar, a full-grid field ``(..., *grid.shape)`` or already on the unknowns
        ``(..., *interior_shape)``. Non-zero Dirichlet values of the grid are moved to the right.
        """
        g = self.grid
        ish = (self.batch, *g.interior_shape)
        if not isinstance(f, torch.Tensor):
            f = torch.full(ish, float(f), dtype=self.dtype, device=self.device)
        elif f.dim() >= g.ndim and tuple(f.shape[f.dim() - g.ndim :]) == g.shape:
            f = g.interior(f)
        elif f.dim() < g.ndim or tuple(f.shape[f.dim() - g.ndim :]) != g.interior_shape:
            raise ValueError(
                f"{self.name}: right-hand side must have the grid shape {g.shape} or the interior "
                f"shape {g.interior_shape}, got {tuple(f.shape)}"
            )
        if not torch.isfinite(f).all():
            raise ValueError(f"{self.name}: right-hand side contains NaN or inf")
        b = (f + torch.zeros(ish, dtype=f.dtype, device=f.device)).clone()
        for d, bc in enumerate(g.bc):
            if bc.kind == "dirichlet" and bc.value != 0.0:
                dim, m = d + 1, g.interior_shape[d]
                b.narrow(dim, 0, 1).sub_(_narrow(self.cm[d], dim, 0, 1) * bc.value)
                b.narrow(dim, m - 1, 1).sub_(_narrow(self.cp[d], dim, m - 1, 1) * bc.value)
        return b

    def take(self, idx) -> StencilOperator:
        """The systems ``idx`` (an int or a LongTensor) of a batched operator, as an operator.

        A shared operator (``batch == 1``) is returned as is.
        """
        if self.batch == 1:
            return self
        idx = torch.as_tensor(idx, dtype=torch.long).reshape(-1)

        def pick(c):
            if isinstance(c, torch.Tensor) and c.dim() > self.grid.ndim and c.shape[0] > 1:
                return c.index_select(0, idx.to(c.device))
            return c

        op = StencilOperator(
            self.grid,
            pick(self.c0),
            [pick(c) for c in self.cm],
            [pick(c) for c in self.cp],
            symmetric=self.symmetric,
            name=self.name,
        )
        op.coefficient = pick(self.coefficient)
        op.reaction = pick(self.reaction)
        return op

    # --------------------------------------------------------------- assembly
    def _full(self, c, index: int) -> torch.Tensor:
        shape = (self.batch, *self.grid.interior_shape)
        t = torch.zeros(shape, dtype=self.dtype, device=self.device) + c
        return t[index]

    def assemble(self, index: int = 0) -> torch.Tensor:
        """Assemble system ``index`` of the batch as a torch sparse CSR ``(n, n)`` matrix."""
        g = self.grid
        ish = g.interior_shape
        n = g.n_unknowns
        idx = torch.arange(n, device=self.device).reshape(ish)
        rows = [idx.reshape(-1)]
        cols = [idx.reshape(-1)]
        vals = [self._full(self.c0, index).reshape(-1)]
        for d, bc in enumerate(g.bc):
            m = ish[d]
            for coef, shift in ((self.cm[d], -1), (self.cp[d], +1)):
                c = self._full(coef, index)
                pos = torch.arange(m, device=self.device) + shift
                keep = torch.ones(m, dtype=torch.bool, device=self.device)
                if bc.kind == "dirichlet":
                    keep = (pos >= 0) & (pos < m)
                elif bc.kind == "neumann":
                    pos = torch.where(pos < 0, 1, torch.where(pos >= m, m - 2, pos))
                else:
                    pos = pos % m
                src = torch.arange(m, device=self.device)[keep]
                nbr = pos[keep]
                rows.append(idx.index_select(d, src).reshape(-1))
                cols.append(idx.index_select(d, nbr).reshape(-1))
                vals.append(c.index_select(d, src).reshape(-1))
        coo = torch.sparse_coo_tensor(
            torch.stack([torch.cat(rows), torch.cat(cols)]),
            torch.cat(vals),
            (n, n),
            check_invariants=False,
        ).coalesce()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return coo.to_sparse_csr()

    def to_scipy(self, index: int = 0):
        """Assemble system ``index`` as a ``scipy.sparse.csr_matrix`` (float64 on the CPU)."""
        import scipy.sparse as sp

        A = self.assemble(index)
        return sp.csr_matrix(
            (
                A.values().detach().cpu().to(torch.float64).numpy(),
                A.col_indices().cpu().numpy().astype(np.int64),
                A.crow_indices().cpu().numpy().astype(np.int64),
            ),
            shape=A.shape,
        )

    def __repr__(self) -> str:
        return f"StencilOperator({self.name}, grid={self.grid.shape}, batch={self.batch})"


def _fma(out: torch.Tensor, c, u: torch.Tensor) -> None:
    """``out += c * u`` in place (``c`` a tensor broadcastable to ``out``, or a number)."""
    if isinstance(c, torch.Tensor):
        out.addcmul_(c, u)
    else:
        out.add_(u, alpha=c)


def _narrow(c, dim: int, start: int, length: int):
    """Narrow a coefficient that may be a scalar or broadcast along ``dim``."""
    if not isinstance(c, torch.Tensor) or c.dim() == 0:
        return c
    if c.dim() < dim + 1 or c.shape[dim] == 1:
        return c
    return c.narrow(dim, start, length)


def _no_neumann(grid: Grid) -> bool:
    # Mirror ghost nodes double the inward coupling of boundary rows: the matrix is then only
    # symmetrisable (by half weights on boundary rows), not symmetric.
    return all(bc.kind != "neumann" for bc in grid.bc)


def _batched(t: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Give a coefficient field a leading batch dimension."""
    return t.unsqueeze(0) if t.dim() == grid.ndim else t


def laplacian(grid: Grid, *, dtype=torch.float64, device=None) -> StencilOperator:
    """The negative Laplacian ``-lap u`` with the second-order (2*ndim+1)-point stencil.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> g = Grid((9, 9))
    >>> X, Y = g.mesh(which="interior")
    >>> u = torch.sin(torch.pi * X) * torch.sin(torch.pi * Y)
    >>> err = laplacian(g).apply(u) - 2 * torch.pi**2 * u
    >>> bool(err.abs().max() < 0.3)
    True
    """
    one = torch.ones((), dtype=dtype, device=device)
    c0 = sum(2.0 / h**2 for h in grid.h) * one
    cm = [-one / h**2 for h in grid.h]
    return StencilOperator(grid, c0, cm, list(cm), symmetric=_no_neumann(grid), name="laplacian")


def diffusion(grid: Grid, a: torch.Tensor, *, reaction=None) -> StencilOperator:
    """Variable-coefficient diffusion ``-div(a grad u) [+ c u]`` in flux form.

    Face coefficients are harmonic means of the nodal values of ``a`` (``a`` of shape
    ``(*grid.shape)`` or ``(B, *grid.shape)``, positive and finite), which keeps the operator SPD on
    Dirichlet and periodic grids and exact for piecewise-constant layered media.

    Parameters
    ----------
    grid : Grid
    a : Tensor
        Nodal coefficient, full grid (boundary nodes included).
    reaction : float or Tensor, optional
        A non-negative zeroth-order term ``c u`` (nodal on the full grid, or a scalar).

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> g = Grid((6, 6))
    >>> A = diffusion(g, torch.ones(6, 6, dtype=torch.float64))
    >>> float(abs(A.to_scipy() - laplacian(g).to_scipy()).max())
    0.0

    References
    ----------
    S. V. Patankar, *Numerical Heat Transfer and Fluid Flow*, Hemisphere, 1980, ch. 4 (harmonic-mean
    interface coefficients in the flux form).
    """
    check_coefficient(a, grid, "a")
    a = _batched(a, grid)
    faces = face_coefficients(a, grid)
    c0 = 0
    cm, cp = [], []
    for d, h in enumerate(grid.h):
        dim = d + 1
        f = faces[d] / h**2
        m = f.shape[dim] - 1
        lo, hi = f.narrow(dim, 0, m), f.narrow(dim, 1, m)
        c0 = c0 + lo + hi
        cm.append(-lo)
        cp.append(-hi)
    if reaction is not None:
        c0 = c0 + _reaction(reaction, grid, a)
    op = StencilOperator(grid, c0, cm, cp, symmetric=_no_neumann(grid), name="diffusion")
    op.coefficient = a  # kept for preconditioners that rediscretise (multigrid)
    op.reaction = reaction
    return op


def _reaction(c, grid: Grid, like: torch.Tensor):
    if isinstance(c, torch.Tensor) and c.dim() >= grid.ndim:
        check_coefficient(c, grid, "reaction", positive=False)
        return grid.interior(_batched(c, grid).to(like))
    return torch.as_tensor(c, dtype=like.dtype, device=like.device)


def helmholtz(grid: Grid, k: torch.Tensor | float, *, dtype=torch.float64, device=None):
    """The Helmholtz operator ``-lap u - k(x)^2 u`` (symmetric, indefinite for large ``k``).

    ``k`` is a scalar wavenumber or a nodal field ``(*grid.shape)`` / ``(B, *grid.shape)``.
    """
    if isinstance(k, torch.Tensor) and k.dim() > 0:
        check_coefficient(k, grid, "k", positive=False)
        dtype, device = k.dtype, k.device
        k2 = grid.interior(_batched(k, grid)) ** 2
    else:
        k = float(k)
        if not np.isfinite(k):
            raise ValueError("wavenumber k must be finite")
        k2 = torch.tensor(k * k, dtype=dtype, device=device)
    lap = laplacian(grid, dtype=dtype, device=device)
    return StencilOperator(
        grid, lap.c0 - k2, lap.cm, lap.cp, symmetric=_no_neumann(grid), name="helmholtz"
    )


def advection_diffusion(
    grid: Grid,
    velocity: Sequence | torch.Tensor,
    nu: float = 1.0,
    *,
    dtype=torch.float64,
    device=None,
) -> StencilOperator:
    """Steady advection-diffusion ``-nu lap u + v . grad u`` with central differences (nonsymmetric).

    ``velocity`` is a sequence of ``ndim`` constants, or a tensor ``(ndim, *grid.shape)`` /
    ``(B, ndim, *grid.shape)`` of nodal velocities. Second-order accurate; central differencing is
    stable (an M-matrix) while the cell Peclet number ``|v| h / (2 nu)`` stays below 1.
    """
    if nu <= 0 or not np.isfinite(nu):
        raise ValueError(f"viscosity nu must be positive and finite, got {nu}")
    nd = grid.ndim
    if isinstance(velocity, torch.Tensor) and velocity.dim() > 1:
        v = velocity if velocity.dim() == nd + 2 else velocity.unsqueeze(0)
        if v.shape[1] != nd or tuple(v.shape[2:]) != grid.shape:
            raise ValueError(
                f"velocity must have shape ({nd}, {grid.shape}), got {tuple(velocity.shape)}"
            )
        if not torch.isfinite(v).all():
            raise ValueError("velocity contains NaN or inf")
        dtype, device = v.dtype, v.device
        comps = [grid.interior(v[:, d]) for d in range(nd)]
    else:
        vals = [float(x) for x in velocity]
        if len(vals) != nd:
            raise ValueError(f"need {nd} velocity components, got {len(vals)}")
        comps = [torch.tensor(x, dtype=dtype, device=device) for x in vals]
    lap = laplacian(grid, dtype=dtype, device=device)
    cm = [nu * lap.cm[d] - comps[d] / (2 * h) for d, h in enumerate(grid.h)]
    cp = [nu * lap.cp[d] + comps[d] / (2 * h) for d, h in enumerate(grid.h)]
    return StencilOperator(grid, nu * lap.c0, cm, cp, symmetric=False, name="advection_diffusion")
