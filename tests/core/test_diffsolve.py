import pytest
import torch
import torch.nn.functional as F

from pdekit.core import krylov
from pdekit.core.diffsolve import differentiable_solve
from pdekit.core.linop import aslinearoperator
from pdekit.core.solve_config import DIFFERENTIABLE, SolveConfig
from pdekit.core.solve_result import NotConvergedError
from pdekit.errors import PdekitUserError

N = 8  # nodes per side including the boundary: 6 x 6 = 36 unknowns
H = 1.0 / (N - 1)
DT = torch.float64


def diffusion(X, theta):
    """-div(a grad u), a = exp(theta) on all N x N nodes, harmonic-mean face coefficients,
    u = 0 on the boundary nodes; X holds the (B, 36) interior values."""
    a = torch.exp(theta)
    U = F.pad(X.reshape(-1, N - 2, N - 2), (1, 1, 1, 1))
    ax = 2 * a[1:, :] * a[:-1, :] / (a[1:, :] + a[:-1, :])  # faces (i + 1/2, j): (N-1, N)
    ay = 2 * a[:, 1:] * a[:, :-1] / (a[:, 1:] + a[:, :-1])  # faces (i, j + 1/2): (N, N-1)
    fx = ax * (U[:, 1:, :] - U[:, :-1, :])
    fy = ay * (U[:, :, 1:] - U[:, :, :-1])
    div = (fx[:, 1:, 1:-1] - fx[:, :-1, 1:-1]) + (fy[:, 1:-1, 1:] - fy[:, 1:-1, :-1])
    return -(div / H**2).reshape(X.shape)


def advection_diffusion(X, theta, velocity):
    """diffusion + velocity . grad u (central differences): nonsymmetric."""
    U = F.pad(X.reshape(-1, N - 2, N - 2), (1, 1, 1, 1))
    ux = (U[:, 2:, 1:-1] - U[:, :-2, 1:-1]) / (2 * H)
    uy = (U[:, 1:-1, 2:] - U[:, 1:-1, :-2]) / (2 * H)
    return diffusion(X, theta) + (velocity[0] * ux + velocity[1] * uy).reshape(X.shape)


def dense(matvec, *params, n=(N - 2) ** 2):
    """A(params) as a dense matrix, differentiable in params."""
    return matvec(torch.eye(n, dtype=DT), *params).T


def dense_solve(matvec, b, *params):
    return torch.linalg.solve(dense(matvec, *params), b.T).T


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def inputs(rng, batch=2):
    b = torch.randn(batch, (N - 2) ** 2, generator=rng, dtype=DT)
    theta = 0.5 * torch.randn(N, N, generator=rng, dtype=DT)
    velocity = torch.tensor([3.0, -2.0], dtype=DT)
    return b, theta, velocity


@pytest.fixture
def count_solves(monkeypatch):
    calls = []
    real = krylov.solve

    def counted(*args, **kw):
        calls.append(kw.get("method"))
        return real(*args, **kw)

    monkeypatch.setattr(krylov, "solve", counted)
    return calls


def test_operator_fixtures_are_what_they_claim(rng):
    b, theta, velocity = inputs(rng)
    A = dense(diffusion, theta)
    torch.testing.assert_close(A, A.T)
    assert float(torch.linalg.eigvalsh(A).min()) > 0
    A2 = dense(advection_diffusion, theta, velocity)
    assert float((A2 - A2.T).abs().max()) > 1.0
    # a constant coefficient gives the 5-point Laplacian: 4 / h^2 on the diagonal
    torch.testing.assert_close(
        dense(diffusion, torch.zeros(N, N, dtype=DT)).diagonal(),
        torch.full(((N - 2) ** 2,), 4 / H**2, dtype=DT),
    )


def test_gradcheck_rhs_and_coefficient_field_cg(rng):
    b, theta, _ = inputs(rng)
    b.requires_grad_(True)
    theta.requires_grad_(True)
    cfg = SolveConfig(method="cg", rtol=1e-13)
    assert torch.autograd.gradcheck(
        lambda b, t: differentiable_solve(diffusion, b, t, config=cfg), (b, theta)
    )


@pytest.mark.parametrize("method", ["gmres", "bicgstab"])
def test_gradcheck_nonsymmetric(rng, method):
    b, theta, velocity = inputs(rng, batch=1)
    args = (b.requires_grad_(True), theta.requires_grad_(True), velocity.requires_grad_(True))
    cfg = SolveConfig(method=method, rtol=1e-13)
    assert torch.autograd.gradcheck(
        lambda b, t, v: differentiable_solve(advection_diffusion, b, t, v, config=cfg), args
    )


