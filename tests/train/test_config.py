"""TrainConfig: YAML loading, --set overrides, one-line errors for unknown keys and bad values."""

from pathlib import Path

import pytest

from pdekit.errors import PdekitUserError
from pdekit.train.config import (
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
)

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_experiment_config_loads_with_overrides():
    cfg = load_config(ROOT / "experiments" / "darcy" / "fno.yaml", ["epochs=2"])
    assert cfg.epochs == 2
    assert cfg.model["name"] == "fno"
    assert cfg.eval.subsamples == (2, 1)
    assert cfg.dataset == "datasets/darcy64"


def test_overrides_parse_yaml_values_and_dotted_keys(tmp_path):
    p = _write(tmp_path, "dataset: d\nmodel: {name: fno, hidden_channels: 8}\n")
    cfg = load_config(p, ["epochs=3", "optimizer.lr=3e-4", "eval.subsamples=[1, 2]",
                          "model.hidden_channels=16", "model.n_modes=[8,8]",
                          "optimizer.grad_clip=null", "scheduler.name=step", "amp=true"])
    assert cfg.epochs == 3 and cfg.optimizer.lr == 3e-4 and cfg.optimizer.grad_clip is None
    assert cfg.eval.subsamples == (1, 2) and cfg.scheduler.name == "step" and cfg.amp is True
    assert cfg.model == {"name": "fno", "hidden_channels": 16, "n_modes": [8, 8]}
    # round trip through plain data
    assert config_from_dict(config_to_dict(cfg)) == cfg
    # a required key may come from --set alone
    p2 = _write(tmp_path, "model: {name: fno}\n")
    assert load_config(p2, ["dataset=elsewhere"]).dataset == "elsewhere"


@pytest.mark.parametrize(
    "override, message",
    [
        ("epoch=2", "unknown config key epoch; known keys: dataset"),
        ("optimizer.learning_rate=1", "unknown config key optimizer.learning_rate"),
        ("epochs=two", "config key epochs: expected an integer, got 'two'"),
        ("epochs=0", "config key epochs: must be >= 1"),
        ("optimizer.lr=-1", "config key optimizer.lr: must be > 0"),
        ("scheduler.name=linear", "config key scheduler.name: expected one of"),
        ("device=gpu", "config key device: expected cpu, cuda"),
        ("eval.subsamples=[0]", "eval.subsamples: must be positive"),
        ("epochs.max=3", "config key epochs is not a section"),
        ("physics.n_labelled=4", "physics.n_labelled: needs physics.weight > 0"),
        ("no_equals_sign", "is not KEY=VALUE"),
    ],
)
def test_bad_overrides_are_one_line_errors(tmp_path, override, message):
    p = _write(tmp_path, "dataset: d\nmodel: {name: fno}\n")
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")) as info:
        load_config(p, [override])
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(p))
    assert isinstance(info.value, PdekitUserError)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "dataset: [unclosed\n"))
    with pytest.raises(ConfigError, match="unknown config key lr"):
        load_config(_write(tmp_path, "dataset: d\nmodel: {name: fno}\nlr: 1\n"))
    with pytest.raises(ConfigError, match="config key dataset is required"):
        load_config(_write(tmp_path, "model: {name: fno}\n"))
    with pytest.raises(ConfigError, match="model.name"):
        load_config(_write(tmp_path, "dataset: d\nmodel: {hidden_channels: 3}\n"))


def test_config_is_frozen():
    cfg = config_from_dict({"dataset": "d", "model": {"name": "fno"}})
    with pytest.raises(AttributeError):
        cfg.epochs = 3
    assert apply_overrides(cfg, ["seed=5"]).seed == 5 and cfg.seed == 0
