"""The multi-system engine: ordering, recycling chains, batching (pdekit.core.sequence)."""

import pytest
import torch

from pdekit.core.grid import Grid
from pdekit.core.sequence import solve_sequence, true_residual
from pdekit.core.solve_config import SolveConfig
from pdekit.core.stencils import diffusion, laplacian
from pdekit.errors import PdekitUserError
from pdekit.pdes import solve_samples
from pdekit.pdes.darcy import DarcyFlow
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
    cfg = SolveConfig(method=method, rtol=1e-12, ordering="greedy", n_chains=n_chains)
    ordered = solve_sequence(op, b, cfg, features=feats)
    perm = ordered.extra["perm"]
    assert sorted(perm.tolist()) == list(range(7)) and perm.tolist() != list(range(7))
    unordered = solve_sequence(op, b, SolveConfig(method=method, rtol=1e-12, ordering="none"))
    direct = solve_sequence(op, b, SolveConfig(method="spsolve"))
    for res in (ordered, unordered):
        assert float((res.x - direct.x).norm() / direct.x.norm()) < 1e-8
        per_sample = (res.x - direct.x).flatten(1).norm(dim=1) / direct.x.flatten(1).norm(dim=1)
        assert float(per_sample.max()) < 1e-8
    assert ordered.extra["n_chains"] == n_chains


def test_recycling_needs_fewer_matvec_iterations_than_restarted_gmres():
    op, b, feats = darcy_systems(n_samples=6, res=16, seed=3)
    plain = solve_sequence(op, b, SolveConfig(method="gmres", rtol=1e-8, restart=40))
    rec = solve_sequence(op, b, SolveConfig(method="gcrodr", rtol=1e-8, restart=40,
                                            recycle_dim=20), features=feats)
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
    exact = solve_sequence(op, b, SolveConfig(method="spsolve"))
    assert exact.extra["factorizations"] == 1
    warm = solve_sequence(op, b, SolveConfig(method="cg", rtol=1e-10), x0=exact.x)
    assert bool((warm.iterations == 0).all())
    batched = solve_sequence(op, b, SolveConfig(method="mgpcg", rtol=1e-10, batch_size=3))
    assert float((batched.x - exact.x).abs().max()) < 1e-8
    assert batched.extra["preconditioner"] == "mg"


def test_default_config_is_mgpcg_to_1e_8():
    op, b, _ = darcy_systems(n_samples=3, res=10)
    out = solve_sequence(op, b)
    assert out.extra["method"] == "mgpcg" and out.extra["preconditioner"] == "mg"
    assert bool(out.converged.all()) and float(out.rel_residual.max()) <= 1e-8 * (1 + 1e-6)
    assert torch.allclose(true_residual(op, out.x, b), out.rel_residual)


def test_solve_samples_is_deterministic_with_any_method():
    fam = Poisson(resolution=9)
    x1, s1 = solve_samples(fam, 3, seed=4, method="spsolve")
    x2, s2 = solve_samples(fam, 3, seed=4, config=SolveConfig(method="mgpcg"), progress=True)
    assert torch.equal(x1["f"], x2["f"])
    assert float((s1.fields["u"] - s2.fields["u"]).abs().max()) < 1e-7
    x3, _ = solve_samples(fam, 3, seed=5, method="spsolve")
    assert not torch.equal(x1["f"], x3["f"])
    by_name, _ = solve_samples("poisson", 1, method="spsolve")  # default parameters
    assert by_name["f"].shape == (1, 64, 64)


@pytest.mark.parametrize(
    "config, message",
    [
        (SolveConfig(method="bicgstab"), "solve_sequence: method must be one of"),
        (SolveConfig(method="rcg", n_chains=99), r"n_chains must be in \[1, 3\]"),
    ],
)
def test_settings_the_engine_cannot_honour_raise_one_line(config, message):
    op, b, _ = darcy_systems(n_samples=3, res=6)
    with pytest.raises(PdekitUserError, match=message) as err:
        solve_sequence(op, b, config)
    assert "\n" not in str(err.value)


def test_nan_rhs_mismatched_batch_and_bad_config_type_raise():
    op, b, _ = darcy_systems(n_samples=3, res=6)
    with pytest.raises(ValueError):
        solve_sequence(op, b * float("nan"), SolveConfig(method="cg"))
    with pytest.raises(ValueError):
        solve_sequence(op, b[:2], SolveConfig(method="cg"))
    with pytest.raises(TypeError, match="SolveConfig"):
        solve_sequence(op, b, {"method": "cg"})
