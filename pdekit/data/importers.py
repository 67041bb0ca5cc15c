"""Read-only adapters for PDEBench and The Well HDF5 files: xarray views and a torch Dataset.

Both adapters map a foreign file onto pdekit's conventions: data variables with dims
``(sample, [time,] x[, y[, z]])``, coordinates ``time``, ``x``, ``y``, ``z`` stored beside them, and
the file's attributes as root attributes (plus ``source_format`` and ``source_path``). Nothing is
written to the source file.

**PDEBench** (Takamoto et al. 2022). Two layouts:

* flat (1-D advection/Burgers/reaction-diffusion, 1/2/3-D CFD, 2-D Darcy): coordinates
  ``x-coordinate`` (required), ``y-coordinate``, ``z-coordinate``, ``t-coordinate``; every other
  dataset whose first axis is the sample axis is a field, ``(N, *spatial)`` or
  ``(N, T, *spatial)``. ``tensor`` becomes ``u`` and the Darcy coefficient ``nu`` becomes ``a``
  (pdekit's Darcy names; change with ``rename``); the CFD fields keep their names (``density``,
  ``pressure``, ``Vx``, ...). A time axis of length 1 without ``t-coordinate`` (Darcy's
  ``tensor (N, 1, X, Y)``) is squeezed. PDEBench stores ``t-coordinate`` with one value more than
  the time axis; the first ``T`` values are kept. Parameters are read from the root attributes and,
  when missing there, from the file name (``..._Nu0.001...`` gives ``nu = 0.001``).
* one group per sample (2-D diffusion-reaction, shallow water): ``<seed>/data (T, X, Y, C)`` and
  ``<seed>/grid/{x, y, t}``; channel ``c`` becomes field ``u`` (one channel) or ``u_c``.

**The Well** (Ohana et al. 2024): root attributes ``dataset_name``, ``grid_type``,
``n_spatial_dims``, ``n_trajectories``, ``simulation_parameters``; groups ``dimensions``,
``boundary_conditions``, ``scalars``, ``t0_fields``, ``t1_fields``, ``t2_fields``. A scalar field
keeps its name; vector and tensor fields are split into one variable per component named with the
Well's own spatial dim names (``velocity_x``, ``stress_xy``), as the Well's loader flattens them.
Spatial dims are renamed to ``x, y, z`` in order (the original names are kept in the attribute
``source_spatial_dims``). A field that is not sample-varying has no ``sample`` dim. Scalars become
variables (dims ``(sample?, time?)``), boundary-condition masks become variables
``bc_<name>_mask``, and each condition's type becomes the attribute ``bc_<dim>`` (``periodic``,
``wall``, ``open``), as in pdekit's own shards; all of them are also summarised as JSON in the
attribute ``boundary_conditions``.

:class:`ImportedDataset` is the torch ``Dataset`` of such a file, with the interface of
:class:`pdekit.data.dataset.PDEDataset` (``(x, y)`` channels first, ``normalize``, ``subsample``,
``time_window``); pdekit's own ``PDEDataset`` reads only pdekit dataset folders.

References
----------
.. [1] M. Takamoto, T. Praditia, R. Leiteritz, D. MacKinlay, F. Alesiani, D. Pflueger,
   M. Niepert, "PDEBench: an extensive benchmark for scientific machine learning",
   NeurIPS 2022 Datasets and Benchmarks, arXiv:2210.07182.
.. [2] R. Ohana, M. McCabe, L. Meyer, et al., "The Well: a large-scale collection of diverse
   physics simulations for machine learning", NeurIPS 2024 Datasets and Benchmarks,
   arXiv:2412.00568.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from pdekit.errors import DatasetError

__all__ = ["open_pdebench", "open_the_well", "open_imported", "detect_layout", "ImportedDataset"]

Layout = Literal["auto", "pdebench", "the-well"]
SPATIAL = ("x", "y", "z")
PDEBENCH_RENAME = {"tensor": "u", "nu": "a"}
WELL_ATTRS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories",
              "simulation_parameters")
WELL_GROUPS = ("dimensions", "boundary_conditions", "scalars", "t0_fields", "t1_fields",
               "t2_fields")
_NAME_PARAMS = re.compile(r"(Nu|nu|Beta|beta|Rho|rho|Eta|eta|Zeta|zeta|M)(\d+(?:\.\d+)?(?:e-?\d+)?)")


@dataclass(frozen=True)
class _Var:
    """How one pdekit field is read: ``f[path][sample][select]`` (or ``f[key/path][select]``)."""

    dims: tuple[str, ...]
    path: str
    select: tuple = ()
    per_sample_group: bool = False

    @property
    def has_sample(self) -> bool:
        return self.dims[0] == "sample"


@dataclass
class _Scan:
    """A foreign file mapped onto pdekit names (data are read later, lazily)."""

    fmt: str
    n_samples: int
    fields: dict[str, _Var]
    coords: dict[str, tuple[tuple[str, ...], np.ndarray]]
    attrs: dict
    extra: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(default_factory=dict)
    sample_keys: list[str] | None = None


# ------------------------------------------------------------------------------ helpers
def _py(value):
    """HDF5 attribute value -> plain Python (str, int, float, list)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj) -> dict:
    return {k: _py(v) for k, v in obj.attrs.items()}


