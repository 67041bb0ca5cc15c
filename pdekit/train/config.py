"""``TrainConfig``: the frozen description of one training run, read from YAML plus overrides.

A config file names the dataset, the model (registry name + its keyword arguments), the
optimiser, the schedule, the number of epochs, the batch size, the evaluation resolutions, the
output folder, the device and the seed::

    dataset: datasets/darcy64
    model: {name: fno, n_modes: [16, 16], hidden_channels: 32}
    epochs: 100
    batch_size: 16
    optimizer: {lr: 1.0e-3, weight_decay: 1.0e-4}
    scheduler: {name: cosine}
    eval: {splits: [test], subsamples: [1, 2]}
    out_dir: runs/darcy-fno

``--set key=value`` overrides use dotted keys for sections (``--set optimizer.lr=3e-4``,
``--set model.hidden_channels=64``); the value is read as YAML (``--set eval.subsamples=[1,2]``).
Every problem (unknown key, wrong type, bad value) is a one-line :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from pdekit.errors import PdekitUserError

__all__ = [
    "ConfigError",
    "OptimizerConfig",
    "SchedulerConfig",
    "EvalConfig",
    "PhysicsConfig",
    "TrainConfig",
    "load_config",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "override_dict",
]


class ConfigError(PdekitUserError):
    """A training config with an unknown key, a value of the wrong type or an invalid value."""


@dataclass(frozen=True)
class OptimizerConfig:
    """First-order (AdamW, Adam) or second-order (Gauss-Newton-CG, trust region) settings.

    The second-order optimizers (:mod:`pdekit.optim`) step on the residual vector of the relative
    L2 data loss of each mini-batch; ``lr`` scales their step, ``damping`` is the initial
    Levenberg-Marquardt damping of Gauss-Newton-CG and ``cg_maxiter`` caps the inner CG (or
    Steihaug-CG) iterations. They ignore ``weight_decay``, ``betas`` and ``grad_clip``.
    """

    name: Literal["adamw", "adam", "gauss_newton_cg", "trust_region"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None  # max global gradient norm; None: no clipping
    damping: float = 1e-3
    cg_maxiter: int = 50

    @property
    def second_order(self) -> bool:
        return self.name in ("gauss_newton_cg", "trust_region")


@dataclass(frozen=True)
class SchedulerConfig:
    """Learning-rate schedule.

    ``constant``; ``step`` (multiply by ``gamma`` every ``step_size`` epochs); ``cosine`` (from
    ``lr`` to ``min_lr`` over the run, per epoch); ``onecycle`` (per optimiser step, peak ``lr``).
    ``warmup_epochs`` ramps linearly from ``lr / 10`` for ``step`` and ``cosine``.
    """

    name: Literal["constant", "step", "cosine", "onecycle"] = "cosine"
    step_size: int = 50
    gamma: float = 0.5
    min_lr: float = 0.0
    warmup_epochs: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: test splits, each at several resolutions (zero-shot super-resolution).

    ``subsamples`` are the dataset's subsampling factors: ``[1, 2]`` on a 64x64 dataset evaluates
    at 64x64 and 32x32. ``every`` is in epochs; the last epoch is always evaluated.
    """

    splits: tuple[str, ...] = ("test",)
    subsamples: tuple[int, ...] = (1,)
    every: int = 1
    batch_size: int | None = None  # default: the training batch size
    n_samples: int | None = None  # first N samples of each split; None: all
    n_plot_samples: int = 4


