"""Smoke test of every registered model: build, forward at two grids, gradients everywhere.

Models missing from ``SMALL`` are built with their defaults, so a newly registered model is
covered without editing this file.
"""

import pytest
import torch

from pdekit.models import available_models, get_model, load_model, save_checkpoint

#: Small configs that keep the test fast; every other model uses its defaults.
SMALL = {
    "fno": {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2},
    "tfno": {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2},
    "mgtfno": {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2},
    "mgno": {"hidden_channels": 8, "n_layers": 2, "n_iterations": [(1, 1), (1, 0), (2, 0)]},
    "lsm": {"width": 8, "n_heads": 4, "projection_channels": 16},
}

#: Candidate grid sizes per axis, tried in order; each model must accept at least two.
SIZES = (32, 37, 24, 16)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def build(name):
    torch.manual_seed(0)
    return get_model(name, in_channels=2, out_channels=3, **SMALL.get(name, {}))


def accepted_grids(model, n=2):
    grids = []
    for size in SIZES:
        grid = (size,) * model.n_dim
        try:
            model.check_resolution(grid)
        except ValueError:
            continue
        grids.append(grid)
    assert len(grids) >= n, f"{model.model_name} accepts fewer than {n} of the grids {SIZES}"
    return grids[:n]


def test_the_issue_models_are_registered():
    assert {"fno", "tfno", "mgtfno", "mgno", "lsm"} <= set(available_models())


@pytest.mark.parametrize("name", available_models())
def test_forward_at_two_grids_and_gradients_reach_every_parameter(name):
    model = build(name)
    assert model.model_name == name and model.in_channels == 2 and model.out_channels == 3
    for k, grid in enumerate(accepted_grids(model)):
        x = torch.randn(2, 2, *grid)
        y = model(x)
        assert y.shape == (2, 3, *grid) and bool(torch.isfinite(y).all())
        if k == 0:
            (y - torch.randn_like(y)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, f"{name}: no gradient reaches {missing}"


@pytest.mark.parametrize("name", available_models())
def test_checkpoint_round_trip(tmp_path, name):
    model = build(name).eval()
    save_checkpoint(tmp_path / f"{name}.pt", model)
    loaded = load_model(tmp_path / f"{name}.pt").eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    x = torch.randn(1, 2, *accepted_grids(model, 1)[0])
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
