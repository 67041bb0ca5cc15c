"""Check a dataset folder: manifest, checksums, file structure, NaN/inf, statistics."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pdekit.data.schema import (
    FORMAT,
    MANIFEST_NAME,
    STATS_NAME,
    TMP_MARK,
    read_manifest,
    read_stats,
    sha256_file,
)
from pdekit.errors import DatasetError

__all__ = ["VerifyReport", "verify"]

_BLOCK_BYTES = 64 << 20


@dataclass
class VerifyReport:
    """Problems found by :func:`verify` (empty when the dataset is sound) and harmless notes."""

    root: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    n_files: int = 0
    n_samples: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        lines = [f"problem: {p}" for p in self.problems] + [f"note: {n}" for n in self.notes]
        if self.ok:
            lines.append(f"OK: {self.root}: {self.n_files} shards, {self.n_samples} samples verified")
        else:
            lines.append(f"{self.root}: {len(self.problems)} problem(s) found")
        return "\n".join(lines)


def _check_shard(path: Path, entry: dict, manifest: dict, split: str, report: VerifyReport) -> None:
    import h5netcdf

    rel = entry["path"]
    try:
        f = h5netcdf.File(path, "r")
    except Exception as e:  # damaged files raise OSError, ValueError, KeyError, ...
        report.problems.append(f"{rel}: unreadable HDF5 file ({type(e).__name__}: {e})")
        return
    with f:
        if f.attrs.get("format") != FORMAT:
            report.problems.append(f"{rel}: not a pdekit shard (no format={FORMAT!r} attribute)")
            return
        for key, want in (("pde", manifest["pde"]), ("split", split),
                          ("format_version", manifest["format_version"])):
            if f.attrs.get(key) != want:
                report.problems.append(f"{rel}: attribute {key}={f.attrs.get(key)!r}, manifest says {want!r}")
        n = entry["n_samples"]
        if f.dimensions.get("sample") is None or f.dimensions["sample"].size != n:
            size = None if "sample" not in f.dimensions else f.dimensions["sample"].size
            report.problems.append(f"{rel}: {size} samples in the file, manifest says {n}")
            return
        for name in ("sample", "iterations", "rel_residual"):
            if name not in f.variables:
                report.problems.append(f"{rel}: variable {name!r} is missing")
        if "sample" in f.variables:
            ids = f.variables["sample"][:]
            first = entry.get("first_sample", ids[0] if len(ids) else 0)
            if not np.array_equal(ids, np.arange(first, first + n)):
                report.problems.append(f"{rel}: sample ids are not {first}..{first + n - 1}")
        for name, spec in manifest["fields"].items():
            if name not in f.variables:
                report.problems.append(f"{rel}: field {name!r} is missing")
                continue
            var = f.variables[name]
            if tuple(var.dimensions) != tuple(spec["dims"]):
                report.problems.append(f"{rel}: field {name!r} has dims {var.dimensions}, expected {tuple(spec['dims'])}")
                continue
            if var.shape != (n, *spec["shape"]):
                report.problems.append(f"{rel}: field {name!r} has shape {var.shape}, expected {(n, *spec['shape'])}")
                continue
            if var.dtype != np.float32:
                report.problems.append(f"{rel}: field {name!r} is {var.dtype}, expected float32")
            per = max(1, _BLOCK_BYTES // max(1, 4 * int(np.prod(spec["shape"]))))
            bad = 0
            for lo in range(0, n, per):
                block = var[lo : lo + per]
                bad += int(block.size - np.count_nonzero(np.isfinite(block)))
            if bad:
                report.problems.append(f"{rel}: field {name!r} holds {bad} NaN/inf values")
        report.n_samples += n


def verify(root: str | os.PathLike) -> VerifyReport:
    """Check a dataset and list every problem found.

    Checks the manifest (format, version, completeness), each shard's SHA-256, that it opens,
    its attributes, dims, shapes, dtypes and sample ids, that fields hold no NaN or inf, and that
    ``stats.json`` is present and finite. Temporary files and unlisted shard files are noted.

    Parameters
    ----------
    root : path-like
        Dataset folder.

    Returns
    -------
    VerifyReport
        ``report.ok`` is True when no problem was found; ``str(report)`` lists them.
    """
    root = Path(root)
    report = VerifyReport(str(root))
    try:
        manifest = read_manifest(root)
    except DatasetError as e:
        report.problems.append(str(e))
        return report
    gen = manifest["generator"]
    if not manifest.get("complete", False):
        report.problems.append("generation did not finish (rerun the same `pdekit generate` to resume)")
    listed = set()
    for split, n_want in gen.get("splits", {}).items():
        entries = manifest["splits"].get(split, [])
        n_shards = math.ceil(n_want / gen["shard_size"])
        have = {e.get("shard_index") for e in entries}
        missing = [i for i in range(n_shards) if i not in have]
        if missing:
            report.problems.append(
                f"split {split!r}: {len(missing)} of {n_shards} shards not in the manifest "
                f"(indices {', '.join(map(str, missing[:10]))}{', ...' if len(missing) > 10 else ''})"
            )
        n_have = sum(e["n_samples"] for e in entries)
        if not missing and n_have != n_want:
            report.problems.append(f"split {split!r}: {n_have} samples listed, {n_want} requested")
        for e in entries:
            path = root / e["path"]
            listed.add(path.resolve())
            if not path.is_file():
                report.problems.append(f"{e['path']}: file is missing")
                continue
            report.n_files += 1
            digest = sha256_file(path)
            if digest != e["sha256"]:
                report.problems.append(
                    f"{e['path']}: checksum mismatch (manifest {e['sha256'][:12]}..., file {digest[:12]}...; "
                    "the file is corrupt or was modified)"
                )
            _check_shard(path, e, manifest, split, report)
    for split in manifest["splits"]:
        d = root / split
        if d.is_dir():
            for p in sorted(d.iterdir()):
                if TMP_MARK in p.name:
                    report.notes.append(f"{split}/{p.name}: temporary file of an interrupted run")
                elif p.suffix == ".h5" and p.resolve() not in listed:
                    report.notes.append(f"{split}/{p.name}: shard file not listed in {MANIFEST_NAME}")
    try:
        stats = read_stats(root)["fields"]
    except DatasetError as e:
        report.problems.append(str(e))
    else:
        for name in manifest["fields"]:
            s = stats.get(name)
            if s is None:
                report.problems.append(f"{STATS_NAME}: no statistics for field {name!r}")
            elif not all(isinstance(s.get(k), (int, float)) and math.isfinite(s[k]) for k in ("mean", "std")):
                report.problems.append(f"{STATS_NAME}: mean/std of field {name!r} are not finite numbers")
    return report