@dataclass(frozen=True)
class PhysicsConfig:
    """The optional physics-informed loss (PINO style): ``loss = data + weight * residual``.

    The residual is that of the Darcy problem ``-div(a grad u) = f`` with ``u = 0`` on the
    boundary, on the un-normalised fields (see :mod:`pdekit.train.physics`). ``n_labelled``
    keeps the targets of only the first N training samples in the data loss; the residual uses all.
    """

    weight: float = 0.0
    pde: Literal["darcy"] = "darcy"
    f: float = 1.0  # constant source; ignored when f_channel is set
    a_channel: int = 0
    f_channel: int | None = None  # input channel holding a source field f
    n_labelled: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; see ``docs/training.md`` for every key.

    Examples
    --------
    >>> cfg = config_from_dict({"dataset": "d", "model": {"name": "fno"}})
    >>> cfg = apply_overrides(cfg, ["epochs=2", "optimizer.lr=3e-4"])
    >>> cfg.epochs, cfg.optimizer.lr
    (2, 0.0003)
    """

    dataset: str
    model: dict[str, Any]
    inputs: tuple[str, ...] = ("a",)
    targets: tuple[str, ...] = ("u",)
    normalize: bool = True
    train_split: str = "train"
    train_subsample: int = 1
    n_train: int | None = None
    epochs: int = 100
    batch_size: int = 16  # global: divided among the processes of a torchrun job
    loss: Literal["l2", "h1"] = "l2"
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    amp: bool = False  # float16 autocast + GradScaler, only when the device is CUDA
    device: str = "cpu"
    seed: int = 0
    num_workers: int = 0
    dist_timeout_s: float = 600.0  # torchrun: a peer silent this long ends the run (one line)
    out_dir: str = "runs/train"
    checkpoint_every: int = 1
    resume: bool = False
    progress: bool = True
    plots: bool = True
    tensorboard: bool = False

    def __post_init__(self):
        _validate(self)


_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def _validate(cfg: TrainConfig) -> None:
    def need(ok: bool, key: str, what: str, value) -> None:
        if not ok:
            raise ConfigError(f"config key {key}: {what}, got {value!r}")

    need(bool(cfg.dataset), "dataset", "give the dataset folder", cfg.dataset)
    name = cfg.model.get("name")
    need(isinstance(name, str) and bool(name), "model.name", "give the model's registry name", name)
    need(len(cfg.inputs) > 0, "inputs", "name at least one field", cfg.inputs)
    need(len(cfg.targets) > 0, "targets", "name at least one field", cfg.targets)
    for key in ("epochs", "batch_size", "train_subsample", "checkpoint_every"):
        need(getattr(cfg, key) >= 1, key, "must be >= 1", getattr(cfg, key))
    need(cfg.n_train is None or cfg.n_train >= 1, "n_train", "must be >= 1 or null", cfg.n_train)
    need(cfg.num_workers >= 0, "num_workers", "must be >= 0", cfg.num_workers)
    need(cfg.dist_timeout_s > 0, "dist_timeout_s", "must be > 0 (seconds)", cfg.dist_timeout_s)
    need(bool(_DEVICE_RE.match(cfg.device)), "device", "expected cpu, cuda, cuda:N or mps", cfg.device)
    o = cfg.optimizer
    need(o.lr > 0, "optimizer.lr", "must be > 0", o.lr)
    need(o.weight_decay >= 0, "optimizer.weight_decay", "must be >= 0", o.weight_decay)
    need(all(0 <= b < 1 for b in o.betas), "optimizer.betas", "must lie in [0, 1)", o.betas)
    need(o.grad_clip is None or o.grad_clip > 0, "optimizer.grad_clip", "must be > 0 or null",
         o.grad_clip)
    s = cfg.scheduler
    need(s.step_size >= 1, "scheduler.step_size", "must be >= 1", s.step_size)
    need(0 < s.gamma <= 1, "scheduler.gamma", "must lie in (0, 1]", s.gamma)
    need(0 <= s.min_lr < o.lr, "scheduler.min_lr", "must lie in [0, optimizer.lr)", s.min_lr)
    need(0 <= s.warmup_epochs < cfg.epochs or s.warmup_epochs == 0, "scheduler.warmup_epochs",
         "must be >= 0 and < epochs", s.warmup_epochs)
    e = cfg.eval
    need(all(k >= 1 for k in e.subsamples), "eval.subsamples", "must be positive ints", e.subsamples)
    need(e.every >= 1, "eval.every", "must be >= 1", e.every)
    need(e.batch_size is None or e.batch_size >= 1, "eval.batch_size", "must be >= 1 or null",
         e.batch_size)
    need(e.n_samples is None or e.n_samples >= 1, "eval.n_samples", "must be >= 1 or null",
         e.n_samples)
    need(e.n_plot_samples >= 0, "eval.n_plot_samples", "must be >= 0", e.n_plot_samples)
    p = cfg.physics
    need(p.weight >= 0, "physics.weight", "must be >= 0", p.weight)
    need(p.a_channel >= 0, "physics.a_channel", "must be >= 0", p.a_channel)
    need(p.f_channel is None or p.f_channel >= 0, "physics.f_channel", "must be >= 0 or null",
         p.f_channel)
    need(p.n_labelled is None or p.n_labelled >= 0, "physics.n_labelled", "must be >= 0 or null",
         p.n_labelled)
    need(p.n_labelled is None or p.weight > 0, "physics.n_labelled",
         "needs physics.weight > 0 (samples without labels only train through the residual)",
         p.n_labelled)


# -- conversion from plain data ------------------------------------------------------------------
def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value, tp, key: str):
    """Check ``value`` against the annotation ``tp``; return it converted (lists -> tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"config key {key}: expected one of {', '.join(map(repr, args))}, got {value!r}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value] if args and args[-1] is Ellipsis else value
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key}: expected a list, got {value!r}")
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key {key}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"config key {key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls, data: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; known keys{' of ' + prefix[:-1] if prefix else ''}: "
            f"{', '.join(names)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    missing = [
        f.name for f in dataclasses.fields(cls)
        if f.name not in kwargs
        and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"config key {prefix}{missing[0]} is required")
    return cls(**kwargs)


