"""Krylov recycling: GCRO-DR and deflated CG.

Recycling is proven by counting matvecs over sequences of related systems; k = 0 must reproduce
pdekit's GMRES(m) exactly; answers are checked against scipy's sparse direct solver.
"""

import time

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from pdekit.core.krylov import solve
from pdekit.core.recycling import RecycleSpace, gcrodr, rcg, recycled_solve
from pdekit.core.recycling.gcrodr import _select
from pdekit.core.solve_result import BreakdownError, NotConvergedError

# ---------------------------------------------------------------------------------------------
# test systems (scipy.sparse)
# ---------------------------------------------------------------------------------------------


def smooth_field(N, rng, n_modes=6, decay=2.0):
    """Smooth random field on an (N+2)^2 node grid (boundary included), pointwise std ~ 1."""
    s = np.linspace(0.0, 1.0, N + 2)
    X, Y = np.meshgrid(s, s, indexing="ij")
    g = np.zeros_like(X)
    for i in range(1, n_modes + 1):
        for j in range(1, n_modes + 1):
            amp = (i * i + j * j) ** (-decay / 2)
            ph1, ph2 = rng.uniform(0, 2 * np.pi, 2)
            g += amp * rng.standard_normal() * np.cos(i * np.pi * X + ph1) * np.cos(j * np.pi * Y + ph2)
    return g / g.std()


def diffusion_matrix(a):
    """-div(a grad u), 5-point flux form, harmonic-mean face coefficients, Dirichlet, SPD."""
    N = a.shape[0] - 2
    h = 1.0 / (N + 1)
    idx = np.arange(N * N).reshape(N, N)
    c = a[1:-1, 1:-1]

    def hm(p, q):
        return 2 * p * q / (p + q)

    faces = {
        (1, 0): hm(c, a[2:, 1:-1]),
        (-1, 0): hm(c, a[:-2, 1:-1]),
        (0, 1): hm(c, a[1:-1, 2:]),
        (0, -1): hm(c, a[1:-1, :-2]),
    }
    rows, cols, vals = [idx.ravel()], [idx.ravel()], [sum(faces.values()).ravel()]
    for (di, dj), f in faces.items():
        src = idx[max(0, -di) : N - max(0, di), max(0, -dj) : N - max(0, dj)]
        dst = idx[max(0, di) : N - max(0, -di), max(0, dj) : N - max(0, -dj)]
        fv = f[max(0, -di) : N - max(0, di), max(0, -dj) : N - max(0, dj)]
        rows.append(src.ravel())
        cols.append(dst.ravel())
        vals.append(-fv.ravel())
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(N * N, N * N)
    )
    return A / h**2


def laplacian(N):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    eye = sp.identity(N)
    return ((sp.kron(T, eye) + sp.kron(eye, T)) * (N + 1) ** 2).tocsr()


def convection_diffusion(N, wind=(40.0, 25.0)):
    """-lap u + w . grad u, first-order upwind: nonsymmetric, with complex eigenvalues."""
    h = 1.0 / (N + 1)
    D = sp.diags([-1.0, 1.0], [-1, 0], shape=(N, N)) / h  # backward difference (w > 0)
    eye = sp.identity(N)
    return (laplacian(N) + wind[0] * sp.kron(D, eye) + wind[1] * sp.kron(eye, D)).tocsr()


def helmholtz(N, k2):
    return (laplacian(N) - k2 * sp.identity(N * N)).tocsr()


def darcy_sequence(N, n_sys, seed=0, eps=0.03, scale=1.0):
    """Related SPD systems: a log-normal coefficient perturbed slightly from one to the next."""
    rng = np.random.default_rng(seed)
    g = smooth_field(N, rng)
    out = []
    for _ in range(n_sys):
        out.append(diffusion_matrix(np.exp(scale * g)))
        g = g + eps * smooth_field(N, rng)
    return out


def relerr(x, A, b):
    xs = spla.spsolve(A.tocsc(), np.asarray(b))
    return np.linalg.norm(np.asarray(x) - xs) / np.linalg.norm(xs)


