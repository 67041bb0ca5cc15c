"""The ``pdekit`` command line: ``generate``, ``verify``, ``info``, ``train`` and ``evaluate``.

Bad input (an unknown PDE, a bad option value, a foreign folder) gives a one-line
``pdekit: error: ...`` on stderr, exit code 2 and no files written. Heavy packages are imported
inside the command that needs them, so ``pdekit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pdekit import __version__
from pdekit.errors import PdekitUserError

__all__ = ["main", "build_parser"]

_GENERATE_EPILOG = """\
examples:
  pdekit generate darcy --resolution 64 --split train=1000,test=200 --out datasets/darcy64
  pdekit generate --config data/darcy64.yaml
  pdekit generate --config data/darcy64.yaml --workers 4 --out /scratch/darcy64
  pdekit generate heat --resolution 128 --n-samples 512 --dask tcp://scheduler:8786 --out /shared/heat

Rerunning the same command resumes an interrupted run: finished shards whose checksum matches
are kept, the rest is generated. Rerunning with other settings into the same folder is refused.
Shard seeds derive from (seed, split, shard index), so the data do not depend on --workers or
--dask. Options given on the command line override those of --config.
"""

_SOLVER_FLAGS = ("method", "ordering", "n_chains", "rtol")  # SolveConfig fields set by flags
_CONFIG_KEYS = {"pde", "params", "n_samples", "splits", "seed", "shard_size", "workers", "threads",
                "device", "dask", "out", "solver"}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _splits(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = part.partition("=")
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=COUNT[,NAME=COUNT...], got {text!r}")
        out[name.strip()] = _positive_int(count.strip())
    return out


def _param(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return key.strip(), value


def _device(text: str) -> str:
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:N, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pdekit`` (exposed for documentation and tests)."""
    p = _Parser(prog="pdekit", description="pdekit: scientific machine learning on PDEs.")
    p.add_argument("--version", action="version", version=f"pdekit {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    g = sub.add_parser(
        "generate",
        help="generate (or resume) a dataset of a PDE family",
        description="Generate a dataset folder of sharded HDF5 files, or resume an interrupted run.",
        epilog=_GENERATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g.add_argument("pde", nargs="?", help="PDE family (darcy, poisson, helmholtz, heat, ...); "
                   "may come from --config")
    g.add_argument("--config", metavar="YAML", help="recipe file with pde, params, splits, seed, "
                   "shard_size, out, ... (e.g. data/darcy64.yaml)")
    g.add_argument("--n-samples", type=_positive_int, metavar="N",
                   help="total samples; all go to the train split unless --split is given")
    g.add_argument("--resolution", type=_positive_int, metavar="R",
                   help="grid points per spatial dimension (the family's `resolution` parameter)")
    g.add_argument("--split", type=_splits, metavar="NAME=N,...",
                   help="samples per split, e.g. train=800,test=200 (must add up to --n-samples "
                   "if both are given)")
    g.add_argument("--param", type=_param, action="append", metavar="KEY=VALUE", default=None,
                   help="another parameter of the family (repeatable; VALUE is read as YAML)")
    g.add_argument("--nu", type=_positive_float, metavar="NU",
                   help="viscosity of the time-dependent families (burgers, navier-stokes)")
    g.add_argument("--t-final", type=_positive_float, metavar="T", help="final time (time-dependent families)")
    g.add_argument("--n-records", type=_positive_int, metavar="K",
                   help="snapshots recorded after the initial one, evenly spaced up to T")
    g.add_argument("--method", metavar="M",
                   help="linear solver of the linear families: spsolve, cg, gmres, mgpcg, rcg or gcrodr "
                        "(rcg/gcrodr: Krylov recycling over an ordered sequence); default: the family's")
    g.add_argument("--ordering", metavar="O",
                   help="sample ordering for recycling: greedy, pca, hilbert or none")
    g.add_argument("--n-chains", type=_positive_int, metavar="C",
                   help="independent recycling chains solved side by side (the GPU path)")
    g.add_argument("--rtol", type=_positive_float, metavar="TOL",
                   help="relative tolerance of the linear solves (true residual)")
    g.add_argument("--seed", type=_int, metavar="S", help="master seed (default 0)")
    g.add_argument("--shard-size", type=_positive_int, metavar="K",
                   help="samples per shard file and per batched solve (default 100)")
    g.add_argument("--workers", type=_positive_int, metavar="W",
                   help="worker processes (default 1); with --dask local, local Dask workers")
    g.add_argument("--threads", type=_positive_int, metavar="T",
                   help="torch threads per shard (default 1; keep it fixed across runs of a "
                   "dataset: it can change the last bits of CPU solutions)")
    g.add_argument("--dask", metavar="ADDRESS",
                   help="spread shards over a Dask cluster: a scheduler address (tcp://host:8786) "
                   "or `local` for a LocalCluster of W processes; needs pip install 'pdekit[dask]'")
    g.add_argument("--device", type=_device, metavar="{cpu,cuda}",
                   help="where the solves run: cpu (default), cuda or cuda:N")
    g.add_argument("--out", metavar="DIR", help="dataset folder to create or resume")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")

    t = sub.add_parser(
        "train",
        help="train a neural operator from a YAML config",
        description="Train, evaluate, checkpoint and plot; continue a killed run with --set resume=true.",
    )
    t.add_argument("config", metavar="CONFIG.yaml", help="training config (see docs/training.md)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted for sections, VALUE read as YAML); repeatable")
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset: metrics table and plots")
    e.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by `pdekit train`")
    e.add_argument("dataset_dir", metavar="DATASET_DIR", help="a pdekit dataset folder")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--subsample", dest="subsamples", type=_positive_int, action="append", metavar="S",
                   help="evaluate at every S-th node (repeatable: several resolutions)")
    e.add_argument("--batch-size", type=_positive_int, metavar="B", help="evaluation batch size")
    e.add_argument("--out", metavar="DIR", help="where to write metrics and plots")
    e.add_argument("--device", type=_device, metavar="{cpu,cuda}", help="device (default: cpu)")
    e.add_argument("--no-plots", action="store_true", help="do not write plots")
    e.add_argument("--n-plot-samples", type=_positive_int, default=4, metavar="K",
                   help="test samples to plot (default 4)")

    v = sub.add_parser("verify", help="check a dataset: schema, checksums, NaN/inf",
                       description="Check a dataset folder; exit 0 and print OK when sound, "
                       "else list the problems and exit 1.")
    v.add_argument("dir", metavar="DIR", help="dataset folder")

    i = sub.add_parser("info", help="summarise a dataset, or show versions and devices",
                       description="With DIR: summarise the dataset. Without: print the versions "
                       "of pdekit and its dependencies, torch threads and available devices.")
    i.add_argument("dir", metavar="DIR", nargs="?", help="dataset folder")
    return p


