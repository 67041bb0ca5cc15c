"""Finite-difference operators: second-order convergence, assembled == matrix-free, bad input."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
import torch

from pdekit.core.grid import Dirichlet, Grid, Neumann, Periodic
from pdekit.core.stencils import advection_diffusion, diffusion, helmholtz, laplacian

pi = np.pi


def _solve(op, f_full):
    b = op.rhs(f_full)[0].reshape(-1).numpy()
    return spla.spsolve(op.to_scipy().tocsc(), b).reshape(op.grid.interior_shape)


def _order(sizes, error_fn):
    hs, errs = [], []
    for n in sizes:
        h, e = error_fn(n)
        hs.append(h)
        errs.append(e)
    slope = np.polyfit(np.log(hs), np.log(errs), 1)[0]
    return slope, errs


def _case_laplacian_dirichlet_2d(n):
    g = Grid((n, n), bc=Dirichlet(1.0))
    X, Y = g.mesh()
    u = 1 + torch.sin(pi * X) * torch.sin(pi * Y)
    f = 2 * pi**2 * (u - 1)
    return g, laplacian(g), f, u


def _case_laplacian_dirichlet_1d(n):
    g = Grid((n,))
    (X,) = g.mesh()
    u = torch.sin(pi * X) * torch.exp(X)
    # -(sin(pi x) e^x)'' = e^x ((pi^2 - 1) sin(pi x) - 2 pi cos(pi x))
    f = torch.exp(X) * ((pi**2 - 1) * torch.sin(pi * X) - 2 * pi * torch.cos(pi * X))
    return g, laplacian(g), f, u


def _case_laplacian_dirichlet_3d(n):
    g = Grid((n, n, n))
    X, Y, Z = g.mesh()
    u = torch.sin(pi * X) * torch.sin(pi * Y) * torch.sin(pi * Z)
    return g, laplacian(g), 3 * pi**2 * u, u


def _diffusion_terms(X, Y, u, ux, uy, uxx, uyy):
    a = 1 + X**2 + Y
    ax, ay = 2 * X, torch.ones_like(Y)
    f = -(ax * ux + ay * uy + a * (uxx + uyy))
    return a, f


def _case_diffusion_dirichlet(n):
    g = Grid((n, n))
    X, Y = g.mesh()
    s, c = torch.sin, torch.cos
    u = s(pi * X) * s(pi * Y)
    a, f = _diffusion_terms(
        X, Y, u, pi * c(pi * X) * s(pi * Y), pi * s(pi * X) * c(pi * Y), -(pi**2) * u, -(pi**2) * u
    )
    return g, diffusion(g, a), f, u


def _case_diffusion_neumann(n):
    g = Grid((n, n), bc=Neumann())
    X, Y = g.mesh()
    s, c = torch.sin, torch.cos
    u = c(pi * X) * c(pi * Y)
    a, f = _diffusion_terms(
        X,
        Y,
        u,
        -pi * s(pi * X) * c(pi * Y),
        -pi * c(pi * X) * s(pi * Y),
        -(pi**2) * u,
        -(pi**2) * u,
    )
    return g, diffusion(g, a, reaction=1.0), f + u, u


def _case_diffusion_periodic(n):
    g = Grid((n, n), bc=Periodic())
    X, Y = g.mesh()
    s, c = torch.sin, torch.cos
    u = s(2 * pi * X) * c(2 * pi * Y)
    a = 2 + s(2 * pi * X) * s(2 * pi * Y)
    ax = 2 * pi * c(2 * pi * X) * s(2 * pi * Y)
    ay = 2 * pi * s(2 * pi * X) * c(2 * pi * Y)
    ux, uy = 2 * pi * c(2 * pi * X) * c(2 * pi * Y), -2 * pi * s(2 * pi * X) * s(2 * pi * Y)
    f = -(ax * ux + ay * uy - a * 8 * pi**2 * u) + u
    return g, diffusion(g, a, reaction=1.0), f, u


def _case_mixed_bc(n):
    g = Grid((n, n), bc=(Dirichlet(), Periodic()))
    X, Y = g.mesh()
    u = torch.sin(pi * X) * torch.cos(2 * pi * Y)
    return g, laplacian(g), 5 * pi**2 * u, u


def _case_helmholtz(n):
    g = Grid((n, n))
    X, Y = g.mesh()
    u = torch.sin(pi * X) * torch.sin(2 * pi * Y)
    k = 7.5 + X  # k^2 in [56, 72]: eigenvalues 2, 5, 5 (times pi^2) of -lap fall below it
    return g, helmholtz(g, k), (5 * pi**2 - k**2) * u, u


def _case_advection_diffusion(n):
    g = Grid((n, n))
    X, Y = g.mesh()
    s, c = torch.sin, torch.cos
    u = s(pi * X) * s(pi * Y)
    nu, vx, vy = 0.1, 1.0, -0.5
    f = nu * 2 * pi**2 * u + vx * pi * c(pi * X) * s(pi * Y) + vy * pi * s(pi * X) * c(pi * Y)
    return g, advection_diffusion(g, [vx, vy], nu), f, u


CASES = {
    "laplacian_dirichlet_1d": (_case_laplacian_dirichlet_1d, [17, 33, 65, 129]),
    "laplacian_dirichlet_2d": (_case_laplacian_dirichlet_2d, [17, 33, 65, 129]),
    "laplacian_dirichlet_3d": (_case_laplacian_dirichlet_3d, [9, 13, 17, 25]),
    "diffusion_dirichlet": (_case_diffusion_dirichlet, [17, 33, 65, 129]),
    "diffusion_neumann": (_case_diffusion_neumann, [17, 33, 65, 129]),
    "diffusion_periodic": (_case_diffusion_periodic, [16, 32, 64, 128]),
    "mixed_dirichlet_periodic": (_case_mixed_bc, [16, 32, 64, 128]),
    "helmholtz_indefinite": (_case_helmholtz, [17, 33, 65, 129]),
    "advection_diffusion": (_case_advection_diffusion, [17, 33, 65, 129]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_order_convergence(name):
    build, sizes = CASES[name]

    def error(n):
        g, op, f, u = build(n)
        uh = _solve(op, f)
        return max(g.h), float(np.abs(uh - g.interior(u).numpy()).max())

    slope, errs = _order(sizes, error)
    assert abs(slope - 2.0) < 0.1, f"observed order {slope:.3f}, errors {errs}"


def test_helmholtz_case_is_indefinite():
    g, op, _, _ = _case_helmholtz(17)
    eig = np.linalg.eigvalsh(op.to_scipy().toarray())
    assert (eig < 0).sum() >= 2 and (eig > 0).sum() > 0


@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic"])
@pytest.mark.parametrize("shape", [(9,), (7, 6), (5, 6, 4)])
def test_matrix_free_equals_assembled(bc, shape):
    gen = torch.Generator().manual_seed(1)
    g = Grid(shape, bc=bc)
    a = torch.rand(3, *shape, generator=gen, dtype=torch.float64) + 0.1
    u = torch.randn(3, *g.interior_shape, generator=gen, dtype=torch.float64)
    for op in (
        diffusion(g, a, reaction=0.5),
        helmholtz(g, a),
        advection_diffusion(g, [1.0] * len(shape), 0.3),
    ):
        y = op.apply(u)
        for i in range(3):
            A = op.to_scipy(i if op.batch > 1 else 0)
            np.testing.assert_allclose(y[i].numpy().ravel(), A @ u[i].numpy().ravel(), rtol=1e-12)
            np.testing.assert_allclose(
                op.diagonal()[min(i, op.batch - 1)].numpy().ravel(), A.diagonal()
            )
            At = op.assemble(min(i, op.batch - 1))
            np.testing.assert_allclose(
                (At @ u[i].reshape(-1, 1)).reshape(-1).numpy(), A @ u[i].numpy().ravel()
            )
        if op.symmetric:
            A = op.to_scipy(0)
            assert abs(A - A.T).max() < 1e-12


def test_diffusion_is_spd_and_flattened_matvec():
    g = Grid((8, 8))
    a = torch.exp(
        torch.randn(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    )
    op = diffusion(g, a)
    A = op.to_scipy().toarray()
    assert np.allclose(A, A.T) and np.linalg.eigvalsh(A).min() > 0
    X = torch.randn(2, g.n_unknowns, dtype=torch.float64)
    np.testing.assert_allclose(op.matvec(X).numpy(), X.numpy() @ A.T, rtol=1e-12)
    np.testing.assert_allclose(
        (op.as_linear_operator() @ X[0]).numpy(), A @ X[0].numpy(), rtol=1e-12
    )


def test_harmonic_mean_is_exact_for_layered_medium():
    # 1-D two-layer medium with nodes on the interface: the harmonic face mean gives the exact
    # piecewise-linear solution of -(a u')' = 0, u(0) = 0, u(1) = 1.
    n = 11
    g = Grid((n,))
    x = g.coords()[0]
    a = torch.where(x < 0.5, 1.0, 10.0).to(torch.float64)
    op = diffusion(g, a)
    b = np.zeros(n - 2)
    b[-1] = -float(op.cp[0][0, -1])  # lift of u(1) = 1
    uh = spla.spsolve(op.to_scipy().tocsc(), b)
    # harmonic faces: flux q constant; face coefficient at the jump is 2*1*10/11
    faces = torch.tensor([2 * a[i] * a[i + 1] / (a[i] + a[i + 1]) for i in range(n - 1)])
    q = 1.0 / float((g.h[0] / faces).sum())
    exact = np.concatenate([[0.0], np.cumsum((q * g.h[0] / faces).numpy())])[1:-1]
    np.testing.assert_allclose(uh, exact, rtol=1e-12)


def test_matrix_free_keeps_dtype_and_gradients():
    g = Grid((6, 6))
    theta = torch.zeros(6, 6, dtype=torch.float64, requires_grad=True)
    u = torch.randn(1, 4, 4, dtype=torch.float64)
    y = diffusion(g, torch.exp(theta)).apply(u)
    y.sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all()
    u32 = torch.randn(2, 4, 4)
    assert laplacian(g).apply(u32).dtype == torch.float32


def test_bad_input_messages():
    g = Grid((6, 6))
    with pytest.raises(ValueError, match="shape"):
        diffusion(g, torch.ones(5, 5))
    with pytest.raises(ValueError, match="NaN"):
        diffusion(g, torch.full((6, 6), float("nan")))
    with pytest.raises(ValueError, match="positive"):
        diffusion(g, -torch.ones(6, 6))
    with pytest.raises(ValueError, match="boundary condition"):
        Grid((6, 6), bc="robin")
    with pytest.raises(ValueError, match="expected unknowns"):
        laplacian(g).apply(torch.ones(2, 6, 6))
    with pytest.raises(ValueError, match="batch"):
        diffusion(g, torch.ones(3, 6, 6)).apply(torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match="right-hand side"):
        laplacian(g).rhs(torch.ones(3, 3))
    with pytest.raises(ValueError, match="viscosity"):
        advection_diffusion(g, [1.0, 0.0], nu=-1.0)
