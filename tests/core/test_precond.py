"""Jacobi, pyamg and ILU preconditioners as batched operators."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from pdekit.core.grid import Grid
from pdekit.core.krylov import solve
from pdekit.core.precond import ilu_preconditioner, jacobi, pyamg_preconditioner
from pdekit.core.stencils import advection_diffusion, diffusion


def _op(batch=2, n=24):
    gen = torch.Generator().manual_seed(0)
    a = torch.exp(torch.randn(batch, n, n, generator=gen, dtype=torch.float64))
    return diffusion(Grid((n, n)), a)


def test_jacobi_matches_inverse_diagonal_for_every_input_kind():
    op = _op()
    A = op.to_scipy(1)
    r = torch.randn(2, op.grid.n_unknowns, dtype=torch.float64)
    z = jacobi(op).matvec(r)
    np.testing.assert_allclose(z[1].numpy(), r[1].numpy() / A.diagonal())
    for kind in (A, torch.from_numpy(A.toarray()), op.assemble(1)):
        np.testing.assert_allclose(jacobi(kind).matvec(r[1:2])[0].numpy(), z[1].numpy())


def test_jacobi_rejects_zero_diagonal():
    with pytest.raises(ValueError, match="diagonal"):
        jacobi(sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 2.0]])))


@pytest.mark.parametrize("kind", ["sa", "rs"])
def test_pyamg_preconditioned_cg_per_system(kind):
    op = _op()
    M = pyamg_preconditioner(op, kind=kind)
    b = op.rhs(1.0).reshape(2, -1)
    res = solve(op.as_linear_operator(), b, method="cg", rtol=1e-8, M=M)
    x = res.x
    assert res.all_converged
    for i in range(2):
        A = op.to_scipy(i)
        assert np.linalg.norm(b[i].numpy() - A @ x[i].numpy()) <= 1e-8 * np.linalg.norm(
            b[i].numpy()
        )
    assert int(res.iterations.max()) < 40


def test_ilu_preconditioned_gmres_nonsymmetric():
    g = Grid((30, 30))
    op = advection_diffusion(g, [5.0, -3.0], nu=0.05)
    b = op.rhs(1.0).reshape(1, -1)
    its = {}
    for name, M in (("ilu", ilu_preconditioner(op)), ("none", None)):
        res = solve(
            op.as_linear_operator(), b, method="gmres", rtol=1e-8, restart=30, M=M, maxiter=20000
        )
        assert res.all_converged
        its[name] = int(res.iterations[0])
    assert its["ilu"] * 4 < its["none"]


def test_unknown_pyamg_kind():
    with pytest.raises(ValueError, match="pyamg kind"):
        pyamg_preconditioner(_op(), kind="magic")
