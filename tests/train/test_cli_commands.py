"""train_main / evaluate_main: the user's flow, resume rules, a real kill and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pdekit.errors import PdekitUserError
from pdekit.train.cli_commands import checkpoint_path, evaluate_main, train_main
from pdekit.train.trainer import load_checkpoint_file

HERE = Path(__file__).resolve().parent


@pytest.fixture
def config_file(darcy_ds, tmp_path):
    data = {
        "dataset": str(darcy_ds),
        "model": {"name": "tinymodels:TinyConv", "dropout": 0.1},
        "epochs": 4,
        "batch_size": 4,
        "optimizer": {"lr": 3e-3},
        "eval": {"subsamples": [1, 2], "n_plot_samples": 2},
        "out_dir": str(tmp_path / "run"),
        "progress": False,
        "plots": False,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _weights(out_dir):
    return load_checkpoint_file(checkpoint_path(out_dir))["model"]


def test_train_then_evaluate(config_file, darcy_ds, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(config_file, ["epochs=2"]) == 0
    printed = capsys.readouterr().out
    assert "trained 2 epoch(s)" in printed and "test_17" in printed and "test_9" in printed
    assert yaml.safe_load((out / "config.yaml").read_text())["epochs"] == 2

    # an existing run is never overwritten silently
    with pytest.raises(PdekitUserError, match="already holds a run"):
        train_main(config_file, ["epochs=2"])
    # ... but it can be continued
    assert train_main(config_file, ["epochs=3", "resume=true"]) == 0
    assert load_checkpoint_file(checkpoint_path(out))["epoch"] == 3
    with pytest.raises(PdekitUserError, match="does not exist"):
        train_main(config_file, ["resume=true", f"out_dir={tmp_path / 'nothing'}"])

    assert evaluate_main(checkpoint_path(out), darcy_ds, subsamples=[1, 2]) == 0
    table = capsys.readouterr().out
    assert "rel. L2" in table and "test_17" in table and "test_9" in table
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert metrics["epoch"] == 3 and metrics["test_17_n"] == 8
    # the table matches the trainer's own evaluation of the same weights
    last = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert metrics["test_17_l2"] == pytest.approx(last["test_17_l2"], rel=1e-5)
    for name in ("test_17_samples.png", "test_9_samples.png"):
        assert (out / "eval" / name).stat().st_size > 10_000


def test_one_line_user_errors(config_file, darcy_ds, tmp_path):
    with pytest.raises(PdekitUserError, match="model.in_channels=2 but the dataset gives 1"):
        train_main(config_file, ["model.in_channels=2"])
    with pytest.raises(PdekitUserError, match="has no field 'b'"):
        train_main(config_file, ["inputs=[b]"])
    with pytest.raises(PdekitUserError, match="cannot import"):
        train_main(config_file, ["model.name=nowhere:Model"])
    with pytest.raises(PdekitUserError, match="not a pdekit training checkpoint"):
        torch.save({"x": 1}, tmp_path / "foreign.pt")
        evaluate_main(tmp_path / "foreign.pt", darcy_ds)


def test_nan_run_returns_1_and_names_the_epoch(config_file, tmp_path, capsys):
    # Adam steps have size ~lr whatever the gradient: lr = 1e30 overflows within epoch 1.
    assert train_main(config_file, ["epochs=2", "optimizer.lr=1e30"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pdekit: error: training diverged: loss is")
    assert "at epoch 1" in err and "no checkpoint was written" in err
    assert err.count("\n") == 1
    assert not checkpoint_path(tmp_path / "run").exists()


def test_killed_process_resumes_to_identical_weights(config_file, tmp_path):
    assert train_main(config_file, [f"out_dir={tmp_path / 'ref'}", "epochs=6"]) == 0

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "run_train.py"), str(config_file), f"out_dir={out}",
         "epochs=6", "model.sleep=0.15"],  # slow enough that a starved poller still kills mid-run
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240  # generous: a loaded 2-core machine
        metrics = out / "metrics.jsonl"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    killed_at = load_checkpoint_file(checkpoint_path(out))["epoch"]
    assert 1 <= killed_at < 6
    assert train_main(config_file, [f"out_dir={out}", "epochs=6", "resume=true",
                                    "model.sleep=0.0"]) == 0
    ref, got = _weights(tmp_path / "ref"), _weights(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