def _open_h5(path):
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{p} does not exist or is not a file")
    try:
        return h5py.File(p, "r")
    except OSError as e:
        raise DatasetError(f"cannot open {p} as HDF5: {e}") from None


def _params_from_name(name: str) -> dict:
    """``1D_Burgers_Sols_Nu0.001.hdf5`` -> ``{"nu": 0.001}``."""
    return {m.group(1).lower(): float(m.group(2)) for m in _NAME_PARAMS.finditer(Path(name).stem)}


# ----------------------------------------------------------------------------- PDEBench
def _scan_pdebench(f, path, rename: dict | None) -> _Scan:
    import h5py

    names = {**PDEBENCH_RENAME, **(rename or {})}
    keys = list(f.keys())
    seeds = sorted(k for k in keys if isinstance(f[k], h5py.Group) and "data" in f[k])
    if "x-coordinate" not in f and seeds:
        return _scan_pdebench_groups(f, path, seeds, names)
    if "x-coordinate" not in f:
        found = ", ".join(keys[:8]) or "nothing"
        raise DatasetError(
            f"{path} is not a PDEBench file: missing dataset 'x-coordinate' (flat layout) or "
            f"groups '<seed>/data' (per-sample layout); found {found}"
        )
    coords: dict = {}
    spatial = []
    for d in SPATIAL:
        if f"{d}-coordinate" in f:
            spatial.append(d)
            coords[d] = ((d,), np.asarray(f[f"{d}-coordinate"][()], dtype=np.float64))
    nsp = len(spatial)
    shape_sp = tuple(len(coords[d][1]) for d in spatial)
    t_coord = np.asarray(f["t-coordinate"][()], dtype=np.float64) if "t-coordinate" in f else None
    fields: dict[str, _Var] = {}
    n_samples = None
    skipped = []
    for k in keys:
        obj = f[k]
        if k.endswith("-coordinate") or not isinstance(obj, h5py.Dataset):
            continue
        shp = obj.shape
        if len(shp) == nsp + 1 and shp[1:] == shape_sp:
            var = _Var(("sample", *spatial), k)
        elif len(shp) == nsp + 2 and shp[2:] == shape_sp:
            if shp[1] == 1 and t_coord is None:
                var = _Var(("sample", *spatial), k, (0,))
            else:
                var = _Var(("sample", "time", *spatial), k)
                n_t = shp[1]
                if t_coord is not None and len(t_coord) < n_t:
                    raise DatasetError(f"{path}: 't-coordinate' has {len(t_coord)} values, "
                                       f"fewer than the {n_t} time steps of {k!r}")
                times = t_coord[:n_t] if t_coord is not None else np.arange(n_t, dtype=np.float64)
                coords["time"] = (("time",), times)
        else:
            skipped.append(k)
            continue
        if n_samples is None:
            n_samples = shp[0]
        elif shp[0] != n_samples:
            raise DatasetError(f"{path}: fields hold {n_samples} and {shp[0]} samples")
        fields[names.get(k, k)] = var
    if not fields:
        raise DatasetError(
            f"{path} is not a PDEBench file: no dataset of shape (N, [T,] {', '.join(map(str, shape_sp))}) "
            f"matching the coordinates; found {', '.join(keys)}"
        )
    attrs = _attrs(f)
    for k, v in _params_from_name(path).items():
        if not any(a.lower() == k for a in attrs):
            attrs[k] = v
    if "Nu" in attrs and "nu" not in attrs:
        attrs["nu"] = attrs["Nu"]
    if skipped:
        attrs["skipped_datasets"] = skipped
    if t_coord is not None:
        attrs["source_t_coordinate"] = t_coord.tolist()
    return _Scan("pdebench", int(n_samples), fields, coords, attrs)


