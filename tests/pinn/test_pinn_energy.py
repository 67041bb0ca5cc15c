"""Energy form (Deep Ritz): quadrature of the functional, convergence on Poisson 1D and 2D."""

import numpy as np
import pytest
import torch

from pdekit.pinn import relative_l2_error
from pdekit.pinn.energy import BoundaryTerm, energy_data, energy_model
from pdekit.pinn.networks import deepxde_net, import_deepxde, make_net
from pdekit.pinn.strong import train

PI = np.pi


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _psi_1d(x, u, du):
    return 0.5 * du[:, 0, 0] ** 2 - PI**2 * torch.sin(PI * x[:, 0]) * u[:, 0]


class _Exact(torch.nn.Module):
    def forward(self, x):
        return torch.sin(PI * x)


def test_energy_of_exact_solution_and_boundary_term():
    dde = import_deepxde()
    geom = dde.geometry.Interval(0, 1)
    # Pi[u*] = -1/2 int f u* = -pi^2 / 4; the boundary term at x = 1 is -2 (u(1) + 1) = -2.
    term = BoundaryTerm(lambda x, u: -2.0 * (u[:, 0] + 1.0), lambda x: np.isclose(x[:, 0], 1.0), 1.0)
    data = energy_data(geom, _psi_1d, n_domain=2000, boundary_terms=[term], n_boundary=2)
    x, y = data.test()
    assert y is None and len(x) == 2001
    x = torch.as_tensor(x).requires_grad_()
    losses = data.losses_test(None, deepxde_net(_Exact())(x), None, x, None)
    domain, boundary = (float(v.detach()) for v in losses)
    assert abs(domain - (-PI**2 / 4)) < 2e-3
    assert abs(boundary - (-2.0)) < 1e-5  # u(1) = 0


def test_energy_form_poisson_1d_converges():
    dde = import_deepxde()
    dde.config.set_random_seed(0)
    net = make_net("kan_bspline", [1, 5, 1], input_range=(0.0, 1.0))
    model = energy_model(dde.geometry.Interval(0, 1), _psi_1d, net, distance=lambda x: x * (1 - x),
                         n_domain=128)
    x = np.linspace(0, 1, 101)[:, None].astype(np.float32)
    _, state = train(model, iterations=400, lr=1e-2)
    assert relative_l2_error(model.predict(x), np.sin(PI * x)) < 3e-2
    assert abs(float(np.sum(state.loss_train)) + PI**2 / 4) < 0.05  # energy near its minimum


def test_energy_form_poisson_2d_converges():
    dde = import_deepxde()
    dde.config.set_random_seed(0)

    def exact(x):
        return np.sin(PI * x[:, :1]) * np.sin(PI * x[:, 1:])

    def psi(x, u, du):
        f = 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])
        return 0.5 * (du[:, 0, :] ** 2).sum(-1) - f * u[:, 0]

    def distance(x):
        return x[:, :1] * (1 - x[:, :1]) * x[:, 1:] * (1 - x[:, 1:])

    net = make_net("kan_bspline", [2, 5, 1], input_range=(0.0, 1.0))
    model = energy_model(dde.geometry.Rectangle([0, 0], [1, 1]), psi, net, distance=distance,
                         n_domain=256, solution=exact)
    x = np.random.default_rng(0).random((1000, 2)).astype(np.float32)
    err0 = relative_l2_error(net(torch.from_numpy(x)).detach().numpy(), exact(x))
    train(model, iterations=300, lr=1e-2)
    err = relative_l2_error(model.predict(x), exact(x))
    assert err0 > 0.9
    assert err < 5e-2
