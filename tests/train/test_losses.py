"""Relative L2 / H1 losses against hand computations with numpy."""

import numpy as np
import pytest
import torch

from pdekit.train.losses import (
    RelativeH1Loss,
    RelativeL2Loss,
    get_loss,
    relative_h1,
    relative_l2,
    relative_residual,
)


def _fd_grad_sq(u: np.ndarray, h: tuple[float, float]) -> float:
    """sum |grad u|^2 with hand-written differences: central inside, one-sided at the ends."""
    total = 0.0
    for axis, hx in enumerate(h):
        v = np.moveaxis(u, axis, 0)
        g = np.empty_like(v)
        g[1:-1] = (v[2:] - v[:-2]) / (2 * hx)
        g[0] = (v[1] - v[0]) / hx
        g[-1] = (v[-1] - v[-2]) / hx
        total += float((g**2).sum())
    return total


def test_relative_l2_matches_hand_computation():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((3, 2, 5, 6))
    target = rng.standard_normal((3, 2, 5, 6))
    want = [np.sqrt(((pred[i] - target[i]) ** 2).sum()) / np.sqrt((target[i] ** 2).sum())
            for i in range(3)]
    got = relative_l2(torch.from_numpy(pred), torch.from_numpy(target), reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    assert float(relative_l2(torch.from_numpy(pred), torch.from_numpy(target))) == pytest.approx(
        np.mean(want), rel=1e-10)
    assert float(RelativeL2Loss(reduction="sum")(torch.from_numpy(pred), torch.from_numpy(target))
                 ) == pytest.approx(np.sum(want), rel=1e-10)


def test_relative_h1_matches_hand_finite_differences():
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((2, 1, 7, 5))
    target = rng.standard_normal((2, 1, 7, 5))
    h = (1 / 6, 1 / 4)  # node grids of 7 and 5 nodes on [0, 1]
    want = []
    for i in range(2):
        e, v = pred[i, 0] - target[i, 0], target[i, 0]
        num = (e**2).sum() + _fd_grad_sq(e, h)
        den = (v**2).sum() + _fd_grad_sq(v, h)
        want.append(np.sqrt(num) / np.sqrt(den))
    got = relative_h1(torch.from_numpy(pred), torch.from_numpy(target), reduction="none")
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10)
    loss = RelativeH1Loss()
    assert float(loss(torch.from_numpy(pred), torch.from_numpy(target))) == pytest.approx(
        np.mean(want), rel=1e-10)


def test_h1_sees_gradients_that_l2_misses():
    # A high-frequency perturbation: small in L2 relative terms, large in H1.
    x = torch.linspace(0, 1, 129, dtype=torch.float64)
    v = torch.sin(torch.pi * x)[None, None]
    u = v + 0.01 * torch.sin(40 * torch.pi * x)[None, None]
    l2, h1 = float(relative_l2(u, v)), float(relative_h1(u, v))
    assert l2 == pytest.approx(0.01, rel=0.05)
    assert h1 > 10 * l2


def test_losses_reject_bad_shapes_and_names():
    with pytest.raises(ValueError, match="does not match"):
        relative_l2(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="does not match"):
        relative_h1(torch.zeros(2, 1, 4), torch.zeros(2, 1, 5))
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("l1")


def test_relative_residual_gives_half_the_mean_squared_relative_error():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4, 2, 6, 6, generator=g)
    pred = y + 0.1 * torch.randn(4, 2, 6, 6, generator=g)
    rel = (pred - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)
    r = relative_residual(pred, y)
    torch.testing.assert_close(0.5 * r.square().sum(), 0.5 * rel.square().mean())
