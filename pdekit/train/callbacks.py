"""Callbacks of :class:`~pdekit.train.trainer.Trainer`: metrics files, TensorBoard, checkpoints,
progress bar and plots.

A callback overrides any of the hooks of :class:`Callback`; each hook receives the trainer. Only
:class:`CheckpointCallback` runs on every process of a ``torchrun`` job (the trainer writes on
rank 0 and synchronises); the others act on rank 0 only.

Files written under ``out_dir`` by :func:`default_callbacks`::

    metrics.jsonl              one JSON object per epoch (epoch, step, lr, train_loss, <eval>_l2, ...)
    metrics.csv                the same rows as a table (columns: the union of the keys)
    checkpoints/last.pt        every ``checkpoint_every`` epochs and after the last epoch
    plots/learning_curves.png  train loss and evaluation errors per epoch
    plots/<eval>_samples.png   input / truth / prediction / error of a few test samples
    tensorboard/               only with ``tensorboard: true`` (needs the tensorboard package)
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from pdekit.errors import PdekitUserError

__all__ = [
    "Callback",
    "MetricsLogger",
    "TensorBoardLogger",
    "CheckpointCallback",
    "ProgressBar",
    "PlotCallback",
    "default_callbacks",
    "sample_predictions",
    "write_text_atomic",
]


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Callback:
    """Base class: every hook does nothing."""

    def on_train_start(self, trainer) -> None:
        """Before the first epoch of :meth:`Trainer.fit` (also after a resume)."""

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """Before the batches of ``epoch`` (1-based)."""

    def on_batch_end(self, trainer, step: int, loss: float) -> None:
        """After each optimiser step; ``loss`` is this process's batch loss."""

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        """After training and evaluation of ``epoch``; ``trainer.history[-1] is metrics``."""

    def on_train_end(self, trainer) -> None:
        """After the last epoch (not after a divergence)."""

    def close(self, trainer) -> None:
        """Always called when ``fit`` returns or raises: release resources."""


def _is_main(trainer) -> bool:
    return trainer.dist.is_main


class MetricsLogger(Callback):
    """Write ``trainer.history`` to ``metrics.jsonl`` (appending) and ``metrics.csv`` (rewritten).

    On a resumed run the files are first rewritten from the checkpoint's history, so rows of
    epochs that ran after the last checkpoint (before a kill) disappear.

    Examples
    --------
    >>> import tempfile, types
    >>> d = tempfile.mkdtemp()
    >>> t = types.SimpleNamespace(history=[{"epoch": 1, "train_loss": 0.5}],
    ...                           dist=types.SimpleNamespace(is_main=True))
    >>> log = MetricsLogger(d)
    >>> log.on_train_start(t)
    >>> open(os.path.join(d, "metrics.csv")).read().splitlines()
    ['epoch,train_loss', '1,0.5']
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / "metrics.jsonl"
        self.csv = self.out_dir / "metrics.csv"

    def on_train_start(self, trainer) -> None:
        if not _is_main(trainer):
            return
        write_text_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in trainer.history))
        self._write_csv(trainer.history)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if not _is_main(trainer):
            return
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        self._write_csv(trainer.history)

    def _write_csv(self, rows: list[dict]) -> None:
        keys: list[str] = []
        for r in rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, restval="", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_text_atomic(self.csv, buf.getvalue())


class TensorBoardLogger(Callback):
    """Scalars of every epoch to TensorBoard (``pip install tensorboard``; imported on use)."""

    def __init__(self, log_dir: str | os.PathLike):
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise PdekitUserError(
                "tensorboard: true needs the tensorboard package (pip install tensorboard)"
            )
        self.log_dir = str(log_dir)
        self.writer = None

    def on_train_start(self, trainer) -> None:
        if not _is_main(trainer):
            return
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(self.log_dir)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if self.writer is None:
            return
        for k, v in metrics.items():
            if k != "epoch" and isinstance(v, (int, float)):
                self.writer.add_scalar(k, v, epoch)
        self.writer.flush()

    def close(self, trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class CheckpointCallback(Callback):
    """Save the full trainer state every ``every`` epochs and after the last epoch.

    The file is replaced atomically, so a kill or a divergence never leaves a torn checkpoint;
    after a NaN the previous checkpoint stays as it was.
    """

    def __init__(self, path: str | os.PathLike, every: int = 1):
        self.path = Path(path)
        self.every = int(every)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if epoch % self.every == 0 or epoch == trainer.config.epochs:
            trainer.save_checkpoint(self.path)


def _format_metrics(metrics: dict) -> str:
    parts = []
    for k, v in metrics.items():
        if k in ("epoch", "step"):
            continue
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return ", ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch and a one-line summary per epoch (rank 0)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.bar = None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        if not (self.enabled and _is_main(trainer)):
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(trainer.train_loader), leave=False, dynamic_ncols=True,
                        desc=f"epoch {epoch}/{trainer.config.epochs}")

    def on_batch_end(self, trainer, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        if self.bar is None:
            return
        self.bar.close()
        self.bar = None
        from tqdm.auto import tqdm

        tqdm.write(f"epoch {epoch}/{trainer.config.epochs}: {_format_metrics(metrics)}")

    def close(self, trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class PlotCallback(Callback):
    """After training: learning curves and input/truth/prediction/error panels per eval set."""

    def __init__(self, out_dir: str | os.PathLike, n_samples: int = 4):
        self.out_dir = Path(out_dir)
        self.n_samples = int(n_samples)

    def on_train_end(self, trainer) -> None:
        if not _is_main(trainer):
            return
        from pdekit.train.plots import plot_learning_curves, plot_samples

        plot_learning_curves(trainer.history, self.out_dir / "learning_curves.png")
        if self.n_samples == 0:
            return
        for name, ds in trainer.eval_datasets.items():
            x, y, pred = sample_predictions(trainer, ds, self.n_samples)
            plot_samples(x, y, pred, self.out_dir / f"{name}_samples.png", title=name)


def sample_predictions(trainer, dataset, n: int):
    """Inputs, targets and predictions of the first ``n`` samples, in physical units (CPU)."""
    import torch

    items = [dataset[i] for i in range(min(n, len(dataset)))]
    x = torch.stack([it[0] for it in items])
    y = torch.stack([it[1] for it in items])
    pred = trainer.predict(x)
    x = trainer.processor.decode_inputs(x.to(trainer.device))
    y = trainer.processor.decode_targets(y.to(trainer.device))
    return x.cpu(), y.cpu(), pred.cpu()


def default_callbacks(config) -> list[Callback]:
    """The callbacks of a run configured by ``config`` (a :class:`TrainConfig`)."""
    out = Path(config.out_dir)
    cbs: list[Callback] = [
        MetricsLogger(out),
        CheckpointCallback(out / "checkpoints" / "last.pt", every=config.checkpoint_every),
        ProgressBar(enabled=config.progress),
    ]
    if config.tensorboard:
        cbs.append(TensorBoardLogger(out / "tensorboard"))
    if config.plots:
        cbs.append(PlotCallback(out / "plots", n_samples=config.eval.n_plot_samples))
    return cbs
