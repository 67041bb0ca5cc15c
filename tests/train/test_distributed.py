"""Data-parallel training: torchrun with 2 CPU processes (gloo) == 1 process, same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

from pdekit.train.cli_commands import checkpoint_path, train_main
from pdekit.train.trainer import load_checkpoint_file

HERE = Path(__file__).resolve().parent


def test_two_processes_match_one_process(darcy_ds, tmp_path):
    cfg = {
        "dataset": str(darcy_ds),
        "model": {"name": "tinymodels:TinyConv"},
        "epochs": 2,
        "batch_size": 4,  # global: 2 samples per process under torchrun
        "optimizer": {"lr": 3e-3, "grad_clip": 1.0},
        "scheduler": {"name": "onecycle"},
        "eval": {"subsamples": [1, 2]},
        "progress": False,
        "plots": False,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "run_train.py"), str(path), f"out_dir={tmp_path / 'ddp'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 2 process(es)" in done.stdout

    assert train_main(path, [f"out_dir={tmp_path / 'single'}"]) == 0
    ddp = load_checkpoint_file(checkpoint_path(tmp_path / "ddp"))
    one = load_checkpoint_file(checkpoint_path(tmp_path / "single"))
    assert ddp["world_size"] == 2 and one["world_size"] == 1
    assert ddp["global_step"] == one["global_step"] == 8
    for k, v in one["model"].items():
        torch.testing.assert_close(ddp["model"][k], v, rtol=0, atol=1e-6)
    # the tolerance is sharp: the per-process batch (2) as the global batch gives other weights
    assert train_main(path, [f"out_dir={tmp_path / 'local'}", "batch_size=2"]) == 0
    local = load_checkpoint_file(checkpoint_path(tmp_path / "local"))["model"]
    assert max(float((local[k] - v).abs().max()) for k, v in ddp["model"].items()) > 1e-3
    rows = {name: [json.loads(s) for s in (tmp_path / name / "metrics.jsonl").read_text()
                   .splitlines()] for name in ("ddp", "single")}
    for a, b in zip(rows["ddp"], rows["single"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-5
        assert abs(a["test_9_l2"] - b["test_9_l2"]) < 1e-5
        assert a["test_17_n"] == b["test_17_n"] == 8
