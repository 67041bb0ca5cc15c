"""Inverse form: a trainable deepxde Variable recovers a known coefficient."""

import numpy as np
import pytest
import torch

from pdekit.pinn.inverse import Coefficients, fit_coefficients, inverse_model
from pdekit.pinn.networks import import_deepxde, make_net

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_inverse_recovers_diffusivity():
    dde = import_deepxde()
    dde.config.set_random_seed(0)
    kappa_true = 0.5
    coeffs = Coefficients({"kappa": 1.0}, positive=["kappa"])

    def pde(x, u, c):  # -kappa u'' = f with f made by kappa_true and u = sin(pi x)
        return -c["kappa"] * dde.grad.hessian(u, x) - kappa_true * np.pi**2 * torch.sin(np.pi * x)

    x_obs = np.linspace(0, 1, 9)[:, None]
    net = make_net("kan_bspline", [1, 5, 1], input_range=(0.0, 1.0))
    net.apply_output_transform(lambda x, u: x * (1 - x) * u)
    model = inverse_model(dde.geometry.Interval(0, 1), pde, [], net, coeffs,
                          observe_x=x_obs, observe_u=np.sin(np.pi * x_obs), n_domain=32)
    result = fit_coefficients(model, coeffs, iterations=300, lr=1e-2, loss_weights=[1, 100])
    assert abs(result.coefficients["kappa"] - kappa_true) < 0.02
    assert coeffs.values() == result.coefficients


def test_positive_coefficients_validate():
    with pytest.raises(ValueError, match="positive"):
        Coefficients({"a": -1.0}, positive=["a"])
    with pytest.raises(ValueError, match="not among"):
        Coefficients({"a": 1.0}, positive=["b"])
