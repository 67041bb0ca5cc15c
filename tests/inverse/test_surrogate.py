import torch

from pdekit.core.grid import Grid
from pdekit.inverse import (
    DarcyModel,
    GaussianRandomFieldPrior,
    InverseProblem,
    Observations,
    PointObservation,
    SurrogateModel,
    estimate,
    random_points,
)
from pdekit.inverse.surrogate import solve_darcy_batch


class _LinearSurrogate(torch.nn.Module):
    """A 'network' that is exactly the linearised Darcy map at a = 1: u = u0 + J (m)."""

    def __init__(self, g):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).double()
        with torch.no_grad():
            self.conv.weight.fill_(0.01)

    def forward(self, x):
        return torch.tanh(self.conv(x)) + 1.0


def test_surrogate_jvp_vjp_adjoint_and_counts():
    g = Grid((11, 11))
    sur = SurrogateModel(_LinearSurrogate(g), g, output_scale=2.0)
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(11, 11, dtype=torch.float64, generator=gen)
    lin = sur.linearize(m, sur.solve(m))
    v, w = (torch.randn(11, 11, dtype=torch.float64, generator=gen) for _ in range(2))
    assert torch.allclose((lin.jvp(v) * w).sum(), (v * lin.vjp(w)).sum(), rtol=1e-10)
    h = 1e-6
    fd = (sur.solve(m + h * v) - sur.solve(m - h * v)) / (2 * h)
    assert torch.allclose(lin.jvp(v), fd, atol=1e-7)
    assert sur.solve(m)[0].abs().max() == 0  # Dirichlet boundary


def test_surrogate_inversion_counts_only_true_solves():
    g = Grid((13, 13))
    gen = torch.Generator().manual_seed(2)
    prior = GaussianRandomFieldPrior(g, sigma=0.3)
    model = DarcyModel(g)
    truth = prior.sample(1, gen)[0]
    obs = Observations.synthetic(
        PointObservation(g, random_points(30, generator=gen)), model.solve(truth), 0.01, gen
    )
    problem = InverseProblem(model, prior)

    # "perfect" surrogate: the solver itself behind the network interface
    class Exact(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

        def forward(self, x):
            return solve_darcy_batch(g, torch.exp(x[:, 0]))[:, None] + 0 * self.dummy

    res = estimate(problem, obs, "surrogate", surrogate=SurrogateModel(Exact(), g), max_iter=50)
    d = res.diagnostics
    assert d["pde_solves"]["total"] == 1  # the final true misfit only
    assert d["network_evaluations"] > 1
    ref = estimate(problem, obs, "lbfgs", max_iter=50)
    assert (
        abs(d["true_objective"] - ref.history[-1]["objective"])
        < 1e-3 * ref.history[-1]["objective"]
    )
    refined = estimate(
        problem, obs, "surrogate", surrogate=SurrogateModel(Exact(), g), max_iter=5, refine_iter=2
    )
    assert refined.diagnostics["pde_solves"]["total"] > 1
    assert refined.history[-1]["phase"] == "refine"
