"""Optimisation steps of the :class:`~pdekit.train.trainer.Trainer`: optimiser, schedule, strategy.

One optimiser factory (:data:`OPTIMIZERS`, a table from ``optimizer.name`` to a builder) and one
step strategy per kind of optimiser, chosen from the :class:`~pdekit.train.config.OptimizerConfig`
by :func:`build_step`:

* :class:`FirstOrderStep` (AdamW, Adam): ``loss.backward(); optimizer.step()`` with optional AMP
  (float16 autocast and a :class:`torch.amp.GradScaler`) and gradient-norm clipping;
* :class:`ClosureStep` (Gauss-Newton-CG, trust region): ``optimizer.step(closure)`` where the
  closure returns the residual *vector* :func:`~pdekit.train.losses.relative_residual` of the
  mini-batch, whose half squared norm is half the mean squared relative L2 error.

Both take a mini-batch ``(x, y, index)`` and return ``[loss, data, physics]`` as floats; the trainer
owns the loop, the schedule and the counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from pdekit.errors import PdekitUserError
from pdekit.train.config import OptimizerConfig, SchedulerConfig
from pdekit.train.losses import relative_residual
from pdekit.train.processor import DataProcessor

__all__ = ["OPTIMIZERS", "build_optimizer", "build_scheduler", "Objective", "StepStrategy",
           "FirstOrderStep", "ClosureStep", "build_step"]

Params = Iterable[torch.nn.Parameter]


def _adamw(params: Params, o: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _adam(params: Params, o: OptimizerConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)


def _gauss_newton_cg(params: Params, o: OptimizerConfig) -> torch.optim.Optimizer:
    from pdekit.optim import GaussNewtonCG

    return GaussNewtonCG(params, lr=o.lr, damping=o.damping, cg_maxiter=o.cg_maxiter)


def _trust_region(params: Params, o: OptimizerConfig) -> torch.optim.Optimizer:
    from pdekit.optim import TrustRegion

    opt = TrustRegion(params, cg_maxiter=o.cg_maxiter)
    opt.param_groups[0].setdefault("lr", 1.0)  # unused (the radius sets the step); schedules need it
    return opt


#: ``optimizer.name`` -> ``builder(params, optimizer_config)``.
OPTIMIZERS: dict[str, Callable[[Params, OptimizerConfig], torch.optim.Optimizer]] = {
    "adamw": _adamw,
    "adam": _adam,
    "gauss_newton_cg": _gauss_newton_cg,
    "trust_region": _trust_region,
}


def build_optimizer(params: Params, config: OptimizerConfig) -> torch.optim.Optimizer:
    """The optimiser ``config.name`` on ``params``.

    Examples
    --------
    >>> opt = build_optimizer(torch.nn.Linear(2, 1).parameters(), OptimizerConfig(name="adam"))
    >>> type(opt).__name__, opt.param_groups[0]["lr"]
    ('Adam', 0.001)
    """
    try:
        builder = OPTIMIZERS[config.name]
    except KeyError:
        raise PdekitUserError(f"optimizer.name: unknown optimizer {config.name!r}; choose from "
                              f"{', '.join(OPTIMIZERS)}") from None
    return builder(params, config)


def build_scheduler(optimizer: torch.optim.Optimizer, config: SchedulerConfig, *, epochs: int,
                    lr: float, steps_per_epoch: int):
    """``(scheduler, per_step)``: the learning-rate schedule and whether it steps every batch.

    Examples
    --------
    >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    >>> s, per_step = build_scheduler(opt, SchedulerConfig(name="onecycle"), epochs=2, lr=0.1,
    ...                               steps_per_epoch=3)
    >>> type(s).__name__, per_step
    ('OneCycleLR', True)
    """
    sched = torch.optim.lr_scheduler
    if config.name == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch), True
    warm = config.warmup_epochs
    if config.name == "constant":
        main = sched.StepLR(optimizer, step_size=max(epochs, 1), gamma=1.0)
    elif config.name == "step":
        main = sched.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    else:
        main = sched.CosineAnnealingLR(optimizer, T_max=max(epochs - warm, 1),
                                       eta_min=config.min_lr)
    if warm > 0:
        ramp = sched.LinearLR(optimizer, start_factor=0.1, total_iters=warm)
        return sched.SequentialLR(optimizer, [ramp, main], milestones=[warm]), False
    return main, False


class Objective:
    """The training loss of a mini-batch in physical units: ``data + weight * physics``.

    Parameters
    ----------
    processor : DataProcessor
        Decodes network outputs, targets and inputs to physical units.
    loss_fn : callable
        ``loss_fn(pred, target) -> (B,)`` per-sample data loss (``reduction="none"``).
    physics_loss : callable, optional
        ``physics_loss(pred, x) -> (B,)`` on physical units; used when ``physics_weight > 0``.
    physics_weight : float
    n_labelled : int, optional
        Only samples with dataset index ``< n_labelled`` enter the data loss.

    Examples
    --------
    >>> from pdekit.train.losses import get_loss
    >>> obj = Objective(DataProcessor.identity(1, 1), get_loss("l2", reduction="none"))
    >>> y = torch.ones(2, 1, 4, 4)
    >>> [round(float(v), 4) for v in obj(1.1 * y, y, y, torch.arange(2))]
    [0.1, 0.1, 0.0]
    """

    def __init__(self, processor: DataProcessor, loss_fn: Callable, physics_loss: Callable | None = None,
                 physics_weight: float = 0.0, n_labelled: int | None = None):
        self.processor = processor
        self.loss_fn = loss_fn
        self.physics_loss = physics_loss
        self.physics_weight = float(physics_weight)
        self.n_labelled = n_labelled

    @property
    def uses_physics(self) -> bool:
        return self.physics_loss is not None and self.physics_weight > 0

    def __call__(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor):
        """``(loss, data, physics)`` tensors of a batch; ``out`` is the raw network output."""
        out = self.processor.decode_targets(out.float())
        per_sample = self.loss_fn(out, self.processor.decode_targets(y))
        if self.n_labelled is not None:
            mask = (idx < self.n_labelled).to(per_sample.device, per_sample.dtype)
            data = (per_sample * mask).sum() / mask.sum().clamp(min=1.0)
        else:
            data = per_sample.mean()
        physics = torch.zeros((), device=data.device)
        if not self.uses_physics:
            return data, data, physics
        physics = self.physics_loss(out, self.processor.decode_inputs(x)).mean()
        return data + self.physics_weight * physics, data, physics


Check = Callable[[torch.Tensor], None]


class StepStrategy:
    """One optimiser step on a mini-batch; ``state_dict`` is what the checkpoint keeps of it."""

    optimizer: torch.optim.Optimizer

    def __call__(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor,
                 check: Check) -> list[float]:
        """Step; ``check(loss)`` raises before a non-finite loss is used. ``[loss, data, physics]``."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""


