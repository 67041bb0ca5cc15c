"""``Trainer``: one training loop for neural operators; logging, checkpoints and progress are callbacks.

The loop itself only does the optimisation: batches -> model -> loss in physical units (relative
L2 or H1, optionally plus a weighted physics residual) -> AdamW step with optional gradient
clipping and AMP (CUDA only) -> LR schedule; then evaluation on the test splits at every
configured resolution. Everything else (metrics files, checkpoints, the progress bar, plots) is a
:class:`~pdekit.train.callbacks.Callback`.

Exact resume: :meth:`Trainer.state_dict` holds the model, optimiser, scheduler, GradScaler,
epoch, global step, the metric history and all RNG states (torch, CUDA, numpy, python). The
sample order of epoch ``e`` is a function of ``(seed, e)`` only (a
:class:`~torch.utils.data.DistributedSampler` re-seeded with ``set_epoch``, and a DataLoader
generator re-seeded every epoch), so a run resumed from a checkpoint reproduces the uninterrupted
run bit for bit on the CPU.

References
----------
.. [1] Z. Li et al., "Fourier Neural Operator for Parametric Partial Differential Equations",
   ICLR 2021 (training protocol: relative L2 loss, Adam, step/cosine schedules).
.. [2] I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019 (AdamW).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from pdekit.errors import PdekitUserError
from pdekit.train.config import ConfigError, TrainConfig, config_to_dict
from pdekit.train.distributed import all_reduce_sum, barrier, init_distributed
from pdekit.train.losses import get_loss, relative_h1, relative_l2
from pdekit.train.processor import DataProcessor

__all__ = [
    "Trainer",
    "TrainingDivergedError",
    "ChannelMismatchError",
    "seed_everything",
    "load_checkpoint_file",
    "evaluate_model",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "pdekit-train"
CHECKPOINT_VERSION = 1


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


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (user code may use the legacy global RNG)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    # numpy's state holds an ndarray: keep it as a tensor so checkpoints load with weights_only=True
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (the legacy global RNG)
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(cached)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    keys = keys.numpy().astype(np.uint32) if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((kind, keys, pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint_file(path: str | os.PathLike) -> dict:
    """Read a trainer checkpoint (on the CPU); one-line :class:`PdekitUserError` if it is not one.

    Checkpoints hold pickled python objects besides tensors (RNG states, neuraloperator's model
    metadata), so they are loaded with ``weights_only=False``: only load files you wrote.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise PdekitUserError(f"no checkpoint at {path}") from None
    except Exception as e:  # torch raises many types for a foreign or truncated file
        raise PdekitUserError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise PdekitUserError(f"{path} is not a pdekit training checkpoint")
    return obj


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


