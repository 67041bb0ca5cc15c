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
