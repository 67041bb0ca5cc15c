"""Physics-informed loss: the discrete PDE residual of a prediction (PINO style).

The residual is computed with the *same* operators that generate the data
(:func:`pdekit.core.stencils.diffusion` on a :class:`pdekit.core.grid.Grid`), so a prediction that
equals the generator's discrete solution has zero residual up to round-off, and the loss pulls a
neural operator towards the discrete solution even for samples without a label.

Darcy flow, the FNO convention: an ``n x n`` node grid on ``[0, 1]^2`` including the boundary,
``-div(a grad u) = f`` on the interior nodes, ``u = 0`` on the boundary nodes. For a prediction
``u`` and coefficient ``a`` (both full-grid, **physical units**) the loss per sample is

.. math:: \\frac{\\| A(a)\\, u_{int} - f_{int} \\|_2}{\\| f_{int} \\|_2}
          + \\frac{\\| u_{bnd} \\|_2}{\\| u \\|_2},

the relative residual on the interior nodes plus the relative size of the predicted boundary
values (which the interior residual does not see). ``A(a)`` applies the 5-point flux-form
stencil with harmonic-mean face coefficients; it is differentiable in ``u``.

De-normalisation: :class:`~pdekit.data.PDEDataset` standardises fields with the train-split
statistics, so the trainer first maps the network input ``x`` and output back to physical units
with :class:`~pdekit.train.processor.DataProcessor` (``a = x[:, a_channel] * std_a + mean_a``,
``u = out * std_u + mean_u``) and only then calls this loss.

Caveat: the grid spacing is ``1 / (n - 1)``. A dataset subsampled by ``s`` keeps the boundary
nodes only when ``(n - 1)`` is divisible by ``s`` (e.g. 421 -> 85 with ``s = 5``); otherwise the
residual of the subsampled fields is that of a slightly different grid.

References
----------
.. [1] Z. Li, H. Zheng, N. Kovachki, D. Jin, H. Chen, B. Liu, K. Azizzadenesheli, A. Anandkumar,
   "Physics-Informed Neural Operator for Learning Partial Differential Equations",
   arXiv:2111.03794, 2021 (ACM/IMS J. Data Sci. 2024).
"""

from __future__ import annotations

import torch

from pdekit.core.grid import Grid
from pdekit.core.stencils import diffusion

__all__ = ["darcy_residual", "DarcyResidualLoss", "build_physics_loss"]


def darcy_residual(u: torch.Tensor, a: torch.Tensor, f: float | torch.Tensor = 1.0) -> torch.Tensor:
    """The discrete residual ``A(a) u - f`` on the interior nodes of the Darcy grid.

    Parameters
    ----------
    u : Tensor
        ``(B, n, n)`` predicted solution on the full grid (boundary values are ignored: the
        operator takes ``u = 0`` there).
    a : Tensor
        ``(B, n, n)`` positive coefficient on the full grid.
    f : float or Tensor
        Source: a constant, or a ``(B, n, n)`` full-grid field.

    Returns
    -------
    Tensor
        ``(B, n - 2, n - 2)``.

    Examples
    --------
    >>> u = torch.zeros(1, 5, 5)
    >>> darcy_residual(u, torch.ones(1, 5, 5)).shape
    torch.Size([1, 3, 3])
    """
    if u.shape != a.shape or u.dim() != 3:
        raise ValueError(
            f"darcy_residual needs u and a of the same shape (B, n, n), got {tuple(u.shape)} "
            f"and {tuple(a.shape)}"
        )
    grid = Grid(tuple(u.shape[1:]), bc="dirichlet")
    op = diffusion(grid, a.to(u.dtype))
    au = op.apply(grid.interior(u))
    if isinstance(f, torch.Tensor):
        f = grid.interior(f.to(u.dtype)) if f.shape[-2:] == u.shape[-2:] else f
    return au - f


