"""The model contract: :class:`NeuralOperator` and the checks every model config runs.

Every registered model is a :class:`NeuralOperator` built from one frozen dataclass config. It
maps ``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)`` and says which grids
it accepts through :meth:`NeuralOperator.check_resolution`. Configs validate their fields in
``__post_init__`` with the :class:`ConfigChecks` mixin, so that every bad value is a one-line
:class:`~pdekit.errors.PdekitUserError` naming ``<Config>.<field>``.

The registry itself (names, :func:`~pdekit.models.registry.get_model`) lives in
:mod:`pdekit.models.registry`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from pdekit.errors import PdekitUserError

__all__ = [
    "ConfigChecks",
    "NeuralOperator",
    "as_int_tuple",
    "check_config_choice",
    "check_positive_int",
    "model_config_dict",
]


def check_positive_int(owner: str, field: str, value: Any, minimum: int = 1) -> int:
    """Validate an integer field of ``owner``; one-line error otherwise.

    Examples
    --------
    >>> check_positive_int("FNOConfig", "n_layers", 4)
    4
    >>> check_positive_int("FNOConfig", "n_layers", 0)
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: FNOConfig.n_layers must be an integer >= 1, got 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PdekitUserError(f"{owner}.{field} must be an integer >= {minimum}, got {value!r}")
    return value


def check_config_choice(owner: str, field: str, value: Any, choices: Any) -> Any:
    """Validate an option field against its choices: a ``Literal`` type or a sequence.

    Examples
    --------
    >>> from typing import Literal
    >>> check_config_choice("MgNOConfig", "padding_mode", "zeros", Literal["zeros", "circular"])
    'zeros'
    """
    options = typing.get_args(choices) or tuple(choices)
    if value not in options:
        raise PdekitUserError(
            f"{owner}.{field} must be one of {', '.join(map(repr, options))}, got {value!r}"
        )
    return value


