"""``Trainer``: one training loop for neural operators; logging, checkpoints and progress are callbacks.

The trainer owns the loop only: epochs of mini-batches, each handed to a step strategy
(:mod:`pdekit.train.steps`: :class:`~pdekit.train.steps.FirstOrderStep` for AdamW / Adam with
AMP and clipping, :class:`~pdekit.train.steps.ClosureStep` for the second-order optimizers of
:mod:`pdekit.optim`), the LR schedule, divergence checks, and evaluation on the test splits at
every configured resolution. The pieces around it are injected: the process group
(:class:`~pdekit.train.distributed.Distributed`), the physics loss (default
:func:`~pdekit.train.physics.build_physics_loss` of the config) and the callbacks (metrics files,
checkpoints, the progress bar, plots: :mod:`pdekit.train.callbacks`).

Exact resume: :meth:`Trainer.state_dict` holds the model, optimiser, scheduler, GradScaler,
epoch, global step, the metric history and all RNG states (torch, CUDA, numpy, python; see
:mod:`pdekit.train.checkpointing`). The sample order of epoch ``e`` is a function of ``(seed, e)``
only (a :class:`~torch.utils.data.DistributedSampler` re-seeded with ``set_epoch``, and a
DataLoader generator re-seeded every epoch), so a run resumed from a checkpoint reproduces the
uninterrupted run bit for bit on the CPU.

References
----------
.. [1] Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
   ICLR 2021 (training protocol: relative L2 loss, Adam, step/cosine schedules).
.. [2] I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from pdekit.errors import PdekitUserError
from pdekit.train.checkpointing import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    load_checkpoint_file,
    rng_state,
    save_atomic,
    seed_everything,
    set_rng_state,
)
from pdekit.train.config import ConfigError, TrainConfig, config_to_dict
from pdekit.train.distributed import Distributed, all_reduce_sum, barrier
from pdekit.train.evaluation import evaluate_model
from pdekit.train.losses import get_loss
from pdekit.train.physics import build_physics_loss
from pdekit.train.processor import DataProcessor
from pdekit.train.steps import Objective, build_scheduler, build_step

__all__ = [
    "Trainer",
    "TrainingDivergedError",
    "ChannelMismatchError",
    "seed_everything",
    "load_checkpoint_file",
    "evaluate_model",
    "CHECKPOINT_FORMAT",
]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; names the epoch and the last good checkpoint."""

    def __init__(self, epoch: int, step: int, value: float, checkpoint: str | None,
                 checkpoint_epoch: int | None):
        self.epoch, self.step, self.value = epoch, step, value
        self.checkpoint, self.checkpoint_epoch = checkpoint, checkpoint_epoch
        kept = (f"the last good checkpoint {checkpoint} (epoch {checkpoint_epoch}) is kept"
                if checkpoint else "no checkpoint was written before it")
        super().__init__(
            f"training diverged: loss is {value} at epoch {epoch} (step {step}); stopped, {kept}; "
            "try a lower optimizer.lr or optimizer.grad_clip"
        )


class ChannelMismatchError(PdekitUserError):
    """The model's channels do not match the dataset's inputs or targets."""


