"""Model registry: build any pdekit model by name from a frozen dataclass config.

Every registered model is a :class:`~pdekit.models.base.NeuralOperator`: it maps
``(batch, in_channels, *spatial)`` to ``(batch, out_channels, *spatial)``, is built from one frozen
dataclass config (``Model(config)``), and says which grids it accepts through
``check_resolution(spatial_shape)``, which raises a one-line ``ValueError``.

Adding a model (MgNO, LSM, ...) takes three steps:

1. In ``pdekit/models/<name>.py`` write a frozen dataclass config whose fields all have defaults
   (subclass :class:`~pdekit.models.base.ConfigChecks` and validate the fields in
   ``__post_init__`` with its one-line checks; import heavy packages inside the constructor, not
   at module level).
2. Subclass :class:`~pdekit.models.base.NeuralOperator`, take the config (default ``None``) as the
   only constructor argument, call ``super().__init__(config, n_dim=...)`` (``n_dim`` may be left
   out when the config has an ``n_dim`` property), override ``check_resolution`` when the model
   is pickier than "any grid with ``n_dim`` axes", call ``self.check_input(x)`` first in
   ``forward``, and decorate the class with ``@register_model("<name>", <Config>)``.
3. Append ``"pdekit.models.<name>"`` to ``BUILTIN_MODULES`` below, so that ``get_model`` and
   ``load_model`` find it without the caller importing the module; add a smoke test.

Checkpoints (:mod:`pdekit.models.checkpoint`) then work with no extra code: they store the
registry name, the config as a dict and the ``state_dict``.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from pdekit.errors import PdekitUserError
from pdekit.models.base import NeuralOperator, model_config_dict

__all__ = [
    "BUILTIN_MODULES",
    "ModelSpec",
    "NeuralOperator",
    "available_models",
    "count_parameters",
    "get_config",
    "get_model",
    "model_spec",
    "register_model",
]

#: Modules imported on the first registry lookup; each registers its models on import.
BUILTIN_MODULES: tuple[str, ...] = (
    "pdekit.models.fno",
    "pdekit.models.mgtfno",
    "pdekit.models.mgno",
    "pdekit.models.lsm",
)

_REGISTRY: dict[str, ModelSpec] = {}
_builtins_loaded = False

M = TypeVar("M", bound=type)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registry entry: a model class and the frozen dataclass that configures it."""

    name: str
    model_cls: type
    config_cls: type


def register_model(name: str, config_cls: type) -> Callable[[M], M]:
    """Class decorator that registers a :class:`NeuralOperator` under ``name``.

    Parameters
    ----------
    name : str
        Registry key (lower case, e.g. ``"mgno"``).
    config_cls : type
        Frozen dataclass whose fields all have defaults; ``Model(config_cls(...))`` must work.

    Returns
    -------
    callable
        The decorator; it sets ``model_name`` and ``config_class`` on the class.

    Examples
    --------
    >>> import dataclasses, torch
    >>> @dataclasses.dataclass(frozen=True)
    ... class ScaleConfig:
    ...     in_channels: int = 1
    ...     out_channels: int = 1
    >>> @register_model("doc-scale", ScaleConfig)
    ... class Scale(NeuralOperator):
    ...     def __init__(self, config=None):
    ...         super().__init__(config, n_dim=1)
    ...         self.w = torch.nn.Parameter(torch.ones(()))
    ...     def forward(self, x):
    ...         self.check_input(x)
    ...         return self.w * x
    >>> get_model("doc-scale")(torch.ones(2, 1, 5)).shape
    torch.Size([2, 1, 5])
    >>> del _REGISTRY["doc-scale"]  # keep the shared registry clean
    """
    if not (dataclasses.is_dataclass(config_cls) and isinstance(config_cls, type)):
        raise TypeError(f"register_model({name!r}): config {config_cls!r} is not a dataclass")
    if not config_cls.__dataclass_params__.frozen:
        raise TypeError(f"register_model({name!r}): {config_cls.__name__} must be frozen")
    missing = [
        f.name
        for f in dataclasses.fields(config_cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise TypeError(f"register_model({name!r}): config fields without defaults: {missing}")

    def decorator(model_cls: M) -> M:
        old = _REGISTRY.get(name)
        if old is not None and old.model_cls.__qualname__ != model_cls.__qualname__:
            raise ValueError(f"model name {name!r} is already registered by {old.model_cls!r}")
        model_cls.model_name = name
        model_cls.config_class = config_cls
        _REGISTRY[name] = ModelSpec(name, model_cls, config_cls)
        return model_cls

    return decorator


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def available_models() -> list[str]:
    """Names accepted by :func:`get_model`, sorted.

    Examples
    --------
    >>> {"fno", "tfno", "mgtfno"} <= set(available_models())
    True
    """
    _load_builtins()
    return sorted(_REGISTRY)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; one-line ``ValueError`` listing the choices if unknown."""
    _load_builtins()
    key = name.lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        raise PdekitUserError(
            f"unknown model {name!r}; choose one of: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[key]


def get_config(name: str, /, **config: Any) -> Any:
    """Build the config dataclass of model ``name`` from keyword overrides.

    Unknown keys give a one-line ``ValueError`` listing the valid ones; values are checked by
    the config's ``__post_init__``.

    Examples
    --------
    >>> get_config("fno", hidden_channels=64).hidden_channels
    64
    """
    spec = model_spec(name)
    fields = [f.name for f in dataclasses.fields(spec.config_cls)]
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise PdekitUserError(
            f"unknown config key(s) {', '.join(unknown)} for model {spec.name!r}; "
            f"valid keys: {', '.join(fields)}"
        )
    return spec.config_cls(**config)


def get_model(name: str, /, **config: Any) -> nn.Module:
    """Build a registered model from its name and config overrides.

    Parameters
    ----------
    name : str
        One of :func:`available_models` (``"fno"``, ``"tfno"``, ``"mgtfno"``, ...).
    **config
        Fields of the model's config dataclass (``FNOConfig``, ``TFNOConfig``,
        ``MGTFNOConfig``); omitted fields keep their defaults.

    Returns
    -------
    NeuralOperator
        The model, with ``model.config`` holding the full config.

    Raises
    ------
    ValueError
        Unknown name, unknown config key or invalid value (one line; a ``PdekitUserError``).

    Examples
    --------
    >>> import torch
    >>> model = get_model("fno", n_modes=(8, 8), hidden_channels=8)
    >>> model(torch.randn(2, 1, 85, 85)).shape
    torch.Size([2, 1, 85, 85])
    """
    spec = model_spec(name)
    return spec.model_cls(get_config(spec.name, **config))


def count_parameters(model: nn.Module) -> int:
    """Number of real parameters; a complex entry counts as two (as neuraloperator counts).

    Examples
    --------
    >>> import torch
    >>> count_parameters(torch.nn.Linear(3, 2))
    8
    """
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())


def mapping_or_config(config: Any) -> Mapping[str, Any]:
    """A config given either as its dataclass or as a mapping, as a mapping."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return model_config_dict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise PdekitUserError(f"config must be a dataclass or a dict, got {type(config).__name__}")