class DarcyResidualLoss(torch.nn.Module):
    """Relative Darcy residual of a prediction plus its relative boundary values.

    Parameters
    ----------
    f : float
        Constant source term (the FNO Darcy data use ``f = 1``); ignored with ``f_channel``.
    a_channel : int
        Which input channel holds the coefficient ``a``.
    f_channel : int, optional
        Which input channel holds a source field ``f`` (Darcy with ``source="random"``).
    reduction : {"mean", "sum", "none"}

    Call it as ``loss(pred, x)`` with ``pred`` ``(B, 1, n, n)`` and ``x`` ``(B, C_in, n, n)``, both in
    physical units.

    References
    ----------
    .. [1] Z. Li et al., "Physics-Informed Neural Operator for Learning Partial Differential
       Equations", arXiv:2111.03794, 2021.

    Examples
    --------
    >>> loss = DarcyResidualLoss(f=1.0)
    >>> pred, x = torch.zeros(2, 1, 6, 6), torch.ones(2, 1, 6, 6)
    >>> float(loss(pred, x))   # u = 0: the residual is -f, relative size 1
    1.0
    """

    name = "physics"

    def __init__(self, f: float = 1.0, a_channel: int = 0, f_channel: int | None = None,
                 reduction: str = "mean"):
        super().__init__()
        self.f = float(f)
        self.a_channel = int(a_channel)
        self.f_channel = None if f_channel is None else int(f_channel)
        self.reduction = reduction

    def forward(self, pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if pred.dim() != 4 or pred.shape[1] != 1:
            raise ValueError(
                f"the Darcy physics loss needs a 2-D scalar prediction (B, 1, n, n), got "
                f"{tuple(pred.shape)}"
            )
        for key, ch in (("a_channel", self.a_channel), ("f_channel", self.f_channel)):
            if ch is not None and not 0 <= ch < x.shape[1]:
                raise ValueError(
                    f"physics.{key}={ch} but the inputs have {x.shape[1]} channel(s)"
                )
        u = pred[:, 0]
        if u.dtype in (torch.float16, torch.bfloat16):
            u = u.float()
        a = x[:, self.a_channel].to(u.dtype)
        if self.f_channel is None:
            r = darcy_residual(u, a, self.f)
            f_norm = abs(self.f) * r[0].numel() ** 0.5
        else:
            f = x[:, self.f_channel].to(u.dtype)
            r = darcy_residual(u, a, f)
            f_norm = torch.linalg.vector_norm(f[:, 1:-1, 1:-1].flatten(1), dim=1)
        rel = torch.linalg.vector_norm(r.flatten(1), dim=1) / (f_norm + 1e-30)
        mask = torch.ones_like(u[0], dtype=torch.bool)
        mask[1:-1, 1:-1] = False
        bnd = torch.linalg.vector_norm(u[:, mask], dim=1)
        bnd = bnd / (torch.linalg.vector_norm(u.flatten(1), dim=1) + 1e-12)
        per_sample = rel + bnd
        if self.reduction == "none":
            return per_sample
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()


def build_physics_loss(config) -> torch.nn.Module | None:
    """The physics loss of a :class:`~pdekit.train.config.TrainConfig` (``None`` at weight 0).

    The :class:`~pdekit.train.trainer.Trainer` calls this when it is given no ``physics_loss``;
    the loss returns per-sample values (``reduction="none"``) and is called as
    ``loss(pred, x)`` on physical units.

    Examples
    --------
    >>> from pdekit.train.config import config_from_dict
    >>> cfg = config_from_dict({"dataset": "d", "model": {"name": "fno"}, "physics": {"weight": 0.1}})
    >>> type(build_physics_loss(cfg)).__name__
    'DarcyResidualLoss'
    """
    p = config.physics
    if p.weight <= 0:
        return None
    if p.pde != "darcy":  # pragma: no cover (the config only admits darcy today)
        raise ValueError(f"physics.pde: no physics loss for {p.pde!r}")
    return DarcyResidualLoss(f=p.f, a_channel=p.a_channel, f_channel=p.f_channel, reduction="none")
