"""The generation engine: PDE family + splits + shards + seeds -> a dataset folder.

Work is cut into shards of ``shard_size`` samples. Shard ``i`` of split ``s`` draws its inputs from
a ``torch.Generator`` seeded with ``SeedSequence([seed, crc32(s), i])``, runs with a fixed number
of torch threads, and is written atomically by :func:`pdekit.data.writer.write_shard`. So a
shard's bytes depend only on (family, seed, split, index, shard size): serial runs, a process
pool and a Dask cluster write identical files, and a resumed run only has to redo missing shards.

The manifest is rewritten (atomically) after every finished shard; a resumed run keeps every
listed shard whose SHA-256 still matches, deletes temporary files and unlisted shard files, and
generates the rest.
"""

from __future__ import annotations

import json
import math
import os
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from pdekit.data.schema import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SPLIT_RE,
    STATS_NAME,
    TMP_MARK,
    check_field_dims,
    read_manifest,
    sha256_file,
    shard_name,
    write_json_atomic,
)
from pdekit.data.stats import merge_moments, moments, stats_from_moments
from pdekit.data.writer import write_shard
from pdekit.errors import DatasetError, PdekitUserError

if TYPE_CHECKING:
    from pdekit.core.solve_config import SolveConfig

__all__ = [
    "ShardTask",
    "GenerateSummary",
    "shard_seed",
    "plan_shards",
    "solve_config",
    "generate_shard",
    "generate",
]


@dataclass(frozen=True)
class ShardTask:
    """One unit of work: ``n_samples`` samples of ``split`` starting at global index ``start``."""

    split: str
    index: int
    start: int
    n_samples: int
    seed: int

    @property
    def path(self) -> str:
        """Path relative to the dataset root."""
        return f"{self.split}/{shard_name(self.index)}"