def evaluate_model(
    model: torch.nn.Module,
    datasets: Mapping[str, Dataset],
    processor: DataProcessor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    n_samples: int | None = None,
    amp: bool = False,
    num_workers: int = 0,
) -> dict[str, float]:
    """Mean relative L2 and H1 errors, in physical units, of ``model`` on each named dataset.

    Returns ``{"<name>_l2": ..., "<name>_h1": ..., "<name>_n": ...}``. Under ``torchrun`` every
    process evaluates a strided share of each set and the sums are all-reduced. The model's
    training mode is restored afterwards.

    Examples
    --------
    >>> x = torch.randn(4, 1, 8, 8)
    >>> ds = torch.utils.data.TensorDataset(x, x)
    >>> m = evaluate_model(torch.nn.Identity(), {"test_8": ds}, DataProcessor.identity(1, 1))
    >>> m["test_8_l2"], m["test_8_n"]
    (0.0, 4)
    """
    from pdekit.train.distributed import is_distributed

    device = torch.device(device)
    rank, world = 0, 1
    if is_distributed():
        import torch.distributed as dist

        rank, world = dist.get_rank(), dist.get_world_size()
    processor = processor.to(device)
    out: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        for name, ds in datasets.items():
            indices = range(min(len(ds), n_samples) if n_samples else len(ds))
            share = Subset(ds, indices[rank::world])
            loader = DataLoader(share, batch_size=batch_size, shuffle=False,
                                num_workers=num_workers)
            sums = torch.zeros(3, dtype=torch.float64)
            for x, y in loader:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16,
                                                     enabled=amp):
                    pred = model(x.to(device))
                pred = processor.decode_targets(pred.float())
                target = processor.decode_targets(y.to(device))
                sums[0] += float(relative_l2(pred, target, reduction="sum"))
                sums[1] += float(relative_h1(pred, target, reduction="sum"))
                sums[2] += x.shape[0]
            all_reduce_sum(sums)
            n = max(float(sums[2]), 1.0)
            out[f"{name}_l2"] = float(sums[0]) / n
            out[f"{name}_h1"] = float(sums[1]) / n
            out[f"{name}_n"] = int(sums[2])
    finally:
        model.train(was_training)
    return out


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
        ``loss(pred, x) -> scalar`` on physical units; default: the Darcy residual when
        ``config.physics.weight > 0``.
    callbacks : sequence of Callback, optional
        Default: :func:`pdekit.train.callbacks.default_callbacks` for ``config``.
    model_spec : dict, optional
        ``{"name": ..., **kwargs}`` stored in checkpoints so that ``pdekit evaluate`` can rebuild
        the model.

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
    ):
        self.config = config
        self.dist, device = init_distributed(config.device)
        self.device = torch.device(device)
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
        self.loss_fn = get_loss(config.loss, reduction="none")
        self.physics_weight = float(config.physics.weight)
        if physics_loss is None and self.physics_weight > 0:
            from pdekit.train.physics import DarcyResidualLoss

            p = config.physics
            physics_loss = DarcyResidualLoss(f=p.f, a_channel=p.a_channel, f_channel=p.f_channel,
                                             reduction="none")
        self.physics_loss = physics_loss
        self._check_channels()

        if config.batch_size % self.dist.world_size:
            raise ConfigError(f"config key batch_size: the global batch {config.batch_size} must "
                              f"be divisible by the {self.dist.world_size} processes")
        self.local_batch_size = config.batch_size // self.dist.world_size
        self.sampler = DistributedSampler(
            _Indexed(train_dataset), num_replicas=self.dist.world_size, rank=self.dist.rank,
            shuffle=True, seed=config.seed, drop_last=False,
        )
        self._loader_generator = torch.Generator()
        self.train_loader = DataLoader(
            _Indexed(train_dataset), batch_size=self.local_batch_size, sampler=self.sampler,
            num_workers=config.num_workers, generator=self._loader_generator,
            pin_memory=self.device.type == "cuda",
        )

        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._train_model = DistributedDataParallel(self.model, device_ids=ids)
        else:
            self._train_model = self.model
        self.optimizer = self._build_optimizer()
        self.scheduler, self._schedule_per_step = self._build_scheduler()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

        self.epoch = 0
        self.global_step = 0
        self.history: list[dict] = []
        self.last_checkpoint: str | None = None
        self.last_checkpoint_epoch: int | None = None
        if callbacks is None:
            from pdekit.train.callbacks import default_callbacks

            callbacks = default_callbacks(config)
        self.callbacks = list(callbacks)

    # -- construction helpers -------------------------------------------------------------------
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
        if self.physics_loss is not None and self.physics_weight > 0:
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

    def _build_optimizer(self) -> torch.optim.Optimizer:
        o = self.config.optimizer
        if o.second_order:
            if self.dist.world_size > 1:
                raise PdekitUserError(f"optimizer {o.name} does not support data-parallel training")
            if self.physics_loss is not None and self.physics_weight > 0:
                raise PdekitUserError(f"optimizer {o.name} trains on the data loss only: set physics.weight to 0")
            if self.amp:
                raise PdekitUserError(f"optimizer {o.name} does not support amp")
            from pdekit.optim import GaussNewtonCG, TrustRegion

            if o.name == "gauss_newton_cg":
                return GaussNewtonCG(self.model.parameters(), lr=o.lr, damping=o.damping,
                                     cg_maxiter=o.cg_maxiter)
            opt = TrustRegion(self.model.parameters(), cg_maxiter=o.cg_maxiter)
            opt.param_groups[0].setdefault("lr", 1.0)  # unused (the radius sets the step); schedules need it
            return opt
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        return cls(self.model.parameters(), lr=o.lr, betas=tuple(o.betas),
                   weight_decay=o.weight_decay)

    def _build_scheduler(self):
        s, epochs, lr = self.config.scheduler, self.config.epochs, self.config.optimizer.lr
        sched = torch.optim.lr_scheduler
        if s.name == "onecycle":
            total = epochs * len(self.train_loader)
            return sched.OneCycleLR(self.optimizer, max_lr=lr, total_steps=total), True
        warm = s.warmup_epochs
        if s.name == "constant":
            main = sched.StepLR(self.optimizer, step_size=max(epochs, 1), gamma=1.0)
        elif s.name == "step":
            main = sched.StepLR(self.optimizer, step_size=s.step_size, gamma=s.gamma)
        else:
            main = sched.CosineAnnealingLR(self.optimizer, T_max=max(epochs - warm, 1),
                                           eta_min=s.min_lr)
        if warm > 0:
            ramp = sched.LinearLR(self.optimizer, start_factor=0.1, total_iters=warm)
            return sched.SequentialLR(self.optimizer, [ramp, main], milestones=[warm]), False
        return main, False

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
        cfg = self.config
        self.sampler.set_epoch(epoch)
        self._loader_generator.manual_seed(cfg.seed * 1_000_003 + epoch)
        self._train_model.train()
        n_labelled = cfg.physics.n_labelled
        sums = torch.zeros(4, dtype=torch.float64)  # loss*n, data*n, physics*n, n
        start = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        for x, y, idx in self.train_loader:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            if cfg.optimizer.second_order:
                values = self._second_order_step(x, y, epoch)
                n = x.shape[0]
                sums += torch.tensor([values[0] * n, values[1] * n, 0.0, n], dtype=torch.float64)
                self._call("on_batch_end", self.global_step, values[0])
                continue
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                out = self._train_model(x)
            out = self.processor.decode_targets(out.float())
            target = self.processor.decode_targets(y)
            per_sample = self.loss_fn(out, target)
            if n_labelled is not None:
                mask = (idx < n_labelled).to(self.device, per_sample.dtype)
                data = (per_sample * mask).sum() / mask.sum().clamp(min=1.0)
            else:
                data = per_sample.mean()
            loss = data
            physics = torch.zeros((), device=self.device)
            if self.physics_loss is not None and self.physics_weight > 0:
                physics = self.physics_loss(out, self.processor.decode_inputs(x)).mean()
                loss = data + self.physics_weight * physics
            self._check_finite(loss, epoch)

            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.optimizer.grad_clip is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optimizer.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self._schedule_per_step:
                self.scheduler.step()
            self.global_step += 1
            n = x.shape[0]
            values = [float(v.detach()) for v in (loss, data, physics)]
            sums += torch.tensor([values[0] * n, values[1] * n, values[2] * n, n],
                                 dtype=torch.float64)
            self._call("on_batch_end", self.global_step, values[0])
        if not self._schedule_per_step:
            self.scheduler.step()
        all_reduce_sum(sums)
        n = max(float(sums[3]), 1.0)
        metrics = {"epoch": epoch, "step": self.global_step, "lr": lr,
                   "train_loss": float(sums[0]) / n}
        if self.physics_loss is not None and self.physics_weight > 0:
            metrics["train_data"] = float(sums[1]) / n
            metrics["train_physics"] = float(sums[2]) / n
        metrics["time_s"] = time.perf_counter() - start
        return metrics

    def _second_order_step(self, x: torch.Tensor, y: torch.Tensor, epoch: int) -> list[float]:
        """One Gauss-Newton-CG / trust-region step on the mini-batch's relative-L2 residual."""
        from pdekit.optim.trainer_adapter import relative_residual

        target = self.processor.decode_targets(y)

        def closure():
            return relative_residual(self.processor.decode_targets(self._train_model(x).float()), target)

        half_sq = self.optimizer.step(closure)  # 1/2 mean over the batch of rel_l2^2, before the step
        loss = torch.sqrt(2 * half_sq.detach()).reshape(())
        self._check_finite(loss, epoch)
        if self._schedule_per_step:
            self.scheduler.step()
        self.global_step += 1
        value = float(loss)
        return [value, value, 0.0]

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
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(),
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
        self.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.history = list(state["history"])

    def save_checkpoint(self, path: str | os.PathLike) -> None:
        """Write :meth:`state_dict` atomically (temporary file, then ``os.replace``).

        Under ``torchrun`` only rank 0 writes; every process waits for it.
        """
        path = Path(path)
        if self.dist.is_main:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
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
