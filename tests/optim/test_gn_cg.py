import pytest
import torch

import pdekit.core.krylov as krylov
from pdekit.optim import Damping, GaussNewton, GaussNewtonCG, functional_residual

F64 = torch.float64


@pytest.fixture
def counted_cg(monkeypatch):
    """Replace pdekit.core.krylov.cg by a wrapper that counts calls and iterations."""
    calls = {"n": 0, "its": 0}
    original = krylov.cg

    def wrapper(A, b, x0=None, **kw):
        calls["n"] += 1
        user_cb = kw.pop("callback", None)

        def cb(x):
            calls["its"] += 1
            if user_cb is not None:
                user_cb(x)

        return original(A, b, x0, callback=cb, **kw)

    monkeypatch.setattr(krylov, "cg", wrapper)
    return calls


def test_inner_solves_use_pdekit_cg(counted_cg):
    g = torch.Generator().manual_seed(0)
    A = torch.randn(30, 5, generator=g, dtype=F64)
    y = torch.randn(30, generator=g, dtype=F64)
    x = torch.zeros(5, dtype=F64, requires_grad=True)
    opt = GaussNewtonCG([x], damping=1e-12, cg_rtol=1e-12, line_search="none")
    opt.step(lambda: A @ x - y)
    assert counted_cg["n"] == 1
    assert counted_cg["its"] == opt.last_step.inner_iterations >= 1
    # one undamped step with an accurate inner solve solves the linear least-squares problem
    torch.testing.assert_close(x.detach(), torch.linalg.lstsq(A, y).solution, rtol=1e-8,
                               atol=1e-8)


def test_direction_matches_dense_gauss_newton():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))
    net = net.double()
    x = torch.randn(40, 2, dtype=F64)
    y = torch.sin(x.sum(1, keepdim=True))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    results = []
    for opt_cls, kw in ((GaussNewton, {}), (GaussNewtonCG, dict(cg_rtol=1e-13, cg_maxiter=500))):
        net.load_state_dict(state)
        opt = opt_cls(net.parameters(), damping=Damping(1e-3, adaptive=False), line_search="none",
                      **kw)
        opt.step(lambda: (net(x) - y).flatten())
        results.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-7, atol=1e-9)


def test_functional_closure_gives_the_same_step():
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    net = net.double()
    x = torch.randn(16, 3, dtype=F64)
    y = torch.randn(16, 2, dtype=F64)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    closures = [lambda: (net(x) - y).flatten(), functional_residual(net, lambda m: m(x) - y)]
    out = []
    for closure in closures:
        net.load_state_dict(state)
        opt = GaussNewtonCG(net.parameters(), cg_rtol=1e-10, cg_maxiter=200)
        for _ in range(3):
            opt.step(closure)
        out.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    torch.testing.assert_close(out[0], out[1], rtol=1e-6, atol=1e-8)


class _ComplexModel(torch.nn.Module):
    """A spectral layer with a complex weight, as in an FNO."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.w = torch.nn.Parameter(0.1 * torch.randn(6, dtype=torch.complex64))
        self.b = torch.nn.Parameter(torch.zeros(1))

    def forward(self, u):
        U = torch.fft.rfft(u)
        U = torch.cat([U[:, :6] * self.w, torch.zeros_like(U[:, 6:])], dim=1)
        return torch.fft.irfft(U, n=u.shape[-1]) + self.b


def test_float32_complex_parameters_train():
    model = _ComplexModel()
    target = _ComplexModel()
    with torch.no_grad():
        target.w.copy_(torch.tensor([1, 0.5j, -0.3, 0.2, 0.1j, 0.05], dtype=torch.complex64))
        target.b.fill_(0.3)
    u = torch.randn(8, 32)
    y = target(u).detach()
    opt = GaussNewtonCG(model.parameters())
    first = float(opt.step(lambda: (model(u) - y).flatten()))
    for _ in range(15):
        loss = float(opt.step(lambda: (model(u) - y).flatten()))
    assert model.w.dtype == torch.complex64
    assert loss < 1e-6 * first
