"""Checks and input scaling shared by the point-wise PINN networks (:class:`KAN`, :class:`MLP`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pdekit.errors import PdekitUserError

__all__ = ["input_affine_map", "layer_widths"]


def layer_widths(layer_sizes: Sequence[int]) -> tuple[int, ...]:
    """``layer_sizes`` (input, hidden..., output widths) as a tuple of ints, or a one-line error.

    Examples
    --------
    >>> layer_widths([2, 5, 1])
    (2, 5, 1)
    >>> layer_widths([2])
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: layer_sizes needs >= 2 positive widths, got [2]
    """
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise PdekitUserError(f"layer_sizes needs >= 2 positive widths, got {list(layer_sizes)}")
    return tuple(sizes)


def input_affine_map(
    input_range: tuple | None,
    n_in: int,
    target: tuple[float, float],
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of the affine map of the input box onto ``target`` in every coordinate.

    Parameters
    ----------
    input_range : (lo, hi) or None
        Box of the raw inputs; ``lo`` and ``hi`` are numbers or per-coordinate sequences. ``None``
        gives the identity (scale 1, shift 0).
    n_in : int
        Number of input coordinates.
    target : (float, float)
        Interval each coordinate is mapped onto.
    dtype : torch.dtype

    Returns
    -------
    scale, shift : Tensor, shape ``(n_in,)``
        ``x * scale + shift`` maps ``lo`` to ``target[0]`` and ``hi`` to ``target[1]``.

    Examples
    --------
    >>> scale, shift = input_affine_map((0.0, 1.0), 2, (-1.0, 1.0), torch.float64)
    >>> (torch.tensor([0.0, 1.0], dtype=torch.float64) * scale + shift).tolist()
    [-1.0, 1.0]
    """
    scale, shift = torch.ones(n_in, dtype=dtype), torch.zeros(n_in, dtype=dtype)
    if input_range is None:
        return scale, shift
    lo, hi = (torch.as_tensor(v, dtype=dtype).expand(n_in) for v in input_range)
    if not bool((hi > lo).all()):
        raise PdekitUserError(f"input_range must have hi > lo, got {input_range}")
    scale = (target[1] - target[0]) / (hi - lo)
    shift = target[0] - lo * scale
    return scale, shift
