"""One :class:`xarray.Dataset` over all shards of a split."""

from __future__ import annotations

import os
from pathlib import Path

from pdekit.data.schema import read_manifest
from pdekit.errors import DatasetError

__all__ = ["open_xarray"]

_SHARD_ATTRS = ("shard_index", "shard_seed", "first_sample")


def open_xarray(root: str | os.PathLike, split: str = "train"):
    """Open every shard of ``split`` and concatenate them along ``sample``.

    Each shard is opened with ``xarray.open_dataset(path, engine="h5netcdf")``. With Dask
    installed the result is lazy (one Dask chunk per HDF5 chunk); without it the data variables
    are read into memory when the shards are concatenated.

    Parameters
    ----------
    root : path-like
        Dataset folder.
    split : str
        Split to open.

    Returns
    -------
    xarray.Dataset
        Fields, the ``iterations`` and ``rel_residual`` diagnostics, coordinates ``sample``
        (global index within the split), ``x``, ``y``, ... and the dataset attributes (without
        the per-shard ones), plus ``attrs["split"]``.

    Examples
    --------
    >>> ds = open_xarray("data/sample", "train")   # doctest: +SKIP
    >>> float(ds.u.mean())                          # doctest: +SKIP
    """
    import xarray as xr

    root = Path(root)
    manifest = read_manifest(root)
    if split not in manifest["splits"]:
        raise DatasetError(f"{root} has no split {split!r}; it has {', '.join(manifest['splits'])}")
    entries = manifest["splits"][split]
    if not entries:
        raise DatasetError(f"{root}: split {split!r} has no finished shards")
    try:
        import dask  # noqa: F401

        chunks = {}
    except ImportError:
        chunks = None
    parts = []
    for e in entries:
        path = root / e["path"]
        try:
            parts.append(xr.open_dataset(path, engine="h5netcdf", chunks=chunks))
        except Exception as err:  # h5netcdf/h5py raise a variety of types on damaged files
            for p in parts:
                p.close()
            raise DatasetError(f"cannot open shard {path}: {err} (run `pdekit verify {root}`)") from None
    if len(parts) == 1:
        ds = parts[0]
    else:
        ds = xr.concat(
            parts,
            dim="sample",
            data_vars="minimal",
            coords="minimal",
            compat="override",
            join="exact",
            combine_attrs="drop_conflicts",
        )
    ds.attrs = {k: v for k, v in parts[0].attrs.items() if k not in _SHARD_ATTRS}
    ds.attrs["split"] = split
    return ds