def config_from_dict(data: dict) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from plain data (e.g. parsed YAML)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a training config must be a mapping of keys, got {type(data).__name__}")
    return _build(TrainConfig, data)


def config_to_dict(cfg) -> dict:
    """Plain nested dict of a config (tuples as lists), fit for YAML, JSON and checkpoints."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def _parse_value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: TrainConfig, overrides: typing.Iterable[str]) -> TrainConfig:
    """Return a new config with ``key=value`` overrides applied (dotted keys for sections).

    The value is parsed as YAML, so ``epochs=2`` is an int, ``eval.subsamples=[1,2]`` a list and
    ``optimizer.grad_clip=null`` None. Keys inside ``model`` may be new (they are the model's
    keyword arguments); anywhere else an unknown key is an error.
    """
    return config_from_dict(override_dict(config_to_dict(cfg), overrides))


def override_dict(data: dict, overrides: typing.Iterable[str]) -> dict:
    """Apply ``key=value`` overrides to the plain data of a config (a copy is returned)."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides or ():
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        parts = key.split(".")
        node, cls = data, TrainConfig
        for i, part in enumerate(parts[:-1]):
            path = ".".join(parts[: i + 1])
            if cls is not None:
                names = [f.name for f in dataclasses.fields(cls)]
                if part not in names:
                    raise ConfigError(f"unknown config key {path}; known keys: {', '.join(names)}")
                hint = typing.get_type_hints(cls)[part]
                if dataclasses.is_dataclass(hint):
                    cls = hint
                elif typing.get_origin(hint) is dict or hint is dict:
                    cls = None
                else:
                    raise ConfigError(f"config key {path} is not a section (cannot set {key})")
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"config key {path} is not a mapping (cannot set {key})")
            node = child
        last = parts[-1]
        if cls is not None and last not in {f.name for f in dataclasses.fields(cls)}:
            known = ", ".join(f.name for f in dataclasses.fields(cls))
            raise ConfigError(f"unknown config key {key}; known keys: {known}")
        node[last] = _parse_value(text)
    return data


def load_config(path: str | os.PathLike, overrides: typing.Iterable[str] = ()) -> TrainConfig:
    """Read a YAML training config and apply ``key=value`` overrides.

    Raises
    ------
    ConfigError
        One line naming the file and the problem (unreadable, not YAML, unknown key, bad value).
    """
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        data = {}
    try:
        if not isinstance(data, dict):
            raise ConfigError("a training config must be a mapping of keys")
        return config_from_dict(override_dict(data, overrides))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