@pytest.mark.parametrize(
    "method, matvec, n_params",
    [
        ("cg", diffusion, 1),
        ("minres", diffusion, 1),
        ("gmres", advection_diffusion, 2),
        ("bicgstab", advection_diffusion, 2),
    ],
)
def test_gradients_match_dense_autograd(rng, method, matvec, n_params):
    b, theta, velocity = inputs(rng, batch=3)
    params = (theta, velocity)[:n_params]
    w = torch.randn(b.shape, generator=rng, dtype=DT)

    def loss(x):
        return (w * x).sum() + (x**2).sum()

    leaves = [t.clone().requires_grad_(True) for t in (b, *params)]
    x = differentiable_solve(matvec, leaves[0], *leaves[1:], method=method, rtol=1e-12)
    got = torch.autograd.grad(loss(x), leaves)
    ref_leaves = [t.clone().requires_grad_(True) for t in (b, *params)]
    x_ref = dense_solve(matvec, ref_leaves[0], *ref_leaves[1:])
    want = torch.autograd.grad(loss(x_ref), ref_leaves)
    torch.testing.assert_close(x.detach(), x_ref.detach(), rtol=1e-9, atol=1e-9)
    for g, r in zip(got, want):
        scale = float(r.abs().max())
        torch.testing.assert_close(g, r, rtol=0, atol=1e-8 * max(scale, 1.0))


def test_backward_is_exactly_one_adjoint_solve(rng, count_solves):
    b, theta, velocity = inputs(rng, batch=3)
    b.requires_grad_(True)
    theta.requires_grad_(True)
    velocity.requires_grad_(True)
    x = differentiable_solve(advection_diffusion, b, theta, velocity, method="gmres")
    assert count_solves == ["gmres"]
    x.square().sum().backward()
    assert count_solves == ["gmres", "gmres"]  # one batched adjoint solve for all 3 systems
    assert b.grad is not None and theta.grad is not None and velocity.grad is not None


def test_adjoint_uses_its_own_tolerance(rng, monkeypatch):
    b, theta, _ = inputs(rng)
    theta.requires_grad_(True)
    seen = []
    real = krylov.solve

    def spy(*args, **kw):
        seen.append((kw["rtol"], kw["atol"]))
        return real(*args, **kw)

    monkeypatch.setattr(krylov, "solve", spy)
    differentiable_solve(diffusion, b, theta, method="cg", rtol=1e-8, atol=1e-30,
                         adjoint_rtol=1e-11).sum().backward()
    assert seen == [(1e-8, 1e-30), (1e-11, 1e-30)]
    seen.clear()
    cfg = SolveConfig(method="cg", rtol=1e-7, atol=1e-30,
                      adjoint=SolveConfig(method="cg", rtol=1e-12, atol=1e-31))
    differentiable_solve(diffusion, b, theta, config=cfg).sum().backward()
    assert seen == [(1e-7, 1e-30), (1e-12, 1e-31)]


def _fail_call(monkeypatch, which):
    """Make the forward (which=0) or adjoint (which=1) solve hit a 1-iteration cap."""
    real = krylov.solve
    calls = []

    def capped(*args, **kw):
        calls.append(1)
        if len(calls) - 1 == which:
            kw = {**kw, "maxiter": 1}
        return real(*args, **kw)

    monkeypatch.setattr(krylov, "solve", capped)


def test_adjoint_non_convergence_raises(rng, monkeypatch):
    b, theta, _ = inputs(rng)
    theta.requires_grad_(True)
    _fail_call(monkeypatch, which=1)
    x = differentiable_solve(diffusion, b, theta)
    with pytest.raises(NotConvergedError, match="adjoint") as err:
        x.sum().backward()
    assert err.value.result is not None and not err.value.result.all_converged
    assert theta.grad is None


def test_forward_non_convergence_raises(rng, monkeypatch):
    b, theta, _ = inputs(rng)
    _fail_call(monkeypatch, which=0)
    with pytest.raises(NotConvergedError, match="forward"):
        differentiable_solve(diffusion, b, theta)


def test_unreachable_adjoint_tolerance_raises(rng):
    b, theta, velocity = inputs(rng)
    theta.requires_grad_(True)
    x = differentiable_solve(
        advection_diffusion, b, theta, velocity, method="gmres", maxiter=300, adjoint_rtol=1e-30
    )
    with pytest.raises(NotConvergedError):
        x.sum().backward()


