"""Second-order PINN problems and loop: exact solutions have zero residual, budgets, history."""

import dataclasses
import json

import pytest
import torch

from pdekit.errors import PdekitUserError
from pdekit.optim import GaussNewton
from pdekit.pinn.second_order import PINNHistory, pinn_problem, train_pinn_second_order

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class _Exact(torch.nn.Module):
    def __init__(self, exact):
        super().__init__()
        self.exact = exact

    def forward(self, x):
        return self.exact(x)[..., None]


def _small(name, n_interior=100):
    problem = pinn_problem(name)
    return dataclasses.replace(problem, interior=problem.interior[:n_interior])


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(2, 12), torch.nn.Tanh(), torch.nn.Linear(12, 1)
    ).double()


@pytest.mark.parametrize("name", ["poisson2d", "heat1d"])
def test_exact_solution_has_zero_residual_and_error(name):
    problem = pinn_problem(name)
    exact = _Exact(problem.exact)
    r = problem.residual(exact)()
    assert r.shape == (problem.interior.shape[0] + problem.boundary.shape[0],)
    assert float(r.abs().max()) < 1e-10
    assert problem.relative_l2_error(exact) < 1e-15
    # a perturbed solution does not solve the PDE: its interior rows are far from zero
    wrong = problem.residual(_Exact(lambda x: problem.exact(x) + x[..., 0] ** 3))()
    assert float(wrong[: problem.interior.shape[0]].abs().max()) > 1e-2


def test_points_follow_the_seed_and_lie_in_the_unit_square():
    a, b, c = pinn_problem("heat1d"), pinn_problem("heat1d"), pinn_problem("heat1d", seed=1)
    assert torch.equal(a.interior, b.interior) and not torch.equal(a.interior, c.interior)
    for pts in (a.interior, a.boundary, a.test):
        assert pts.dtype == torch.float64 and float(pts.min()) >= 0 and float(pts.max()) <= 1
    on_wall = (a.boundary[:, 1] == 0) | (a.boundary[:, 0] == 0) | (a.boundary[:, 0] == 1)
    assert bool(on_wall.all()) and a.boundary.shape == (120, 2)


def test_gauss_newton_steps_reduce_the_error():
    problem, net = _small("heat1d"), _net()
    out = train_pinn_second_order(net, problem, GaussNewton(net.parameters()), steps=8)
    assert isinstance(out, PINNHistory) and out.iterations == 8
    assert out.history[0][0] == 0.0 and out.history[-1] == (out.seconds, out.rel_l2)
    assert out.rel_l2 < 0.1 * out.history[0][1]
    assert out.rel_l2 == problem.relative_l2_error(net)


def test_first_order_optimizer_takes_gradient_steps_in_chunks():
    problem = _small("poisson2d")
    net, ref = _net(), _net()
    out = train_pinn_second_order(
        net, problem, torch.optim.Adam(net.parameters(), lr=1e-3), steps=25, log_every=0
    )
    assert out.iterations == 25 and len(out.history) == 2 + 2  # start, 2 chunks (20 + 5), end
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    closure = problem.residual(ref)
    for _ in range(25):
        opt.zero_grad()
        (0.5 * closure().square().sum()).backward()
        opt.step()
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), ref.parameters()))


def test_zero_budget_changes_nothing_and_result_is_json_ready():
    problem, net = _small("poisson2d"), _net()
    before = [p.clone() for p in net.parameters()]
    out = train_pinn_second_order(net, problem, GaussNewton(net.parameters()), seconds=0.0)
    assert out.iterations == 0 and out.seconds == 0.0
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))
    row = json.loads(json.dumps(out.as_dict()))
    assert set(row) == {"rel_l2", "seconds", "iterations", "history"}


def test_bad_budgets_and_names_are_one_line_errors():
    problem, net = _small("poisson2d"), _net()
    opt = GaussNewton(net.parameters())
    for kwargs in ({}, {"seconds": 1.0, "steps": 2}, {"steps": -1}, {"seconds": -1.0},
                   {"steps": 1, "first_order_steps": 0}):
        with pytest.raises(PdekitUserError):
            train_pinn_second_order(net, problem, opt, warm_up=False, **kwargs)
    with pytest.raises(PdekitUserError, match="heat2d"):
        pinn_problem("heat2d")