@dataclass
class GenerateSummary:
    """What :func:`generate` did."""

    out: str
    pde: str
    n_samples: int
    n_generated: int
    n_shards: int
    n_reused: int
    seconds: float
    mean_iterations: float
    max_rel_residual: float
    notes: list[str] = field(default_factory=list)

    @property
    def samples_per_s(self) -> float:
        return self.n_generated / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        if self.n_generated == 0:
            return "\n".join(
                [f"{self.out}: all {self.n_shards} shards ({self.n_samples} {self.pde} samples) were "
                 "already complete; nothing to do"] + [f"note: {n}" for n in self.notes]
            )
        lines = [
            f"{self.out}: {self.n_samples} {self.pde} samples in {self.n_shards} shards "
            f"({self.n_generated} generated in {self.seconds:.1f} s, {self.samples_per_s:.1f} samples/s; "
            f"{self.n_reused} shards kept from an earlier run); "
            f"mean solver iterations {self.mean_iterations:.1f}, max rel. residual {self.max_rel_residual:.2e}"
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def shard_seed(seed: int, split: str, index: int) -> int:
    """Seed of shard ``index`` of ``split`` (a non-negative int below 2**63).

    Examples
    --------
    >>> shard_seed(0, "train", 0) == shard_seed(0, "train", 0) != shard_seed(0, "test", 0)
    True
    """
    ss = np.random.SeedSequence([int(seed), zlib.crc32(split.encode()), int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def plan_shards(splits: dict[str, int], shard_size: int, seed: int) -> list[ShardTask]:
    """All shards of all splits, in order.

    Examples
    --------
    >>> [(t.split, t.index, t.n_samples) for t in plan_shards({"train": 5, "test": 2}, 2, 0)]
    [('train', 0, 2), ('train', 1, 2), ('train', 2, 1), ('test', 0, 2)]
    """
    tasks = []
    for split, n in splits.items():
        for i in range(math.ceil(n / shard_size)):
            start = i * shard_size
            tasks.append(ShardTask(split, i, start, min(shard_size, n - start), shard_seed(seed, split, i)))
    return tasks


def _field_shapes(family) -> dict[str, dict]:
    dims = {k: tuple(v) for k, v in family.field_dims().items()}
    check_field_dims(dims)
    coords = family.coords()
    out = {}
    for name, d in dims.items():
        missing = [x for x in d[1:] if x not in coords]
        if missing:
            raise ValueError(f"{family.name}: coords() lacks {', '.join(missing)} (used by field {name!r})")
        out[name] = {"dims": list(d), "shape": [len(coords[x]) for x in d[1:]]}
    return out


def solve_config(family, solver=None):
    """The :class:`~pdekit.core.solve_config.SolveConfig` of a run (``None``: the family has none).

    ``solver`` is a config, some of its fields by name (the ``solver:`` block of a recipe, the
    ``generator.solver`` entry of a manifest), or ``None`` for the family's default. Every error is
    one line, raised before anything is written.
    """
    try:
        return family.solve_config(solver)
    except (TypeError, ValueError) as e:
        raise PdekitUserError(str(e)) from None


def _header(family, splits: dict[str, int], seed: int, shard_size: int, config=None) -> dict:
    try:
        params = json.loads(json.dumps(family.params()))
    except TypeError as e:
        raise ValueError(f"{family.name}: params() must be JSON-serialisable ({e})") from None
    generator = {"seed": int(seed), "shard_size": int(shard_size), "splits": dict(splits)}
    if config is not None:
        generator["solver"] = config.to_dict()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pde": family.name,
        "params": params,
        "generator": generator,
        "fields": _field_shapes(family),
    }


def _keep_stored_solver(family, out: Path, header: dict) -> dict:
    """``header`` with the solver entry of ``out``'s manifest when both mean the same settings.

    Older datasets record only the options that were given (or none at all); a resumed run keeps
    that entry as it is instead of calling the settings different.
    """
    if not (out / MANIFEST_NAME).is_file():
        return header
    try:
        old = read_manifest(out).get("generator") or {}
        same = solve_config(family, old.get("solver")) == solve_config(
            family, header["generator"].get("solver")
        )
    except (DatasetError, PdekitUserError, AttributeError):
        return header  # check_resumable reports the difference
    if not same:
        return header
    generator = {k: v for k, v in header["generator"].items() if k != "solver"}
    if "solver" in old:
        generator["solver"] = old["solver"]
    return {**header, "generator": generator}


def generate_shard(
    family,
    task: ShardTask,
    out: str | os.PathLike,
    header: dict,
    *,
    device: str = "cpu",
    threads: int = 1,
) -> dict:
    """Generate and write one shard; return its manifest entry.

    This is the function a process pool, a Dask worker or a Slurm array task runs. Inputs are
    drawn on the CPU from the shard's generator, moved to ``device`` and solved there.
    """
    from pdekit import __version__

    t0 = time.perf_counter()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator(device="cpu").manual_seed(task.seed)
        inputs = family.sample_inputs(task.n_samples, gen)
        inputs = {k: v.to(device) for k, v in inputs.items()}  # the solve runs where its inputs are
        config = solve_config(family, header["generator"].get("solver"))
        sol = family.solve(inputs) if config is None else family.solve(inputs, config)
    finally:
        torch.set_num_threads(prev_threads)
    produced = {**inputs, **sol.fields}
    fields, field_dims = {}, {}
    for name, spec in header["fields"].items():
        if name not in produced:
            raise ValueError(f"{family.name} did not produce field {name!r} declared in field_dims()")
        arr = produced[name].detach().to("cpu", torch.float32).numpy()
        if arr.shape != (task.n_samples, *spec["shape"]):
            raise ValueError(
                f"{family.name}: field {name!r} has shape {arr.shape}, "
                f"expected {(task.n_samples, *spec['shape'])}"
            )
        fields[name], field_dims[name] = arr, tuple(spec["dims"])
    iters = sol.iterations.detach().cpu().numpy().astype(np.int32).reshape(task.n_samples)
    resid = sol.rel_residual.detach().cpu().numpy().astype(np.float64).reshape(task.n_samples)
    attrs = {
        "pde": header["pde"],
        "params": header["params"],
        "generator": header["generator"],
        "seed": header["generator"]["seed"],
        "split": task.split,
        "shard_index": task.index,
        "shard_seed": task.seed,
        "first_sample": task.start,
        "fields": list(header["fields"]),
        "pdekit_version": __version__,
    }
    for key, value in header["params"].items():  # e.g. the viscosity as a root attribute `nu`
        if key not in attrs and isinstance(value, (bool, int, float, str)):
            attrs[key] = value
    out = Path(out)
    coords = family.coords()
    digest = write_shard(
        out / task.path,
        fields,
        field_dims,
        coords,
        np.arange(task.start, task.start + task.n_samples),
        iters,
        resid,
        attrs,
    )
    return {
        "path": task.path,
        "n_samples": task.n_samples,
        "sha256": digest,
        "shard_index": task.index,
        "shard_seed": task.seed,
        "first_sample": task.start,
        "moments": {k: moments(v) for k, v in fields.items()},
        "iterations_mean": float(iters.mean()) if len(iters) else 0.0,
        "iterations_max": int(iters.max()) if len(iters) else 0,
        "rel_residual_max": float(resid.max()) if len(resid) else 0.0,
        "seconds": time.perf_counter() - t0,
    }


def check_splits(splits: dict[str, int]) -> dict[str, int]:
    """Validate ``{"train": 800, "test": 200}``: known-safe names, positive counts."""
    if not splits:
        raise PdekitUserError("no samples requested: give --n-samples or --split")
    out = {}
    for name, n in splits.items():
        if not SPLIT_RE.match(str(name)):
            raise PdekitUserError(f"bad split name {name!r}: use letters, digits, '_' or '-'")
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
            raise PdekitUserError(f"split {name!r}: the number of samples must be a positive integer, got {n!r}")
        out[str(name)] = int(n)
    return out


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {json.dumps(a)} in the folder, {json.dumps(b)} requested")
    return diffs


def _is_shard_file(p: Path) -> bool:
    return p.name.startswith("shard-") and p.name.endswith(".h5")


def check_resumable(out: str | os.PathLike, header: dict) -> dict | None:
    """The existing manifest of ``out`` if it matches ``header``; ``None`` for a new folder.

    Raises
    ------
    DatasetError
        If ``out`` is a file, a non-empty folder without a manifest, or a dataset generated with
        other settings. Nothing is modified.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder")
    if (out / MANIFEST_NAME).exists():
        old = read_manifest(out)
        keys = ("format_version", "pde", "params", "generator", "fields")
        diffs = _diff({k: old.get(k) for k in keys}, {k: header[k] for k in keys})
        if diffs:
            raise DatasetError(
                f"{out} holds a dataset generated with other settings ({'; '.join(diffs)}); "
                "rerun with the same settings to resume, or choose another output folder"
            )
        return old
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out} is not empty and has no {MANIFEST_NAME}; refusing to write into it")
    return None


def _prepare(out: Path, header: dict, notes: list[str]) -> dict:
    old = check_resumable(out, header)
    out.mkdir(parents=True, exist_ok=True)
    for split in header["generator"]["splits"]:
        (out / split).mkdir(exist_ok=True)
    manifest = {**header, "complete": False, "splits": {s: [] for s in header["generator"]["splits"]}}
    if old is not None:
        for split, entries in old["splits"].items():
            for e in entries:
                p = out / e["path"]
                if p.is_file() and sha256_file(p) == e["sha256"]:
                    manifest["splits"][split].append(e)
                else:
                    notes.append(f"regenerating {e['path']} (missing or checksum mismatch)")
    kept = {e["path"] for entries in manifest["splits"].values() for e in entries}
    for d in [out, *(out / s for s in header["generator"]["splits"])]:
        for p in d.iterdir():
            if TMP_MARK in p.name or (_is_shard_file(p) and f"{d.name}/{p.name}" not in kept):
                p.unlink()
    write_json_atomic(out / MANIFEST_NAME, manifest)
    return manifest


def _write_stats(out: Path, manifest: dict) -> None:
    splits = manifest["generator"]["splits"]
    split = "train" if "train" in splits else next(iter(splits))
    entries = manifest["splits"][split]
    merged = {
        name: merge_moments([e["moments"][name] for e in entries]) for name in manifest["fields"]
    }
    stats = {
        "split": split,
        "n_samples": sum(e["n_samples"] for e in entries),
        "complete": sum(e["n_samples"] for e in entries) == splits[split],
        "fields": {name: stats_from_moments(m) for name, m in merged.items()},
    }
    write_json_atomic(out / STATS_NAME, stats)


def _run_serial(family, tasks, out, header, device, threads) -> Iterator[dict]:
    for t in tasks:
        yield generate_shard(family, t, out, header, device=device, threads=threads)


def _run_pool(family, tasks, out, header, device, threads, workers) -> Iterator[dict]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [
            pool.submit(generate_shard, family, t, str(out), header, device=device, threads=threads)
            for t in tasks
        ]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _dask_client(dask, workers: int):
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise PdekitUserError(
            "Dask is not installed; install it with: pip install 'pdekit[dask]'"
        ) from None
    if not isinstance(dask, str):
        return dask, None
    if dask == "local":
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    return Client(dask), None


def _run_dask(family, tasks, out, header, device, threads, dask, workers) -> Iterator[dict]:
    from distributed import as_completed

    client, cluster = _dask_client(dask, workers)
    try:
        futures = [
            client.submit(
                generate_shard, family, t, str(out), header, device=device, threads=threads,
                pure=False, key=f"pdekit-shard-{t.split}-{t.index}-{os.getpid()}-{time.time_ns()}",
            )
            for t in tasks
        ]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if client is not dask:
            client.close()
        if cluster is not None:
            cluster.close()


def generate(
    family,
    out: str | os.PathLike,
    splits: dict[str, int],
    *,
    seed: int = 0,
    shard_size: int = 100,
    workers: int = 1,
    dask=None,
    device: str = "cpu",
    threads: int = 1,
    progress: bool = False,
    solver: SolveConfig | dict | None = None,
) -> GenerateSummary:
    """Generate (or resume) a dataset of ``family`` in the folder ``out``.

    Parameters
    ----------
    family : PDEFamily
        Any family following :mod:`pdekit.pdes.base` (e.g. ``get_pde("darcy", resolution=64)``).
    out : path-like
        Dataset folder; created if missing. An existing folder is resumed if it was generated with
        the same family, parameters, seed, shard size and splits, and refused otherwise.
    splits : dict of str to int
        Samples per split, e.g. ``{"train": 800, "test": 200}``.
    seed : int
        Master seed; shard seeds derive from ``(seed, split, shard index)``.
    shard_size : int
        Samples per shard file (and per batched solve).
    workers : int
        Worker processes (a spawn-context process pool; with ``dask="local"``, local Dask workers).
    dask : str or distributed.Client, optional
        ``"local"`` for a ``LocalCluster`` of ``workers`` processes, a scheduler address
        (``"tcp://host:8786"``) or a ``Client``. ``out`` must be on a filesystem all workers see.
    device : str
        Where the solves run (``"cpu"``, ``"cuda"``). Inputs are always drawn on the CPU.
    threads : int
        torch threads per shard. Keep it fixed: CPU matmul/FFT results can change in the last bits
        with the thread count, and byte-identical shards across runs rely on it.
    progress : bool
        Show a tqdm progress bar (samples).
    solver : SolveConfig or dict, optional
        Solver settings of the family: a :class:`~pdekit.core.solve_config.SolveConfig`, or some
        of its fields by name (e.g. ``{"method": "rcg", "ordering": "greedy"}`` for the
        Krylov-recycling path of the linear families), the others from the family's default.
        The full configuration is recorded in the manifest (``generator.solver``); resuming with
        other settings is refused.

    Returns
    -------
    GenerateSummary
    """
    splits = check_splits(splits)
    if shard_size < 1:
        raise PdekitUserError(f"shard size must be >= 1, got {shard_size}")
    if workers < 1:
        raise PdekitUserError(f"workers must be >= 1, got {workers}")
    if threads < 1:
        raise PdekitUserError(f"threads must be >= 1, got {threads}")
    if dask is not None and isinstance(dask, str):
        _dask_importable()
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise PdekitUserError(f"device {device!r} was requested but torch sees no CUDA device")
    config = solve_config(family, solver)
    out = Path(out)
    header = _keep_stored_solver(family, out, _header(family, splits, seed, shard_size, config))
    notes: list[str] = []
    manifest = _prepare(out, header, notes)
    done = {(s, e["shard_index"]) for s, entries in manifest["splits"].items() for e in entries}
    tasks = plan_shards(splits, shard_size, seed)
    todo = [t for t in tasks if (t.split, t.index) not in done]
    n_total = sum(splits.values())
    n_reused = len(tasks) - len(todo)

    from tqdm.auto import tqdm

    bar = tqdm(
        total=n_total,
        initial=n_total - sum(t.n_samples for t in todo),
        unit="sample",
        desc=f"{family.name}",
        disable=None if progress else True,  # None: only on a terminal
        dynamic_ncols=True,
    )
    t0 = time.perf_counter()
    if dask is not None:
        results = _run_dask(family, todo, out, header, device, threads, dask, workers)
    elif workers > 1 and len(todo) > 1:
        results = _run_pool(family, todo, out, header, device, threads, workers)
    else:
        results = _run_serial(family, todo, out, header, device, threads)
    iters: list[tuple[float, int]] = []
    try:
        for entry in results:
            split = entry["path"].split("/")[0]
            entries = manifest["splits"][split]
            entries.append(entry)
            entries.sort(key=lambda e: e["shard_index"])
            write_json_atomic(out / MANIFEST_NAME, manifest)
            _write_stats(out, manifest)
            iters.append((entry["iterations_mean"], entry["n_samples"]))
            bad = sum(m["nonfinite"] for m in entry["moments"].values())
            if bad:
                notes.append(f"{entry['path']} holds {bad} NaN/inf values")
            bar.update(entry["n_samples"])
            bar.set_postfix(iters=f"{entry['iterations_mean']:.0f}")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST_NAME, manifest)
    _write_stats(out, manifest)
    all_entries = [e for entries in manifest["splits"].values() for e in entries]
    n_gen = sum(n for _, n in iters)
    return GenerateSummary(
        out=str(out),
        pde=family.name,
        n_samples=n_total,
        n_generated=n_gen,
        n_shards=len(tasks),
        n_reused=n_reused,
        seconds=seconds,
        mean_iterations=sum(m * n for m, n in iters) / n_gen if n_gen else float("nan"),
        max_rel_residual=max((e["rel_residual_max"] for e in all_entries), default=0.0),
        notes=notes,
    )


def _dask_importable() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise PdekitUserError(
            "Dask is not installed; install it with: pip install 'pdekit[dask]'"
        ) from None
