import pickle

import h5py
import numpy as np
import pytest
import torch

from pdekit.data import PDEDataset, read_manifest, read_stats
from pdekit.errors import DatasetError


def _raw(root, field, split="train"):
    parts = []
    for e in read_manifest(root)["splits"][split]:
        with h5py.File(root / e["path"], "r") as f:
            parts.append(f[field][()])
    return np.concatenate(parts)


def test_items_are_channels_first_and_normalised(smooth_ds):
    ds = PDEDataset(smooth_ds, "train", inputs=("a",), targets=("u",))
    assert len(ds) == 10 and ds.in_channels == 1 and ds.out_channels == 1
    assert ds.spatial_shape == (8, 8)
    x, y = ds[7]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    s = read_stats(smooth_ds)["fields"]
    a, u = _raw(smooth_ds, "a"), _raw(smooth_ds, "u")
    np.testing.assert_allclose(x[0].numpy(), (a[7] - s["a"]["mean"]) / s["a"]["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.denormalize(y[None])[0, 0].numpy(), u[7], rtol=1e-5, atol=1e-6)
    ys = torch.stack([ds[i][1] for i in range(len(ds))])
    assert abs(float(ys.double().mean())) < 1e-5 and float(ys.double().std(unbiased=False)) == pytest.approx(1, abs=1e-5)
    raw = PDEDataset(smooth_ds, "test", inputs=("a", "u"), targets=("u",), normalize=False)
    x, _ = raw[3]
    assert x.shape == (2, 8, 8)
    np.testing.assert_array_equal(x[1].numpy(), _raw(smooth_ds, "u", "test")[3])


def test_subsampling_in_every_spatial_dimension(smooth_ds):
    a = _raw(smooth_ds, "a")
    ds = PDEDataset(smooth_ds, inputs=("a",), targets=("u",), normalize=False, subsample=2)
    assert ds.spatial_shape == (4, 4)
    np.testing.assert_array_equal(ds[5][0][0].numpy(), a[5, ::2, ::2])
    ds = PDEDataset(smooth_ds, inputs=("a",), targets=("u",), normalize=False, subsample=(1, 3))
    assert ds[5][0].shape == (1, 8, 3)
    np.testing.assert_array_equal(ds[5][0][0].numpy(), a[5, :, ::3])
    with pytest.raises(ValueError, match="subsample"):
        PDEDataset(smooth_ds, subsample=(1, 2, 3))


def test_time_windows(heat_ds):
    u = _raw(heat_ds, "u")  # (6, 6, 16)
    whole = PDEDataset(heat_ds, inputs=("u",), targets=("u",), normalize=False)
    assert len(whole) == 6 and whole[2][0].shape == (6, 16)
    ds = PDEDataset(heat_ds, inputs=("u",), targets=("u",), normalize=False, time_window=(2, 1))
    assert len(ds) == 6 * 4 and (ds.in_channels, ds.out_channels) == (2, 1)
    x, y = ds[4 * 5 + 3]  # sample 5, window start 3
    np.testing.assert_array_equal(x.numpy(), u[5, 3:5])
    np.testing.assert_array_equal(y.numpy(), u[5, 5:6])
    strided = PDEDataset(heat_ds, inputs=("u",), targets=("u",), normalize=False,
                         time_window=(1, 2), window_stride=2, subsample=4)
    assert len(strided) == 6 * 2
    np.testing.assert_array_equal(strided[1][1].numpy(), u[0, 3:5, ::4])
    with pytest.raises(ValueError, match="longer"):
        PDEDataset(heat_ds, inputs=("u",), targets=("u",), time_window=(4, 3))


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_multi_worker_dataloader_reads_lazily(smooth_ds, context):
    ds = PDEDataset(smooth_ds, inputs=("a",), targets=("u",))
    expect = torch.stack([ds[i][0] for i in range(len(ds))])  # opens files in this process
    assert ds._files
    loader = torch.utils.data.DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context=context)
    got = torch.cat([x for x, _ in loader])
    torch.testing.assert_close(got, expect, rtol=0, atol=0)


def test_pickling_drops_open_files(smooth_ds):
    ds = PDEDataset(smooth_ds, max_open_files=1)
    ds[0], ds[9]
    assert len(ds._files) == 1  # at most max_open_files stay open
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._files == {}
    torch.testing.assert_close(clone[9], ds[9])
    ds.close()


def test_clear_errors_for_foreign_input(smooth_ds, tmp_path):
    with pytest.raises(DatasetError, match="not a pdekit dataset"):
        PDEDataset(tmp_path)
    foreign = tmp_path / "other.h5"
    with h5py.File(foreign, "w") as f:
        f["tensor"] = np.zeros((2, 4))
    with pytest.raises(DatasetError, match="not a pdekit dataset: .* is an HDF5 file"):
        PDEDataset(foreign)
    with pytest.raises(DatasetError, match="no field 'w'"):
        PDEDataset(smooth_ds, inputs=("w",))
    with pytest.raises(DatasetError, match="no split 'valid'"):
        PDEDataset(smooth_ds, "valid")


def test_foreign_shard_file_is_reported_on_read(smooth_ds, tmp_path):
    import shutil

    out = tmp_path / "ds"
    shutil.copytree(smooth_ds, out)
    with h5py.File(out / "test/shard-00000.h5", "w") as f:
        f["a"] = np.zeros((4, 8, 8), np.float32)
    ds = PDEDataset(out, "test")
    with pytest.raises(DatasetError, match="not a pdekit shard"):
        ds[0]