def t64(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # these solves are small and latency-bound: intra-op threads only add contention on a busy box
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def seq():
    mats = darcy_sequence(20, 6)
    b = t64(np.random.default_rng(1).standard_normal(mats[0].shape[0]))
    return mats, b


# ---------------------------------------------------------------------------------------------
# GCRO-DR
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("precond", [False, True])
def test_k0_reproduces_gmres_exactly(seq, precond):
    mats, b = seq
    A = mats[0]
    M = sp.diags(1.0 / A.diagonal()) if precond else None
    B = torch.stack([b, torch.cos(torch.arange(b.numel(), dtype=torch.float64))])
    x0 = 0.01 * torch.ones_like(B)
    ref = solve(A, B, "gmres", x0=x0, restart=25, rtol=1e-9, M=M)
    res = recycled_solve(A, B, x0, method="gcrodr", m=25, k=0, rtol=1e-9, M=M)
    assert ref.all_converged and res.all_converged
    assert res.iterations.tolist() == ref.iterations.tolist()
    assert res.matvecs == ref.matvecs
    assert torch.allclose(res.x, ref.x, rtol=1e-12, atol=1e-12 * float(ref.x.abs().max()))
    assert torch.allclose(res.history(), ref.history(), rtol=1e-10, atol=0)


@pytest.mark.parametrize("selection", ["harmonic", "ritz"])
def test_recycling_cuts_matvecs_on_a_sequence(seq, selection):
    mats, b = seq
    space, mv, mv_gmres = None, [], []
    for A in mats:
        res = recycled_solve(A, b, method="gcrodr", m=30, k=10, selection=selection, rtol=1e-8,
                             recycle=space)
        assert res.all_converged and float(res.rel_residual) <= 1e-8
        assert relerr(res.x, A, b) < 1e-6
        space = res.recycle
        mv.append(res.matvecs)
        mv_gmres.append(solve(A, b, "gmres", restart=30, rtol=1e-8).matvecs)
    later = np.mean(mv[2:])
    assert later < 0.8 * mv[0], mv  # recycling across systems
    assert later < 0.5 * np.mean(mv_gmres), (mv, mv_gmres)  # and against GMRES(m) from scratch
    # the recycle space of the last system is an exact one: C = A U, C^T C = I
    U, C = space.U[0].numpy(), space.C[0].numpy()
    assert np.abs(C.T @ C - np.eye(C.shape[1])).max() < 1e-10
    assert np.abs(mats[-1] @ U - C).max() < 1e-8


def test_new_matrix_rebuilds_c_and_counts_matvecs(seq):
    mats, b = seq
    _, _, space = gcrodr(mats[0], b, m=20, k=8, rtol=1e-8)
    A2 = mats[0] + sp.diags(np.linspace(0, 400.0, mats[0].shape[0]))  # a clearly different matrix
    res = recycled_solve(A2, b, method="gcrodr", m=20, k=8, rtol=1e-8, recycle=space, maxiter=0)
    assert res.matvecs == 8 + 1  # k products to rebuild C, one final residual
    U, C = res.recycle.U[0].numpy(), res.recycle.C[0].numpy()
    assert np.abs(C.T @ C - np.eye(8)).max() < 1e-12
    assert np.abs(A2 @ U - C).max() < 1e-9 * np.abs(C).max()
    # the same matrix again (unchanged fingerprint): no rebuild
    res_same = recycled_solve(mats[0], b, method="gcrodr", m=20, k=8, recycle=space, maxiter=0)
    assert res_same.matvecs == 1
    assert torch.equal(res_same.recycle.C, space.C)
    # a black-box callable cannot be fingerprinted: rebuilt unless same_operator=True
    def f(X):
        return t64((mats[0] @ X.numpy().T).T)

    n = b.numel()
    assert recycled_solve(f, b, method="gcrodr", m=20, k=8, recycle=space, maxiter=0).matvecs == 9
    res_cb = recycled_solve(f, b, method="gcrodr", m=20, k=8, recycle=space, maxiter=0,
                            same_operator=True)
    assert res_cb.matvecs == 1 and n == space.U.shape[1]


def test_right_preconditioned_recycling(seq):
    mats, b = seq
    space, its = None, []
    for A in mats[:4]:
        M = sp.diags(1.0 / A.diagonal())
        res = recycled_solve(A, b, method="gcrodr", m=20, k=8, rtol=1e-10, M=M, recycle=space)
        space = res.recycle
        its.append(int(res.iterations))
        assert relerr(res.x, A, b) < 1e-8  # the true (unpreconditioned) residual is what is tested
    P, U, C = space.P[0].numpy(), space.U[0].numpy(), space.C[0].numpy()
    M = sp.diags(1.0 / mats[3].diagonal())
    assert np.abs(M @ U - P).max() < 1e-8 * np.abs(P).max()
    assert np.abs(mats[3] @ P - C).max() < 1e-8
    assert np.mean(its[1:]) < its[0]


@pytest.mark.parametrize(
    "A",
    [convection_diffusion(16), helmholtz(16, 200.0)],
    ids=["convection-diffusion", "helmholtz-indefinite"],
)
def test_agrees_with_spsolve_nonsymmetric_and_indefinite(A):
    if A.shape[0] == 256 and not (A - A.T).nnz:  # the Helmholtz case: check it is indefinite
        ev = np.linalg.eigvalsh(A.toarray())
        assert (ev < 0).sum() >= 3
    b = t64(np.random.default_rng(3).standard_normal(A.shape[0]))
    space = None
    for shift in (0.0, 1.0):
        Ai = (A + shift * sp.identity(A.shape[0])).tocsr()
        x, info, space = gcrodr(Ai, b, m=30, k=10, rtol=1e-11, recycle=space)
        assert info == 0
        assert relerr(x, Ai, b) < 1e-8


def test_complex_harmonic_ritz_pairs_are_not_split():
    # boundary rule on the selection itself
    theta = np.array([0.1, 0.2 + 0.3j, 0.2 - 0.3j, 0.5])
    vecs = np.eye(4, dtype=complex)
    vecs[:, 1] = [0, 1, 1j, 0]
    vecs[:, 2] = vecs[:, 1].conj()
    assert _select(theta, vecs, 2).shape == (4, 1)  # pair straddles k = 2: k - 1
    assert _select(theta, vecs, 3).shape == (4, 3)
    # end to end: rotation blocks give complex eigenvalues a +- ib; with odd k the pairs straddle
    n = 120
    rng = np.random.default_rng(5)
    a = np.linspace(0.05, 3.0, n // 2)
    blocks = [np.array([[ai, bi], [-bi, ai]]) for ai, bi in zip(a, rng.uniform(0.1, 1.0, n // 2))]
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ sp.block_diag(blocks).toarray() @ Q.T
    assert np.abs(np.linalg.eigvals(A).imag).min() > 0.05
    b = t64(rng.standard_normal(n))
    space = None
    for _ in range(2):
        res = recycled_solve(t64(A), b, method="gcrodr", m=16, k=5, rtol=1e-10, recycle=space)
        space = res.recycle
        assert res.all_converged
        assert np.linalg.norm(A @ res.x.numpy() - b.numpy()) <= 1.01e-10 * np.linalg.norm(b)
    assert int(space.rank[0]) == 4  # every harmonic Ritz value is complex: pairs, k - 1 = 4
    C, U = space.C[0, :, :4].numpy(), space.U[0, :, :4].numpy()
    assert np.abs(A @ U - C).max() < 1e-9


def test_batched_chains_equal_a_loop_of_single_chains():
    seqs = [darcy_sequence(10, 3, seed=s) for s in (0, 7)]
    n = seqs[0][0].shape[0]
    b = torch.stack([t64(np.ones(n)), t64(np.linspace(-1, 1, n))])
    spaces = [None, None]
    single = [[], []]
    for c in range(2):
        for A in seqs[c]:
            x, info, spaces[c] = gcrodr(t64(A.toarray()), b[c], m=15, k=5, rtol=1e-10,
                                        recycle=spaces[c])
            single[c].append(x)
    space = None
    for t in range(3):
        A = torch.stack([t64(seqs[0][t].toarray()), t64(seqs[1][t].toarray())])
        res = recycled_solve(A, b, method="gcrodr", m=15, k=5, rtol=1e-10, recycle=space)
        space = res.recycle
        assert res.all_converged
        for c in range(2):
            assert torch.allclose(res.x[c], single[c][t], rtol=1e-8, atol=1e-10)
    assert tuple(space.U.shape) == (2, n, 5)
    assert torch.allclose(space.C[1].abs(), spaces[1].C[0].abs(), atol=1e-6)


def test_inputs_are_not_mutated(seq):
    mats, b = seq
    x0 = 0.1 * torch.ones_like(b)
    b_copy, x0_copy = b.clone(), x0.clone()
    _, _, space = gcrodr(mats[0], b, x0, m=20, k=6, rtol=1e-8)
    U_copy, C_copy = space.U.clone(), space.C.clone()
    _, _, space2 = gcrodr(mats[1], b, x0, m=20, k=6, rtol=1e-8, recycle=space)
    _, _, rspace = rcg(mats[0], b, x0, k=4, rtol=1e-8)
    rcg(mats[1], b, x0, k=4, rtol=1e-8, recycle=rspace)
    assert torch.equal(b, b_copy) and torch.equal(x0, x0_copy)
    assert torch.equal(space.U, U_copy) and torch.equal(space.C, C_copy)
    assert space2 is not space and isinstance(space2, RecycleSpace)


def test_float32_converges_and_keeps_dtype(seq):
    mats, b = seq
    b32 = b.float()
    space = None
    for A in mats[:3]:
        res = recycled_solve(A, b32, method="gcrodr", m=20, k=6, rtol=1e-5, recycle=space)
        space = res.recycle
        assert res.x.dtype == torch.float32 and space.U.dtype == torch.float32
        assert res.all_converged and relerr(res.x.double(), A, b) < 1e-3


def test_nonconvergence_is_reported_and_strict_raises(seq):
    mats, b = seq
    x, info, space = gcrodr(mats[0], b, m=20, k=6, rtol=1e-12, maxiter=25)
    assert info == 25 and isinstance(space, RecycleSpace)
    res = recycled_solve(mats[0], b, method="gcrodr", m=20, k=6, rtol=1e-12, maxiter=25)
    assert not res.all_converged and float(res.rel_residual) > 1e-12
    with pytest.raises(NotConvergedError) as err:
        gcrodr(mats[0], b, m=20, k=6, rtol=1e-12, maxiter=25, strict=True)
    assert err.value.result is not None and err.value.result.recycle is not None
    with pytest.raises(NotConvergedError):
        rcg(mats[0], b, k=4, rtol=1e-12, maxiter=5, strict=True)


def test_bad_input_raises_one_line_value_error(seq):
    mats, b = seq
    A = mats[0]
    for kwargs in ({"m": 10, "k": 10}, {"m": 10, "k": -1}, {"m": 0, "k": 0}):
        with pytest.raises(ValueError, match="k|m"):
            gcrodr(A, b, **kwargs)
    with pytest.raises(ValueError, match="shape"):
        gcrodr(A, b[:-1])
    bad = b.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        gcrodr(A, bad)
    _, _, rspace = rcg(A, b, k=3, maxiter=5)
    with pytest.raises(ValueError, match="rcg"):
        gcrodr(A, b, recycle=rspace)
    _, _, gspace = gcrodr(A, b, m=10, k=3, maxiter=5)
    with pytest.raises(ValueError, match="shape"):
        gcrodr(A, torch.stack([b, b]), m=10, k=3, recycle=gspace)
    with pytest.raises(ValueError, match="selection"):
        gcrodr(A, b, selection="largest")


# ---------------------------------------------------------------------------------------------
# deflated CG
# ---------------------------------------------------------------------------------------------


def test_rcg_k0_is_pcg(seq):
    mats, b = seq
    ref = solve(mats[0], b, "cg", rtol=1e-9)
    res = recycled_solve(mats[0], b, method="rcg", k=0, rtol=1e-9)
    assert res.iterations.tolist() == ref.iterations.tolist()
    assert torch.allclose(res.x, ref.x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("precond", [False, True])
def test_rcg_later_systems_need_fewer_iterations_than_cg(seq, precond):
    mats, b = seq
    space, its, its_cg = None, [], []
    for A in mats:
        M = sp.diags(1.0 / A.diagonal()) if precond else None
        res = recycled_solve(A, b, method="rcg", k=8, rtol=1e-9, M=M, recycle=space)
        space = res.recycle
        assert res.all_converged and relerr(res.x, A, b) < 1e-7
        its.append(int(res.iterations))
        its_cg.append(int(solve(A, b, "cg", rtol=1e-9, M=M).iterations))
    assert its[0] == its_cg[0]  # nothing to deflate on the first system
    assert np.mean(its[2:]) < 0.85 * np.mean(its_cg[2:]), (its, its_cg)
    W, AW = space.U[0].numpy(), space.C[0].numpy()
    assert np.abs(W.T @ AW - np.eye(W.shape[1])).max() < 1e-8  # A-orthonormal deflation basis


def test_rcg_batched_equals_loop_and_detects_non_spd():
    seqs = [darcy_sequence(8, 3, seed=s) for s in (1, 2)]
    n = seqs[0][0].shape[0]
    b = torch.stack([t64(np.ones(n)), t64(np.sin(np.arange(n)))])
    spaces, single = [None, None], [[], []]
    for c in range(2):
        for A in seqs[c]:
            x, _, spaces[c] = rcg(t64(A.toarray()), b[c], k=4, rtol=1e-10, recycle=spaces[c])
            single[c].append(x)
    space = None
    for t in range(3):
        A = torch.stack([t64(seqs[0][t].toarray()), t64(seqs[1][t].toarray())])
        x, info, space = rcg(A, b, k=4, rtol=1e-10, recycle=space)
        assert info == 0
        for c in range(2):
            assert torch.allclose(x[c], single[c][t], rtol=1e-8, atol=1e-10)
    with pytest.raises(BreakdownError):
        rcg(helmholtz(8, 300.0), t64(np.ones(64)), k=2, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# development check: the SKR headline (slow)
# ---------------------------------------------------------------------------------------------


def gaussian_random_field(N, rng, alpha=2.5, tau=7.0):
    """Smooth GRF on an N x N node grid (cosine series, spectrum (pi^2 |k|^2 + tau^2)^(-alpha/2)),
    normalised to pointwise standard deviation 1 (the SKR/FNO Darcy generator, rescaled)."""
    from scipy.fft import idctn

    k = np.arange(N)
    K1, K2 = np.meshgrid(k, k, indexing="ij")
    lam = (np.pi**2 * (K1**2 + K2**2) + tau**2) ** (-alpha / 2)
    lam[0, 0] = 0.0
    g = idctn(rng.standard_normal((N, N)) * lam, norm="ortho")
    return (g - g.mean()) / g.std()


@pytest.mark.slow
def test_skr_headline_darcy_100x100():
    """GCRO-DR(40, 20) over a sorted Darcy sequence vs GMRES(40) and scipy's gcrotmk(40, 20)."""
    from pdekit.core.ordering import order_samples

    rng = np.random.default_rng(1)
    N, pool, n_sys = 100, 60, 6
    fields = np.stack([gaussian_random_field(N + 2, rng) for _ in range(pool)])
    perm = order_samples(torch.from_numpy(fields), "greedy").numpy()[:n_sys]
    mats = [diffusion_matrix(np.exp(fields[i])) for i in perm]
    b = np.ones(mats[0].shape[0])
    space, mv_gcrodr, t0 = None, [], time.perf_counter()
    for A in mats:
        res = recycled_solve(A, t64(b), method="gcrodr", m=40, k=20, selection="ritz", rtol=1e-8,
                             recycle=space, maxiter=20000)
        assert res.all_converged
        space = res.recycle
        mv_gcrodr.append(res.matvecs)
    t_gcrodr = (time.perf_counter() - t0) / n_sys
    CU, mv_gcrot = [], []
    for A in mats:
        count = [0]

        def mv(v, A=A, count=count):
            count[0] += 1
            return A @ v

        op = spla.LinearOperator(A.shape, matvec=mv, dtype=float)
        _, info = spla.gcrotmk(op, b, rtol=1e-8, atol=0, m=40, k=20, CU=CU, discard_C=True)
        assert info == 0
        mv_gcrot.append(count[0])
    its_gmres = [int(solve(A, t64(b), "gmres", restart=40, rtol=1e-8, maxiter=10000).iterations)
                 for A in mats[:2]]
    print(f"GCRO-DR {mv_gcrodr} ({t_gcrodr:.2f} s/system), gcrotmk {mv_gcrot}, GMRES {its_gmres}")
    assert np.mean(its_gmres) >= 5 * np.mean(mv_gcrodr)
    assert np.mean(mv_gcrodr) <= np.mean(mv_gcrot)


# ---------------------------------------------------------------------------------------------
# cheap and adaptive recycling
# ---------------------------------------------------------------------------------------------


class _CountingOperator:
    """A shared operator (acts on any batch) that records the batch size of every call."""

    batch = 1

    def __init__(self, A):
        self.A, self.shape, self.calls = A, A.shape, []

    def as_linear_operator(self):
        from pdekit.core.linop import LinearOperator

        def mv(X):
            self.calls.append(X.shape[0])
            return t64((self.A @ X.numpy().T).T)

        return LinearOperator(self.shape, mv, symmetric=True)


@pytest.mark.parametrize("method", ["gcrodr", "rcg"])
def test_rebuild_of_c_is_one_batched_application(seq, method):
    mats, b = seq
    opts = {"m": 20, "k": 8} if method == "gcrodr" else {"k": 8}
    first = recycled_solve(mats[0], b, method=method, rtol=1e-8, adapt=False, **opts)
    op = _CountingOperator(mats[1])
    res = recycled_solve(op, b, method=method, rtol=1e-8, recycle=first.recycle, maxiter=0,
                         adapt=False, **opts)
    k = int(first.recycle.rank[0])
    assert op.calls[0] == k and res.matvecs == k + len(op.calls) - 1  # k columns, one call
    U, C = res.recycle.U[0].numpy(), res.recycle.C[0].numpy()
    if method == "gcrodr":
        assert np.abs(C.T @ C - np.eye(C.shape[1])).max() < 1e-12
    else:
        assert np.abs(U.T @ C - np.eye(U.shape[1])).max() < 1e-9  # A-orthonormal W
    assert np.abs(mats[1] @ U - C).max() < 1e-9 * np.abs(C).max()


def test_adaptive_rcg_switches_off_under_a_strong_preconditioner(seq):
    mats, b = seq
    space, log = None, []
    for A in mats[:4]:
        lu = spla.splu(A.tocsc())
        M = lambda X, lu=lu: t64(lu.solve(X.numpy().T).T)  # noqa: E731 (exact: 1-2 iterations)
        res = recycled_solve(A, b, method="rcg", k=8, rtol=1e-9, M=M, recycle=space)
        ref = solve(A, b, "cg", rtol=1e-9, M=M)
        space = res.recycle
        log.append((int(res.iterations), res.matvecs, int(ref.iterations), ref.matvecs))
        assert res.all_converged and relerr(res.x, A, b) < 1e-8
    assert not space.recycling_active and space.k == 0 and space.reason.startswith("off")
    assert space.stats.k_used == 0
    for its, mv, its_ref, mv_ref in log[1:]:  # recycling off from the second system: plain PCG
        assert (its, mv) == (its_ref, mv_ref), log
    # without the rule the same sequence keeps recycling (and pays k matvecs per system)
    space = None
    for A in mats[:3]:
        lu = spla.splu(A.tocsc())
        M = lambda X, lu=lu: t64(lu.solve(X.numpy().T).T)  # noqa: E731
        space = recycled_solve(A, b, method="rcg", k=8, rtol=1e-9, M=M, recycle=space,
                               adapt=False).recycle
    assert space.recycling_active and space.k == 8 and space.stats is None


def _slow(A, seconds=1e-3):
    """``A`` as a black-box callable whose cost is dominated by a fixed delay per matvec."""

    def mv(X):
        time.sleep(seconds)
        return t64((A @ X.numpy().T).T)

    return mv


@pytest.mark.parametrize("method", ["rcg", "gcrodr"])
def test_adaptive_recycling_stays_on_when_it_pays(seq, method):
    mats, b = seq
    opts = {"m": 30, "k": 10, "adapt": True} if method == "gcrodr" else {"k": 8}
    plain_method, plain_opts = ("gmres", {"restart": 30}) if method == "gcrodr" else ("cg", {})
    space, mv, mv_plain = None, [], []
    for A in mats[:5]:
        res = recycled_solve(_slow(A), b, method=method, rtol=1e-8, recycle=space, **opts)
        space = res.recycle
        mv.append(res.matvecs)
        mv_plain.append(solve(A, b, plain_method, rtol=1e-8, **plain_opts).matvecs)
        assert res.all_converged and relerr(res.x, A, b) < 1e-6
    assert space.recycling_active and space.k == opts["k"], space.reason
    assert space.reason.startswith("recycling") and space.stats.plain_iterations > 0
    assert sum(mv[1:]) < 0.9 * sum(mv_plain[1:]), (mv, mv_plain)


def test_adaptive_gcrodr_off_reproduces_gmres(seq):
    mats, b = seq
    space = None
    for A in mats[:4]:
        lu = spla.splu(A.tocsc())
        M = lambda X, lu=lu: t64(lu.solve(X.numpy().T).T)  # noqa: E731
        res = recycled_solve(A, b, method="gcrodr", m=20, k=8, rtol=1e-9, M=M, recycle=space,
                             adapt=True)
        space = res.recycle
    ref = solve(mats[3], b, "gmres", restart=20, rtol=1e-9, M=M)
    assert not space.recycling_active and space.k == 0
    assert res.iterations.tolist() == ref.iterations.tolist() and res.matvecs == ref.matvecs
    assert torch.allclose(res.x, ref.x, rtol=1e-12, atol=0)
