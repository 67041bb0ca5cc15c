"""Checkpoints rebuild the model from the file alone; foreign or mismatched files fail in one line."""

import pytest
import torch

from pdekit.models import (
    CheckpointError,
    get_model,
    load_model,
    read_checkpoint,
    save_checkpoint,
)

SMALL = {"n_modes": (8, 8), "hidden_channels": 8, "n_layers": 2}


def one_line(excinfo):
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError) and "\n" not in message
    return message


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("fno", {}),
        ("tfno", {"factorization": "cp"}),
        ("mgtfno", {"levels": 1, "boundary": "reflect"}),
    ],
)
def test_round_trip_gives_identical_outputs(tmp_path, name, overrides):
    torch.manual_seed(0)
    model = get_model(name, in_channels=2, **SMALL, **overrides)
    path = tmp_path / f"{name}.pt"
    save_checkpoint(path, model, name, model.config, extra={"epoch": 7, "mean": torch.ones(2)})
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    x = torch.randn(2, 2, 85, 85)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    ckpt = read_checkpoint(path)
    assert ckpt.model_name == name and ckpt.extra["epoch"] == 7
    assert ckpt.pdekit_version
    assert not list(tmp_path.glob("*.tmp-*"))


def test_checkpoint_has_no_pickled_objects(tmp_path):
    model = get_model("tfno", **SMALL)
    save_checkpoint(tmp_path / "m.pt", model)  # name and config taken from the model
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    assert payload["model"] == "tfno" and "_metadata" not in payload["state_dict"]
    assert payload["config"]["n_modes"] == (8, 8)


def test_plain_state_dict_is_not_a_checkpoint(tmp_path):
    model = get_model("fno", **SMALL)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(tmp_path / "weights.pt")
    assert "not a pdekit model checkpoint" in one_line(excinfo)


def test_neuraloperator_checkpoint_is_refused_safely(tmp_path):
    # neuraloperator's state_dict carries pickled functions (_metadata); weights_only refuses it.
    model = get_model("fno", **SMALL)
    torch.save(model.operator.state_dict(), tmp_path / "neuralop.pt")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(tmp_path / "neuralop.pt")
    assert "cannot be read safely" in one_line(excinfo)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError) as excinfo:
        load_model(tmp_path / "junk.pt")
    one_line(excinfo)
    with pytest.raises(CheckpointError) as excinfo:
        load_model(tmp_path / "absent.pt")
    assert "no such" in one_line(excinfo)


def test_state_dict_of_another_config_is_one_line(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, get_model("fno", **SMALL))
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_channels"] = 16  # the weights are for 8
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as excinfo:
        load_model(path)
    message = one_line(excinfo)
    assert "do not match" in message and "(8," in message


def test_checkpoint_of_another_model_is_one_line(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, get_model("fno", **SMALL))
    payload = torch.load(path, weights_only=True)
    payload["model"] = "tfno"  # dense weights labelled as a Tucker model
    torch.save(payload, path)
    with pytest.raises(CheckpointError) as excinfo:
        load_model(path)
    assert "do not match its 'tfno' config" in one_line(excinfo)


def test_save_refuses_a_model_under_the_wrong_name(tmp_path):
    model = get_model("fno", **SMALL)
    with pytest.raises(CheckpointError) as excinfo:
        save_checkpoint(tmp_path / "m.pt", model, "tfno", model.config)
    one_line(excinfo)
    with pytest.raises(ValueError):
        save_checkpoint(tmp_path / "m.pt", model, "resnet", model.config)
