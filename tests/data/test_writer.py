import h5py
import numpy as np
import pytest
import xarray as xr

from pdekit.data.schema import sha256_file
from pdekit.data.writer import write_shard


def _shard(tmp_path, name="s.h5", seed=0):
    rng = np.random.default_rng(seed)
    fields = {"a": rng.random((3, 4, 5)), "u": rng.standard_normal((3, 2, 4, 5))}
    dims = {"a": ("sample", "x", "y"), "u": ("sample", "time", "x", "y")}
    coords = {"x": np.linspace(0, 1, 4), "y": np.linspace(0, 2, 5), "time": np.array([0.0, 0.5])}
    digest = write_shard(
        tmp_path / name, fields, dims, coords, np.arange(10, 13), np.array([5, 6, 7]),
        np.array([1e-6, 2e-6, 3e-6]), {"pde": "demo", "params": {"resolution": 4}, "seed": 1},
    )
    return tmp_path / name, fields, coords, digest


def test_round_trip_h5py_and_xarray_read_identical_arrays(tmp_path):
    path, fields, coords, digest = _shard(tmp_path)
    assert digest == sha256_file(path)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # no temporary file left
    with h5py.File(path, "r") as f:
        h5 = {k: f[k][()] for k in ("a", "u", "x", "y", "time", "sample", "iterations", "rel_residual")}
        assert f["a"].dtype == np.float32 and f["u"].dtype == np.float32
        assert f.attrs["pde"] == "demo" and f.attrs["format"] == "pdekit"
    ds = xr.open_dataset(path, engine="h5netcdf")
    try:
        assert ds["u"].dims == ("sample", "time", "x", "y")
        assert ds["a"].dims == ("sample", "x", "y")
        for k in ("a", "u"):
            np.testing.assert_array_equal(ds[k].values, h5[k])
            np.testing.assert_array_equal(h5[k], fields[k].astype(np.float32))
        for k in ("x", "y", "time"):
            np.testing.assert_array_equal(ds[k].values, coords[k])
        np.testing.assert_array_equal(ds["sample"].values, [10, 11, 12])
        assert ds["iterations"].dtype == np.int32
        np.testing.assert_array_equal(ds["iterations"].values, [5, 6, 7])
        np.testing.assert_array_equal(ds["rel_residual"].values, h5["rel_residual"])
        assert ds.attrs["params"] == '{"resolution": 4}'
        assert int(ds.attrs["format_version"]) == 1
    finally:
        ds.close()


def test_same_content_gives_same_bytes(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, _, _, d1 = _shard(tmp_path / "a")
    _, _, _, d2 = _shard(tmp_path / "b")
    _, _, _, d3 = _shard(tmp_path / "a", name="t.h5", seed=1)
    assert d1 == d2 != d3


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_shard(tmp_path / "s.h5", {"a": np.zeros((2, 3))}, {"a": ("sample", "x", "y")}, {},
                    np.arange(2), np.zeros(2), np.zeros(2), {})
    assert list(tmp_path.iterdir()) == []
