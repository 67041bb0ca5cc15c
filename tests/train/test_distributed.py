"""Data-parallel training: 2 CPU processes (gloo) == 1 process; a lost peer ends the run cleanly."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
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


def _free_port() -> int:
    """A port the OS picks (bound and released: the rendezvous reuses it at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_rank(rank: int, port: int, args: list[str]) -> subprocess.Popen:
    """One process of a 2-process job, started by hand (torchrun would SIGTERM the survivor)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank),
           "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
    return subprocess.Popen([sys.executable, str(HERE / "run_train.py"), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("victim", "sig"), [(0, signal.SIGKILL), (1, signal.SIGSTOP)],
                         ids=["writer-killed", "peer-stopped"])
def test_a_lost_peer_ends_the_other_rank_with_one_line(darcy_ds, tmp_path, victim, sig):
    # SIGKILL of rank 0 (the checkpoint writer and store host): the transport sees a closed
    # connection. SIGSTOP of rank 1: nothing is closed, only the process-group timeout ends the wait.
    timeout_s = 15
    cfg = {"dataset": str(darcy_ds), "model": {"name": "tinymodels:TinyConv", "sleep": 0.02},
           "epochs": 200, "batch_size": 4, "scheduler": {"name": "constant"},
           "progress": False, "plots": False, "dist_timeout_s": timeout_s,
           "out_dir": str(tmp_path / "run")}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = _free_port()
    procs = [_start_rank(r, port, [str(path)]) for r in (0, 1)]
    survivor = procs[1 - victim]
    metrics = tmp_path / "run" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 240  # generous: a loaded 2-core machine
        while time.monotonic() < deadline and all(p.poll() is None for p in procs):
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
                break
            time.sleep(0.1)
        assert all(p.poll() is None for p in procs), procs[0].stderr.read() + procs[1].stderr.read()
        procs[victim].send_signal(sig)
        # the bound is the group timeout plus slack for a loaded machine, not a timing claim
        rc = survivor.wait(timeout=timeout_s + 120)
        err = survivor.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            p.stderr.close()
    assert rc == 1, err
    assert err.startswith(f"pdekit: error: rank {1 - victim} of 2: lost a peer process"), err
    assert err.count("\n") == 1, err
    state = load_checkpoint_file(checkpoint_path(tmp_path / "run"))
    assert state["epoch"] >= 1 and state["global_step"] == 4 * state["epoch"]
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not list((tmp_path / "run" / "checkpoints").glob(".*tmp*"))
