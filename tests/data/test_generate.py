import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from pdekit.core.solve_config import SolveConfig
from pdekit.data import generate, read_manifest, read_stats, shard_seed
from pdekit.data.schema import sha256_file
from pdekit.errors import DatasetError, PdekitUserError
from pdekit.pdes import get_pde

HERE = Path(__file__).parent


def _shas(root):
    m = read_manifest(root)
    return {e["path"]: e["sha256"] for entries in m["splits"].values() for e in entries}


def _files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file())


def test_layout_manifest_and_stats(smooth_ds):
    m = read_manifest(smooth_ds)
    assert m["complete"] and m["pde"] == "fake-smooth"
    assert m["generator"] == {"seed": 3, "shard_size": 4, "splits": {"train": 10, "test": 4}}
    assert [e["n_samples"] for e in m["splits"]["train"]] == [4, 4, 2]
    assert _files(smooth_ds) == ["manifest.json", "stats.json", "test/shard-00000.h5",
                                 "train/shard-00000.h5", "train/shard-00001.h5", "train/shard-00002.h5"]
    arrays = {"a": [], "u": []}
    ids = []
    for e in m["splits"]["train"]:
        assert sha256_file(smooth_ds / e["path"]) == e["sha256"]
        with h5py.File(smooth_ds / e["path"], "r") as f:
            ids += list(f["sample"][()])
            assert int(f.attrs["shard_seed"][0]) == shard_seed(3, "train", e["shard_index"])
            for k in arrays:
                arrays[k].append(f[k][()].astype(np.float64))
    assert ids == list(range(10))
    stats = read_stats(smooth_ds)
    assert stats["split"] == "train" and stats["n_samples"] == 10
    for k, parts in arrays.items():
        allv = np.concatenate(parts)
        assert stats["fields"][k]["mean"] == pytest.approx(allv.mean(), rel=1e-12)
        assert stats["fields"][k]["std"] == pytest.approx(allv.std(), rel=1e-10)


def test_shards_identical_for_one_or_two_workers(smooth_ds, tmp_path):
    family = get_pde("fake-smooth", resolution=8)
    generate(family, tmp_path / "w2", {"train": 10, "test": 4}, shard_size=4, seed=3, workers=2)
    assert _shas(tmp_path / "w2") == _shas(smooth_ds)


def test_dask_local_cluster_matches_serial_run(smooth_ds, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        family = get_pde("fake-smooth", resolution=8)
        generate(family, tmp_path / "dask", {"train": 10, "test": 4}, shard_size=4, seed=3,
                 dask=cluster.scheduler_address)
    assert _shas(tmp_path / "dask") == _shas(smooth_ds)


def test_resume_repairs_missing_corrupt_and_stray_files(smooth_ds, tmp_path):
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(smooth_ds, out)
    (out / "train/shard-00001.h5").unlink()
    with open(out / "train/shard-00002.h5", "r+b") as f:
        f.seek(3000)
        f.write(b"garbage")
    (out / "train/shard-00000.h5.tmp-12345").write_bytes(b"partial")
    m = json.loads((out / "manifest.json").read_text())
    m["complete"] = False
    m["splits"]["test"] = []  # killed after writing the test shard, before listing it
    (out / "manifest.json").write_text(json.dumps(m))
    summary = generate(get_pde("fake-smooth", resolution=8), out, {"train": 10, "test": 4},
                       shard_size=4, seed=3)
    assert summary.n_reused == 1 and summary.n_generated == 10
    assert any("shard-00002" in n for n in summary.notes)
    assert _shas(out) == _shas(smooth_ds)
    assert _files(out) == _files(smooth_ds)
    assert read_manifest(out)["complete"]


def test_resume_with_other_settings_is_refused_and_changes_nothing(smooth_ds, tmp_path):
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(smooth_ds, out)
    before = {p: sha256_file(out / p) for p in _files(out)}
    family = get_pde("fake-smooth", resolution=8)
    with pytest.raises(DatasetError, match="seed: 3 in the folder, 4 requested"):
        generate(family, out, {"train": 10, "test": 4}, shard_size=4, seed=4)
    with pytest.raises(DatasetError, match="resolution"):
        generate(get_pde("fake-smooth", resolution=6), out, {"train": 10, "test": 4}, shard_size=4, seed=3)
    assert {p: sha256_file(out / p) for p in _files(out)} == before


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        generate(get_pde("fake-smooth"), tmp_path, {"train": 2})
    assert _files(tmp_path) == ["notes.txt"]


def test_time_dependent_family(heat_ds):
    m = read_manifest(heat_ds)
    assert m["fields"] == {"u": {"dims": ["sample", "time", "x"], "shape": [6, 16]}}
    with h5py.File(heat_ds / "train/shard-00000.h5", "r") as f:
        assert f["u"].shape == (4, 6, 16) and f["u"].chunks == (1, 6, 16)
        assert f["time"][()].tolist() == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.5])


