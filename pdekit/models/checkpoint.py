"""Model checkpoints that rebuild the model from the file alone.

A checkpoint is one ``torch.save`` file holding a plain dict::

    {"format": "pdekit-model", "format_version": 1, "pdekit_version": "0.1.0",
     "model": "tfno", "config": {...}, "state_dict": {...}, "extra": {...} or None}

Everything in it is a tensor or a plain Python value, so :func:`load_model` reads it with
``torch.load(weights_only=True)``: no pickled classes or functions, nothing executed, and no
breakage when a class moves (neuraloperator issue #141). ``extra`` (epoch, normaliser statistics,
metrics, ...) must be of the same kind: tensors, numbers, strings, lists, tuples and dicts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from pdekit._version import __version__
from pdekit.errors import PdekitUserError
from pdekit.models.registry import get_model, mapping_or_config, model_spec

__all__ = ["Checkpoint", "CheckpointError", "load_model", "read_checkpoint", "save_checkpoint"]

FORMAT = "pdekit-model"
FORMAT_VERSION = 1


class CheckpointError(PdekitUserError):
    """A file that is not a pdekit model checkpoint, or one that does not match its config."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The contents of a checkpoint file (see :func:`read_checkpoint`)."""

    model_name: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    extra: Any
    pdekit_version: str

    def build(self) -> nn.Module:
        """Rebuild the model and load the weights; :class:`CheckpointError` on a mismatch."""
        try:
            model = get_model(self.model_name, **self.config)
        except PdekitUserError as err:
            raise CheckpointError(
                f"checkpoint config for {self.model_name!r} is invalid: {err}"
            ) from None
        _check_state_dict(model, self.state_dict, self.model_name)
        model.load_state_dict(self.state_dict)
        return model


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    config_name: str | None = None,
    config: Any = None,
    extra: Any = None,
) -> None:
    """Write ``model`` with everything needed to rebuild it.

    Parameters
    ----------
    path : str or path-like
        Output file (conventionally ``.pt``); written to a temporary name, then renamed.
    model : NeuralOperator
        A model built by :func:`~pdekit.models.registry.get_model` (or its class).
    config_name : str, optional
        Registry name; defaults to ``model.model_name``. Must be the name ``model``'s class is
        registered under.
    config : dataclass or dict, optional
        The model's config; defaults to ``model.config``.
    extra : optional
        Anything the trainer wants to keep (tensors and plain Python values only).

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from pdekit.models import get_model
    >>> model = get_model("fno", n_modes=(8, 8), hidden_channels=8)
    >>> path = os.path.join(tempfile.mkdtemp(), "fno.pt")
    >>> save_checkpoint(path, model, "fno", model.config, extra={"epoch": 3})
    >>> x = torch.randn(1, 1, 33, 33)
    >>> bool(torch.equal(load_model(path)(x), model(x)))
    True
    """
    name = config_name if config_name is not None else getattr(model, "model_name", "")
    spec = model_spec(name)
    if not isinstance(model, spec.model_cls) or type(model).model_name != spec.name:
        raise CheckpointError(
            f"model is a {type(model).__name__}, not the {spec.model_cls.__name__} registered "
            f"as {spec.name!r}"
        )
    if config is None:
        config = model.config
    config_dict = mapping_or_config(config)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pdekit_version": __version__,
        "model": spec.name,
        "config": config_dict,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Checkpoint:
    """Read and validate a checkpoint without building the model.

    Raises
    ------
    CheckpointError
        (a ``ValueError``) when the file is missing, unreadable or not a pdekit checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # any unreadable file is the same user error
        raise CheckpointError(
            f"{path}: not a pdekit model checkpoint (cannot be read safely: {_one_line(err)})"
        ) from None
    if isinstance(payload, Mapping) and payload.get("format") == "pdekit-train":
        raise CheckpointError(
            f"{path}: a training checkpoint (optimizer and RNG state); load the model.pt that "
            "pdekit train writes beside it"
        )
    if not isinstance(payload, Mapping) or payload.get("format") != FORMAT:
        kind = (
            "a state_dict or other torch file"
            if isinstance(payload, Mapping)
            else type(payload).__name__
        )
        raise CheckpointError(
            f"{path}: not a pdekit model checkpoint ({kind}); write one with "
            "pdekit.models.save_checkpoint"
        )
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['format_version']} is newer than this pdekit "
            f"({FORMAT_VERSION}); upgrade pdekit"
        )
    for key in ("model", "config", "state_dict"):
        if key not in payload:
            raise CheckpointError(f"{path}: damaged pdekit checkpoint (no {key!r} entry)")
    return Checkpoint(
        model_name=str(payload["model"]),
        config=dict(payload["config"]),
        state_dict=dict(payload["state_dict"]),
        extra=payload.get("extra"),
        pdekit_version=str(payload.get("pdekit_version", "unknown")),
    )


def _check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        k
        for k in sorted(set(expected) & set(state))
        if tuple(expected[k].shape) != tuple(state[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if mismatched:
        k = mismatched[0]
        parts.append(
            f"{len(mismatched)} with other shapes (e.g. {k}: file {tuple(state[k].shape)}, "
            f"model {tuple(expected[k].shape)})"
        )
    raise CheckpointError(
        f"checkpoint weights do not match its {name!r} config: {'; '.join(parts)}"
    )


def load_model(path: str | os.PathLike, device: torch.device | str | None = None) -> nn.Module:
    """Rebuild a model from a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or path-like
        The checkpoint file.
    device : torch.device or str, optional
        Move the rebuilt model there (it is built on the CPU).

    Returns
    -------
    NeuralOperator
        The model with its weights, in training mode as ``nn.Module``\\ s start.

    Raises
    ------
    CheckpointError
        One line, when the file is not a pdekit checkpoint or its weights do not fit its config.

    Examples
    --------
    >>> import tempfile, os
    >>> from pdekit.models import get_model
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> save_checkpoint(path, get_model("tfno", n_modes=(8, 8), hidden_channels=8))
    >>> load_model(path).config.rank
    0.1
    """
    model = read_checkpoint(path).build()
    return model if device is None else model.to(device)
