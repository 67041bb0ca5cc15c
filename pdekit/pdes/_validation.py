"""Input checks shared by the PDE families (one-line :class:`~pdekit.errors.PdekitUserError`)."""

from __future__ import annotations

import torch

from pdekit.errors import PdekitUserError

__all__ = ["check_n_samples", "check_resolution", "check_choice", "input_field"]


def check_n_samples(n) -> int:
    """A positive integer number of samples, or a one-line error.

    Examples
    --------
    >>> check_n_samples(3)
    3
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise PdekitUserError(f"number of samples must be a positive integer, got {n!r}")
    return int(n)


def check_resolution(resolution, minimum: int = 3) -> None:
    """Grid nodes per dimension (boundary included) must be an integer ``>= minimum``."""
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < minimum:
        raise PdekitUserError(f"resolution must be an integer >= {minimum}, got {resolution!r}")


def check_choice(name: str, value, choices) -> None:
    """``value`` must be one of ``choices`` (a family parameter such as ``source``)."""
    if value not in choices:
        raise PdekitUserError(
            f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}"
        )


def input_field(inputs: dict, name: str, shape: tuple[int, ...], *, n: int | None = None):
    """``inputs[name]`` as a finite floating tensor of shape ``(n, *shape)`` (one-line errors).

    Examples
    --------
    >>> input_field({"a": torch.ones(2, 3)}, "a", (3,)).shape
    torch.Size([2, 3])
    """
    if not isinstance(inputs, dict) or name not in inputs:
        have = ", ".join(sorted(inputs)) if isinstance(inputs, dict) else type(inputs).__name__
        raise PdekitUserError(f"inputs need a field {name!r} (got {have})")
    t = inputs[name]
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise PdekitUserError(f"input {name!r} must be a floating-point tensor")
    if t.dim() != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
        raise PdekitUserError(
            f"input {name!r} must have shape (n, {', '.join(map(str, shape))}), got {tuple(t.shape)}"
        )
    if n is not None and t.shape[0] != n:
        raise PdekitUserError(f"input {name!r} has {t.shape[0]} samples, expected {n}")
    if not torch.isfinite(t).all():
        raise PdekitUserError(f"input {name!r} contains NaN or inf")
    return t
