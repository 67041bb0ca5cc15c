"""Layout detection and the xarray views of PDEBench and Well files."""

from __future__ import annotations

import os

import numpy as np

from pdekit.data.importers._layout import Layout, _open_h5, _Scan
from pdekit.data.importers.pdebench import scan_pdebench
from pdekit.data.importers.the_well import scan_the_well
from pdekit.errors import DatasetError

__all__ = ["detect_layout", "open_imported", "open_pdebench", "open_the_well", "scan_file"]


def scan_file(f, path, layout: str, rename=None) -> _Scan:
    """The scan of the open file ``f`` in ``layout`` (``"auto"``: the Well, then PDEBench)."""
    if layout == "pdebench":
        return scan_pdebench(f, path, rename)
    if layout == "the-well":
        return scan_the_well(f, path)
    if layout != "auto":
        raise ValueError(f"layout must be 'auto', 'pdebench' or 'the-well', got {layout!r}")
    errors = []
    for fn in (scan_the_well, lambda f, p: scan_pdebench(f, p, rename)):
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
        return scan_file(f, str(path), "auto").fmt


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
        scan = scan_file(f, str(path), layout, rename)
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