def _scan_pdebench_groups(f, path, seeds: list[str], names: dict) -> _Scan:
    g0 = f[seeds[0]]
    data = g0["data"]
    if "grid" not in g0:
        raise DatasetError(f"{path}: PDEBench group {seeds[0]!r} lacks 'grid'")
    grid = g0["grid"]
    spatial = [d for d in SPATIAL if d in grid]
    nsp = len(spatial)
    if data.ndim != nsp + 2:
        raise DatasetError(
            f"{path}: '{seeds[0]}/data' has shape {data.shape}; expected (T, {', '.join(spatial)}, C)"
        )
    coords = {d: ((d,), np.asarray(grid[d][()], dtype=np.float64)) for d in spatial}
    n_t, n_c = data.shape[0], data.shape[-1]
    t = np.asarray(grid["t"][()], dtype=np.float64)[:n_t] if "t" in grid else np.arange(n_t, dtype=float)
    coords["time"] = (("time",), t)
    fields = {}
    for c in range(n_c):
        base = "u" if n_c == 1 else f"u_{c}"
        fields[names.get(base, base)] = _Var(("sample", "time", *spatial), "data", (Ellipsis, c),
                                             per_sample_group=True)
    for s in seeds:
        if f[s]["data"].shape != data.shape:
            raise DatasetError(f"{path}: '{s}/data' has shape {f[s]['data'].shape}, not {data.shape}")
    attrs = _attrs(f)
    for k, v in _attrs(g0).items():
        attrs.setdefault(k, v)
    attrs["sample_keys"] = seeds
    return _Scan("pdebench", len(seeds), fields, coords, attrs, sample_keys=seeds)


