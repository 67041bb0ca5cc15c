"""A run's checkpoints rebuild the trained model from the file alone (pdekit.load_model)."""

import pytest
import torch
import yaml

import pdekit
from pdekit.models.checkpoint import CheckpointError
from pdekit.train.cli_commands import checkpoint_path, train_main


def test_training_writes_a_loadable_model_file(darcy_ds, tmp_path):
    cfg = {
        "dataset": str(darcy_ds),
        "model": {"name": "fno", "n_modes": [4, 4], "hidden_channels": 4, "n_layers": 1},
        "epochs": 1,
        "batch_size": 4,
        "out_dir": str(tmp_path / "run"),
        "progress": False,
        "plots": False,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert train_main(path) == 0
    state = torch.load(checkpoint_path(tmp_path / "run"), weights_only=True)  # no pickled objects
    model = pdekit.load_model(checkpoint_path(tmp_path / "run").with_name("model.pt"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])
    with pytest.raises(CheckpointError, match="training checkpoint"):
        pdekit.load_model(checkpoint_path(tmp_path / "run"))


@pytest.mark.parametrize("name", ["gauss_newton_cg", "trust_region"])
def test_second_order_optimizers_train_in_the_trainer(darcy_ds, tmp_path, name):
    cfg = {
        "dataset": str(darcy_ds),
        "model": {"name": "fno", "n_modes": [4, 4], "hidden_channels": 4, "n_layers": 1},
        "epochs": 3,
        "batch_size": 8,
        "optimizer": {"name": name, "lr": 1.0, "cg_maxiter": 10},
        "scheduler": {"name": "constant"},
        "out_dir": str(tmp_path / name),
        "progress": False,
        "plots": False,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert train_main(path) == 0
    import json

    rows = [json.loads(s) for s in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["test_17_l2"] < rows[0]["test_17_l2"] or rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_second_order_rejects_physics_loss(darcy_ds, tmp_path):
    from pdekit.errors import PdekitUserError

    cfg = {
        "dataset": str(darcy_ds),
        "model": {"name": "fno", "n_modes": [4, 4], "hidden_channels": 4, "n_layers": 1},
        "epochs": 1,
        "optimizer": {"name": "gauss_newton_cg"},
        "physics": {"weight": 0.1},
        "out_dir": str(tmp_path / "p"),
        "progress": False,
        "plots": False,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(PdekitUserError, match="physics.weight"):
        train_main(path)
