"""Tests for pdekit.core.krylov: agreement with scipy, batching, conventions and failure modes."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F

from pdekit.core.krylov import bicgstab, cg, gmres, minres, solve
from pdekit.core.krylov_base import arnoldi_cgs2
from pdekit.core.linop import LinearOperator
from pdekit.core.solve_result import BreakdownError, NotConvergedError

pytestmark = pytest.mark.filterwarnings(
    "ignore:Sparse CSR tensor support is in beta:UserWarning",
    "ignore:Sparse invariant checks are implicitly disabled:UserWarning",
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """n = 400 gains nothing from intra-op threads, and they spin on a loaded 2-core machine."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


N = 20  # interior grid points per side: n = 400 unknowns
METHODS = ["cg", "gmres", "bicgstab", "minres"]
FUNCTIONS = {"cg": cg, "gmres": gmres, "bicgstab": bicgstab, "minres": minres}


def _lap1d(n: int) -> sp.spmatrix:
    return sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(n, n))


def _poisson() -> sp.csr_matrix:
    eye = sp.identity(N)
    return (sp.kron(eye, _lap1d(N)) + sp.kron(_lap1d(N), eye)).tocsr()


def _convection_diffusion(c: float = 0.3) -> sp.csr_matrix:
    """-Laplacian plus a central-difference convection term in x (nonsymmetric)."""
    conv = sp.diags([-1.0 - c, 2.0, -1.0 + c], [-1, 0, 1], shape=(N, N))
    return (sp.kron(sp.identity(N), conv) + sp.kron(_lap1d(N), sp.identity(N))).tocsr()


def _indefinite(n_negative: int = 4) -> sp.csr_matrix:
    """Poisson minus a shift placed between its 4th and 5th smallest eigenvalues."""
    lam1 = 2.0 - 2.0 * np.cos(np.arange(1, N + 1) * np.pi / (N + 1))
    lam = np.sort(np.add.outer(lam1, lam1).ravel())
    shift = 0.5 * (lam[n_negative - 1] + lam[n_negative])
    return (_poisson() - shift * sp.identity(N * N)).tocsr()


PROBLEMS = {"spd": _poisson(), "nonsym": _convection_diffusion(), "indef": _indefinite()}
APPLIES = {
    "cg": ["spd"],
    "minres": ["spd", "indef"],
    "gmres": ["spd", "nonsym", "indef"],
    "bicgstab": ["spd", "nonsym", "indef"],
}
CASES = [(m, p) for m, problems in APPLIES.items() for p in problems]
EXTRA = {"gmres": {"restart": 60}}  # GMRES(20) stagnates on the indefinite problem


