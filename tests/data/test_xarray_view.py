import numpy as np
import pytest

from pdekit.data import PDEDataset, open_xarray
from pdekit.errors import DatasetError


def test_one_dataset_over_all_shards(smooth_ds):
    ds = open_xarray(smooth_ds, "train")
    assert ds.sizes == {"sample": 10, "x": 8, "y": 8}
    np.testing.assert_array_equal(ds["sample"].values, np.arange(10))
    assert ds["a"].dims == ("sample", "x", "y") and ds["a"].dtype == np.float32
    raw = PDEDataset(smooth_ds, inputs=("a",), targets=("u",), normalize=False)
    for i in (0, 4, 9):
        np.testing.assert_array_equal(ds["u"].isel(sample=i).values, raw[i][1][0].numpy())
    assert ds["iterations"].shape == (10,)
    assert ds.attrs["pde"] == "fake-smooth" and ds.attrs["split"] == "train"
    assert "shard_index" not in ds.attrs
    assert float(ds["a"].mean()) == pytest.approx(float(raw.stats["a"]["mean"]), rel=1e-5)


def test_time_dependent_coords(heat_ds):
    ds = open_xarray(heat_ds)
    assert ds["u"].dims == ("sample", "time", "x")
    assert ds.sizes["sample"] == 6 and ds["time"].values[-1] == pytest.approx(0.5)


def test_unknown_split(smooth_ds):
    with pytest.raises(DatasetError, match="no split"):
        open_xarray(smooth_ds, "valid")
