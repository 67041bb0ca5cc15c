"""One rule for the ``device`` arguments of pdekit: which names are accepted, and when they fail.

Accepted: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` and ``"mps"`` (or the equivalent
:class:`torch.device`). ``None`` means the CPU: pdekit never moves work to an accelerator unless
asked. A name that is not one of these, or a device this machine does not have, raises
:class:`~pdekit.errors.PdekitUserError` with a one-line message that names the argument and lists
the devices that are available.
"""

from __future__ import annotations

import re

import torch

from pdekit.errors import PdekitUserError

__all__ = ["resolve_device", "available_devices"]

_NAME = re.compile(r"^(cpu|cuda|cuda:\d+|mps)$")


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Names of the devices this process can use, ``"cpu"`` first.

    Examples
    --------
    >>> available_devices()[0]
    'cpu'
    """
    n = _cuda_count()
    names = ["cpu"]
    if n:
        names += ["cuda"] + [f"cuda:{i}" for i in range(n)]
    if _mps_available():
        names.append("mps")
    return names


def resolve_device(value: str | torch.device | None, *, argument: str = "device") -> torch.device:
    """Check a user's device choice and return it as a :class:`torch.device`.

    Parameters
    ----------
    value : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``; ``None`` is the CPU.
    argument : str
        Name of the argument (or config key) the value came from, used in the error message.

    Returns
    -------
    torch.device
        ``torch.device(value)``; ``"cuda"`` stays without an index (the current CUDA device).

    Raises
    ------
    PdekitUserError
        When ``value`` is not one of the accepted names, or names a device that is not available
        here (the message lists those that are).

    Examples
    --------
    >>> resolve_device("cpu"), resolve_device(None)
    (device(type='cpu'), device(type='cpu'))
    >>> resolve_device("tpu", argument="--device")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: --device: expected cpu, cuda, cuda:N or mps, got 'tpu' (available: ...)
    """
    if value is None:
        return torch.device("cpu")
    if isinstance(value, torch.device):
        name = str(value)
    elif isinstance(value, str):
        name = value
    else:
        raise PdekitUserError(
            f"{argument}: expected a device name (cpu, cuda, cuda:N or mps), "
            f"got {type(value).__name__} {value!r}"
        )
    available = available_devices()
    listing = ", ".join(available)
    if not _NAME.match(name):
        raise PdekitUserError(
            f"{argument}: expected cpu, cuda, cuda:N or mps, got {name!r} (available: {listing})"
        )
    if name not in available:
        raise PdekitUserError(
            f"{argument}: device {name!r} is not available on this machine (available: {listing})"
        )
    return torch.device(name)