def test_inputs_are_not_mutated(rng):
    b, theta, velocity = inputs(rng)
    x0 = torch.randn(b.shape, generator=rng, dtype=DT)
    originals = [t.clone() for t in (b, theta, velocity, x0)]
    b.requires_grad_(True)
    theta.requires_grad_(True)
    x = differentiable_solve(advection_diffusion, b, theta, velocity, method="bicgstab", x0=x0)
    x.sum().backward()
    for t, o in zip((b, theta, velocity, x0), originals):
        assert torch.equal(t.detach(), o)


def test_single_vector_matches_batch_and_x0_is_not_differentiated(rng):
    b, theta, _ = inputs(rng, batch=1)
    theta.requires_grad_(True)
    x1 = differentiable_solve(diffusion, b[0], theta, rtol=1e-12)
    assert x1.shape == b[0].shape
    x0 = torch.ones(b.shape[1], dtype=DT, requires_grad=True)
    xb = differentiable_solve(diffusion, b, theta, rtol=1e-12, x0=x0)
    torch.testing.assert_close(x1, xb[0], rtol=1e-10, atol=1e-12)
    xb.sum().backward()
    assert x0.grad is None and theta.grad is not None


def test_preconditioned_nonsymmetric_solve_uses_transposed_preconditioner(rng, monkeypatch):
    b, theta, velocity = inputs(rng)
    theta.requires_grad_(True)
    A = dense(advection_diffusion, theta.detach(), velocity)
    M = torch.linalg.inv(torch.triu(A))  # nonsymmetric preconditioner
    seen = []
    real = krylov.solve

    def spy(*args, **kw):
        seen.append(kw["M"])
        return real(*args, **kw)

    monkeypatch.setattr(krylov, "solve", spy)
    x = differentiable_solve(
        advection_diffusion, b, theta, velocity, method="gmres", M=M, rtol=1e-12
    )
    x.sum().backward()
    v = torch.randn(2, M.shape[0], generator=rng, dtype=DT)
    torch.testing.assert_close(aslinearoperator(seen[1]).matvec(v), v @ M)  # rows of M^T v
    ref = theta.detach().clone().requires_grad_(True)
    dense_solve(advection_diffusion, b, ref, velocity).sum().backward()
    torch.testing.assert_close(theta.grad, ref.grad, rtol=0, atol=1e-8)


def test_double_backward_is_refused(rng):
    b, theta, _ = inputs(rng)
    theta.requires_grad_(True)
    x = differentiable_solve(diffusion, b, theta)
    (g,) = torch.autograd.grad(x.sum(), theta, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), theta)


def test_configuration_errors():
    b = torch.ones(36, dtype=DT)
    with pytest.raises(PdekitUserError, match="method must be one of"):
        differentiable_solve(lambda X: X, b, method="lu")
    with pytest.raises(PdekitUserError, match="SolveConfig.method must be one of cg, gmres"):
        differentiable_solve(lambda X: X, b, config=SolveConfig(method="mgpcg"))
    with pytest.raises(PdekitUserError, match="as an operator M"):
        differentiable_solve(lambda X: X, b, method="cg", preconditioner="jacobi")
    with pytest.raises(PdekitUserError, match="unknown solver option 'tol'"):
        differentiable_solve(lambda X: X, b, tol=1e-3)
    assert DIFFERENTIABLE.method == "cg" and DIFFERENTIABLE.rtol == 1e-10
    b = torch.ones(36, dtype=DT)
    with pytest.raises(TypeError, match="tensors"):
        differentiable_solve(lambda X, c: c * X, b, 2.0)
    with pytest.raises(ValueError, match="shape"):
        differentiable_solve(lambda X: X, b.reshape(6, 6, 1))



@pytest.mark.parametrize("symmetric", [None, True])
def test_declared_symmetry_gives_the_same_gradient(rng, symmetric):
    # gmres does not assume symmetry: the adjoint applies the vector-Jacobian product of matvec,
    # unless symmetric=True declares A = A^T and the adjoint applies matvec itself
    b, theta, _ = inputs(rng, batch=2)
    theta.requires_grad_(True)
    x = differentiable_solve(diffusion, b, theta, method="gmres", rtol=1e-12, restart=40,
                             symmetric=symmetric)
    (g,) = torch.autograd.grad(x.square().sum(), theta)
    theta_ref = theta.detach().clone().requires_grad_(True)
    ref = differentiable_solve(diffusion, b, theta_ref, rtol=1e-12)
    (g_ref,) = torch.autograd.grad(ref.square().sum(), theta_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-7, atol=1e-10)
