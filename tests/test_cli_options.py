"""CLI options added on top of the dataset engine: solver options, time-dependent flags, train/evaluate."""

import json

import h5py
import pytest

from pdekit.cli import main
from pdekit.core.solve_config import SolveConfig


def test_solver_options_reach_the_family_and_the_manifest(tmp_path):
    out = tmp_path / "d"
    argv = ["generate", "darcy", "--resolution", "12", "--n-samples", "3", "--method", "rcg",
            "--ordering", "pca", "--rtol", "1e-9", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    # the full configuration is recorded, under the flags' names
    expected = SolveConfig(method="rcg", ordering="pca", rtol=1e-9)
    assert manifest["generator"]["solver"] == expected.to_dict()
    assert SolveConfig.from_dict(manifest["generator"]["solver"]) == expected
    with h5py.File(out / "train" / "shard-00000.h5") as f:
        assert f["iterations"][:].min() > 0          # a Krylov method ran, not spsolve
        assert f["rel_residual"][:].max() <= 1e-9
    # resuming with another solver is refused and leaves the folder untouched
    before = sorted(p.name for p in (out / "train").iterdir())
    assert main([*argv[:6], "--method", "spsolve", "--out", str(out), "--no-progress"]) == 2
    assert sorted(p.name for p in (out / "train").iterdir()) == before


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--method", "magic"], "method must be one of"),
        (["--ordering", "sideways", "--method", "rcg"], "ordering must be one of"),
        (["--nu", "-1"], "positive number"),
    ],
)
def test_bad_solver_options_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "d"
    code = main(["generate", "darcy", "--resolution", "12", "--n-samples", "2", *extra, "--out", str(out)])
    assert code == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_time_dependent_flags_and_root_attributes(tmp_path):
    out = tmp_path / "ns"
    argv = ["generate", "navier-stokes", "--n-samples", "1", "--resolution", "16", "--nu", "1e-3",
            "--t-final", "0.02", "--n-records", "2", "--param", "dt=1e-3", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    with h5py.File(out / "train" / "shard-00000.h5") as f:
        assert f.attrs["nu"] == pytest.approx(1e-3)
        assert f["w"].shape == (1, 3, 16, 16)
        assert f["time"][:] == pytest.approx([0.0, 0.01, 0.02])


def test_solver_option_a_family_does_not_take(tmp_path, capsys):
    out = tmp_path / "b"
    code = main(["generate", "burgers", "--n-samples", "1", "--resolution", "32", "--method", "cg",
                 "--out", str(out)])
    assert code == 2 and not out.exists()
    assert "takes no solver option 'method'" in capsys.readouterr().err


def test_train_and_evaluate_user_errors_are_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert main(["evaluate", str(tmp_path / "missing.pt"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("pdekit: error:") for line in err)