# -- generate ---------------------------------------------------------------------------------
def _load_config(path: str) -> dict:
    import yaml

    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except OSError as e:
        raise PdekitUserError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise PdekitUserError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(cfg, dict):
        raise PdekitUserError(f"config {path} must be a mapping of options")
    unknown = sorted(set(cfg) - _CONFIG_KEYS)
    if unknown:
        raise PdekitUserError(f"config {path}: unknown key(s) {', '.join(unknown)}; "
                              f"known: {', '.join(sorted(_CONFIG_KEYS))}")
    return cfg


def _cmd_generate(args) -> int:
    from pdekit.data.generate import check_splits, generate
    from pdekit.pdes import get_pde

    cfg = _load_config(args.config) if args.config else {}

    def pick(name, default=None):
        value = getattr(args, name)
        return value if value is not None else cfg.get(name, default)

    pde = args.pde or cfg.get("pde")
    if not pde:
        raise PdekitUserError("no PDE given (as the first argument or `pde:` in --config)")
    params = dict(cfg.get("params") or {})
    if args.resolution is not None:
        params["resolution"] = args.resolution
    for key, value in args.param or []:
        params[key] = value
    for key in ("nu", "t_final", "n_records"):
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    try:
        family = get_pde(str(pde), **params)
    except (ValueError, TypeError) as e:
        raise PdekitUserError(str(e)) from None

    n_samples = pick("n_samples")
    splits = args.split if args.split is not None else cfg.get("splits")
    if splits is None:
        if n_samples is None:
            raise PdekitUserError("give the number of samples with --n-samples or --split")
        splits = {"train": n_samples}
    if not isinstance(splits, dict):
        raise PdekitUserError("splits must map split names to sample counts")
    splits = check_splits(splits)
    if n_samples is not None and sum(splits.values()) != n_samples:
        raise PdekitUserError(
            f"--split adds up to {sum(splits.values())} samples but --n-samples is {n_samples}"
        )
    out = pick("out")
    if not out:
        raise PdekitUserError("no output folder: give --out DIR (or `out:` in --config)")
    device = str(pick("device", "cpu"))
    solver = cfg.get("solver") or {}
    if not isinstance(solver, dict):
        raise PdekitUserError("solver must map option names to values")
    # the flags are fields of pdekit.core.solve_config.SolveConfig under the same names as in the
    # recipe's `solver:` block; generate() builds and validates the config from the merged dict
    flags = {k: getattr(args, k) for k in _SOLVER_FLAGS if getattr(args, k) is not None}
    solver = {**solver, **flags}
    summary = generate(
        family,
        out,
        splits,
        seed=int(pick("seed", 0)),
        shard_size=int(pick("shard_size", 100)),
        workers=int(pick("workers", 1)),
        dask=pick("dask"),
        device=device,
        threads=int(pick("threads", 1)),
        progress=not args.no_progress,
        solver=solver,
    )
    print(summary)
    return 0


# -- verify / info ----------------------------------------------------------------------------
def _cmd_verify(args) -> int:
    from pdekit.data.verify import verify

    report = verify(args.dir)
    print(report)
    return 0 if report.ok else 1


