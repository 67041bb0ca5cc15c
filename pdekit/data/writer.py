"""Write one shard: a netCDF4-compatible HDF5 file, atomically and byte-for-byte reproducibly.

The file is written with :mod:`h5netcdf` (named dimensions as HDF5 dimension scales), so
``h5py.File`` and ``xarray.open_dataset(path, engine="h5netcdf")`` both read it. It goes to
``<name>.tmp-<pid>`` first, is fsync'ed and then renamed with :func:`os.replace`, so a shard file
under its final name is always complete. HDF5 object timestamps are off (h5netcdf's default), so
the same content gives the same bytes and the same SHA-256 on every run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from pdekit.data.schema import FORMAT, FORMAT_VERSION, TMP_MARK, fsync_dir, sha256_file

__all__ = ["write_shard", "chunk_shape"]

_CHUNK_BYTES = 4 << 20


def chunk_shape(shape: tuple[int, ...], has_time: bool) -> tuple[int, ...]:
    """One sample per chunk; one time step of one sample if a sample exceeds 4 MiB (float32).

    Examples
    --------
    >>> chunk_shape((100, 64, 64), has_time=False)
    (1, 64, 64)
    >>> chunk_shape((10, 200, 256, 256), has_time=True)
    (1, 1, 256, 256)
    """
    per_sample = 4 * int(np.prod(shape[1:]))
    if has_time and per_sample > _CHUNK_BYTES:
        return (1, 1, *shape[2:])
    return (1, *shape[1:])


def _attr(value):
    """Attribute values netCDF can hold: str, int, float or JSON text for everything else."""
    if isinstance(value, (str, int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True)


def write_shard(
    path: str | os.PathLike,
    fields: dict[str, np.ndarray],
    field_dims: dict[str, tuple[str, ...]],
    coords: dict[str, np.ndarray],
    sample_ids: np.ndarray,
    iterations: np.ndarray,
    rel_residual: np.ndarray,
    attrs: dict,
) -> str:
    """Write a shard atomically and return its SHA-256.

    Parameters
    ----------
    path : path-like
        Final file name (``.../train/shard-00000.h5``).
    fields : dict of str to ndarray
        Arrays of shape ``(n, [time,] *spatial)``; stored as float32.
    field_dims : dict of str to tuple of str
        Named dims of every field (``("sample", "x", "y")``).
    coords : dict of str to ndarray
        Coordinate values for the dims other than ``sample`` (missing ones are left out).
    sample_ids : ndarray
        ``(n,)`` global sample index within the split (the ``sample`` coordinate).
    iterations, rel_residual : ndarray
        ``(n,)`` per-sample solver diagnostics.
    attrs : dict
        Root attributes; non-scalar values are stored as JSON text. ``format`` and
        ``format_version`` are added.

    Returns
    -------
    str
        Hex SHA-256 of the final file.
    """
    import h5netcdf

    path = Path(path)
    n = len(sample_ids)
    sizes: dict[str, int] = {"sample": n}
    for name, dims in field_dims.items():
        arr = fields[name]
        if arr.ndim != len(dims) or arr.shape[0] != n:
            raise ValueError(f"field {name!r} has shape {arr.shape}, expected dims {dims} with {n} samples")
        for d, s in zip(dims, arr.shape):
            if sizes.setdefault(d, s) != s:
                raise ValueError(f"dimension {d!r} has size {sizes[d]} and {s} in different fields")
    for d, values in coords.items():
        if d in sizes and len(values) != sizes[d]:
            raise ValueError(f"coordinate {d!r} has {len(values)} values, dimension size is {sizes[d]}")

    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with h5netcdf.File(tmp, "w") as f:
            f.dimensions = dict(sizes)
            root = {"format": FORMAT, "format_version": FORMAT_VERSION, **attrs}
            for k, v in root.items():
                f.attrs[k] = _attr(v)
            v = f.create_variable("sample", ("sample",), "i8")
            v[:] = np.asarray(sample_ids, dtype=np.int64)
            for d in sizes:
                if d != "sample" and d in coords:
                    v = f.create_variable(d, (d,), "f8")
                    v[:] = np.asarray(coords[d], dtype=np.float64)
            for name, dims in field_dims.items():
                arr = np.ascontiguousarray(fields[name], dtype=np.float32)
                var = f.create_variable(
                    name, tuple(dims), "f4", chunks=chunk_shape(arr.shape, "time" in dims)
                )
                var[...] = arr
            v = f.create_variable("iterations", ("sample",), "i4")
            v[:] = np.asarray(iterations, dtype=np.int32)
            v.attrs["long_name"] = "solver iterations"
            v = f.create_variable("rel_residual", ("sample",), "f8")
            v[:] = np.asarray(rel_residual, dtype=np.float64)
            v.attrs["long_name"] = "true relative residual of the solve"
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return digest