# ----------------------------------------------------------------------------- The Well
def _scan_the_well(f, path) -> _Scan:
    import h5py

    missing = [f"root attribute {a!r}" for a in WELL_ATTRS if a not in f.attrs]
    missing += [f"group {g!r}" for g in WELL_GROUPS if not isinstance(f.get(g), h5py.Group)]
    if missing:
        raise DatasetError(f"{path} is not a Well file: missing {', '.join(missing)}")
    nsp = int(f.attrs["n_spatial_dims"])
    B = int(f.attrs["n_trajectories"])
    dims_g = f["dimensions"]
    src_dims = [str(_py(d)) for d in dims_g.attrs.get("spatial_dims", [])]
    if len(src_dims) != nsp or not 1 <= nsp <= 3:
        raise DatasetError(f"{path}: dimensions.attrs['spatial_dims'] = {src_dims} does not list "
                           f"n_spatial_dims = {nsp} names")
    to_pd = dict(zip(src_dims, SPATIAL))
    coords: dict = {}
    extra: dict = {}
    for s in src_dims:
        if s not in dims_g:
            raise DatasetError(f"{path}: group 'dimensions' lacks dataset {s!r}")
        coords[to_pd[s]] = ((to_pd[s],), np.asarray(dims_g[s][()], dtype=np.float64))
    if "time" in dims_g:
        t = np.asarray(dims_g["time"][()], dtype=np.float64)
        if t.ndim == 1:
            coords["time"] = (("time",), t)
        else:  # sample-varying time grid: a 2-D coordinate beside the time dim
            coords["time"] = (("time",), np.arange(t.shape[-1], dtype=np.float64))
            extra["time_of_sample"] = (("sample", "time"), t)

    fields: dict[str, _Var] = {}
    for order in (0, 1, 2):
        g = f[f"t{order}_fields"]
        for name in (str(_py(n)) for n in g.attrs.get("field_names", [])):
            if name not in g:
                raise DatasetError(f"{path}: t{order}_fields lists {name!r} but has no such dataset")
            ds = g[name]
            a = ds.attrs
            dim_varying = list(_py(a.get("dim_varying", [True] * nsp)))
            dims = (["sample"] if bool(a.get("sample_varying", True)) else [])
            dims += (["time"] if bool(a.get("time_varying", True)) else [])
            dims += [to_pd[s] for s, v in zip(src_dims, dim_varying) if v]
            if ds.ndim != len(dims) + order:
                raise DatasetError(f"{path}: t{order}_fields/{name} has shape {ds.shape}, "
                                   f"inconsistent with its attributes (dims {dims} + {order} "
                                   "component axes)")
            for comp in product(range(nsp), repeat=order):
                label = name + ("_" + "".join(src_dims[i] for i in comp) if order else "")
                fields[label] = _Var(tuple(dims), f"t{order}_fields/{name}",
                                     (Ellipsis, *comp) if order else ())

    g = f["scalars"]
    for name in (str(_py(n)) for n in g.attrs.get("field_names", [])):
        if name in g:
            ds = g[name]
            d = (["sample"] if bool(ds.attrs.get("sample_varying", False)) else [])
            d += (["time"] if bool(ds.attrs.get("time_varying", False)) else [])
            extra[name] = (tuple(d), np.asarray(ds[()]))
    attrs = _attrs(f)
    bcs = {}
    for name, bc in f["boundary_conditions"].items():
        info = _attrs(bc)
        assoc = [str(d) for d in info.get("associated_dims", [])]
        kind = str(info.get("bc_type", "")).lower()
        for d in assoc:
            if d in to_pd:
                attrs[f"bc_{to_pd[d]}"] = kind
        if "mask" in bc:
            mask = np.asarray(bc["mask"][()])
            if mask.ndim == len(assoc):
                extra[f"bc_{name}_mask"] = (tuple(to_pd.get(d, d) for d in assoc), mask.astype(np.int8))
            info["mask"] = mask.astype(int).tolist()
        if "values" in bc:
            info["values"] = np.asarray(bc["values"][()]).tolist()
        bcs[name] = info
    attrs["boundary_conditions"] = json.dumps(bcs, sort_keys=True)
    attrs["source_spatial_dims"] = src_dims
    if not fields:
        raise DatasetError(f"{path}: the Well file lists no fields in t0/t1/t2_fields")
    return _Scan("the-well", B, fields, coords, attrs, extra)


# ------------------------------------------------------------------------- detection, views
def _scan(f, path, layout: str, rename=None) -> _Scan:
    if layout == "pdebench":
        return _scan_pdebench(f, path, rename)
    if layout == "the-well":
        return _scan_the_well(f, path)
    if layout != "auto":
        raise ValueError(f"layout must be 'auto', 'pdebench' or 'the-well', got {layout!r}")
    errors = []
    for fn in (_scan_the_well, lambda f, p: _scan_pdebench(f, p, rename)):
        try:
            return fn(f, path)
        except DatasetError as e:
            errors.append(str(e))
    raise DatasetError(f"{path} matches neither supported layout. " + " ".join(errors))


def detect_layout(path: str | os.PathLike) -> str:
    """``"pdebench"`` or ``"the-well"``; :class:`~pdekit.errors.DatasetError` naming what is missing.

    Examples
    --------
    >>> import os, tempfile, h5py
    >>> path = os.path.join(tempfile.mkdtemp(), "other.h5")
    >>> with h5py.File(path, "w") as f:
    ...     f["velocity"] = np.zeros(3)
    >>> detect_layout(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    pdekit.errors.DatasetError: ... matches neither supported layout. ... is not a Well file: missing root attribute 'dataset_name', ...
    """
    with _open_h5(path) as f:
        return _scan(f, str(path), "auto").fmt


def _lazy(dset, lazy: bool):
    if lazy:
        try:
            import dask.array as da

            return da.from_array(dset, chunks=(1, *dset.shape[1:]) if dset.ndim else ())
        except ImportError:
            pass
    return dset[()]