def _versions() -> int:
    import contextlib
    import importlib
    import io
    import platform

    print(f"pdekit          {__version__}")
    print(f"python          {platform.python_version()} ({sys.executable})")
    modules = [("torch", "torch"), ("numpy", "numpy"), ("scipy", "scipy"), ("h5py", "h5py"),
               ("h5netcdf", "h5netcdf"), ("xarray", "xarray"), ("neuraloperator", "neuralop"),
               ("deepxde", "deepxde"), ("dask", "dask"), ("distributed", "distributed")]
    for label, mod in modules:
        sink = io.StringIO()
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                m = importlib.import_module(mod)
            version = getattr(m, "__version__", "installed")
        except ImportError:
            version = "not installed"
        except Exception as e:  # a broken install should not break `info`
            version = f"import failed ({type(e).__name__}: {e})"
        print(f"{label:<15} {version}")
    import torch

    print(f"threads         torch {torch.get_num_threads()} (interop {torch.get_num_interop_threads()}), "
          f"{os.cpu_count()} CPUs")
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    print(f"devices         {', '.join(devices)}")
    return 0


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


def _dataset_info(root: str) -> int:
    import json

    import h5py

    from pdekit.data.schema import read_manifest, read_stats
    from pdekit.errors import DatasetError

    m = read_manifest(root)
    try:
        stats = read_stats(root)
    except DatasetError:
        stats = {"fields": {}}
    gen = m["generator"]
    state = "complete" if m.get("complete") else "INCOMPLETE (rerun `pdekit generate` to resume)"
    print(f"dataset     {root}")
    print(f"format      {m['format']} v{m['format_version']}, {state}")
    print(f"pde         {m['pde']} {json.dumps(m['params'])}")
    print(f"generator   seed {gen['seed']}, shard size {gen['shard_size']}")
    total = 0
    entries_all = []
    for split, entries in m["splits"].items():
        n = sum(e["n_samples"] for e in entries)
        want = gen["splits"].get(split, n)
        size = sum((Path(root) / e["path"]).stat().st_size for e in entries
                   if (Path(root) / e["path"]).is_file())
        total += size
        entries_all += entries
        print(f"split       {split}: {n}/{want} samples in {len(entries)} shards, {_human_bytes(size)}")
    print("fields")
    for name, spec in m["fields"].items():
        s = stats["fields"].get(name)
        desc = f"  {name:<10} ({', '.join(spec['dims'])}) per-sample shape {tuple(spec['shape'])}"
        if s:
            desc += f", mean {s['mean']:.4g}, std {s['std']:.4g}, range [{s['min']:.4g}, {s['max']:.4g}]"
        print(desc)
    if entries_all:
        first = Path(root) / entries_all[0]["path"]
        try:
            with h5py.File(first, "r") as f:
                parts = []
                for d in ("time", "x", "y", "z"):
                    if d in f and f[d].ndim == 1 and len(f[d]):
                        c = f[d][()]
                        parts.append(f"{d}: {len(c)} points in [{c.min():.4g}, {c.max():.4g}]")
                print(f"coords      {'; '.join(parts)}")
        except OSError as e:
            print(f"coords      unreadable first shard ({e})")
        n = sum(e["n_samples"] for e in entries_all)
        it = sum(e.get("iterations_mean", 0.0) * e["n_samples"] for e in entries_all) / n
        it_max = max(e.get("iterations_max", 0) for e in entries_all)
        res = max(e.get("rel_residual_max", 0.0) for e in entries_all)
        print(f"solver      mean iterations {it:.1f} (max {it_max}), max rel. residual {res:.2e}")
    print(f"size        {_human_bytes(total)}")
    return 0


def _cmd_train(args) -> int:
    from pdekit.train.cli_commands import train_main

    return train_main(args.config, args.overrides)


def _cmd_evaluate(args) -> int:
    from pdekit.train.cli_commands import evaluate_main

    return evaluate_main(
        args.checkpoint,
        args.dataset_dir,
        split=args.split,
        subsamples=args.subsamples,
        batch_size=args.batch_size,
        out_dir=args.out,
        device=args.device,
        plots=not args.no_plots,
        n_plot_samples=args.n_plot_samples,
    )


def _cmd_info(args) -> int:
    return _versions() if args.dir is None else _dataset_info(args.dir)


def main(argv: list[str] | None = None) -> int:
    """Run the ``pdekit`` command; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version and argparse errors
        return int(e.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    commands = {
        "generate": _cmd_generate,
        "verify": _cmd_verify,
        "info": _cmd_info,
        "train": _cmd_train,
        "evaluate": _cmd_evaluate,
    }
    try:
        return commands[args.command](args)
    except PdekitUserError as e:
        print(f"pdekit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = "add --set resume=true" if args.command == "train" else "rerun the same command"
        print(f"pdekit: interrupted; {hint} to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
