"""Geometric multigrid: symmetric positive V-cycle, h-independent contraction, MG-PCG."""

import numpy as np
import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.core.krylov import cg, solve
from pdekit.core.multigrid import MultigridPreconditioner, multigrid_preconditioner
from pdekit.core.precond import jacobi
from pdekit.core.stencils import diffusion, helmholtz, laplacian


def _blocky(n, seed=0, shape=None):
    gen = torch.Generator().manual_seed(seed)
    shape = shape or (n, n)
    coarse = torch.randn(1, 1, *[max(s // 8, 2) for s in shape], generator=gen, dtype=torch.float64)
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(shape)]
    smooth = torch.nn.functional.interpolate(coarse, size=shape, mode=mode, align_corners=True)[
        0, 0
    ]
    return torch.where(smooth >= 0, 12.0, 3.0).to(torch.float64)


def _contraction(op, M, n_cycles=6):
    b = torch.randn(
        op.batch,
        op.grid.n_unknowns,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(3),
    )
    x = torch.zeros_like(b)
    res = []
    for _ in range(n_cycles):
        x = x + M.matvec(b - op.matvec(x))
        res.append(float((b - op.matvec(x)).norm() / b.norm()))
    return (res[-1] / res[1]) ** (1 / (n_cycles - 2))


@pytest.mark.parametrize("n", [33, 64, 85, 129])
def test_laplacian_contraction_is_mesh_independent(n):
    g = Grid((n, n))
    op = laplacian(g)
    M = multigrid_preconditioner(op)
    assert M.n_levels >= 3
    assert _contraction(op, M) < 0.35


def test_vcycle_is_symmetric_positive_definite():
    n = 41
    g = Grid((n, n))
    a = _blocky(n)
    M = MultigridPreconditioner(g, a)
    gen = torch.Generator().manual_seed(1)
    X = torch.randn(5, g.n_unknowns, dtype=torch.float64, generator=gen)
    Y = torch.randn(5, g.n_unknowns, dtype=torch.float64, generator=gen)
    MX = torch.cat([M.matvec(X[i : i + 1]) for i in range(5)])
    MY = torch.cat([M.matvec(Y[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose((MX * Y).sum(1), (X * MY).sum(1), rtol=1e-10)
    assert ((MX * X).sum(1) > 0).all()


def test_batched_equals_single_systems():
    n = 33
    g = Grid((n, n))
    a = torch.stack([_blocky(n, s) for s in range(3)])
    M = MultigridPreconditioner(g, a)
    r = torch.randn(3, g.n_unknowns, dtype=torch.float64)
    z = M.matvec(r)
    for i in range(3):
        zi = MultigridPreconditioner(g, a[i]).matvec(r[i : i + 1])
        np.testing.assert_allclose(z[i].numpy(), zi[0].numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", [(65,), (20, 31), (17, 17, 17)])
def test_mgpcg_beats_jacobi_any_dimension(shape):
    g = Grid(shape)
    a = _blocky(shape[0], shape=shape)
    op = diffusion(g, a)
    b = op.rhs(1.0).reshape(1, -1)
    x_mg, info_mg = cg(op.as_linear_operator(), b, rtol=1e-8, M=multigrid_preconditioner(op))
    assert info_mg == 0
    res = torch.linalg.norm(b - op.matvec(x_mg)) / torch.linalg.norm(b)
    assert res <= 1e-8
    its = {
        name: int(
            solve(op.as_linear_operator(), b, method="cg", rtol=1e-8, M=M, maxiter=5000).iterations[
                0
            ]
        )
        for name, M in (("mg", multigrid_preconditioner(op)), ("jacobi", jacobi(op)))
    }
    assert its["mg"] <= 20
    assert its["mg"] * 3 < its["jacobi"] or shape == (65,)


def test_float32_and_reaction_term():
    n = 33
    g = Grid((n, n))
    a = _blocky(n).float()
    op = diffusion(g, a, reaction=2.0)
    M = multigrid_preconditioner(op)
    b = op.rhs(1.0).reshape(1, -1)
    x, info = cg(op.as_linear_operator(), b, rtol=1e-4, M=M)  # near the float32 floor of h^-2 operators
    assert info == 0 and x.dtype == torch.float32


def test_rejects_unsupported_operators():
    with pytest.raises(ValueError, match="Dirichlet"):
        MultigridPreconditioner(Grid((9, 9), bc="periodic"), torch.ones(9, 9))
    with pytest.raises(ValueError, match="diffusion or Laplacian"):
        multigrid_preconditioner(helmholtz(Grid((9, 9)), 1.0))


@pytest.mark.gpu
def test_mgpcg_on_gpu():
    n = 65
    g = Grid((n, n))
    a = _blocky(n).to("cuda")
    op = diffusion(g, a)
    x, info = cg(
        op.as_linear_operator(),
        op.rhs(1.0).reshape(1, -1),
        rtol=1e-8,
        M=multigrid_preconditioner(op),
    )
    assert info == 0 and x.device.type == "cuda"
