"""The Well adapter: a file of The Well mapped onto pdekit names (see the package notes).

References
----------
.. [1] R. Ohana, M. McCabe, L. Meyer, et al., "The Well: a large-scale collection of diverse
   physics simulations for machine learning", NeurIPS 2024 Datasets and Benchmarks,
   arXiv:2412.00568.
"""

from __future__ import annotations

import json
from itertools import product

import numpy as np

from pdekit.data.importers._layout import SPATIAL, _attrs, _py, _Scan, _Var
from pdekit.errors import DatasetError

__all__ = ["WELL_ATTRS", "WELL_GROUPS", "scan_the_well"]

WELL_ATTRS = ("dataset_name", "grid_type", "n_spatial_dims", "n_trajectories",
              "simulation_parameters")
WELL_GROUPS = ("dimensions", "boundary_conditions", "scalars", "t0_fields", "t1_fields",
               "t2_fields")


def scan_the_well(f, path) -> _Scan:
    """Map the open Well file ``f`` onto pdekit names (one variable per tensor component)."""
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

