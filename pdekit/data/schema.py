"""The on-disk format of a pdekit dataset: names, manifest, field layout, checksums.

A dataset is a folder::

    DIR/manifest.json            format, PDE, parameters, generator config, shards per split
    DIR/stats.json               per-field mean and std over the train split
    DIR/<split>/shard-NNNNN.h5   netCDF4-compatible HDF5, one file per shard

``manifest.json`` looks like::

    {"format": "pdekit", "format_version": 1, "pde": "darcy", "params": {...},
     "generator": {"seed": 0, "shard_size": 100, "splits": {"train": 800, "test": 200}},
     "fields": {"a": {"dims": ["sample", "x", "y"], "shape": [64, 64]}, ...},
     "complete": true,
     "splits": {"train": [{"path": "train/shard-00000.h5", "n_samples": 100,
                           "sha256": "...", "shard_index": 0, ...}, ...], "test": [...]}}

Every shard entry is written only once the shard file is complete, so the manifest is also the
record of progress that a resumed run starts from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from pdekit.errors import DatasetError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "STATS_NAME",
    "SPATIAL_DIMS",
    "shard_name",
    "sha256_file",
    "write_json_atomic",
    "read_manifest",
    "read_stats",
    "check_field_dims",
    "spatial_dims_of",
]

FORMAT = "pdekit"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
MANIFEST_NAME = "manifest.json"
STATS_NAME = "stats.json"
SPATIAL_DIMS = ("x", "y", "z")
SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]+$")
TMP_MARK = ".tmp-"


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard-00007.h5``."""
    return f"shard-{index:05d}.h5"


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory entry (after a rename) where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as JSON to ``path`` through a temporary file, fsync and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def check_field_dims(field_dims: dict[str, tuple[str, ...]]) -> None:
    """Check that every field's dims are ``("sample", ["time",] "x"[, "y"[, "z"]])``."""
    if not field_dims:
        raise ValueError("a PDE family must declare at least one field in field_dims()")
    for name, dims in field_dims.items():
        dims = tuple(dims)
        rest = dims[1:]
        if rest and rest[0] == "time":
            rest = rest[1:]
        ok = bool(dims) and dims[0] == "sample" and 1 <= len(rest) <= 3
        ok = ok and rest == SPATIAL_DIMS[: len(rest)]
        if not ok:
            raise ValueError(
                f"field {name!r} has dims {dims}; expected ('sample', ['time',] 'x'[, 'y'[, 'z']])"
            )


def spatial_dims_of(dims) -> tuple[str, ...]:
    """The spatial dims (x, y, z) among ``dims``, in order."""
    return tuple(d for d in dims if d in SPATIAL_DIMS)


def is_hdf5(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the HDF5 signature (at offset 0)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _load_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"not a pdekit dataset: {path.parent} has no {what}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"not a pdekit dataset: cannot read {path} ({e})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"not a pdekit dataset: {path} does not hold a JSON object")
    return obj


def read_manifest(root: str | os.PathLike) -> dict:
    """Read and validate ``root/manifest.json``.

    Raises
    ------
    DatasetError
        If the folder is not a pdekit dataset, has an unsupported format version or a malformed
        manifest; the message starts with ``not a pdekit dataset:`` or names the problem.
    """
    root = Path(root)
    if root.is_file():
        kind = "an HDF5 file" if is_hdf5(root) else "a file"
        raise DatasetError(
            f"not a pdekit dataset: {root} is {kind}; a pdekit dataset is a folder with {MANIFEST_NAME}"
        )
    if not root.is_dir():
        raise DatasetError(f"not a pdekit dataset: {root} does not exist")
    m = _load_json(root / MANIFEST_NAME, MANIFEST_NAME)
    if m.get("format") != FORMAT:
        raise DatasetError(
            f"not a pdekit dataset: {root / MANIFEST_NAME} has format {m.get('format')!r}, "
            f"expected {FORMAT!r}"
        )
    version = m.get("format_version")
    if version not in SUPPORTED_VERSIONS:
        raise DatasetError(
            f"{root}: format_version {version!r} is not supported by this pdekit "
            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    for key in ("pde", "params", "generator", "fields", "splits"):
        if key not in m:
            raise DatasetError(f"not a pdekit dataset: {root / MANIFEST_NAME} lacks {key!r}")
    for split, entries in m["splits"].items():
        if not isinstance(entries, list):
            raise DatasetError(f"{root / MANIFEST_NAME}: split {split!r} is not a list of shards")
        for e in entries:
            if not all(k in e for k in ("path", "n_samples", "sha256")):
                raise DatasetError(
                    f"{root / MANIFEST_NAME}: a shard entry of split {split!r} lacks "
                    "path, n_samples or sha256"
                )
    return m


def read_stats(root: str | os.PathLike) -> dict:
    """Read ``root/stats.json``: ``{"split": "train", "fields": {name: {"mean", "std", ...}}}``."""
    s = _load_json(Path(root) / STATS_NAME, STATS_NAME)
    if "fields" not in s:
        raise DatasetError(f"{Path(root) / STATS_NAME} lacks 'fields'")
    return s
