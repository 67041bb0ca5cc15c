import json
import shutil

import h5py
import numpy as np
import pytest

from pdekit.data import verify
from pdekit.data.schema import sha256_file


@pytest.fixture
def copy(smooth_ds, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(smooth_ds, out)
    return out


def test_sound_dataset_is_ok(smooth_ds):
    report = verify(smooth_ds)
    assert report.ok, str(report)
    assert report.n_files == 4 and report.n_samples == 14
    assert str(report).startswith("OK")


def test_corrupt_shard_is_detected(copy):
    path = copy / "train/shard-00001.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify(copy)
    assert not report.ok
    assert any("train/shard-00001.h5: checksum mismatch" in p for p in report.problems)


def test_truncated_file_is_detected(copy):
    path = copy / "train/shard-00000.h5"
    path.write_bytes(path.read_bytes()[:1000])
    problems = verify(copy).problems
    assert any("shard-00000.h5: checksum mismatch" in p for p in problems)
    assert any("shard-00000.h5: unreadable HDF5 file" in p for p in problems)


def test_nan_values_and_missing_files_are_detected(copy):
    path = copy / "train/shard-00002.h5"
    with h5py.File(path, "r+") as f:
        u = f["u"][()]
        u[1, 2, 3] = np.nan
        u[0, 0, 0] = np.inf
        f["u"][...] = u
    m = json.loads((copy / "manifest.json").read_text())
    m["splits"]["train"][2]["sha256"] = sha256_file(path)  # a consistent but bad shard
    (copy / "manifest.json").write_text(json.dumps(m))
    (copy / "test/shard-00000.h5").unlink()
    problems = verify(copy).problems
    assert "train/shard-00002.h5: field 'u' holds 2 NaN/inf values" in problems
    assert "test/shard-00000.h5: file is missing" in problems


def test_foreign_hdf5_shard_and_foreign_folder(copy, tmp_path):
    with h5py.File(copy / "test/shard-00000.h5", "w") as f:
        f["tensor"] = np.zeros(3)
    assert any("not a pdekit shard" in p for p in verify(copy).problems)
    (tmp_path / "empty").mkdir()
    assert verify(tmp_path / "empty").problems[0].startswith("not a pdekit dataset")


def test_incomplete_generation_is_reported(copy):
    m = json.loads((copy / "manifest.json").read_text())
    m["complete"] = False
    del m["splits"]["train"][1]
    (copy / "manifest.json").write_text(json.dumps(m))
    problems = verify(copy).problems
    assert any("did not finish" in p for p in problems)
    assert any("split 'train': 1 of 3 shards not in the manifest (indices 1)" in p for p in problems)
