"""Trainer: learning, exact resume, divergence, metrics files, plots, channel checks, resolutions."""

import csv
import json

import pytest
import torch
from tinymodels import TinyConv

from pdekit.train.callbacks import Callback, default_callbacks
from pdekit.train.cli_commands import build_datasets, build_model
from pdekit.train.config import ConfigError
from pdekit.train.trainer import (
    ChannelMismatchError,
    Trainer,
    TrainingDivergedError,
    load_checkpoint_file,
    seed_everything,
)


def build(cfg, *, callbacks=None, init_seed=None, model=None):
    train, evals = build_datasets(cfg)
    seed_everything(cfg.seed if init_seed is None else init_seed)
    if model is None:
        model, _ = build_model(cfg.model, train.in_channels, train.out_channels)
    return Trainer(model, train, cfg, eval_datasets=evals, callbacks=callbacks,
                   model_spec=cfg.model)


class _Kill(Exception):
    pass


class KillAfter(Callback):
    """Simulate a kill right after epoch ``epoch`` ended (its checkpoint is written)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == self.epoch:
            raise _Kill


def test_training_reduces_the_loss_on_a_synthetic_problem(make_config):
    # u = two 3x3 box filters of a: a local map that a tiny conv net can learn.
    g = torch.Generator().manual_seed(0)
    a = torch.rand(40, 1, 12, 12, generator=g)
    box = torch.full((1, 1, 3, 3), 1 / 9)
    u = torch.nn.functional.conv2d(torch.nn.functional.conv2d(a, box, padding=1), box, padding=1)
    data = torch.utils.data.TensorDataset(a[:32], u[:32])
    test = torch.utils.data.TensorDataset(a[32:], u[32:])
    cfg = make_config(epochs=10, batch_size=8, optimizer={"lr": 1e-2},
                      scheduler={"name": "step", "step_size": 5, "gamma": 0.5})
    seed_everything(0)
    trainer = Trainer(TinyConv(), data, cfg, eval_datasets={"test_12": test}, callbacks=[])
    before = trainer.evaluate()["test_12_l2"]
    metrics = trainer.fit()
    assert metrics["test_12_l2"] < 0.2 * before
    losses = [r["train_loss"] for r in trainer.history]
    assert losses[-1] < 0.2 * losses[0]
    assert trainer.global_step == 10 * 4
    assert [r["lr"] for r in trainer.history][4:6] == [1e-2, 5e-3]  # the step schedule


@pytest.mark.parametrize("schedule", [
    {"name": "cosine", "warmup_epochs": 1},
    {"name": "onecycle"},
])
def test_exact_resume_is_bit_identical(make_config, tmp_path, schedule):
    common = dict(epochs=4, scheduler=schedule, model={"dropout": 0.2},
                  optimizer={"grad_clip": 0.5})
    cfg_a = make_config(out_dir=str(tmp_path / "a"), **common)
    a = build(cfg_a, callbacks=default_callbacks(cfg_a))
    a.fit()

    cfg_b = make_config(out_dir=str(tmp_path / "b"), **common)
    b = build(cfg_b, callbacks=[*default_callbacks(cfg_b), KillAfter(2)])
    with pytest.raises(_Kill):
        b.fit()
    ckpt = tmp_path / "b" / "checkpoints" / "last.pt"
    assert load_checkpoint_file(ckpt)["epoch"] == 2
    # a fresh process would build a fresh, differently initialised model
    resumed = build(cfg_b, callbacks=default_callbacks(cfg_b), init_seed=1234)
    resumed.load_checkpoint(ckpt)
    assert resumed.epoch == 2
    resumed.fit()

    sa, sb = a.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert resumed.global_step == a.global_step == 16
    assert resumed.optimizer.param_groups[0]["lr"] == a.optimizer.param_groups[0]["lr"]
    rows_a = [json.loads(s) for s in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(s) for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows_b] == [1, 2, 3, 4]
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]
    assert [r["test_17_l2"] for r in rows_a] == [r["test_17_l2"] for r in rows_b]


def test_resume_fixes_sample_order_not_model_init(make_config, tmp_path):
    # Guard against a resume test that passes trivially: a different seed changes the result.
    a = build(make_config(epochs=2, seed=0, out_dir=str(tmp_path / "a")), callbacks=[])
    b = build(make_config(epochs=2, seed=1, out_dir=str(tmp_path / "b")), callbacks=[],
              init_seed=0)
    a.fit()
    b.fit()
    assert not torch.equal(a.model.net[0].weight, b.model.net[0].weight)


def test_gauss_newton_cg_fits_a_linear_operator_on_mini_batches(make_config):
    # y = conv3x3(x) + 1 is in the model class: Gauss-Newton steps on the relative residual of each
    # mini-batch drive the error to round-off (the check that replaced optim.trainer_adapter's).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 1, 8, 8, generator=g)
    with torch.no_grad():
        y = torch.nn.functional.conv2d(x, torch.randn(1, 1, 3, 3, generator=g), padding=1) + 1.0
    cfg = make_config(epochs=3, batch_size=8, optimizer={"name": "gauss_newton_cg", "lr": 1.0},
                      scheduler={"name": "constant"})
    seed_everything(0)
    trainer = Trainer(torch.nn.Conv2d(1, 1, 3, padding=1), torch.utils.data.TensorDataset(x, y),
                      cfg, callbacks=[])
    trainer.fit()
    assert trainer.global_step == 12 and trainer.scaler is None
    losses = [r["train_loss"] for r in trainer.history]  # RMS relative L2 error per epoch
    assert losses[-1] < 1e-4 * losses[0]


class PoisonAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_start(self, trainer, epoch):
        if epoch == self.epoch:
            with torch.no_grad():
                trainer.model.net[-1].bias.fill_(float("nan"))


def test_nan_loss_stops_with_the_epoch_and_keeps_the_last_checkpoint(make_config, tmp_path):
    cfg = make_config(epochs=5)
    trainer = build(cfg, callbacks=[*default_callbacks(cfg), PoisonAt(3)])
    with pytest.raises(TrainingDivergedError, match="at epoch 3") as info:
        trainer.fit()
    ckpt = tmp_path / "run" / "checkpoints" / "last.pt"
    assert str(ckpt) in str(info.value) and "epoch 2" in str(info.value)
    assert info.value.epoch == 3 and info.value.checkpoint_epoch == 2
    state = load_checkpoint_file(ckpt)
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    fresh = build(cfg, callbacks=[])
    fresh.load_checkpoint(ckpt)
    assert fresh.epoch == 2 and fresh.global_step == 8
    assert not list(ckpt.parent.glob(".*tmp*"))  # no stray temporary files


def test_metrics_jsonl_csv_and_plots_are_written(make_config, tmp_path):
    cfg = make_config(epochs=2, plots=True, progress=True, eval={"subsamples": [1, 2]})
    trainer = build(cfg, callbacks=default_callbacks(cfg))
    trainer.fit()
    run = tmp_path / "run"
    rows = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2
    keys = {"epoch", "step", "lr", "train_loss", "time_s", "test_17_l2", "test_17_h1",
            "test_17_n", "test_9_l2", "test_9_h1", "test_9_n"}
    assert set(rows[0]) == keys
    assert rows[1]["epoch"] == 2 and rows[1]["step"] == 8 and rows[1]["test_9_n"] == 8
    with open(run / "metrics.csv") as f:
        table = list(csv.DictReader(f))
    assert set(table[0]) == keys and len(table) == 2
    assert float(table[1]["train_loss"]) == pytest.approx(rows[1]["train_loss"])
    for name in ("learning_curves.png", "test_17_samples.png", "test_9_samples.png"):
        png = run / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000, name


def test_multi_resolution_evaluation(make_config):
    cfg = make_config(epochs=1, eval={"subsamples": [1, 2], "n_samples": 4})
    trainer = build(cfg, callbacks=[])
    assert sorted(trainer.eval_datasets) == ["test_17", "test_9"]
    metrics = trainer.evaluate()
    assert metrics["test_17_n"] == metrics["test_9_n"] == 4
    assert 0 < metrics["test_9_l2"] < 10 and 0 < metrics["test_17_l2"] < 10
    assert metrics["test_9_l2"] != metrics["test_17_l2"]


def test_channel_mismatch_is_a_one_line_error(make_config):
    cfg = make_config()
    with pytest.raises(ChannelMismatchError, match="in_channels=2 but the dataset gives 1") as i:
        build(cfg, model=TinyConv(in_channels=2))
    assert "\n" not in str(i.value)
    with pytest.raises(ChannelMismatchError, match="does not accept the dataset's input"):
        build(cfg, model=torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3, padding=1)))
    with pytest.raises(ChannelMismatchError, match="returns shape"):
        build(cfg, model=torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1)))
    with pytest.raises(ChannelMismatchError, match="model.out_channels=3 but the dataset gives 1"):
        build(make_config(model={"out_channels": 3}))


def test_bad_runtime_settings(make_config):
    with pytest.raises(ConfigError, match="n_train: 99"):
        build(make_config(n_train=99))
    with pytest.raises(ConfigError, match="physics.a_channel=1 but the inputs have 1"):
        build(make_config(physics={"weight": 0.1, "a_channel": 1}))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            build(make_config(device="cuda"))


def test_optional_features_degrade_cleanly(make_config):
    # AMP is only used on CUDA devices; on the CPU the run is plain float32.
    trainer = build(make_config(amp=True), callbacks=[])
    assert trainer.amp is False and not trainer.scaler.is_enabled()
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        from pdekit.errors import PdekitUserError

        with pytest.raises(PdekitUserError, match="needs the tensorboard package"):
            build(make_config(tensorboard=True))