def _to_xarray(f, scan: _Scan, path: str, lazy: bool):
    import xarray as xr

    data_vars = {}
    for name, var in scan.fields.items():
        if var.per_sample_group:
            parts = [_lazy(f[f"{k}/{var.path}"], lazy) for k in scan.sample_keys]
            if isinstance(parts[0], np.ndarray):
                arr = np.stack(parts)
            else:
                import dask.array as da

                arr = da.stack(parts)
        else:
            arr = _lazy(f[var.path], lazy)
        index = ((slice(None),) if var.has_sample else ()) + tuple(var.select)
        if index:
            arr = arr[index]
        data_vars[name] = (var.dims, arr)
    for name, (dims, arr) in scan.extra.items():
        data_vars[name] = (dims, arr)
    coords = dict(scan.coords)
    coords["sample"] = (("sample",), np.arange(scan.n_samples))
    attrs = {**scan.attrs, "source_format": scan.fmt, "source_path": str(path)}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def open_imported(
    path: str | os.PathLike, *, layout: Layout = "auto", rename: dict | None = None,
    lazy: bool = True,
):
    """Open a PDEBench or Well file as an :class:`xarray.Dataset` with pdekit names.

    Parameters
    ----------
    path : path-like
        The HDF5 file.
    layout : {"auto", "pdebench", "the-well"}
        Which adapter; ``"auto"`` tries the Well, then PDEBench.
    rename : dict, optional
        Extra PDEBench field renames (defaults: ``tensor -> u``, ``nu -> a``).
    lazy : bool
        With Dask installed, data variables are Dask arrays over the open file (closed by
        ``ds.close()``); otherwise they are read into memory.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    DatasetError
        If the file matches no layout; the message names what is missing for each.
    """
    f = _open_h5(path)
    try:
        scan = _scan(f, str(path), layout, rename)
        ds = _to_xarray(f, scan, str(path), lazy)
    except BaseException:
        f.close()
        raise
    if any(getattr(v.data, "dask", None) is not None for v in ds.data_vars.values()):
        ds.set_close(f.close)
    else:
        f.close()
    return ds


def open_pdebench(path: str | os.PathLike, *, rename: dict | None = None, lazy: bool = True):
    """Open a PDEBench HDF5 file as an :class:`xarray.Dataset` (see the module notes).

    Examples
    --------
    >>> import os, tempfile, h5py
    >>> path = os.path.join(tempfile.mkdtemp(), "1D_Burgers_Sols_Nu0.1.hdf5")
    >>> with h5py.File(path, "w") as f:
    ...     f["tensor"] = np.zeros((2, 3, 8), np.float32)
    ...     f["x-coordinate"] = (np.arange(8) + 0.5) / 8
    ...     f["t-coordinate"] = np.arange(4) * 0.1
    >>> ds = open_pdebench(path)
    >>> ds.u.dims, ds.sizes["time"], ds.attrs["nu"]
    (('sample', 'time', 'x'), 3, 0.1)
    >>> ds.close()
    """
    return open_imported(path, layout="pdebench", rename=rename, lazy=lazy)


def open_the_well(path: str | os.PathLike, *, lazy: bool = True):
    """Open a file of The Well as an :class:`xarray.Dataset` (see the module notes).

    Examples
    --------
    >>> ds = open_the_well("gray_scott_reaction_diffusion_F_0.014.hdf5")   # doctest: +SKIP
    >>> ds.A.dims                                                          # doctest: +SKIP
    ('sample', 'time', 'x', 'y')
    """
    return open_imported(path, layout="the-well", lazy=lazy)


