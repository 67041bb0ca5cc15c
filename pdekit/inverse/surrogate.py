"""Surrogate inversion: the same objective with a trained neural operator in place of the solver.

:class:`SurrogateModel` wraps a network (an FNO or MgNO from :mod:`pdekit.models`, or a checkpoint
path for :func:`pdekit.models.load_model`) mapping the parameter field ``m`` ``(1, 1, n, n)`` to the
state ``u / output_scale`` ``(1, 1, n, n)``; it has the forward-model interface of
:mod:`pdekit.inverse.forward`, so :class:`~pdekit.inverse.problem.Objective` and every driver work
with it unchanged. Gradients come from backpropagation through the network (no PDE solve);
Gauss-Newton actions from a Jacobian-vector product by double backward. Network evaluations are
counted in ``SurrogateModel.n_evaluations``, never as PDE solves.

:func:`surrogate_inversion` minimises the surrogate objective (L-BFGS by default) and optionally
refines the estimate with a few Gauss-Newton-CG iterations of the true solver; the misfit it reports
is always recomputed with the true solver (one forward solve, counted).
:func:`train_surrogate` generates (m, u) pairs from a prior and a Darcy model and fits a small FNO.

References
----------
.. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895.
.. [2] T. O'Leary-Roseberry, U. Villa, P. Chen, O. Ghattas, "Derivative-informed projected neural
   networks for high-dimensional parametric maps governed by PDEs", CMAME 388 (2022) 114199
   (neural-operator surrogates inside inverse problems).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from pdekit.core.grid import Grid
from pdekit.core.solve_config import SolveConfig
from pdekit.core.solve_result import NotConvergedError
from pdekit.errors import PdekitUserError
from pdekit.inverse.forward import SolveCounter
from pdekit.inverse.gauss_newton import gauss_newton_cg
from pdekit.inverse.lbfgs import lbfgs
from pdekit.inverse.parameterisation import LogCoefficient, Parameterisation
from pdekit.inverse.priors import SpectralPrior
from pdekit.inverse.problem import InverseProblem, Objective
from pdekit.inverse.result import InversionResult
from pdekit.pdes.darcy import DarcyFlow

__all__ = ["SurrogateModel", "surrogate_inversion", "train_surrogate", "solve_darcy_batch"]


class SurrogateModel:
    """A neural operator ``m -> u`` with the forward-model interface.

    Parameters
    ----------
    network : torch.nn.Module or path
        Maps ``(B, 1, *grid.shape)`` to ``(B, 1, *grid.shape)``; a path is loaded with
        :func:`pdekit.models.load_model`.
    grid : Grid
    parameterisation : Parameterisation
        Only its ``bounds`` matter here (the network takes ``m`` itself).
    output_scale : float
        ``u = output_scale * network(m)``; Dirichlet boundary values are set to 0.

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> net = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    >>> sur = SurrogateModel(net, Grid((9, 9)))
    >>> sur.solve(torch.zeros(9, 9, dtype=torch.float64)).shape, sur.n_evaluations
    (torch.Size([9, 9]), 1)
    """

    def __init__(
        self,
        network,
        grid: Grid,
        parameterisation: Parameterisation | None = None,
        *,
        output_scale: float = 1.0,
    ):
        if isinstance(network, (str, os.PathLike)):
            from pdekit.models import load_model

            network = load_model(network)
        if not isinstance(network, torch.nn.Module):
            raise TypeError(
                f"network must be a torch.nn.Module or a checkpoint path, got {type(network).__name__}"
            )
        self.network = network.eval()
        for p in self.network.parameters():
            p.requires_grad_(False)
        self.grid = grid
        self.parameterisation = (
            parameterisation if parameterisation is not None else LogCoefficient()
        )
        self.param_shape = grid.shape
        self.output_scale = float(output_scale)
        self.n_evaluations = 0
        mask = torch.zeros(grid.shape, dtype=torch.float64)
        mask[tuple(slice(1, n - 1) for n in grid.shape)] = 1.0
        self._mask = mask
        p = next(iter(self.network.parameters()), None)
        self._dtype = p.dtype if p is not None else torch.float32
        self._device = p.device if p is not None else torch.device("cpu")

    def solve(
        self, m: torch.Tensor, counter: SolveCounter | None = None, *, x0=None
    ) -> torch.Tensor:
        """``u(m)`` from one network evaluation (differentiable by backpropagation)."""
        if tuple(m.shape) != tuple(self.grid.shape):
            raise ValueError(
                f"SurrogateModel: expected a parameter of shape {self.grid.shape}, got {tuple(m.shape)}"
            )
        self.n_evaluations += 1
        x = m.to(device=self._device, dtype=self._dtype)[None, None]
        y = self.network(x)[0, 0].to(device=m.device, dtype=m.dtype)
        return self.output_scale * y * self._mask.to(y)

    def linearize(self, m: torch.Tensor, u: torch.Tensor, counter: SolveCounter | None = None):
        return _NetworkLinearization(self, m.detach())


class _NetworkLinearization:
    def __init__(self, model: SurrogateModel, m: torch.Tensor):
        self.model = model
        with torch.enable_grad():
            self.x = m.clone().requires_grad_(True)
            self.u = model.solve(self.x)

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        self.model.n_evaluations += 1  # one backward pass
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.u, self.x, grad_outputs=w, retain_graph=True)
        return g

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        self.model.n_evaluations += 2  # double backward: two passes
        with torch.enable_grad():
            w = torch.zeros_like(self.u, requires_grad=True)
            (g,) = torch.autograd.grad(self.u, self.x, grad_outputs=w, create_graph=True)
            (jv,) = torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True)
        return jv.detach()


def solve_darcy_batch(
    grid: Grid, a: torch.Tensor, source: float = 1.0, rtol: float = 1e-8
) -> torch.Tensor:
    """Solve ``-div(a grad u) = source`` for a batch ``a`` ``(B, *grid.shape)`` (MG-PCG, batched).

    The systems of :class:`~pdekit.pdes.darcy.DarcyFlow` solved by its ``solve`` with
    ``SolveConfig(method="mgpcg", rtol=rtol)``; ``u`` on the full grid in the dtype of ``a``.

    Raises
    ------
    NotConvergedError
        When a system misses ``rtol`` (true relative residual).

    Examples
    --------
    >>> import torch
    >>> from pdekit.core.grid import Grid
    >>> u = solve_darcy_batch(Grid((17, 17)), torch.ones(2, 17, 17, dtype=torch.float64))
    >>> u.shape, round(float(u[1].max()), 4)
    (torch.Size([2, 17, 17]), 0.0734)
    """
    family = DarcyFlow(resolution=grid.shape[0]) if isinstance(grid, Grid) else None
    if family is None or grid != family.grid:
        raise PdekitUserError(f"solve_darcy_batch: grid must be the Darcy node grid Grid((n, n)), "
                              f"got {grid!r}")
    inputs = {"a": a}
    if float(source) != 1.0:
        inputs["f"] = torch.full_like(a, float(source))
    config = SolveConfig(method="mgpcg", rtol=rtol)
    sol = family.solve(inputs, config)
    worst = float(sol.rel_residual.max()) if len(a) else 0.0
    if worst > rtol * (1 + 1e-6):
        raise NotConvergedError(
            f"training-data solve (mgpcg) did not converge: relative residual {worst:.3e} > "
            f"rtol={rtol:g}"
        )
    return sol.fields["u"]


def train_surrogate(
    grid: Grid,
    prior: SpectralPrior,
    *,
    n_train: int = 256,
    n_test: int = 32,
    epochs: int = 40,
    batch_size: int = 16,
    lr: float = 3e-3,
    n_modes: int = 12,
    hidden_channels: int = 24,
    n_layers: int = 4,
    source: float = 1.0,
    generator: torch.Generator | None = None,
    log: Callable[[str], None] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[SurrogateModel, dict]:
    """Train an FNO on ``(m, u(m))`` pairs with ``m`` drawn from ``prior`` (Darcy, ``a = exp(m)``).

    Returns the surrogate and ``{"data_seconds", "train_seconds", "test_rel_l2", "n_train",
    "n_parameters"}``. A small budget: meant for the benchmark and the examples, not for production.
    """
    from pdekit.models import count_parameters, get_model

    t0 = time.perf_counter()
    m = prior.sample(n_train + n_test, generator)
    u = torch.cat(
        [solve_darcy_batch(grid, torch.exp(m[i : i + 32]), source) for i in range(0, len(m), 32)]
    )
    data_seconds = time.perf_counter() - t0
    scale = float(u[:n_train].std())
    x = m.float().unsqueeze(1).to(device)
    y = (u / scale).float().unsqueeze(1).to(device)
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    net = get_model(
        "fno",
        n_modes=(n_modes, n_modes),
        hidden_channels=hidden_channels,
        n_layers=n_layers,
        domain_padding=0.0,
    ).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    steps = epochs * ((n_train + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    t1 = time.perf_counter()
    net.train()
    for ep in range(epochs):
        perm = torch.randperm(n_train, generator=generator).to(device)
        total = 0.0
        for i in range(0, n_train, batch_size):
            idx = perm[i : i + batch_size]
            pred = net(xtr[idx])
            err = (pred - ytr[idx]).flatten(1).norm(dim=1) / ytr[idx].flatten(1).norm(dim=1)
            loss = err.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log and (ep % 10 == 0 or ep == epochs - 1):
            log(f"surrogate epoch {ep}: train rel L2 {total / n_train:.4f}")
    train_seconds = time.perf_counter() - t1
    net.eval()
    with torch.no_grad():
        pred = net(xte)
        test = float(((pred - yte).flatten(1).norm(dim=1) / yte.flatten(1).norm(dim=1)).mean())
    sur = SurrogateModel(net, grid, output_scale=scale)
    return sur, {
        "data_seconds": data_seconds,
        "train_seconds": train_seconds,
        "test_rel_l2": test,
        "n_train": n_train,
        "n_parameters": count_parameters(net),
    }


def surrogate_inversion(
    objective: Objective,
    surrogate: SurrogateModel,
    m0: torch.Tensor,
    *,
    method: str = "lbfgs",
    refine_iter: int = 0,
    max_iter: int = 200,
    gtol: float = 1e-6,
    refine_options: dict | None = None,
) -> InversionResult:
    """Invert with ``surrogate`` in place of the solver, then (optionally) refine with the solver.

    Parameters
    ----------
    objective : Objective
        The true (solver-based) objective: its prior and observations are reused.
    surrogate : SurrogateModel
    m0 : Tensor
        Initial parameter.
    method : {"lbfgs", "gauss-newton"}
        Driver on the surrogate objective.
    refine_iter : int
        Gauss-Newton-CG iterations with the true solver from the surrogate estimate (0: none).
    max_iter, gtol
        Of the surrogate driver.
    refine_options : dict, optional
        Extra keywords for :func:`~pdekit.inverse.gauss_newton.gauss_newton_cg`.

    Returns
    -------
    InversionResult
        ``history`` of the surrogate phase (its misfits are the surrogate's) followed by the
        refinement; ``diagnostics["surrogate_misfit"]``, ``["true_misfit"]``,
        ``["network_evaluations"]``, ``["surrogate_seconds"]``; ``pde_solves`` counts only true solves.
    """
    t0 = time.perf_counter()
    sur_obj = Objective(InverseProblem(surrogate, objective.prior), objective.observations)
    n0 = surrogate.n_evaluations
    if method == "lbfgs":
        res = lbfgs(sur_obj, m0, max_iter=max_iter, gtol=gtol)
    elif method == "gauss-newton":
        res = gauss_newton_cg(sur_obj, m0, max_iter=max_iter, gtol=gtol)
    else:
        raise ValueError(f"surrogate method must be 'lbfgs' or 'gauss-newton', got {method!r}")
    sur_seconds = time.perf_counter() - t0
    history = [dict(h, phase="surrogate", pde_solves=0) for h in res.history]
    m = res.m
    if refine_iter > 0:
        ref = gauss_newton_cg(objective, m, max_iter=refine_iter, **(refine_options or {}))
        history += [
            dict(h, phase="refine", seconds=h["seconds"] + sur_seconds) for h in ref.history
        ]
        m = ref.m
    ev = objective.evaluate(m)
    with torch.no_grad():
        coef = objective.model.parameterisation.coefficient(m)
    return InversionResult(
        m=m.detach(),
        coefficient=coef.detach(),
        history=history,
        diagnostics={
            "method": "surrogate",
            "converged": bool(res.diagnostics["converged"]),
            "message": res.diagnostics["message"],
            "iterations": res.diagnostics["iterations"],
            "pde_solves": objective.counter.as_dict(),
            "seconds": time.perf_counter() - t0,
            "surrogate_seconds": sur_seconds,
            "surrogate_misfit": res.history[-1]["misfit"],
            "true_misfit": ev.misfit,
            "true_objective": ev.value,
            "network_evaluations": surrogate.n_evaluations - n0,
            "refine_iter": refine_iter,
        },
    )
