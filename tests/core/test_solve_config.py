"""SolveConfig: validated once, named errors, a lossless round trip through dicts and JSON."""

import dataclasses
import json

import numpy as np
import pytest

from pdekit.core.solve_config import DIFFERENTIABLE, METHODS, SolveConfig
from pdekit.errors import PdekitUserError


def test_defaults_per_purpose():
    gen = SolveConfig()
    assert (gen.method, gen.rtol, gen.atol, gen.maxiter, gen.preconditioner) == (
        "mgpcg", 1e-8, 0.0, None, None)
    assert (gen.restart, gen.recycle_dim, gen.ordering, gen.n_chains, gen.batch_size) == (
        40, 20, "greedy", 1, None)
    assert (DIFFERENTIABLE.method, DIFFERENTIABLE.rtol, DIFFERENTIABLE.adjoint) == ("cg", 1e-10, None)


@pytest.mark.parametrize(
    "config",
    [
        SolveConfig(),
        SolveConfig(method="gcrodr", rtol=1e-9, atol=1e-14, maxiter=500, preconditioner="mg",
                    restart=30, recycle_dim=10, ordering="hilbert", n_chains=4, batch_size=8),
        SolveConfig(method="cg", adjoint=SolveConfig(method="cg", rtol=1e-12)),
    ],
)
def test_round_trip_through_dict_and_json(config):
    d = config.to_dict()
    assert set(d) == {f.name for f in dataclasses.fields(SolveConfig)}
    assert SolveConfig.from_dict(d) == config
    assert SolveConfig.from_dict(json.loads(json.dumps(d))) == config


def test_from_dict_fills_missing_fields_from_the_base():
    base = SolveConfig(method="gcrodr", recycle_dim=5, adjoint=SolveConfig(method="gmres"))
    cfg = SolveConfig.from_dict({"rtol": 1e-6}, base=base)
    assert (cfg.method, cfg.rtol, cfg.recycle_dim, cfg.adjoint) == ("gcrodr", 1e-6, 5, base.adjoint)
    assert SolveConfig.from_dict(None, base=base) is base
    # a partial adjoint takes the forward settings for the rest
    cfg = SolveConfig.from_dict({"method": "gmres", "rtol": 1e-8, "adjoint": {"rtol": 1e-12}})
    assert (cfg.adjoint.method, cfg.adjoint.rtol, cfg.adjoint.adjoint) == ("gmres", 1e-12, None)


def test_unknown_keys_are_rejected_with_the_allowed_ones():
    with pytest.raises(PdekitUserError) as err:
        SolveConfig.from_dict({"method": "cg", "tol": 1e-6, "kind": "x"})
    msg = str(err.value)
    assert "\n" not in msg and "'tol', 'kind'" in msg
    assert "allowed: method, rtol, atol, maxiter, preconditioner, restart" in msg
    with pytest.raises(PdekitUserError, match="the device comes from the inputs"):
        SolveConfig.from_dict({"device": "cuda"})
    with pytest.raises(PdekitUserError, match="must map option names"):
        SolveConfig.from_dict(["method"])


def test_numbers_are_normalised():
    cfg = SolveConfig.from_dict({"rtol": "1e-9", "atol": 0, "maxiter": np.int64(7),
                                 "n_chains": 2.0})
    assert cfg.rtol == 1e-9 and isinstance(cfg.atol, float)
    assert type(cfg.maxiter) is int and type(cfg.n_chains) is int
    assert json.dumps(cfg.to_dict())  # plain Python types only


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"method": "lu"}, "SolveConfig.method must be one of"),
        ({"rtol": -1.0}, "SolveConfig.rtol"),
        ({"rtol": float("nan")}, "SolveConfig.rtol"),
        ({"atol": "0"}, "SolveConfig.atol"),
        ({"rtol": 0.0}, "SolveConfig.rtol and SolveConfig.atol"),
        ({"maxiter": 0}, "SolveConfig.maxiter"),
        ({"maxiter": 2.5}, "SolveConfig.maxiter"),
        ({"preconditioner": "ilu"}, "SolveConfig.preconditioner"),
        ({"method": "mgpcg", "preconditioner": "jacobi"}, "SolveConfig.preconditioner"),
        ({"method": "spsolve", "preconditioner": "mg"}, "SolveConfig.preconditioner"),
        ({"restart": 0}, "SolveConfig.restart"),
        ({"recycle_dim": -1}, "SolveConfig.recycle_dim"),
        ({"method": "gcrodr", "restart": 10, "recycle_dim": 10}, "SolveConfig.recycle_dim"),
        ({"ordering": "sideways"}, "SolveConfig.ordering must be one of"),
        ({"n_chains": 0}, "SolveConfig.n_chains"),
        ({"n_chains": True}, "SolveConfig.n_chains"),
        ({"batch_size": 0}, "SolveConfig.batch_size"),
        ({"adjoint": {"rtol": 1e-3}}, "SolveConfig.adjoint"),
        ({"adjoint": SolveConfig(adjoint=SolveConfig())}, "SolveConfig.adjoint"),
    ],
)
def test_validation_errors_name_the_field(kwargs, field):
    with pytest.raises(PdekitUserError) as err:
        SolveConfig(**kwargs)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_direct_solve_needs_no_tolerance_and_every_method_is_accepted():
    assert SolveConfig(method="spsolve", rtol=0.0).rtol == 0.0
    for method in METHODS:
        assert SolveConfig(method=method).method == method


def test_frozen_and_hashable():
    cfg = SolveConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rtol = 1.0
    assert len({SolveConfig(), SolveConfig(), SolveConfig(rtol=1e-6)}) == 2
