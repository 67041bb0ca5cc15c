import math

import pytest
import torch

from pdekit.optim import (
    Damping,
    GaussNewton,
    Linearization,
    ParamVector,
    gauss_newton_direction,
    pointwise_residual,
)

F64 = torch.float64


@pytest.mark.parametrize("n, p", [(40, 6), (6, 40)])
def test_linear_least_squares_in_one_undamped_step(n, p):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(n, p, generator=g, dtype=F64)
    y = torch.randn(n, generator=g, dtype=F64)
    x = torch.randn(p, generator=g, dtype=F64).requires_grad_(True)
    x0 = x.detach().clone()
    opt = GaussNewton([x], damping=Damping(0.0, adaptive=False), line_search="none")
    opt.step(lambda: A @ x - y)
    assert opt.last_step.accepted
    # over-determined: the least-squares solution; under-determined: the solution nearest x0
    expected = x0 + torch.linalg.pinv(A) @ (y - A @ x0)
    torch.testing.assert_close(x.detach(), expected, rtol=1e-9, atol=1e-9)
    if n > p:
        torch.testing.assert_close(x.detach(), torch.linalg.lstsq(A, y).solution)


@pytest.mark.parametrize("n, p", [(7, 25), (25, 7), (10, 10)])
@pytest.mark.parametrize("damping", [1e-6, 1e-2, 3.0])
def test_woodbury_solve_equals_parameter_space_solve(n, p, damping):
    g = torch.Generator().manual_seed(n * p)
    J = torch.randn(n, p, generator=g, dtype=F64)
    r = torch.randn(n, generator=g, dtype=F64)
    d_res = gauss_newton_direction(J, r, damping, space="residual")
    d_par = gauss_newton_direction(J, r, damping, space="parameter")
    dense = -torch.linalg.solve(J.T @ J + damping * torch.eye(p, dtype=F64), J.T @ r)
    torch.testing.assert_close(d_res, dense, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(d_par, dense, rtol=1e-7, atol=1e-9)


def _exp_fit():
    """A nonlinear least-squares problem: fit y = a exp(b t)."""
    t = torch.linspace(0, 2, 30, dtype=F64)
    y = 2.0 * torch.exp(-1.3 * t)
    w = torch.tensor([0.5, 0.5], dtype=F64, requires_grad=True)
    return w, (lambda: w[0] * torch.exp(w[1] * t) - y)


def test_rejected_step_never_increases_the_loss():
    w, closure = _exp_fit()
    # a far too long fixed step: GN with alpha = 50 overshoots, so steps get rejected
    opt = GaussNewton([w], lr=50.0, damping=Damping(1e-8, increase=10.0), line_search="none")
    rejected = 0
    for _ in range(30):
        before = w.detach().clone()
        loss = float(opt.step(closure))
        info = opt.last_step
        after = 0.5 * float(closure().detach().square().sum())
        assert after <= loss
        assert info.new_loss == pytest.approx(after, rel=1e-12, abs=1e-300)
        if not info.accepted:
            rejected += 1
            assert torch.equal(w.detach(), before)
    assert rejected > 0
    # the damping grew after the rejections until steps were accepted
    assert 0.5 * float(closure().detach().square().sum()) < 1e-3


@pytest.mark.parametrize("line_search", ["armijo", "grid"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_nonlinear_fit_converges(line_search, momentum):
    w, closure = _exp_fit()
    opt = GaussNewton([w], line_search=line_search, momentum=momentum)
    for _ in range(60):
        opt.step(closure)
    torch.testing.assert_close(w.detach(), torch.tensor([2.0, -1.3], dtype=F64), atol=1e-6,
                               rtol=0)


def _mlp(dtype, width=8):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, 1)).to(dtype)


def test_float32_runs_and_decreases_the_loss():
    net = _mlp(torch.float32)
    x = torch.linspace(-1, 1, 64)[:, None]
    y = torch.sin(3 * x)
    opt = GaussNewton(net.parameters())
    first = float(opt.step(lambda: (net(x) - y).flatten()))
    for _ in range(30):
        loss = float(opt.step(lambda: (net(x) - y).flatten()))
    assert next(net.parameters()).dtype == torch.float32
    assert loss < 1e-2 * first


def test_mini_batches_lower_the_full_loss():
    net = _mlp(F64, width=16)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(256, 1, generator=g, dtype=F64) * 2 - 1
    y = torch.sin(3 * x)
    full = lambda: (net(x) - y).flatten()  # noqa: E731
    start = 0.5 * float(full().detach().square().sum())
    opt = GaussNewton(net.parameters(), damping=1e-2)
    for _epoch in range(3):
        for idx in torch.randperm(256, generator=g).split(32):
            xb, yb = x[idx], y[idx]
            opt.step(lambda xb=xb, yb=yb: (net(xb) - yb).flatten())
    assert 0.5 * float(full().detach().square().sum()) < 1e-2 * start


def _poisson_1d():
    net = _mlp(F64, width=12)
    xs = torch.linspace(0, 1, 24, dtype=F64)[:, None]
    xb = torch.tensor([[0.0], [1.0]], dtype=F64)

    def pde(model, x):
        u_xx = torch.func.hessian(lambda z: model(z)[0])(x)[0, 0]
        return -u_xx - math.pi**2 * torch.sin(math.pi * x[0])

    def bc(model, x):
        return model(x)[0]

    def autograd_closure():
        x = xs.clone().requires_grad_(True)
        u = net(x)
        du = torch.autograd.grad(u.sum(), x, create_graph=True)[0]
        d2u = torch.autograd.grad(du.sum(), x, create_graph=True)[0]
        r = -d2u[:, 0] - math.pi**2 * torch.sin(math.pi * xs[:, 0])
        return torch.cat([r / math.sqrt(24), net(xb)[:, 0] / math.sqrt(2)])

    return net, pointwise_residual(net, (pde, xs), (bc, xb)), autograd_closure


def test_pointwise_residual_matches_an_autograd_closure():
    net, pointwise, plain = _poisson_1d()
    pv = ParamVector(net.parameters())
    a, b = Linearization(pointwise, pv), Linearization(plain, pv)
    torch.testing.assert_close(a.r, b.r)
    torch.testing.assert_close(a.jacobian(), b.jacobian())
    V = torch.randn(3, pv.p, dtype=F64)
    torch.testing.assert_close(a.jvp(V), b.jvp(V))
    W = torch.randn(3, a.n, dtype=F64)
    torch.testing.assert_close(a.vjp(W), b.vjp(W))


def test_engd_on_a_1d_pinn_reaches_high_accuracy():
    net, closure, _ = _poisson_1d()
    opt = GaussNewton(net.parameters())
    for _ in range(60):
        opt.step(closure)
    x = torch.linspace(0, 1, 101, dtype=F64)[:, None]
    with torch.no_grad():
        u, ref = net(x)[:, 0], torch.sin(math.pi * x[:, 0])
    assert float((u - ref).norm() / ref.norm()) < 1e-4


def test_closure_that_does_not_depend_on_the_parameters_is_an_error():
    w = torch.zeros(2, requires_grad=True)
    opt = GaussNewton([w])
    with pytest.raises(ValueError, match="does not depend"):
        opt.step(lambda: torch.ones(3))


def test_state_dict_round_trip_keeps_the_damping():
    w, closure = _exp_fit()
    opt = GaussNewton([w], damping=0.5)
    opt.step(closure)
    lam = opt.state[w]["damping"]
    opt2 = GaussNewton([w], damping=0.5)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.state[w]["damping"] == lam != 0.5


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_gauss_newton_on_cuda(dtype):
    net = _mlp(dtype).cuda()
    x = torch.linspace(-1, 1, 64, device="cuda", dtype=dtype)[:, None]
    y = torch.sin(3 * x)
    opt = GaussNewton(net.parameters())
    first = float(opt.step(lambda: (net(x) - y).flatten()))
    for _ in range(30):
        loss = float(opt.step(lambda: (net(x) - y).flatten()))
    assert next(net.parameters()).device.type == "cuda"
    assert loss < 1e-2 * first
