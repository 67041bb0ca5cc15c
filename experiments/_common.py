"""What every experiment script shares: common options, run metadata, JSON output, cache folder.

The scripts import this file as a sibling module, ``import _common``: ``python experiments/x.py``
puts ``experiments/`` first on the import path, and the tests load a script with the
``load_experiment`` fixture of ``tests/conftest.py``, which registers this module first. Nothing
here changes ``sys.path``.

* :func:`add_common_args`: ``--quick``, ``--json PATH`` (nothing is written without it),
  ``--device`` (default ``cpu``, refused when torch cannot use it), ``--threads N`` and
  ``--alone`` (the user states that nothing else ran on the machine);
* :func:`run_meta`: date, platform, processor, cores, Python and torch versions, device and its
  name, torch threads and ``alone``, plus the script's own settings;
* :func:`write_json`: ``{"meta": ..., "results": [...]}`` written atomically;
* :func:`cache_dir`: ``$PDEKIT_CACHE/<name>``, or ``~/.cache/pdekit/<name>`` without it;
* :func:`override_setting` and :func:`model_names`: the prologue of the operator benchmarks
  (a budget dataclass overridden by options, a checked ``--models`` list).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

__all__ = ["add_common_args", "apply_threads", "cache_dir", "model_names", "override_setting",
           "parse_device", "run_meta", "write_json"]


def parse_device(text: str) -> str:
    """``text`` checked as a torch device that can hold a tensor here (the ``--device`` type).

    Returns the device's canonical name (``str(torch.device(text))``), so that scripts can pass
    it on to configurations that expect a string.

    Examples
    --------
    >>> parse_device("cpu")
    'cpu'
    >>> parse_device("gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    argparse.ArgumentTypeError: device 'gpu' is not available (...)
    """
    try:
        device = torch.device(text)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise argparse.ArgumentTypeError(f"device {text!r} is not available ({first})") from None
    return str(device)


def add_common_args(
    parser: argparse.ArgumentParser,
    *,
    quick: str = "a smaller budget (a smoke run)",
    device: str = "torch device (cpu, cuda, cuda:N)",
    threads: int | None = None,
) -> argparse.ArgumentParser:
    """Add ``--quick``, ``--json``, ``--device``, ``--threads`` and ``--alone`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    quick, device : str
        The script's help texts of ``--quick`` and ``--device``.
    threads : int, optional
        Default of ``--threads`` (``None``: leave torch's thread count alone).

    Returns
    -------
    argparse.ArgumentParser
        ``parser``; ``args.device`` is a device name that torch accepts here.

    Examples
    --------
    >>> args = add_common_args(argparse.ArgumentParser()).parse_args(["--quick"])
    >>> args.quick, args.json, args.device, args.threads, args.alone
    (True, None, 'cpu', None, None)
    """
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="write the results here as JSON (default: write nothing)")
    parser.add_argument("--device", type=parse_device, default="cpu", help=device)
    parser.add_argument("--threads", type=int, default=threads, metavar="N",
                        help="torch CPU threads" + ("" if threads is None else f" (default {threads})"))
    parser.add_argument("--alone", action="store_const", const=True, default=None,
                        help="record in the metadata that nothing else ran on the machine")
    return parser


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's CPU threads to ``args.threads`` when it is given."""
    if args.threads:
        torch.set_num_threads(args.threads)


def _processor() -> str:
    """The CPU model (``platform.processor()`` is empty on Linux: read ``/proc/cpuinfo``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _processor()


def run_meta(device: str | torch.device = "cpu", *, alone: bool | None = None, **extra) -> dict:
    """Where and when a run happened, plus the script's own settings ``extra``.

    Examples
    --------
    >>> meta = run_meta("cpu", quick=True)
    >>> meta["device"], meta["quick"], meta["alone"], meta["threads"] == torch.get_num_threads()
    ('cpu', True, None, True)
    """
    device = torch.device(device)
    meta = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": _processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": _device_name(device),
        "threads": torch.get_num_threads(),
        "alone": alone,
    }
    return {**meta, **extra}


def _plain(value):
    """JSON fallback: paths, devices, numpy and torch scalars or arrays."""
    if isinstance(value, (Path, torch.device)):
        return str(value)
    if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
        return value.tolist()
    return float(value)


def write_json(path: str | os.PathLike, results: Sequence, meta: Mapping, **sections) -> Path:
    """Write ``{"meta": meta, "results": results, **sections}`` to ``path`` atomically.

    The text goes to ``path + ".tmp"`` first and is renamed over ``path``, so a reader never sees
    a half-written file. Returns ``path``.

    Examples
    --------
    >>> import tempfile
    >>> out = write_json(Path(tempfile.mkdtemp()) / "r.json", [{"x": np.float32(0.5)}], {"q": 1})
    >>> json.loads(out.read_text())
    {'meta': {'q': 1}, 'results': [{'x': 0.5}]}
    """
    path = Path(path)
    payload = {"meta": dict(meta), "results": list(results), **sections}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    os.replace(tmp, path)
    return path


def cache_dir(name: str) -> Path:
    """The cache folder of ``name``: ``$PDEKIT_CACHE/name``, else ``~/.cache/pdekit/name``.

    Examples
    --------
    >>> cache_dir("demo").name
    'demo'
    """
    root = os.environ.get("PDEKIT_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "pdekit") / name


def override_setting(setting, args: argparse.Namespace):
    """``setting`` (a dataclass) with every field that ``args`` gives (not ``None``) replaced.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class Budget:
    ...     epochs: int
    ...     lr: float = 1e-3
    >>> override_setting(Budget(5), argparse.Namespace(epochs=None, lr=0.1))
    Budget(epochs=5, lr=0.1)
    """
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(setting)
             if getattr(args, f.name, None) is not None}
    return dataclasses.replace(setting, **given)


def model_names(text: str, prog: str) -> list[str] | None:
    """The registry names of a comma-separated ``--models``; ``None`` after printing the error.

    Examples
    --------
    >>> model_names("FNO, mgno", "demo")
    ['fno', 'mgno']
    """
    from pdekit.models import available_models

    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(available_models()))
    if unknown or not names:
        print(f"{prog}: unknown model(s) {', '.join(unknown) or '(none given)'}; "
              f"choose from {', '.join(available_models())}", file=sys.stderr)
        return None
    return names
