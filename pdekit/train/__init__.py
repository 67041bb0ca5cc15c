"""Training neural operators: losses, the ``Trainer`` loop, callbacks, physics loss, DDP, plots.

See ``docs/training.md`` for the user guide (config keys, CLI, resume, torchrun, physics loss).
"""

from pdekit.train.callbacks import (
    Callback,
    CheckpointCallback,
    MetricsLogger,
    PlotCallback,
    ProgressBar,
    TensorBoardLogger,
    default_callbacks,
)
from pdekit.train.config import ConfigError, TrainConfig, apply_overrides, load_config
from pdekit.train.losses import RelativeH1Loss, RelativeL2Loss, relative_h1, relative_l2
from pdekit.train.physics import DarcyResidualLoss, darcy_residual
from pdekit.train.processor import DataProcessor
from pdekit.train.trainer import (
    ChannelMismatchError,
    Trainer,
    TrainingDivergedError,
    evaluate_model,
    seed_everything,
)

__all__ = [
    "Callback",
    "ChannelMismatchError",
    "CheckpointCallback",
    "ConfigError",
    "DarcyResidualLoss",
    "DataProcessor",
    "MetricsLogger",
    "PlotCallback",
    "ProgressBar",
    "RelativeH1Loss",
    "RelativeL2Loss",
    "TensorBoardLogger",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "apply_overrides",
    "darcy_residual",
    "default_callbacks",
    "evaluate_model",
    "load_config",
    "relative_h1",
    "relative_l2",
    "seed_everything",
]
