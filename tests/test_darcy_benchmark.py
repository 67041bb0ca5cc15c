"""Smoke test of ``experiments/darcy_benchmark.py`` at an ultra-small budget."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def benchmark(load_experiment):
    return load_experiment("darcy_benchmark")


def test_main_writes_the_results_json(benchmark, tmp_path, capsys):
    out = tmp_path / "darcy.json"
    argv = ["--quick", "--resolution", "16", "--n-train", "8", "--n-test", "4", "--epochs", "1",
            "--batch-size", "4", "--models", "fno,mgno", "--throughput-epochs", "1",
            "--data-dir", str(tmp_path / "data"), "--json", str(out), "--threads", "1"]
    assert benchmark.main(argv) == 0

    payload = json.loads(out.read_text())
    assert set(payload) >= {"results", "throughput_ratio_vs_neuralop", "meta"}
    assert [r["model"] for r in payload["results"]] == ["fno", "mgno"]
    keys = {"model", "rel_l2", "n_params", "sec_per_epoch", "epochs", "n_train", "resolution",
            "peak_mem_mb"}
    for row in payload["results"]:
        assert keys <= set(row)
        assert (row["epochs"], row["n_train"], row["resolution"]) == (1, 8, 16)
        assert 0.0 < row["rel_l2"] < 10.0 and math.isfinite(row["rel_l2"])
        assert row["n_params"] > 0 and row["sec_per_epoch"] > 0
    assert payload["throughput_ratio_vs_neuralop"] > 0
    assert payload["meta"]["memory_method"] in {"rss-hwm-reset", "ru_maxrss-delta"}
    # the same FNO weights, data and optimiser through both trainers: the same function learnt
    errors = payload["throughput"]["rel_l2_after_last_run"]
    assert errors["pdekit"] == pytest.approx(errors["neuralop"], rel=0.05)
    table = capsys.readouterr().out
    assert "fno" in table and "mgno" in table and "ratio R" in table

    # the dataset is generated once and reused
    setting = benchmark.Setting(resolution=16, n_train=8, n_test=4, epochs=1, batch_size=4)
    assert benchmark.make_dataset(setting, tmp_path / "data", 1) == Path(payload["meta"]["dataset"])
    assert "already complete" in capsys.readouterr().err


def test_unknown_model_is_refused(benchmark, tmp_path, capsys):
    assert benchmark.main(["--models", "fno,nope", "--data-dir", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_shared_options_cache_folder_and_device_check(benchmark, tmp_path, monkeypatch, capsys):
    common = benchmark._common  # experiments/_common.py, shared by the scripts
    monkeypatch.setenv("PDEKIT_CACHE", str(tmp_path))
    assert common.cache_dir("darcy_benchmark") == tmp_path / "darcy_benchmark"
    monkeypatch.delenv("PDEKIT_CACHE")
    assert common.cache_dir("x") == Path.home() / ".cache" / "pdekit" / "x"
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(["--device", "nope"])
    assert exit_info.value.code == 2 and "device 'nope' is not available" in capsys.readouterr().err
    out = common.write_json(tmp_path / "r.json", [{"a": 1}], common.run_meta("cpu", alone=True))
    payload = json.loads(out.read_text())
    assert list(payload) == ["meta", "results"] and payload["meta"]["alone"] is True
    assert {"date", "platform", "processor", "cores", "torch", "device_name", "threads"} <= set(
        payload["meta"])
    assert not (tmp_path / "r.json.tmp").exists()