# --------------------------------------------------------------------------- torch Dataset
class ImportedDataset(torch.utils.data.Dataset):
    """Samples ``(x, y)`` of a PDEBench or Well file, with the interface of ``PDEDataset``.

    Parameters
    ----------
    path : path-like
        The HDF5 file (opened lazily in each process; nothing is loaded up front).
    inputs, targets : sequence of str
        pdekit field names (as in :func:`open_imported`) stacked as channels of ``x`` and ``y``; a
        time-dependent field gives one channel per returned time step.
    layout : {"auto", "pdebench", "the-well"}
    rename : dict, optional
        Extra PDEBench renames.
    normalize : bool
        Standardise every field with ``stats`` (default: mean and std over the selected
        samples, computed once in float64 by reading them).
    stats : dict, optional
        ``{field: {"mean": m, "std": s}}``, e.g. the ``stats`` of the training set for a test set.
    subsample : int or tuple of int
        Keep every ``s``-th point per spatial dimension.
    time_window : (int, int), optional
        ``(n_in, n_out)`` windows as in ``PDEDataset``; ``None``: whole trajectories.
    window_stride : int
    samples : slice or sequence of int, optional
        Which samples of the file to use (e.g. ``slice(0, 9000)`` for a train split).

    Examples
    --------
    >>> ds = ImportedDataset("1D_Burgers_Sols_Nu0.1.hdf5", ("u",), ("u",),
    ...                      time_window=(10, 1))           # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, y.shape                        # doctest: +SKIP
    (torch.Size([10, 1024]), torch.Size([1, 1024]))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        inputs: Sequence[str],
        targets: Sequence[str],
        *,
        layout: Layout = "auto",
        rename: dict | None = None,
        normalize: bool = True,
        stats: dict | None = None,
        subsample: int | Sequence[int] = 1,
        time_window: tuple[int, int] | None = None,
        window_stride: int = 1,
        samples: slice | Sequence[int] | None = None,
    ):
        self.path = str(path)
        with _open_h5(path) as f:
            scan = _scan(f, self.path, layout, rename)
        self.layout = scan.fmt
        self.inputs, self.targets = tuple(inputs), tuple(targets)
        if not self.inputs or not self.targets:
            raise ValueError("inputs and targets must each name at least one field")
        for name in self.inputs + self.targets:
            if name not in scan.fields:
                raise DatasetError(f"{self.path} has no field {name!r}; it has {', '.join(scan.fields)}")
        self._vars = scan.fields
        self._keys = scan.sample_keys
        used = self.inputs + self.targets
        spatial = {tuple(d for d in self._vars[k].dims if d in SPATIAL) for k in used}
        if len(spatial) != 1:
            raise ValueError(f"fields {used} do not share the same spatial dims")
        n_sp = len(next(iter(spatial)))
        sub = (subsample,) * n_sp if isinstance(subsample, int) else tuple(subsample)
        if len(sub) != n_sp or any(int(s) < 1 for s in sub):
            raise ValueError(f"subsample must be a positive int or {n_sp} positive ints, got {subsample!r}")
        self.subsample = tuple(int(s) for s in sub)
        self._slices = tuple(slice(None, None, s) for s in self.subsample)
        self._index = np.arange(scan.n_samples)[samples if samples is not None else slice(None)]
        if len(self._index) == 0:
            raise ValueError("no samples selected")
        sizes = {d: len(v[1]) for d, v in scan.coords.items()}
        self.time_window = None if time_window is None else (int(time_window[0]), int(time_window[1]))
        self.window_stride = int(window_stride)
        timed = [k for k in used if "time" in self._vars[k].dims]
        if self.time_window is not None:
            n_in, n_out = self.time_window
            if not timed:
                raise ValueError("time_window needs at least one time-dependent field")
            if n_in < 1 or n_out < 1 or self.window_stride < 1:
                raise ValueError(f"time_window needs n_in, n_out >= 1, got {time_window!r}")
            n_time = sizes["time"]
            if n_in + n_out > n_time:
                raise ValueError(f"time_window {time_window} is longer than the {n_time} time steps")
            self._starts = np.arange(0, n_time - n_in - n_out + 1, self.window_stride)
        else:
            self._starts = np.zeros(1, dtype=np.int64)
        self._len = len(self._index) * len(self._starts)
        self._n_time = sizes.get("time", 1)
        self.in_channels = sum(self._n_channels(k, "in") for k in self.inputs)
        self.out_channels = sum(self._n_channels(k, "out") for k in self.targets)
        self.spatial_shape = tuple(
            len(range(0, sizes[d], s)) for d, s in zip(next(iter(spatial)), self.subsample)
        )
        self._file = None
        self._pid = os.getpid()
        self.normalize = bool(normalize)
        self.stats = {}
        if self.normalize:
            self.stats = dict(stats) if stats is not None else self._compute_stats(used)
            for name in used:
                if name not in self.stats:
                    raise DatasetError(f"stats has no entry for field {name!r}")

    def _n_channels(self, name: str, role: str) -> int:
        if "time" not in self._vars[name].dims:
            return 1
        if self.time_window is None:
            return self._n_time
        return self.time_window[0] if role == "in" else self.time_window[1]

    def __len__(self) -> int:
        return self._len

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def _h5(self):
        if self._pid != os.getpid():
            self._file, self._pid = None, os.getpid()
        if self._file is None:
            self._file = _open_h5(self.path)
        return self._file

    def close(self) -> None:
        """Close the file this process opened."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def _raw(self, name: str, sample: int, times: slice | None = None) -> np.ndarray:
        var, f = self._vars[name], self._h5()
        if var.per_sample_group:
            dset, lead = f[f"{self._keys[sample]}/{var.path}"], ()
        else:
            dset, lead = f[var.path], ((sample,) if var.has_sample else ())
        if times is not None and "time" in var.dims:
            arr = dset[lead + (times,)]
        else:
            arr = dset[lead] if lead else dset[()]
        return np.asarray(arr[var.select] if var.select else arr)

    def _compute_stats(self, names) -> dict:
        out = {}
        for name in names:
            count, s1, s2 = 0, 0.0, 0.0
            rows = self._index if self._vars[name].has_sample else self._index[:1]
            for i in rows:
                a = self._raw(name, int(i)).astype(np.float64)
                count, s1, s2 = count + a.size, s1 + a.sum(), s2 + (a * a).sum()
            mean = s1 / count
            out[name] = {"mean": float(mean), "std": float(np.sqrt(max(s2 / count - mean**2, 0.0)))}
        self.close()
        return out

    def locate(self, index: int) -> tuple[int, int]:
        """``(sample index in the file, window start t0)`` of item ``index``."""
        if not -self._len <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} items")
        index %= self._len
        s, w = divmod(index, len(self._starts))
        return int(self._index[s]), int(self._starts[w])

    def _read(self, name: str, sample: int, t0: int, role: str) -> np.ndarray:
        timed = "time" in self._vars[name].dims
        if timed and self.time_window is not None:
            n_in, n_out = self.time_window
            lo = t0 if role == "in" else t0 + n_in
            arr = self._raw(name, sample, slice(lo, lo + (n_in if role == "in" else n_out)))
        else:
            arr = self._raw(name, sample)
            if not timed:
                arr = arr[None]
        arr = arr[(Ellipsis, *self._slices)].astype(np.float32)
        if self.normalize:
            s = self.stats[name]
            std = s["std"] if s["std"] and s["std"] > 0 else 1.0
            arr = (arr - np.float32(s["mean"])) * np.float32(1.0 / std)
        return arr

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample, t0 = self.locate(int(index))
        x = [self._read(k, sample, t0, "in") for k in self.inputs]
        y = [self._read(k, sample, t0, "out") for k in self.targets]
        x = x[0] if len(x) == 1 else np.concatenate(x)
        y = y[0] if len(y) == 1 else np.concatenate(y)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    def denormalize(self, y: torch.Tensor, fields: Sequence[str] | None = None) -> torch.Tensor:
        """Undo the normalisation of target tensor(s), channels on dim ``-1 - n_spatial``."""
        fields = self.targets if fields is None else tuple(fields)
        if not self.normalize:
            return y
        scale, shift = [], []
        for k in fields:
            s = self.stats[k]
            c = self._n_channels(k, "out")
            scale += [s["std"] if s["std"] and s["std"] > 0 else 1.0] * c
            shift += [s["mean"]] * c
        shape = (-1,) + (1,) * len(self.spatial_shape)
        return (y * torch.tensor(scale, dtype=y.dtype, device=y.device).reshape(shape)
                + torch.tensor(shift, dtype=y.dtype, device=y.device).reshape(shape))

    def __repr__(self) -> str:
        return (f"ImportedDataset({self.path!r}, layout={self.layout!r}, n={self._len}, "
                f"inputs={self.inputs}, targets={self.targets}, spatial_shape={self.spatial_shape})")
