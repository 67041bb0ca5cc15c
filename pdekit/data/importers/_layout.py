"""Shared pieces of the importers: the scan of a foreign file and HDF5 attribute helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from pdekit.errors import DatasetError

__all__ = ["Layout", "SPATIAL"]

Layout = Literal["auto", "pdebench", "the-well"]
SPATIAL = ("x", "y", "z")


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

