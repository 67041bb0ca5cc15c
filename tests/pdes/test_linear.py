import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import diffusion, laplacian
from pdekit.pdes.darcy import DarcyFlow
from pdekit.pdes.linear import generate, solve_linear_systems
from pdekit.pdes.poisson import Poisson


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def darcy_systems(n_samples=7, res=12, seed=0):
    fam = DarcyFlow(resolution=res, source="random")
    inputs = fam.sample_inputs(n_samples, gen(seed))
    op = diffusion(fam.grid, inputs["a"])
    return op, op.rhs(inputs["f"]), torch.log(inputs["a"])


@pytest.mark.parametrize("method,n_chains", [("rcg", 1), ("gcrodr", 3)])
def test_sample_order_is_restored(method, n_chains):
    op, b, feats = darcy_systems(res=10)
    ordered = solve_linear_systems(op, b, method=method, rtol=1e-12, features=feats,
                                   ordering="greedy", n_chains=n_chains)
    perm = ordered.extra["perm"]
    assert sorted(perm.tolist()) == list(range(7)) and perm.tolist() != list(range(7))
    unordered = solve_linear_systems(op, b, method=method, rtol=1e-12, ordering="none")
    direct = solve_linear_systems(op, b, method="spsolve")
    for res in (ordered, unordered):
        assert float((res.x - direct.x).norm() / direct.x.norm()) < 1e-8
        per_sample = (res.x - direct.x).flatten(1).norm(dim=1) / direct.x.flatten(1).norm(dim=1)
        assert float(per_sample.max()) < 1e-8
    assert ordered.extra["n_chains"] == n_chains


def test_recycling_needs_fewer_matvec_iterations_than_restarted_gmres():
    op, b, feats = darcy_systems(n_samples=6, res=16, seed=3)
    plain = solve_linear_systems(op, b, method="gmres", rtol=1e-8, restart=40)
    rec = solve_linear_systems(op, b, method="gcrodr", rtol=1e-8, features=feats, restart=40,
                               recycle_dim=20)
    first = int(rec.extra["perm"][0])
    later = [i for i in range(6) if i != first]
    assert int(rec.iterations.sum()) < int(plain.iterations.sum())
    assert float(rec.iterations[later].double().mean()) < 0.8 * float(
        plain.iterations[later].double().mean()
    )
    assert bool(rec.converged.all()) and bool(plain.converged.all())


def test_shared_operator_and_warm_start():
    g = Grid((10, 10))
    op = laplacian(g)
    b = torch.randn(4, 8, 8, generator=gen(), dtype=torch.float64)
    exact = solve_linear_systems(op, b, method="spsolve")
    assert exact.extra["factorizations"] == 1
    warm = solve_linear_systems(op, b, method="cg", rtol=1e-10, x0=exact.x)
    assert bool((warm.iterations == 0).all())
    batched = solve_linear_systems(op, b, method="mgpcg", rtol=1e-10, batch_size=3)
    assert float((batched.x - exact.x).abs().max()) < 1e-8


def test_generate_is_deterministic_with_any_method():
    fam = Poisson(resolution=9)
    x1, s1 = generate(fam, 3, seed=4, method="spsolve")
    x2, s2 = generate(fam, 3, seed=4, method="mgpcg", progress=True)
    assert torch.equal(x1["f"], x2["f"])
    assert float((s1.fields["u"] - s2.fields["u"]).abs().max()) < 1e-7
    x3, _ = generate(fam, 3, seed=5, method="spsolve")
    assert not torch.equal(x1["f"], x3["f"])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "bicgstab"},
        {"method": "rcg", "n_chains": 0},
        {"method": "rcg", "n_chains": 99},
        {"method": "spsolve", "preconditioner": "mg"},
        {"method": "cg", "preconditioner": "ilu"},
        {"method": "cg", "rtol": 0.0},
    ],
)
def test_bad_options_raise_one_line_value_error(kwargs):
    op, b, _ = darcy_systems(n_samples=3, res=6)
    with pytest.raises(ValueError) as err:
        solve_linear_systems(op, b, **kwargs)
    assert "\n" not in str(err.value)


def test_nan_rhs_and_mismatched_batch_raise():
    op, b, _ = darcy_systems(n_samples=3, res=6)
    with pytest.raises(ValueError):
        solve_linear_systems(op, b * float("nan"), method="cg")
    with pytest.raises(ValueError):
        solve_linear_systems(op, b[:2], method="cg")
