import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.inverse import (
    BoundaryObservation,
    GaussianNoise,
    Observations,
    PointObservation,
    SubsampledObservation,
    random_points,
)


def _operators(g):
    gen = torch.Generator().manual_seed(0)
    return [
        PointObservation(g, random_points(20, generator=gen)),
        SubsampledObservation(g, 3),
        SubsampledObservation(g, 2, include_boundary=True),
        BoundaryObservation(g, 0),
        BoundaryObservation(g, 1),
    ]


@pytest.mark.parametrize("shape", [(11, 13), (9,)])
def test_adjointness(shape):
    g = Grid(shape)
    gen = torch.Generator().manual_seed(1)
    for O in (
        _operators(g)
        if len(shape) == 2
        else [PointObservation(g, torch.rand(7, 1, generator=gen, dtype=torch.float64))]
    ):
        x = torch.randn(3, *shape, dtype=torch.float64, generator=gen)
        y = torch.randn(3, O.n_obs, dtype=torch.float64, generator=gen)
        lhs = (O(x) * y).sum()
        rhs = (x * O.adjoint(y)).sum()
        assert torch.allclose(lhs, rhs, rtol=1e-13), O
        # and the dense matrix agrees with both
        A = O.to_dense()
        assert torch.allclose(O(x[0]), A @ x[0].reshape(-1))
        assert torch.allclose(O.adjoint(y[0]).reshape(-1), A.T @ y[0])


def test_point_observation_exact_for_bilinear_fields():
    g = Grid((7, 9))
    X, Y = g.mesh()
    pts = random_points(50, generator=torch.Generator().manual_seed(2), margin=0.0)
    O = PointObservation(g, pts)
    f = 1 + 2 * X - 3 * Y + 0.5 * X * Y
    exact = 1 + 2 * pts[:, 0] - 3 * pts[:, 1] + 0.5 * pts[:, 0] * pts[:, 1]
    assert torch.allclose(O(f), exact, atol=1e-13)
    # the corner x = 1 is inside the box
    assert torch.allclose(PointObservation(g, torch.tensor([[1.0, 1.0]]))(f), f[-1:, -1])


def test_counts_of_node_operators():
    g = Grid((10, 10))
    assert SubsampledObservation(g, 1).n_obs == 64
    assert BoundaryObservation(g, 0).n_obs == 36
    assert BoundaryObservation(g, 1).n_obs == 28


def test_noise_statistics_and_misfit():
    clean = torch.linspace(-1, 2, 4000, dtype=torch.float64)
    noise = GaussianNoise.relative(0.01, clean)
    assert float(noise.sigma) == pytest.approx(0.02)
    noisy = noise.sample(clean, torch.Generator().manual_seed(0))
    assert float((noisy - clean).std()) == pytest.approx(0.02, rel=0.05)
    g = Grid((6, 6))
    O = SubsampledObservation(g, 1)
    u = torch.randn(6, 6, dtype=torch.float64)
    obs = Observations(O, O(u), GaussianNoise(0.5))
    assert float(obs.misfit(u)) == 0.0
    assert float(obs.misfit(u + 1.0)) == pytest.approx(0.5 * O.n_obs / 0.25)


def test_bad_inputs_one_line_errors():
    g = Grid((6, 6))
    cases = [
        (lambda: PointObservation(g, torch.tensor([[0.5, 1.5]])), "box"),
        (lambda: PointObservation(g, torch.tensor([0.5, 0.5])), "shape"),
        (lambda: SubsampledObservation(g, 0), "stride"),
        (lambda: BoundaryObservation(g, 3), "offset"),
        (lambda: GaussianNoise(0.0), "positive"),
        (lambda: GaussianNoise.relative(0.01, torch.zeros(3)), "all-zero"),
        (lambda: SubsampledObservation(g, 2)(torch.zeros(5, 5)), "shape"),
        (
            lambda: Observations(SubsampledObservation(g, 2), torch.zeros(3), GaussianNoise(1.0)),
            "shape",
        ),
        (lambda: random_points(0), "n >= 1"),
    ]
    for fn, word in cases:
        with pytest.raises(ValueError) as info:
            fn()
        msg = str(info.value)
        assert word in msg and "\n" not in msg, msg
