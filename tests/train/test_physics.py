"""Darcy physics loss: ~0 on the exact discrete solution, > 0 off it; de-normalisation; training."""

import pytest
import torch
from conftest import solve_darcy

from pdekit.data import PDEDataset
from pdekit.train.physics import DarcyResidualLoss, darcy_residual
from pdekit.train.processor import DataProcessor


def _coefficient(n=17, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 1.0 + torch.rand(n, n, generator=g, dtype=torch.float64) * 4.0


def test_residual_vanishes_for_the_scipy_solution_and_not_for_a_perturbed_one():
    a = _coefficient()
    u = solve_darcy(a)  # spsolve on diffusion(Grid((17, 17)), a).to_scipy()
    loss = DarcyResidualLoss(f=1.0, reduction="none")
    exact = loss(u[None, None], a[None, None])
    assert float(exact) < 1e-10
    assert float(darcy_residual(u[None], a[None]).abs().max()) < 1e-9
    bump = torch.zeros_like(u)
    bump[8, 8] = 1e-3 * float(u.max())  # 0.1 % of the peak at one node
    assert float(loss((u + bump)[None, None], a[None, None])) > 1e-3
    # boundary values are penalised too (the interior residual cannot see them)
    lifted = u.clone()
    lifted[0, :] = 0.01
    assert float(loss(lifted[None, None], a[None, None])) > 0.1
    # gradients flow to the prediction
    p = u.clone()[None, None].requires_grad_(True)
    loss(p + bump, a[None, None]).sum().backward()
    assert p.grad.abs().sum() > 0


def test_source_field_channel():
    a = _coefficient(seed=1)
    f = 1.0 + _coefficient(seed=2)  # a source field, input channel 1
    u = solve_darcy(a, f)
    x = torch.stack([a, f])[None]
    loss = DarcyResidualLoss(a_channel=0, f_channel=1)
    assert float(loss(u[None, None], x)) < 1e-10
    assert float(loss(torch.zeros_like(u)[None, None], x)) == pytest.approx(1.0)  # u = 0


def test_decoded_dataset_fields_satisfy_the_pde(darcy_ds):
    """The processor de-normalises a and u so that the residual of the stored data is ~0."""
    ds = PDEDataset(darcy_ds, "train")
    x, y = (torch.stack(t) for t in zip(*[ds[i] for i in range(4)]))
    proc = DataProcessor.from_dataset(ds)
    raw = PDEDataset(darcy_ds, "train", normalize=False)
    xr, yr = (torch.stack(t) for t in zip(*[raw[i] for i in range(4)]))
    torch.testing.assert_close(proc.decode_inputs(x), xr, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(proc.decode_targets(y), yr, rtol=1e-5, atol=1e-8)
    loss = DarcyResidualLoss(reduction="none")
    exact = loss(proc.decode_targets(y).double(), proc.decode_inputs(x).double())
    assert float(exact.max()) < 1e-4  # float32 storage of u
    # the *normalised* fields are not a solution: de-normalising matters
    assert float(loss(y.double(), proc.decode_inputs(x).double()).min()) > 0.1


def test_physics_training_with_few_labels(make_config):
    from pdekit.train.cli_commands import build_datasets, build_model
    from pdekit.train.trainer import Trainer, seed_everything

    cfg = make_config(epochs=3, physics={"weight": 0.05, "n_labelled": 4})
    train, evals = build_datasets(cfg)
    seed_everything(0)
    model, _ = build_model(cfg.model, 1, 1)
    trainer = Trainer(model, train, cfg, eval_datasets=evals, callbacks=[])
    trainer.fit()
    rows = trainer.history
    assert {"train_data", "train_physics"} <= set(rows[0])
    assert all(r["train_physics"] > 0 for r in rows)
    assert rows[-1]["train_physics"] < rows[0]["train_physics"]