class FirstOrderStep(StepStrategy):
    """``backward`` + ``optimizer.step()``, with AMP (CUDA float16 + GradScaler) and clipping."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 objective: Objective, *, amp: bool = False, grad_clip: float | None = None,
                 device_type: str = "cpu"):
        self.model, self.optimizer, self.objective = model, optimizer, objective
        self.amp, self.grad_clip, self.device_type = amp, grad_clip, device_type
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def __call__(self, x, y, idx, check):
        with torch.autocast(self.device_type, dtype=torch.float16, enabled=self.amp):
            out = self.model(x)
        loss, data, physics = self.objective(out, x, y, idx)
        check(loss)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return [float(v.detach()) for v in (loss, data, physics)]

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scaler.load_state_dict(state)


class ClosureStep(StepStrategy):
    """``optimizer.step(closure)`` with the mini-batch's relative-L2 residual vector."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 processor: DataProcessor):
        self.model, self.optimizer, self.processor = model, optimizer, processor

    def __call__(self, x, y, idx, check):
        target = self.processor.decode_targets(y)

        def closure():
            return relative_residual(self.processor.decode_targets(self.model(x).float()), target)

        half_sq = self.optimizer.step(closure)  # 1/2 mean over the batch of rel_l2^2, before the step
        loss = torch.sqrt(2 * half_sq.detach()).reshape(())
        check(loss)
        value = float(loss)
        return [value, value, 0.0]


def build_step(config: OptimizerConfig, model: torch.nn.Module, train_model: torch.nn.Module,
               objective: Objective, *, amp: bool = False, world_size: int = 1,
               device_type: str = "cpu") -> StepStrategy:
    """The optimiser (on ``model``'s parameters) and the step strategy for ``config``.

    ``train_model`` is the module the step calls (``model`` or its DDP wrapper).

    Raises
    ------
    PdekitUserError
        A second-order optimizer with data-parallel training, a physics loss or AMP.
    """
    optimizer = build_optimizer(model.parameters(), config)
    if not config.second_order:
        return FirstOrderStep(train_model, optimizer, objective, amp=amp,
                              grad_clip=config.grad_clip, device_type=device_type)
    if world_size > 1:
        raise PdekitUserError(f"optimizer {config.name} does not support data-parallel training")
    if objective.uses_physics:
        raise PdekitUserError(f"optimizer {config.name} trains on the data loss only: set "
                              "physics.weight to 0")
    if amp:
        raise PdekitUserError(f"optimizer {config.name} does not support amp")
    return ClosureStep(train_model, optimizer, objective.processor)