def _start(out, env):
    code = (
        "import fakepde; from pdekit.data import generate; from pdekit.pdes import get_pde; "
        f"generate(get_pde('fake-smooth', resolution=8, sleep=0.04), {str(out)!r}, "
        "{'train': 24, 'test': 8}, shard_size=4, seed=5)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _wait_for_shards(out, n, proc, timeout=60):
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        try:
            if sum(len(v) for v in read_manifest(out)["splits"].values()) >= n:
                return
        except DatasetError:
            pass
        time.sleep(0.01)
    raise AssertionError(f"{n} shards not listed in time (rc={proc.poll()})")


def test_kill9_and_resume_gives_exactly_the_requested_samples(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "killed"
    for n_done, extra_sleep in ((2, 0.07), (4, 0.02)):
        proc = _start(out, env)
        _wait_for_shards(out, n_done, proc)
        time.sleep(extra_sleep)  # land inside a solve or a write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    assert not read_manifest(out)["complete"]
    family = get_pde("fake-smooth", resolution=8, sleep=0.04)
    summary = generate(family, out, {"train": 24, "test": 8}, shard_size=4, seed=5)
    assert summary.n_reused >= 4
    ref = tmp_path / "ref"
    generate(family, ref, {"train": 24, "test": 8}, shard_size=4, seed=5)
    assert _shas(out) == _shas(ref)
    assert _files(out) == _files(ref)
    for split, n in (("train", 24), ("test", 8)):
        ids = []
        for e in read_manifest(out)["splits"][split]:
            assert sha256_file(out / e["path"]) == e["sha256"]
            with h5py.File(out / e["path"], "r") as f:
                ids += f["sample"][()].tolist()
        assert ids == list(range(n))


def test_bad_family_declarations_are_rejected(tmp_path):
    from dataclasses import dataclass
    from typing import ClassVar

    import fakepde

    @dataclass(frozen=True)
    class BadDims(fakepde.FakeSmooth):
        name: ClassVar[str] = "bad-dims"

        def field_dims(self):
            return {"a": ("x", "sample")}

    with pytest.raises(ValueError, match="expected"):
        generate(BadDims(), tmp_path / "x", {"train": 2})
    assert not (tmp_path / "x").exists()


# -- solver settings: one SolveConfig, recorded in full, older manifests still resume ----------
def _rewrite_solver(root, solver):
    """Make a manifest look like an older one: a partial ``generator.solver`` entry, or none."""
    m = json.loads((root / "manifest.json").read_text())
    if solver is None:
        m["generator"].pop("solver")
    else:
        m["generator"]["solver"] = solver
    (root / "manifest.json").write_text(json.dumps(m))


def test_solver_config_is_recorded_in_full_and_rebuilt_on_resume(tmp_path):
    fam = get_pde("poisson", resolution=9)
    out = tmp_path / "ds"
    generate(fam, out, {"train": 4}, shard_size=2, solver={"method": "rcg", "rtol": "1e-9"})
    stored = read_manifest(out)["generator"]["solver"]
    assert stored == SolveConfig(method="rcg", rtol=1e-9).to_dict()
    with h5py.File(out / "train" / "shard-00000.h5") as f:
        assert float(f["rel_residual"][:].max()) <= 1e-9 * (1 + 1e-6)
    # an older dataset recorded only the options given: still the same settings, so it resumes
    _rewrite_solver(out, {"method": "rcg", "rtol": 1e-9})
    (out / "train" / "shard-00001.h5").unlink()
    summary = generate(fam, out, {"train": 4}, shard_size=2,
                       solver=SolveConfig(method="rcg", rtol=1e-9))
    assert summary.n_generated == 2 and summary.n_reused == 1
    assert read_manifest(out)["generator"]["solver"] == {"method": "rcg", "rtol": 1e-9}
    with pytest.raises(DatasetError, match="generator.solver.method"):
        generate(fam, out, {"train": 4}, shard_size=2, solver={"method": "cg", "rtol": 1e-9})


def test_a_manifest_without_solver_entry_means_the_family_default(tmp_path):
    fam = get_pde("helmholtz", resolution=9)
    out = tmp_path / "ds"
    generate(fam, out, {"train": 2}, shard_size=2)
    stored = read_manifest(out)["generator"]["solver"]
    assert SolveConfig.from_dict(stored) == fam.solve_config()
    assert stored["method"] == "gcrodr" and stored["preconditioner"] == "mg"
    _rewrite_solver(out, None)
    assert generate(fam, out, {"train": 2}, shard_size=2).n_generated == 0
    assert "solver" not in read_manifest(out)["generator"]
    with pytest.raises(DatasetError, match="generator.solver"):
        generate(fam, out, {"train": 2}, shard_size=2, solver={"method": "gmres"})


def test_the_committed_sample_dataset_resumes_with_its_recipe(tmp_path):
    import shutil

    import yaml

    root = HERE.parents[1]
    recipe = yaml.safe_load((root / "data" / "sample.yaml").read_text())
    out = tmp_path / "sample"
    shutil.copytree(root / "data" / "sample", out)
    before = (out / "manifest.json").read_text()
    summary = generate(get_pde(recipe["pde"], **recipe["params"]), out, recipe["splits"],
                       seed=recipe["seed"], shard_size=recipe["shard_size"],
                       solver=recipe["solver"])
    assert summary.n_generated == 0 and summary.n_reused == 5
    assert json.loads((out / "manifest.json").read_text()) == json.loads(before)


@pytest.mark.parametrize(
    "pde, solver, message",
    [
        ("poisson", {"tol": 1e-6}, "unknown solver option 'tol'; allowed: method, rtol"),
        ("poisson", {"method": "minres"}, "poisson: method must be one of"),
        ("poisson", {"n_chains": 0}, "SolveConfig.n_chains must be an integer >= 1"),
        ("helmholtz", {"method": "cg"}, "helmholtz: method must be one of spsolve, gmres, gcrodr"),
        ("heat", {"n_chains": 4}, "heat does not use n_chains"),
        ("fake-smooth", {"method": "cg"}, "fake-smooth takes no solver option 'method'"),
    ],
)
def test_bad_solver_settings_write_nothing(tmp_path, pde, solver, message):
    out = tmp_path / "ds"
    params = {"resolution": 9} if pde != "heat" else {"resolution": 9, "ndim": 1}
    with pytest.raises(PdekitUserError) as err:
        generate(get_pde(pde, **params), out, {"train": 2}, solver=solver)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.exists()
