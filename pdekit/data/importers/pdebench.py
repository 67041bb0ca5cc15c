"""The PDEBench adapter: a PDEBench HDF5 file mapped onto pdekit names (see the package notes).

References
----------
.. [1] M. Takamoto, T. Praditia, R. Leiteritz, D. MacKinlay, F. Alesiani, D. Pflueger,
   M. Niepert, "PDEBench: an extensive benchmark for scientific machine learning",
   NeurIPS 2022 Datasets and Benchmarks, arXiv:2210.07182.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pdekit.data.importers._layout import SPATIAL, _attrs, _Scan, _Var
from pdekit.errors import DatasetError

__all__ = ["PDEBENCH_RENAME", "scan_pdebench"]

PDEBENCH_RENAME = {"tensor": "u", "nu": "a"}
_NAME_PARAMS = re.compile(r"(Nu|nu|Beta|beta|Rho|rho|Eta|eta|Zeta|zeta|M)(\d+(?:\.\d+)?(?:e-?\d+)?)")


def _params_from_name(name: str) -> dict:
    """``1D_Burgers_Sols_Nu0.001.hdf5`` -> ``{"nu": 0.001}``."""
    return {m.group(1).lower(): float(m.group(2)) for m in _NAME_PARAMS.finditer(Path(name).stem)}


def scan_pdebench(f, path, rename: dict | None) -> _Scan:
    """Map the open PDEBench file ``f`` onto pdekit names (flat or per-sample-group layout)."""
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