class _Indexed(Dataset):
    """``(x, y, index)``: the trainer needs the index to tell labelled from unlabelled samples."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return x, y, i


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class Trainer:
    """Train a neural operator ``(B, C_in, *spatial) -> (B, C_out, *spatial)`` on a dataset.

    Parameters
    ----------
    model : torch.nn.Module
    train_dataset : Dataset
        Items ``(x, y)``, channels first (e.g. :class:`~pdekit.data.PDEDataset`).
    config : TrainConfig
        The optimisation settings (epochs, batch size, optimiser, schedule, loss, device, seed,
        output folder, ...). The dataset and model keys are only used by the CLI.
    eval_datasets : mapping of str to Dataset, optional
        Named evaluation sets (e.g. ``{"test_64": ..., "test_32": ...}``); metrics are logged as
        ``<name>_l2`` and ``<name>_h1``.
    processor : DataProcessor, optional
        Maps normalised tensors to physical units; default: from ``train_dataset`` (identity when
        it is not a normalising :class:`~pdekit.data.PDEDataset`).
    physics_loss : callable, optional
        ``loss(pred, x) -> (B,)`` per-sample values on physical units, weighted by
        ``config.physics.weight``; default: :func:`~pdekit.train.physics.build_physics_loss`.
    callbacks : sequence of Callback, optional
        Default: :func:`pdekit.train.callbacks.default_callbacks` for ``config``.
    model_spec : dict, optional
        ``{"name": ..., **kwargs}`` stored in checkpoints so that ``pdekit evaluate`` can rebuild
        the model.
    distributed : Distributed, optional
        The process group of a ``torchrun`` job, from :meth:`Distributed.setup` (whose ``with``
        block then owns the group's lifetime); default: set up here from ``config.device``.

    Examples
    --------
    >>> from pdekit.train.config import config_from_dict
    >>> x = torch.randn(8, 1, 8, 8)
    >>> data = torch.utils.data.TensorDataset(x, 2 * x)
    >>> cfg = config_from_dict({"dataset": "-", "model": {"name": "conv"}, "epochs": 2,
    ...                         "batch_size": 4, "progress": False, "plots": False})
    >>> trainer = Trainer(torch.nn.Conv2d(1, 1, 3, padding=1), data, cfg, callbacks=[])
    >>> metrics = trainer.fit()
    >>> trainer.epoch, trainer.global_step
    (2, 4)
    """

    def __init__(
        self,
        model: torch.nn.Module,
        train_dataset: Dataset,
        config: TrainConfig,
        *,
        eval_datasets: Mapping[str, Dataset] | None = None,
        processor: DataProcessor | None = None,
        physics_loss: torch.nn.Module | None = None,
        callbacks: Sequence | None = None,
        model_spec: dict | None = None,
        distributed: Distributed | None = None,
    ):
        self.config = config
        if distributed is None:
            distributed = Distributed.setup(config.device, config.dist_timeout_s)
        self.dist = distributed
        self.device = torch.device(self.dist.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"config key device: {config.device!r} but CUDA is not available")
        self.amp = bool(config.amp) and self.device.type == "cuda"
        self.model = model.to(self.device)
        self.model_spec = dict(model_spec) if model_spec is not None else None
        if config.n_train is not None:
            if config.n_train > len(train_dataset):
                raise ConfigError(f"config key n_train: {config.n_train} but the training split "
                                  f"has {len(train_dataset)} samples")
            train_dataset = Subset(train_dataset, range(config.n_train))
        self.train_dataset = train_dataset
        self.eval_datasets = dict(eval_datasets or {})
        if processor is None:
            processor = DataProcessor.from_dataset(train_dataset.dataset if isinstance(
                train_dataset, Subset) else train_dataset)
        self.processor = processor.to(self.device)
        self.physics_loss = build_physics_loss(config) if physics_loss is None else physics_loss
        self.objective = Objective(self.processor, get_loss(config.loss, reduction="none"),
                                   self.physics_loss, config.physics.weight,
                                   config.physics.n_labelled)
        self._check_channels()
        self._build_loader()
        self._train_model = self.dist.wrap(self.model)
        self.step_strategy = build_step(config.optimizer, self.model, self._train_model,
                                        self.objective, amp=self.amp,
                                        world_size=self.dist.world_size,
                                        device_type=self.device.type)
        self.optimizer = self.step_strategy.optimizer
        self.scheduler, self._schedule_per_step = build_scheduler(
            self.optimizer, config.scheduler, epochs=config.epochs, lr=config.optimizer.lr,
            steps_per_epoch=len(self.train_loader))

        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.last_checkpoint: str | None = None
        self.last_checkpoint_epoch: int | None = None
        if callbacks is None:
            from pdekit.train.callbacks import default_callbacks

            callbacks = default_callbacks(config)
        self.callbacks = list(callbacks)

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        """The GradScaler of a first-order run (disabled without AMP); ``None`` otherwise."""
        return getattr(self.step_strategy, "scaler", None)

    # -- construction helpers -------------------------------------------------------------------
    def _build_loader(self) -> None:
        cfg, world = self.config, self.dist.world_size
        if cfg.batch_size % world:
            raise ConfigError(f"config key batch_size: the global batch {cfg.batch_size} must "
                              f"be divisible by the {world} processes")
        self.local_batch_size = cfg.batch_size // world
        indexed = _Indexed(self.train_dataset)
        self.sampler = DistributedSampler(indexed, num_replicas=world, rank=self.dist.rank,
                                          shuffle=True, seed=cfg.seed, drop_last=False)
        self._loader_generator = torch.Generator()
        self.train_loader = DataLoader(
            indexed, batch_size=self.local_batch_size, sampler=self.sampler,
            num_workers=cfg.num_workers, generator=self._loader_generator,
            pin_memory=self.device.type == "cuda",
        )

    def _check_channels(self) -> None:
        x, y = self.train_dataset[0]
        for attr, have, what in (("in_channels", x.shape[0], "input"),
                                 ("out_channels", y.shape[0], "target")):
            want = getattr(self.model, attr, None)
            if isinstance(want, int) and want != have:
                raise ChannelMismatchError(
                    f"channels do not match: the model has {attr}={want} but the dataset gives "
                    f"{have} {what} channel(s); set model.{attr}={have} or change the dataset's "
                    f"{'inputs' if what == 'input' else 'targets'}"
                )
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model(x[None].to(self.device))
        except (RuntimeError, ValueError) as e:
            raise ChannelMismatchError(
                f"the model does not accept the dataset's input of shape {tuple(x.shape)} "
                f"({x.shape[0]} channel(s)): {_first_line(e)}"
            ) from None
        finally:
            self.model.train(was_training)
        self._check_eval_sets()
        if tuple(out.shape[1:]) != tuple(y.shape):
            raise ChannelMismatchError(
                f"the model returns shape {tuple(out.shape[1:])} per sample but the dataset's "
                f"targets have shape {tuple(y.shape)} ({y.shape[0]} channel(s))"
            )
        if self.objective.uses_physics:
            try:
                self.physics_loss(self.processor.decode_targets(out.float()),
                                  self.processor.decode_inputs(x[None].to(self.device)))
            except ValueError as e:
                raise ConfigError(f"physics loss: {_first_line(e)}") from None

    def _check_eval_sets(self) -> None:
        """Fail before training if the model rejects an evaluation resolution."""
        was_training = self.model.training
        self.model.eval()
        try:
            for name, ds in self.eval_datasets.items():
                x, _ = ds[0]
                try:
                    with torch.no_grad():
                        self.model(x[None].to(self.device))
                except (RuntimeError, ValueError) as e:
                    raise PdekitUserError(
                        f"evaluation set {name}: the model does not accept inputs of shape "
                        f"{tuple(x.shape)}: {_first_line(e)}"
                    ) from None
        finally:
            self.model.train(was_training)

    # -- callbacks ---------------------------------------------------------------------------------
    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # -- training ----------------------------------------------------------------------------------
    def fit(self) -> dict:
        """Train from the current epoch up to ``config.epochs``; return the last epoch's metrics.

        Raises
        ------
        TrainingDivergedError
            When the loss becomes NaN or inf; no checkpoint is written for that epoch.
        """
        if self.epoch == 0:
            seed_everything(self.config.seed)
        try:
            self._call("on_train_start")
            for epoch in range(self.epoch + 1, self.config.epochs + 1):
                self._call("on_epoch_start", epoch)
                metrics = self._train_epoch(epoch)
                if epoch % self.config.eval.every == 0 or epoch == self.config.epochs:
                    metrics.update(self.evaluate())
                self.epoch = epoch
                self.history.append(metrics)
                self._call("on_epoch_end", epoch, metrics)
            self._call("on_train_end")
        finally:
            self._call("close")
        return dict(self.history[-1]) if self.history else {}

    def _train_epoch(self, epoch: int) -> dict:
        self.sampler.set_epoch(epoch)
        self._loader_generator.manual_seed(self.config.seed * 1_000_003 + epoch)
        self._train_model.train()
        sums = torch.zeros(4, dtype=torch.float64)  # loss*n, data*n, physics*n, n
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]

        def check(loss: torch.Tensor) -> None:
            self._check_finite(loss, epoch)

        for x, y, idx in self.train_loader:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            values = self.step_strategy(x, y, idx, check)
            if self._schedule_per_step:
                self.scheduler.step()
            self.global_step += 1
            n = x.shape[0]
            sums += torch.tensor([values[0] * n, values[1] * n, values[2] * n, n],
                                 dtype=torch.float64)
            self._call("on_batch_end", self.global_step, values[0])
        if not self._schedule_per_step:
            self.scheduler.step()
        all_reduce_sum(sums)
        n = max(float(sums[3]), 1.0)
        metrics = {"epoch": epoch, "step": self.global_step, "lr": lr,
                   "train_loss": float(sums[0]) / n}
        if self.objective.uses_physics:
            metrics["train_data"] = float(sums[1]) / n
            metrics["train_physics"] = float(sums[2]) / n
        metrics["time_s"] = time.perf_counter() - start
        return metrics

    def _check_finite(self, loss: torch.Tensor, epoch: int) -> None:
        value = loss.detach().float().reshape(1).clone()
        all_reduce_sum(value)  # every process sees a NaN on any process and stops together
        if not math.isfinite(float(value)):
            raise TrainingDivergedError(epoch, self.global_step + 1, float(loss.detach()),
                                        self.last_checkpoint, self.last_checkpoint_epoch)

    # -- evaluation --------------------------------------------------------------------------------
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Model output in physical units for a batch of (normalised) inputs."""
        self.model.eval()
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.float16,
                                             enabled=self.amp):
            out = self.model(x.to(self.device))
        return self.processor.decode_targets(out.float())

    def evaluate(self, datasets: Mapping[str, Dataset] | None = None) -> dict:
        """Mean relative L2 and H1 errors (physical units) on each named dataset.

        See :func:`evaluate_model`; under ``torchrun`` every process returns the same numbers.
        """
        datasets = self.eval_datasets if datasets is None else datasets
        return evaluate_model(
            self.model, datasets, self.processor, device=self.device,
            batch_size=self.config.eval.batch_size or self.config.batch_size,
            n_samples=self.config.eval.n_samples, amp=self.amp,
            num_workers=self.config.num_workers,
        )

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue the run exactly (see the module docstring)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.step_strategy.state_dict(),
            "rng": rng_state(),
            "history": list(self.history),
            "config": config_to_dict(self.config),
            "model_spec": self.model_spec,
            "processor": self.processor.state(),
            "world_size": self.dist.world_size,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (model, optimiser, schedule, scaler, RNG, counters)."""
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise PdekitUserError(
                f"the checkpoint does not fit this model: {_first_line(e)}"
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step_strategy.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = list(state["history"])

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` atomically (temporary file, then ``os.replace``).

        Under ``torchrun`` only rank 0 writes; every process waits for it.
        """
        path = Path(path)
        if self.dist.is_main:
            save_atomic(self.state_dict(), path)
            self._save_model_file(path.with_name("model.pt"))
        barrier()
        self.last_checkpoint, self.last_checkpoint_epoch = str(path), self.epoch

    def _save_model_file(self, path: Path) -> None:
        """Beside the training state, the model alone in pdekit's model-checkpoint format, so that
        ``pdekit.load_model(path)`` rebuilds it from the file (registered models only)."""
        if not getattr(type(self.model), "model_name", ""):
            return
        from pdekit.models.checkpoint import save_checkpoint as save_model

        save_model(path, self.model, extra={"epoch": self.epoch, "processor": self.processor.state()})

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`."""
        self.load_state_dict(load_checkpoint_file(path))
        self.last_checkpoint, self.last_checkpoint_epoch = str(path), self.epoch
