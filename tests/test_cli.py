import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pdekit
from pdekit.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _register_fake_families():
    """Import tests/data/fakepde.py (registers fake-smooth) unless the data tests already did."""
    import importlib.util

    if "fakepde" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fakepde", ROOT / "tests" / "data" / "fakepde.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["fakepde"] = module
        spec.loader.exec_module(module)


_register_fake_families()


def run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_version_and_help(capsys):
    code, out, _ = run(["--version"], capsys)
    assert code == 0 and out.strip() == f"pdekit {pdekit.__version__}"
    code, out, _ = run(["generate", "--help"], capsys)
    assert code == 0
    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    for action in generate._actions:
        for flag in action.option_strings:
            assert flag in out
        assert action.help and action.help.split()[0] in out
    assert "resume" in out


def test_generate_info_verify_round_trip(tmp_path, capsys):
    out_dir = tmp_path / "ds"
    code, out, err = run(["generate", "fake-smooth", "--resolution", "6", "--split", "train=6,test=2",
                          "--shard-size", "4", "--seed", "1", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0, err
    assert "samples/s" in out and "mean solver iterations 4.0" in out
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["params"]["resolution"] == 6 and manifest["generator"]["seed"] == 1
    code, out, _ = run(["info", str(out_dir)], capsys)
    assert code == 0 and "fake-smooth" in out and "train: 6/6 samples in 2 shards" in out
    code, out, _ = run(["verify", str(out_dir)], capsys)
    assert code == 0 and out.startswith("OK")
    shard = out_dir / "train/shard-00001.h5"
    shard.write_bytes(shard.read_bytes()[:-100])
    code, out, _ = run(["verify", str(out_dir)], capsys)
    assert code == 1 and "train/shard-00001.h5: checksum mismatch" in out
    # same command again repairs the damaged shard
    code, out, _ = run(["generate", "fake-smooth", "--resolution", "6", "--split", "train=6,test=2",
                        "--shard-size", "4", "--seed", "1", "--no-progress", "--out", str(out_dir)], capsys)
    assert code == 0 and "2 shards kept" in out
    assert run(["verify", str(out_dir)], capsys)[0] == 0


def test_generate_from_config_with_overrides(tmp_path, capsys):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text("pde: fake-smooth\nparams: {resolution: 5}\nsplits: {train: 3}\nshard_size: 2\n"
                   f"out: {tmp_path / 'from-config'}\n")
    code, _, err = run(["generate", "--config", str(cfg), "--seed", "7", "--no-progress"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "from-config" / "manifest.json").read_text())
    assert m["params"]["resolution"] == 5 and m["generator"]["seed"] == 7
    assert m["generator"]["splits"] == {"train": 3} and m["generator"]["shard_size"] == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["generate", "no-such-pde", "--n-samples", "4"], "unknown PDE 'no-such-pde'"),
        (["generate", "fake-smooth", "--n-samples", "0"], "--n-samples: expected a positive integer"),
        (["generate", "fake-smooth", "--split", "train=x"], "--split: expected a positive integer"),
        (["generate", "fake-smooth", "--split", "train"], "--split: expected NAME=COUNT"),
        (["generate", "fake-smooth", "--n-samples", "5", "--split", "train=3,test=1"], "adds up to 4"),
        (["generate", "fake-smooth", "--n-samples", "4", "--device", "tpu"], "--device: expected cpu"),
        (["generate", "fake-smooth", "--n-samples", "4", "--param", "viscosity=1"], "no parameter(s) viscosity"),
        (["generate", "fake-smooth", "--n-samples", "4", "--shard-size", "-1"], "--shard-size"),
        (["generate", "fake-smooth", "--n-samples", "4", "--workers", "two"], "--workers"),
        (["generate", "fake-smooth", "--split", "tr/ain=3"], "bad split name"),
        (["generate", "fake-smooth", "--n-samples", "4", "--config", "missing.yaml"], "cannot read config"),
        (["generate", "--n-samples", "4"], "no PDE given"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    out_dir = tmp_path / "never"
    code, out, err = run([*argv, "--out", str(out_dir)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and message in lines[0], err
    assert not out_dir.exists()


def test_resume_with_other_settings_is_an_error(tmp_path, capsys):
    args = ["generate", "fake-smooth", "--n-samples", "3", "--no-progress", "--out", str(tmp_path / "d")]
    assert run(args, capsys)[0] == 0
    before = (tmp_path / "d" / "manifest.json").read_text()
    code, _, err = run([*args, "--seed", "9"], capsys)
    assert code == 2 and "seed: 0 in the folder, 9 requested" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "d" / "manifest.json").read_text() == before


def test_foreign_paths(tmp_path, capsys):
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["data"] = [1, 2]
    code, _, err = run(["info", str(tmp_path / "x.h5")], capsys)
    assert code == 2 and "not a pdekit dataset" in err and "HDF5 file" in err
    code, out, _ = run(["verify", str(tmp_path)], capsys)
    assert code == 1 and "not a pdekit dataset" in out


def test_info_without_argument_lists_versions_and_devices(capsys):
    code, out, _ = run(["info"], capsys)
    assert code == 0
    for name in ("pdekit", "torch", "numpy", "scipy", "h5py", "xarray", "neuraloperator", "deepxde",
                 "threads", "devices"):
        assert any(line.startswith(name) for line in out.splitlines()), name


def test_console_entry_point_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pdekit.cli", "generate", "no-such-pde", "--n-samples", "2",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("pdekit: error: unknown PDE") and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()


def test_recipes_are_valid_configs():
    from pdekit.cli import _load_config
    from pdekit.pdes import available_pdes, get_pde

    recipes = sorted((ROOT / "data").glob("*.yaml"))
    assert {"darcy64.yaml", "sample.yaml"} <= {p.name for p in recipes}
    for path in recipes:
        cfg = _load_config(str(path))
        assert {"pde", "params", "splits", "out"} <= set(cfg), path.name
        assert "resolution" in cfg["params"]
        if cfg["pde"] in available_pdes():  # families written elsewhere: check the params if present
            get_pde(cfg["pde"], **cfg["params"])
