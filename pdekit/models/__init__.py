"""Neural operators: FNO, TFNO and MG-TFNO (neuraloperator 2.0 + pdekit fixes), by name.

>>> from pdekit.models import get_model
>>> model = get_model("tfno", n_modes=(12, 12), hidden_channels=16)

Build any model with :func:`get_model` from its registry name and config fields; save it with
:func:`save_checkpoint` and rebuild it from the file alone with :func:`load_model`. New models
register with :func:`register_model` (see :mod:`pdekit.models.registry`); the model contract,
:class:`NeuralOperator`, and the config checks live in :mod:`pdekit.models.base`.

Importing this package does not import neuraloperator; building FNO/TFNO/MG-TFNO does.
"""

from __future__ import annotations

from typing import Any

from pdekit.models.base import NeuralOperator
from pdekit.models.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from pdekit.models.fno import FNO, TFNO, FNOConfig, TFNOConfig
from pdekit.models.mgtfno import MGTFNO, MGTFNOConfig, MultigridPatching, PatchLayout
from pdekit.models.registry import (
    available_models,
    count_parameters,
    get_config,
    get_model,
    register_model,
)

__all__ = [
    "FNO",
    "MGTFNO",
    "TFNO",
    "Checkpoint",
    "CheckpointError",
    "FNOConfig",
    "MGTFNOConfig",
    "MultigridPatching",
    "NeuralOperator",
    "PatchLayout",
    "SpectralConv",
    "TFNOConfig",
    "available_models",
    "count_parameters",
    "get_config",
    "get_model",
    "load_model",
    "read_checkpoint",
    "register_model",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    # SpectralConv subclasses neuraloperator's class: import it (and neuraloperator) on demand.
    if name == "SpectralConv":
        from pdekit.models.spectral_conv import SpectralConv

        return SpectralConv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
