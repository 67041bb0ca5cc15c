"""Strong-form PINN through deepxde: a tiny Poisson 1D problem trains to a small error."""

import numpy as np
import pytest
import torch

from pdekit.pinn import relative_l2_error
from pdekit.pinn.networks import import_deepxde, make_net
from pdekit.pinn.strong import grid_update_callback, strong_form_model, train

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_strong_form_poisson_1d_kan_with_grid_updates():
    dde = import_deepxde()
    dde.config.set_random_seed(0)

    def pde(x, u):  # -u'' = pi^2 sin(pi x) on [-1, 1], u(+-1) = 0; exact u = sin(pi x)
        return -dde.grad.hessian(u, x) - np.pi**2 * torch.sin(np.pi * x)

    net = make_net("kan_bspline", [1, 5, 1], input_range=(-1.0, 1.0), grid_size=5)
    net.apply_output_transform(lambda x, u: (1 - x**2) * u)
    model = strong_form_model(dde.geometry.Interval(-1, 1), pde, [], net, n_domain=32,
                              solution=lambda x: np.sin(np.pi * x))
    x = np.linspace(-1, 1, 201)[:, None].astype(np.float32)
    model.compile("adam", lr=1e-3)
    err0 = relative_l2_error(model.predict(x), np.sin(np.pi * x))
    cb = grid_update_callback(net.module, every=100, stop_after=200)
    _, state = train(model, iterations=300, lr=1e-2, callbacks=[cb])
    err = relative_l2_error(model.predict(x), np.sin(np.pi * x))
    assert err0 > 0.5
    assert err < 1e-2
    assert state.metrics_test[0] < 1e-2  # deepxde's own metric agrees
    knots = net.module.layers[0].knots[0]
    assert knots[3] > -1.0 and knots[-4] < 1.0  # grid moved to the (mapped) collocation points


def test_space_time_geometry_builds_time_pde():
    dde = import_deepxde()
    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(0, 1), dde.geometry.TimeDomain(0, 1))
    net = make_net("mlp", [2, 4, 1])
    model = strong_form_model(geom, lambda x, u: u, [], net, n_domain=10, n_initial=5)
    assert isinstance(model.data, dde.data.TimePDE)
    with pytest.raises(ValueError, match="space-time"):
        strong_form_model(dde.geometry.Interval(0, 1), lambda x, u: u, [], net, n_domain=4,
                          n_initial=3)