def as_int_tuple(owner: str, field: str, value: Any) -> tuple[int, ...]:
    """Turn an int or a list/tuple of positive ints (e.g. from YAML) into a tuple, or raise.

    Examples
    --------
    >>> as_int_tuple("FNOConfig", "n_modes", [16, 16])
    (16, 16)
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PdekitUserError(f"{owner}.{field} must be a tuple of ints, got {value!r}")
    for v in value:
        check_positive_int(owner, field, v)
    return tuple(int(v) for v in value)


def model_config_dict(config: Any) -> dict[str, Any]:
    """A model config dataclass as a plain dict of its fields (tuples kept), for checkpoints.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class Cfg:
    ...     n_modes: tuple = (8, 8)
    >>> model_config_dict(Cfg())
    {'n_modes': (8, 8)}
    """
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


class ConfigChecks:
    """Mixin of field checks for frozen model configs (call them from ``__post_init__``).

    Every check names the field as ``<ConfigClass>.<field>`` in a one-line
    :class:`~pdekit.errors.PdekitUserError`; the normalising ones store the normalised value on the
    frozen instance.

    Examples
    --------
    >>> from typing import Literal
    >>> @dataclasses.dataclass(frozen=True)
    ... class DemoConfig(ConfigChecks):
    ...     width: int = 8
    ...     n_modes: tuple = (4, 4)
    ...     padding: Literal["zeros", "circular"] = "zeros"
    ...     def __post_init__(self):
    ...         self._check_positive_ints("width")
    ...         self._normalise_int_tuple("n_modes")
    ...         self._check_choice("padding", Literal["zeros", "circular"])
    >>> DemoConfig(n_modes=[6, 6]).n_modes
    (6, 6)
    >>> DemoConfig(padding="reflect")
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: DemoConfig.padding must be one of 'zeros', 'circular', got 'reflect'
    """

    def _check_positive_ints(self, *fields: str, minimum: int = 1) -> None:
        for field in fields:
            check_positive_int(type(self).__name__, field, getattr(self, field), minimum)

    def _check_flags(self, *fields: str) -> None:
        for field in fields:
            value = getattr(self, field)
            if not isinstance(value, bool):
                raise PdekitUserError(
                    f"{type(self).__name__}.{field} must be True or False, got {value!r}"
                )

    def _check_choice(self, field: str, choices: Any) -> None:
        check_config_choice(type(self).__name__, field, getattr(self, field), choices)

    def _check_fraction(
        self, field: str, *, include_low: bool = True, include_high: bool = True
    ) -> None:
        """A number in ``[0, 1]``, with either end excluded on request (booleans refused)."""
        value = getattr(self, field)
        try:
            number = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            number = math.nan
        low_ok = number >= 0.0 if include_low else number > 0.0
        high_ok = number <= 1.0 if include_high else number < 1.0
        if not (low_ok and high_ok):
            interval = f"{'[' if include_low else '('}0, 1{']' if include_high else ')'}"
            raise PdekitUserError(
                f"{type(self).__name__}.{field} must be a fraction in {interval}, got {value!r}"
            )

    def _normalise_int_tuple(self, field: str) -> tuple[int, ...]:
        value = as_int_tuple(type(self).__name__, field, getattr(self, field))
        object.__setattr__(self, field, value)
        return value


class NeuralOperator(nn.Module):
    """Base class of registered models: config, channel bookkeeping and input checks.

    Parameters
    ----------
    config : dataclass, optional
        The model's frozen config; must be exactly the class registered for the model and have
        integer fields ``in_channels`` and ``out_channels``. ``None`` builds the registered
        config class with its defaults.
    n_dim : int, optional
        Number of spatial dimensions the model takes; by default ``config.n_dim``.

    Attributes
    ----------
    model_name : str
        Registry name (set by :func:`~pdekit.models.registry.register_model`).
    config_class : type
        Config dataclass (set by :func:`~pdekit.models.registry.register_model`).
    config : dataclass
        The config the model was built from.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True)
    ... class IdentityConfig:
    ...     in_channels: int = 1
    ...     out_channels: int = 1
    >>> class Identity(NeuralOperator):
    ...     config_class = IdentityConfig
    ...     def __init__(self, config=None):
    ...         super().__init__(config, n_dim=2)
    ...     def forward(self, x):
    ...         self.check_input(x)
    ...         return x
    >>> Identity()(torch.ones(1, 1, 4, 4)).shape
    torch.Size([1, 1, 4, 4])
    >>> Identity()(torch.ones(1, 2, 4, 4))
    Traceback (most recent call last):
    ...
    pdekit.errors.PdekitUserError: Identity was built with in_channels=1 but the input has 2 channels (shape (1, 2, 4, 4)); set in_channels to match the data
    """

    model_name: str = ""
    config_class: type | None = None

    def __init__(self, config: Any = None, *, n_dim: int | None = None) -> None:
        super().__init__()
        expected = type(self).config_class
        if config is None:
            if expected is None:
                raise TypeError(f"{type(self).__name__} needs a config (no config_class is set)")
            config = expected()
        if expected is not None and type(config) is not expected:
            raise PdekitUserError(
                f"{type(self).__name__} takes a {expected.__name__}, got {type(config).__name__}"
            )
        self.config = config
        self.in_channels = int(config.in_channels)
        self.out_channels = int(config.out_channels)
        if n_dim is None and not hasattr(config, "n_dim"):
            raise TypeError(
                f"{type(self).__name__}: pass n_dim= (its {type(config).__name__} has no n_dim)"
            )
        self.n_dim = int(config.n_dim if n_dim is None else n_dim)

    def check_resolution(self, spatial_shape: Sequence[int]) -> None:
        """Raise a one-line ``ValueError`` unless the model accepts this spatial grid.

        The base rule: exactly ``n_dim`` axes, each of size at least 1. Subclasses add theirs.
        """
        shape = tuple(int(s) for s in spatial_shape)
        if len(shape) != self.n_dim:
            raise PdekitUserError(
                f"{self.model_name or type(self).__name__} is {self.n_dim}D: expected "
                f"{self.n_dim} spatial axes, got grid {shape}"
            )
        if min(shape) < 1:
            raise PdekitUserError(f"{self.model_name}: empty grid {shape}")

    def check_input(self, x: torch.Tensor) -> None:
        """Check ``x`` is ``(batch, in_channels, *spatial)`` with an accepted grid."""
        name = self.model_name or type(self).__name__
        if x.ndim != self.n_dim + 2:
            raise PdekitUserError(
                f"{name} expects input (batch, {self.in_channels}, {self.n_dim} spatial axes), "
                f"got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.in_channels:
            raise PdekitUserError(
                f"{name} was built with in_channels={self.in_channels} but the input has "
                f"{x.shape[1]} channels (shape {tuple(x.shape)}); set in_channels to match the data"
            )
        self.check_resolution(x.shape[2:])

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``nn.Module.state_dict`` without neuraloperator's ``_metadata`` entry (not a tensor)."""
        state = super().state_dict(*args, **kwargs)
        state.pop("_metadata", None)
        return state