def _rhs(n_sys: int | None = None, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    shape = (N * N,) if n_sys is None else (n_sys, N * N)
    return torch.from_numpy(rng.standard_normal(shape))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _stencil(shift: torch.Tensor, c: float = 0.0):
    """Matrix-free 5-point -Laplacian (+ convection c, + per-system shift) acting on (B, N*N).

    Every operation is elementwise per row, so a batch gives bitwise the same rows as single
    systems: the right operator to test that batching does not change any system's iterates.
    """

    def apply(X: torch.Tensor) -> torch.Tensor:
        U = F.pad(X.view(-1, N, N), (1, 1, 1, 1))
        centre = U[:, 1:-1, 1:-1]
        west, east = U[:, 1:-1, :-2], U[:, 1:-1, 2:]
        north, south = U[:, :-2, 1:-1], U[:, 2:, 1:-1]
        Y = 4.0 * centre - north - south - (1.0 + c) * west - (1.0 - c) * east
        return Y.reshape(X.shape) + shift.view(-1, 1) * X

    return apply


def test_problem_set_is_what_it_claims():
    def nearest_zero(A):  # the 12 eigenvalues nearest 0, by shift-invert Lanczos
        return spla.eigsh(A.tocsc(), k=12, sigma=0.0, return_eigenvectors=False)

    lam = nearest_zero(PROBLEMS["indef"])
    assert (lam < 0).sum() == 4 and np.abs(lam).min() > 1e-3
    assert nearest_zero(PROBLEMS["spd"]).min() > 0
    assert abs(PROBLEMS["nonsym"] - PROBLEMS["nonsym"].T).max() > 0.1


@pytest.mark.parametrize("method,problem", CASES)
def test_agrees_with_spsolve(method, problem):
    A = PROBLEMS[problem]
    b = _rhs()
    x_ref = torch.from_numpy(spla.spsolve(A.tocsc(), b.numpy()))
    res = solve(A, b, method, rtol=1e-12, **EXTRA.get(method, {}))
    assert res.all_converged and res.info == 0
    assert _rel(res.x, x_ref) < 1e-8
    true_rel = np.linalg.norm(b.numpy() - A @ res.x.numpy()) / np.linalg.norm(b.numpy())
    assert float(res.rel_residual) <= 1e-12
    assert float(res.rel_residual) == pytest.approx(true_rel, rel=1e-6, abs=0)


@pytest.mark.parametrize("method", METHODS)
def test_operator_kinds_agree(method):
    A = PROBLEMS["spd"]
    dense = torch.from_numpy(A.toarray())
    b = _rhs()
    kinds = {
        "dense": dense,
        "numpy": A.toarray(),
        "torch_csr": dense.to_sparse_csr(),
        "callable": lambda X: X @ dense.T,
        "LinearOperator": LinearOperator(A.shape, lambda X: X @ dense.T, symmetric=True),
    }
    kw = {"rtol": 1e-12, **EXTRA.get(method, {})}
    x_ref = solve(A, b, method, **kw).x
    for name, op in kinds.items():
        x = solve(op, b, method, **kw).x
        assert _rel(x, x_ref) < 1e-9, name
    stacked = torch.stack([dense, 2.0 * dense])  # (B, n, n): one matrix per system
    xb = solve(stacked, torch.stack([b, b]), method, **kw).x
    assert _rel(xb[0], x_ref) < 1e-9 and _rel(2.0 * xb[1], x_ref) < 1e-9
    x_tuple, info = FUNCTIONS[method](A, b, **kw)
    assert info == 0 and _rel(x_tuple, x_ref) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_batched_equals_loop_of_single_solves(method):
    shift = torch.tensor([0.0, 0.5, 3.0, 1.0, 0.2], dtype=torch.float64)
    c = 0.0 if method in ("cg", "minres") else 0.3
    b = _rhs(5, seed=1)
    b[3] = 0.0  # b = 0 gives x = 0 at iteration 0
    x0 = _rhs(5, seed=2)
    kw = {"rtol": 1e-10, "restart": 15} if method == "gmres" else {"rtol": 1e-10}
    batch = solve(_stencil(shift, c), b, method, x0=x0, **kw)
    hist = batch.history()
    assert batch.all_converged and int(batch.iterations[3]) == 0
    assert torch.equal(batch.x[3], torch.zeros(N * N, dtype=torch.float64))
    for i in range(5):
        single = solve(_stencil(shift[i : i + 1], c), b[i], method, x0=x0[i], **kw)
        its = int(single.iterations[0])
        assert int(batch.iterations[i]) == its
        assert float((batch.x[i] - single.x).abs().max()) <= 1e-12 * float(single.x.abs().max())
        if its > 0:
            atol = 1e-12 * float(b[i].norm())  # GMRES: bmm rounding depends on the batch size
            torch.testing.assert_close(hist[:its, i], single.history()[:, 0], rtol=0, atol=atol)
        assert float(batch.rel_residual[i]) == pytest.approx(
            float(single.rel_residual[0]), rel=1e-6, abs=0
        )


@pytest.mark.parametrize("method", METHODS)
def test_inputs_not_mutated(method):
    b, x0 = _rhs(2, seed=3), _rhs(2, seed=4)
    b[1] = 0.0  # x0 of a system with b = 0 is replaced by 0 (in the solver's copy only)
    b_copy, x0_copy = b.clone(), x0.clone()
    solve(PROBLEMS["spd"], b, method, x0=x0, rtol=1e-8)
    assert torch.equal(b, b_copy) and torch.equal(x0, x0_copy)


@pytest.mark.parametrize("method", METHODS)
def test_exact_initial_guess_takes_zero_iterations(method):
    A = PROBLEMS["spd"]
    b = _rhs()
    x_exact = torch.from_numpy(spla.spsolve(A.tocsc(), b.numpy()))
    res = solve(A, b, method, x0=x_exact, rtol=1e-8)
    assert res.info == 0 and res.iterations.tolist() == [0] and res.matvecs == 1
    assert torch.equal(res.x, x_exact) and res.residual_history == []


@pytest.mark.parametrize("method", METHODS)
def test_zero_rhs_gives_zero_solution(method):
    b = torch.zeros(N * N, dtype=torch.float64)
    x, info = FUNCTIONS[method](PROBLEMS["spd"], b, x0=_rhs(seed=5))
    assert info == 0 and torch.equal(x, b)


@pytest.mark.parametrize("method", METHODS)
def test_non_convergence_is_reported_and_strict_raises(method):
    A, b = PROBLEMS["spd"], _rhs()
    res = solve(A, b, method, rtol=1e-12, maxiter=3)
    assert res.info == 3 and res.converged.tolist() == [False]
    assert res.iterations.tolist() == [3] and float(res.rel_residual) > 1e-6
    x, info = FUNCTIONS[method](A, b, rtol=1e-12, maxiter=3)
    assert info == 3 and torch.equal(x, res.x)
    with pytest.raises(NotConvergedError, match="did not converge") as err:
        FUNCTIONS[method](A, b, rtol=1e-12, maxiter=3, strict=True)
    assert err.value.result is not None and not err.value.result.all_converged


def test_cg_breakdown_on_indefinite_matrix_names_the_system():
    with pytest.raises(BreakdownError, match="system 0.*not symmetric positive definite"):
        cg(PROBLEMS["indef"], _rhs())
    pair = torch.stack([torch.from_numpy(PROBLEMS[k].toarray()) for k in ("spd", "indef")])
    with pytest.raises(BreakdownError, match="system 1: p\\^T A p") as err:
        cg(pair, _rhs(2))
    assert err.value.result is not None and torch.isfinite(err.value.result.x).all()


@pytest.mark.parametrize("method", ["cg", "minres"])
def test_indefinite_preconditioner_is_reported(method):
    with pytest.raises(BreakdownError, match="preconditioner M is not SPD"):
        FUNCTIONS[method](PROBLEMS["spd"], _rhs(), M=lambda X: -X)


def test_bicgstab_breakdown_is_reported_not_nan():
    rotation = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    with pytest.raises(BreakdownError, match="bicgstab: system 0: breakdown") as err:
        bicgstab(rotation, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.isfinite(err.value.result.x).all()


@pytest.mark.parametrize("method", METHODS)
def test_jacobi_preconditioner_reduces_iterations(method):
    scale = sp.diags(np.logspace(0, 2, N * N, base=10.0))
    A = (scale @ PROBLEMS["spd"] @ scale).tocsr()  # SPD, badly scaled
    jacobi = sp.diags(1.0 / A.diagonal())
    b = _rhs()
    prec = solve(A, b, method, rtol=1e-8, M=jacobi)
    assert prec.all_converged
    # without the preconditioner, twice as many iterations are not enough
    plain = solve(A, b, method, rtol=1e-8, maxiter=2 * int(prec.iterations))
    assert not plain.all_converged
    x_ref = torch.from_numpy(spla.spsolve(A.tocsc(), b.numpy()))
    assert float(prec.rel_residual) <= 1e-8 and _rel(prec.x, x_ref) < 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_float32(method):
    A = PROBLEMS["spd"]
    b = _rhs().float()
    res = solve(A, b, method, rtol=1e-4)
    assert res.x.dtype == torch.float32 and res.all_converged
    x_ref = spla.spsolve(A.tocsc(), b.double().numpy())
    assert _rel(res.x.double(), torch.from_numpy(x_ref)) < 1e-2


def test_history_length_and_matvec_counts():
    A, b = PROBLEMS["spd"], _rhs()
    # CG: one matvec per iteration + one to confirm convergence (+ one for r0 when x0 is given)
    res = solve(A, b, "cg", rtol=1e-10)
    its = int(res.iterations)
    assert len(res.residual_history) == its and res.history().shape == (its, 1)
    assert res.matvecs == its + 1
    assert solve(A, b, "cg", x0=torch.zeros_like(b), rtol=1e-10).matvecs == its + 2
    # MINRES: the same count; its estimate never increases
    res = solve(A, b, "minres", rtol=1e-10)
    assert res.matvecs == int(res.iterations) + 1
    assert len(res.residual_history) == int(res.iterations)
    assert (res.history().diff(dim=0) <= 1e-12).all()
    # BiCGStab: two matvecs per iteration + one confirmation
    res = solve(A, b, "bicgstab", rtol=1e-10)
    assert res.matvecs == 2 * int(res.iterations) + 1
    assert len(res.residual_history) == int(res.iterations)
    # GMRES(m): one matvec per inner iteration + one true residual per cycle
    res = solve(A, b, "gmres", rtol=1e-10, restart=10)
    its = int(res.iterations)
    assert its > 10 and res.matvecs == its + math.ceil(its / 10)
    assert len(res.residual_history) == its
    assert (res.history().diff(dim=0) <= 1e-12 * float(b.norm())).all()


def test_gmres_cycle_minimises_the_residual_over_the_krylov_space():
    """One cycle of right-preconditioned GMRES(m): x = M V y minimises ||b - A M V y||."""
    A = PROBLEMS["nonsym"].toarray()
    M = np.diag(1.0 / (1.0 + np.arange(N * N) / (N * N)))  # any nonsingular right preconditioner
    b = _rhs()
    m = 8
    AM = A @ M
    K = [b.numpy()]
    for _ in range(m - 1):
        K.append(AM @ K[-1])
    Q = np.linalg.qr(np.stack(K, axis=1))[0]
    y = np.linalg.lstsq(AM @ Q, b.numpy(), rcond=None)[0]
    x_ref = torch.from_numpy(M @ Q @ y)
    res = solve(A, b, "gmres", restart=m, maxiter=m, M=M, rtol=1e-14)
    assert res.iterations.tolist() == [m] and not res.all_converged
    assert res.matvecs == m + 1  # m inner steps + the true residual at the end of the cycle
    assert _rel(res.x, x_ref) < 1e-9
    # the Givens estimate of the last step is the true residual of the cycle's iterate
    assert float(res.history()[-1, 0]) == pytest.approx(
        float(res.rel_residual) * float(b.norm()), rel=1e-8
    )


def test_arnoldi_cgs2_keeps_the_basis_orthonormal_in_float32():
    """CGS2 keeps ||V^T V - I|| near float32 rounding where one CGS pass loses ~1e-4."""
    scale = sp.diags(np.logspace(0, 3, N * N))
    A = torch.from_numpy((scale @ PROBLEMS["spd"] @ scale).toarray()).float()
    m = 60
    V = torch.zeros(2, m + 1, N * N)
    H = torch.zeros(2, m + 1, m)
    b = _rhs(2, seed=6).float()
    V[:, 0] = b / b.norm(dim=1, keepdim=True)
    for j in range(m):
        h, V[:, j + 1] = arnoldi_cgs2(V[:, j] @ A.T, V, j)
        H[:, : j + 2, j] = h
    gram = V @ V.transpose(1, 2)
    assert float((gram - torch.eye(m + 1)).abs().max()) < 1e-5
    arnoldi = V[:, :m] @ A.T - H.transpose(1, 2) @ V  # A V_m = V_{m+1} H, row-wise
    assert float(arnoldi.norm() / H.norm()) < 1e-6


def test_bicgstab_stops_at_the_half_step():
    """For A = 2 I, b = 1 the first half-step is exact (s = 0 in floating point too), so
    omega = t^T s / t^T t would be 0/0: the method must stop there, after one iteration."""
    b = torch.ones(16, dtype=torch.float64)
    res = solve(2.0 * torch.eye(16, dtype=torch.float64), b, "bicgstab", rtol=1e-12)
    assert res.iterations.tolist() == [1] and res.all_converged and res.matvecs == 3
    assert torch.equal(res.x, b / 2.0)


def test_callback_is_called_per_iteration_and_per_gmres_cycle():
    A, b = PROBLEMS["spd"], _rhs()
    seen = []
    res = solve(A, b, "cg", rtol=1e-8, callback=lambda x: seen.append(x.shape))
    assert len(seen) == int(res.iterations) and seen[0] == b.shape
    seen.clear()
    res = solve(A, b, "gmres", rtol=1e-8, restart=10, callback=lambda x: seen.append(x.shape))
    assert len(seen) == math.ceil(int(res.iterations) / 10)


BAD_INPUTS = {
    "b 3-D": (lambda: solve(PROBLEMS["spd"], torch.zeros(2, 2, N * N)), "b must be"),
    "A vs b": (lambda: solve(PROBLEMS["spd"], torch.ones(N * N - 1)), "has shape"),
    "x0 vs b": (lambda: cg(PROBLEMS["spd"], _rhs(), x0=torch.zeros(3)), "x0 has shape"),
    "NaN in b": (lambda: gmres(PROBLEMS["spd"], _rhs() * float("nan")), "b contains NaN"),
    "inf in x0": (
        lambda: minres(PROBLEMS["spd"], _rhs(), x0=_rhs() * float("inf")),
        "x0 contains NaN or inf",
    ),
    "rtol < 0": (lambda: bicgstab(PROBLEMS["spd"], _rhs(), rtol=-1.0), "rtol"),
    "method": (lambda: solve(PROBLEMS["spd"], _rhs(), "lsqr"), "unknown method 'lsqr'"),
    "B mismatch": (lambda: cg(torch.eye(4).expand(3, 4, 4), torch.ones(2, 4)), "holds 3 matrices"),
    "restart": (lambda: gmres(PROBLEMS["spd"], _rhs(), restart=0), "restart must be"),
    "maxiter": (lambda: cg(PROBLEMS["spd"], _rhs(), maxiter=-1), "maxiter must be"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_value_error(case):
    call, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cg_on_cuda():
    A = PROBLEMS["spd"]
    b = _rhs()
    csr = torch.from_numpy(A.toarray()).to_sparse_csr().to("cuda")
    res = solve(csr, b.to("cuda"), "cg", rtol=1e-10)
    assert res.x.device.type == "cuda" and res.all_converged
    x_ref = torch.from_numpy(spla.spsolve(A.tocsc(), b.numpy()))
    assert _rel(res.x.cpu(), x_ref) < 1e-8
