"""Tests of pdekit.data.importers on small synthetic files in the PDEBench and Well layouts."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest
import torch

from pdekit.data.importers import (
    ImportedDataset,
    detect_layout,
    open_imported,
    open_pdebench,
    open_the_well,
)
from pdekit.errors import DatasetError

RNG = np.random.default_rng(0)


# --------------------------------------------------------------------------- file builders
@pytest.fixture
def burgers_file(tmp_path):
    """PDEBench 1-D Burgers: tensor (N, T, X), x-coordinate, t-coordinate (T + 1), no attrs."""
    path = tmp_path / "1D_Burgers_Sols_Nu0.01.hdf5"
    data = {
        "tensor": RNG.standard_normal((4, 5, 16)).astype(np.float32),
        "x": (np.arange(16) + 0.5) / 16,
        "t": np.arange(6) * 0.05,
    }
    with h5py.File(path, "w") as f:
        f["tensor"] = data["tensor"]
        f["x-coordinate"] = data["x"]
        f["t-coordinate"] = data["t"]
    return path, data


@pytest.fixture
def darcy_file(tmp_path):
    """PDEBench 2-D Darcy: nu (N, X, Y), tensor (N, 1, X, Y), x-/y-coordinate, attr beta."""
    path = tmp_path / "2D_DarcyFlow_beta1.0_Train.hdf5"
    data = {
        "nu": RNG.uniform(0.1, 1, (3, 8, 6)).astype(np.float32),
        "tensor": RNG.standard_normal((3, 1, 8, 6)).astype(np.float32),
        "x": (np.arange(8) + 0.5) / 8,
        "y": (np.arange(6) + 0.5) / 6,
    }
    with h5py.File(path, "w") as f:
        f["nu"] = data["nu"]
        f["tensor"] = data["tensor"]
        f["x-coordinate"] = data["x"]
        f["y-coordinate"] = data["y"]
        f.attrs["beta"] = 1.0
    return path, data


@pytest.fixture
def seeds_file(tmp_path):
    """PDEBench per-sample groups (2-D diffusion-reaction): <seed>/data (T, X, Y, 2), grid."""
    path = tmp_path / "2D_diff-react_NA_NA.h5"
    data = RNG.standard_normal((3, 4, 8, 8, 2)).astype(np.float32)
    x = np.linspace(-1, 1, 8)
    t = np.linspace(0, 5, 4)
    with h5py.File(path, "w") as f:
        for s in range(3):
            g = f.create_group(f"{s:04d}")
            g["data"] = data[s]
            g["grid/x"] = x
            g["grid/y"] = x
            g["grid/t"] = t
            g.attrs["config"] = "sim: {dt: 0.01}"
    return path, {"data": data, "x": x, "t": t}


@pytest.fixture
def well_file(tmp_path):
    """A Well file: 2-D, 3 trajectories, 4 steps, scalar/vector/tensor fields, a constant field,
    scalars and boundary conditions (periodic in x, wall in y)."""
    path = tmp_path / "gray_scott_F_0.014.hdf5"
    B, T, W, H = 3, 4, 8, 6
    d = {
        "A": RNG.standard_normal((B, T, W, H)).astype(np.float32),
        "c": RNG.standard_normal((W, H)).astype(np.float32),
        "velocity": RNG.standard_normal((B, T, W, H, 2)).astype(np.float32),
        "stress": RNG.standard_normal((B, T, W, H, 2, 2)).astype(np.float32),
        "time": np.arange(T, dtype=np.float32) * 0.5,
        "x": np.linspace(0, 1, W, endpoint=False).astype(np.float32),
        "y": np.linspace(-1, 1, H).astype(np.float32),
        "energy": RNG.standard_normal((B, T)).astype(np.float32),
    }
    wall = np.zeros(H, dtype=bool)
    wall[[0, -1]] = True
    with h5py.File(path, "w") as f:
        f.attrs.update(dataset_name="gray_scott", grid_type="cartesian", n_spatial_dims=2,
                       n_trajectories=B, simulation_parameters=["F", "k"], F=0.014, k=0.054)
        g = f.create_group("dimensions")
        g.attrs["spatial_dims"] = ["x", "y"]
        for k in ("time", "x", "y"):
            g[k] = d[k]
            g[k].attrs.update(sample_varying=False, time_varying=False)
        bc = f.create_group("boundary_conditions")
        p = bc.create_group("x_periodic")
        p.attrs.update(associated_dims=["x"], associated_fields=[], bc_type="PERIODIC",
                       sample_varying=False, time_varying=False)
        p["mask"] = np.ones(W, dtype=bool)
        w = bc.create_group("y_wall")
        w.attrs.update(associated_dims=["y"], associated_fields=["A"], bc_type="WALL",
                       sample_varying=False, time_varying=False)
        w["mask"] = wall
        w["values"] = np.zeros(2, dtype=np.float32)
        s = f.create_group("scalars")
        s.attrs["field_names"] = ["F", "k", "energy"]
        for k in ("F", "k"):
            s[k] = f.attrs[k]
            s[k].attrs.update(sample_varying=False, time_varying=False)
        s["energy"] = d["energy"]
        s["energy"].attrs.update(sample_varying=True, time_varying=True)
        for order, names in ((0, ["A", "c"]), (1, ["velocity"]), (2, ["stress"])):
            g = f.create_group(f"t{order}_fields")
            g.attrs["field_names"] = names
            for name in names:
                g[name] = d[name]
                const = name == "c"
                g[name].attrs.update(dim_varying=[True, True], sample_varying=not const,
                                     time_varying=not const)
                if order == 2:
                    g[name].attrs.update(symmetric=False, antisymmetric=False)
    return path, d


# ------------------------------------------------------------------------------- PDEBench
def test_pdebench_burgers_xarray(burgers_file):
    path, d = burgers_file
    ds = open_pdebench(path)
    assert set(ds.data_vars) == {"u"}
    assert ds.u.dims == ("sample", "time", "x")
    np.testing.assert_array_equal(ds.u.values, d["tensor"])
    np.testing.assert_allclose(ds.x.values, d["x"])
    np.testing.assert_allclose(ds.time.values, d["t"][:5])  # one t value more than time steps
    np.testing.assert_allclose(ds.attrs["source_t_coordinate"], d["t"])
    assert ds.attrs["nu"] == 0.01  # from the file name
    assert ds.attrs["source_format"] == "pdebench" and ds.sample.values.tolist() == [0, 1, 2, 3]
    assert detect_layout(path) == "pdebench"
    ds.close()


def test_pdebench_darcy_xarray(darcy_file):
    path, d = darcy_file
    ds = open_imported(path, lazy=False)
    assert ds.a.dims == ("sample", "x", "y") and ds.u.dims == ("sample", "x", "y")
    np.testing.assert_array_equal(ds.a.values, d["nu"])
    np.testing.assert_array_equal(ds.u.values, d["tensor"][:, 0])
    np.testing.assert_allclose(ds.x.values, d["x"])
    np.testing.assert_allclose(ds.y.values, d["y"])
    assert ds.attrs["beta"] == 1.0 and "time" not in ds.dims
    custom = open_pdebench(path, rename={"nu": "coefficient"}, lazy=False)
    assert set(custom.data_vars) == {"coefficient", "u"}


def test_pdebench_per_sample_groups(seeds_file):
    path, d = seeds_file
    ds = open_pdebench(path)
    assert set(ds.data_vars) == {"u_0", "u_1"}
    assert ds.u_1.dims == ("sample", "time", "x", "y")
    np.testing.assert_array_equal(ds.u_0.values, d["data"][..., 0])
    np.testing.assert_array_equal(ds.u_1.values, d["data"][..., 1])
    np.testing.assert_allclose(ds.time.values, d["t"])
    np.testing.assert_allclose(ds.y.values, d["x"])
    assert ds.attrs["config"] == "sim: {dt: 0.01}"
    assert ds.attrs["sample_keys"] == ["0000", "0001", "0002"]
    ds.close()


# ------------------------------------------------------------------------------- The Well
def test_the_well_xarray(well_file):
    path, d = well_file
    ds = open_the_well(path)
    expected = {"A", "c", "velocity_x", "velocity_y", "stress_xx", "stress_xy", "stress_yx",
                "stress_yy", "energy", "F", "k", "bc_x_periodic_mask", "bc_y_wall_mask"}
    assert set(ds.data_vars) == expected
    assert ds.A.dims == ("sample", "time", "x", "y") and ds.c.dims == ("x", "y")
    np.testing.assert_array_equal(ds.A.values, d["A"])
    np.testing.assert_array_equal(ds.c.values, d["c"])
    np.testing.assert_array_equal(ds.velocity_y.values, d["velocity"][..., 1])
    np.testing.assert_array_equal(ds.stress_yx.values, d["stress"][..., 1, 0])
    np.testing.assert_array_equal(ds.energy.values, d["energy"])
    assert ds.energy.dims == ("sample", "time") and float(ds.F) == pytest.approx(0.014)
    for k in ("time", "x", "y"):
        np.testing.assert_allclose(ds[k].values, d[k])
    a = ds.attrs
    assert a["dataset_name"] == "gray_scott" and a["grid_type"] == "cartesian"
    assert a["n_spatial_dims"] == 2 and a["n_trajectories"] == 3
    assert a["simulation_parameters"] == ["F", "k"] and a["F"] == pytest.approx(0.014)
    assert a["bc_x"] == "periodic" and a["bc_y"] == "wall"
    bcs = json.loads(a["boundary_conditions"])
    assert bcs["y_wall"]["associated_fields"] == ["A"] and bcs["y_wall"]["mask"][0] == 1
    assert ds.bc_y_wall_mask.dims == ("y",) and ds.bc_y_wall_mask.values.tolist() == [1, 0, 0, 0, 0, 1]
    assert a["source_format"] == "the-well" and detect_layout(path) == "the-well"
    ds.close()


# ------------------------------------------------------------------------- torch Dataset
def test_imported_dataset_windows_subsample_and_normalisation(well_file):
    path, d = well_file
    ds = ImportedDataset(path, ("A", "c"), ("velocity_x", "velocity_y"), time_window=(2, 1),
                         subsample=(2, 1))
    assert len(ds) == 3 * 2 and ds.layout == "the-well"
    assert ds.in_channels == 3 and ds.out_channels == 2 and ds.spatial_shape == (4, 6)
    x, y = ds[3]  # sample 1, window start 1
    assert x.shape == (3, 4, 6) and y.shape == (2, 4, 6) and x.dtype == torch.float32
    sa, sc = ds.stats["A"], ds.stats["c"]
    assert sa["mean"] == pytest.approx(d["A"].astype(np.float64).mean())
    assert sa["std"] == pytest.approx(d["A"].astype(np.float64).std())
    np.testing.assert_allclose(x[:2].numpy(), (d["A"][1, 1:3, ::2] - sa["mean"]) / sa["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[2].numpy(), (d["c"][::2] - sc["mean"]) / sc["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ds.denormalize(y).numpy(), d["velocity"][1, 3, ::2].transpose(2, 0, 1), rtol=1e-5, atol=1e-5)
    # picklable for DataLoader workers (the open file handle is dropped)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[3][0], x)
    loader = torch.utils.data.DataLoader(ds, batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 3, 4, 6)


def test_imported_dataset_pdebench_train_test_split(burgers_file):
    path, d = burgers_file
    train = ImportedDataset(path, ("u",), ("u",), time_window=(1, 1), samples=slice(0, 3))
    test = ImportedDataset(path, ("u",), ("u",), time_window=(1, 1), samples=[3],
                           stats=train.stats)
    assert len(train) == 3 * 4 and len(test) == 4
    m = d["tensor"][:3].astype(np.float64)
    assert train.stats["u"]["mean"] == pytest.approx(m.mean())
    x, y = test[2]
    s = train.stats["u"]
    np.testing.assert_allclose(x[0].numpy(), (d["tensor"][3, 2] - s["mean"]) / s["std"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y[0].numpy(), (d["tensor"][3, 3] - s["mean"]) / s["std"], rtol=1e-5, atol=1e-6)
    raw = ImportedDataset(path, ("u",), ("u",), normalize=False)
    assert raw[1][0].shape == (5, 16) and torch.equal(raw[1][1], torch.from_numpy(d["tensor"][1]))


def test_imported_dataset_darcy_and_groups(darcy_file, seeds_file):
    ds = ImportedDataset(darcy_file[0], ("a",), ("u",), normalize=False)
    x, y = ds[2]
    assert x.shape == (1, 8, 6) and torch.equal(y[0], torch.from_numpy(darcy_file[1]["tensor"][2, 0]))
    gs = ImportedDataset(seeds_file[0], ("u_0", "u_1"), ("u_0",), time_window=(1, 2), normalize=False)
    x, y = gs[1]  # sample 0, t0 = 1
    assert x.shape == (2, 8, 8) and y.shape == (2, 8, 8)
    np.testing.assert_array_equal(x.numpy(), seeds_file[1]["data"][0, 1].transpose(2, 0, 1))
    with pytest.raises(DatasetError, match="has no field 'v'"):
        ImportedDataset(darcy_file[0], ("v",), ("u",))


# ------------------------------------------------------------------------------ bad files
def test_foreign_file_error_names_what_is_missing(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["velocity"] = np.zeros((2, 3))
    with pytest.raises(DatasetError) as err:
        open_imported(path)
    msg = str(err.value)
    assert "matches neither" in msg and "x-coordinate" in msg and "'t0_fields'" in msg
    assert "'n_spatial_dims'" in msg and "velocity" in msg and "\n" not in msg
    with pytest.raises(DatasetError, match="not a Well file: missing root attribute 'dataset_name'"):
        ImportedDataset(path, ("u",), ("u",), layout="the-well")


def test_cross_layout_errors(well_file, burgers_file):
    with pytest.raises(DatasetError, match="not a PDEBench file: missing dataset 'x-coordinate'"):
        open_pdebench(well_file[0])
    with pytest.raises(DatasetError, match="not a Well file: missing root attribute 'dataset_name'.*group 'dimensions'"):
        open_the_well(burgers_file[0])


def test_not_hdf5_and_missing(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with pytest.raises(DatasetError, match="cannot open"):
        open_imported(p)
    with pytest.raises(DatasetError, match="does not exist"):
        open_pdebench(tmp_path / "missing.h5")


def test_imported_and_own_datasets_share_one_sample_view(smooth_ds, tmp_path):
    """The same samples in a PDEBench file and in a pdekit folder give the same items."""
    from pdekit.data import PDEDataset, open_xarray

    own = PDEDataset(smooth_ds, inputs=("a", "u"), targets=("u",), subsample=(2, 1))
    raw = open_xarray(smooth_ds)
    path = tmp_path / "2D_smooth.hdf5"
    with h5py.File(path, "w") as f:
        f["a"], f["u"] = raw["a"].values, raw["u"].values
        f["x-coordinate"], f["y-coordinate"] = raw["x"].values, raw["y"].values
    raw.close()
    imported = ImportedDataset(path, ("a", "u"), ("u",), subsample=(2, 1), stats=own.stats)
    assert len(imported) == len(own) and imported.spatial_shape == own.spatial_shape
    for i in (0, 5, 9):
        for a, b in zip(imported[i], own[i]):
            assert torch.equal(a, b)
    y = torch.stack([own[i][1] for i in range(3)])
    assert torch.equal(imported.denormalize(y), own.denormalize(y))
