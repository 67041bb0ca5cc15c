"""Networks for PINNs: a tanh MLP and a deepxde wrapper for any point-wise torch module (KAN, MLP).

deepxde is imported lazily (it takes seconds, and on import its PyTorch backend moves the default
torch device to CUDA when one is available). :func:`import_deepxde` selects the PyTorch backend
through ``DDE_BACKEND`` (unless the caller set it) before the first import.

The wrapper class ``DeepXDENet`` is a ``deepxde.nn.NN`` subclass built on first use; get instances
from :func:`deepxde_net` or :func:`make_net`, and the class itself as
``pdekit.pinn.networks.DeepXDENet`` (attribute access imports deepxde).

References
----------
Lu, Meng, Mao & Karniadakis (2021), "DeepXDE: A deep learning library for solving differential
equations", SIAM Review 63(1), 208-228.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from pdekit.errors import PdekitUserError
from pdekit.pinn._pointwise import input_affine_map, layer_widths
from pdekit.pinn.kan import KAN

__all__ = [
    "MLP",
    "NetKind",
    "deepxde_net",
    "import_deepxde",
    "make_net",
    "mlp_width_for",
    "n_params",
]

NetKind = Literal["kan_bspline", "kan_chebyshev", "mlp"]


def import_deepxde():
    """Import deepxde on its PyTorch backend and return the module.

    Sets ``DDE_BACKEND=pytorch`` unless the environment already names a backend; raises
    ``RuntimeError`` when deepxde ends up on another backend (imported earlier elsewhere).
    """
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    import deepxde

    name = deepxde.backend.backend_name
    if name != "pytorch":
        raise RuntimeError(f"pdekit.pinn needs deepxde's pytorch backend, deepxde is on {name!r}")
    return deepxde


class MLP(nn.Module):
    """Fully connected tanh network with Glorot-uniform weights and zero biases.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths including input and output, e.g. ``[2, 20, 20, 1]``.
    input_range : (lo, hi), optional
        Box of the raw inputs, mapped affinely onto ``[-1, 1]`` (as :class:`~pdekit.pinn.kan.KAN`).
    dtype, device : optional

    Examples
    --------
    >>> net = MLP([2, 20, 20, 1], input_range=(0.0, 1.0))
    >>> net(torch.rand(4, 2)).shape, net.n_params
    (torch.Size([4, 1]), 501)
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        input_range: tuple | None = None,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__()
        sizes = layer_widths(layer_sizes)
        self.layer_sizes = sizes
        dtype = dtype or torch.get_default_dtype()
        self.linears = nn.ModuleList(
            nn.Linear(a, b, dtype=dtype, device=device) for a, b in zip(sizes[:-1], sizes[1:])
        )
        for lin in self.linears:
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        scale, shift = input_affine_map(input_range, sizes[0], (-1.0, 1.0), dtype)
        self.register_buffer("input_scale", scale.to(device))
        self.register_buffer("input_shift", shift.to(device))

    @property
    def n_params(self) -> int:
        return n_params(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x * self.input_scale + self.input_shift
        for lin in self.linears[:-1]:
            h = torch.tanh(lin(h))
        return self.linears[-1](h)


def n_params(module: nn.Module) -> int:
    """Number of trainable parameters of a module."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@functools.cache
def _deepxde_net_class() -> type:
    dde = import_deepxde()

    class DeepXDENet(dde.nn.NN):
        """deepxde network around a point-wise torch module ``(N, n_in) -> (N, n_out)``.

        ``forward`` applies deepxde's feature (input) transform, the module, then the output
        transform ``transform(inputs, outputs)`` -- so ``apply_output_transform`` imposes hard
        boundary conditions exactly, as with ``deepxde.nn.FNN``.
        """

        def __init__(self, module: nn.Module):
            super().__init__()
            self.module = module

        def forward(self, inputs):
            x = inputs
            if self._input_transform is not None:
                x = self._input_transform(x)
            y = self.module(x)
            if self._output_transform is not None:
                y = self._output_transform(inputs, y)
            return y

    DeepXDENet.__module__ = __name__
    DeepXDENet.__qualname__ = "DeepXDENet"
    return DeepXDENet


def __getattr__(name: str) -> Any:
    if name == "DeepXDENet":
        return _deepxde_net_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def deepxde_net(module: nn.Module, *, output_transform=None, input_transform=None):
    """Wrap a point-wise torch module as a ``deepxde.nn.NN`` (cast to deepxde's float type).

    Parameters
    ----------
    module : nn.Module
        Maps ``(N, n_in)`` to ``(N, n_out)`` row by row (:class:`~pdekit.pinn.kan.KAN`,
        :class:`MLP`, ...); it must be twice differentiable for second-order PDEs.
    output_transform : callable ``(inputs, outputs) -> outputs``, optional
        E.g. a hard Dirichlet condition ``lambda x, y: g(x) + d(x) * y``.
    input_transform : callable ``inputs -> features``, optional

    Returns
    -------
    DeepXDENet

    References
    ----------
    Lu et al. (2021), DeepXDE, SIAM Review 63(1).

    Examples
    --------
    >>> net = deepxde_net(MLP([1, 8, 1]), output_transform=lambda x, y: x * (1 - x) * y)
    >>> x = torch.tensor([[0.0], [1.0]])
    >>> net(x).abs().max().item()
    0.0
    """
    dde = import_deepxde()
    net = _deepxde_net_class()(module.to(dde.config.real(torch)))
    if output_transform is not None:
        net.apply_output_transform(output_transform)
    if input_transform is not None:
        net.apply_feature_transform(input_transform)
    return net


def make_net(kind: NetKind, layer_sizes: Sequence[int], *, input_range=None, **options):
    """Build a deepxde network of one of the benchmark kinds.

    Parameters
    ----------
    kind : {"kan_bspline", "kan_chebyshev", "mlp"}
    layer_sizes : sequence of int
    input_range : (lo, hi), optional
        Box of the raw coordinates (mapped onto the KAN grid or ``[-1, 1]``).
    **options
        Passed to :class:`~pdekit.pinn.kan.KAN` (``grid_size``, ``spline_order``, ``degree``,
        ...); not allowed for ``"mlp"``.

    Examples
    --------
    >>> net = make_net("kan_chebyshev", [2, 4, 1], degree=3)
    >>> net.num_trainable_parameters()
    48
    """
    if kind == "mlp":
        if options:
            raise PdekitUserError(f"mlp takes no options, got {sorted(options)}")
        module: nn.Module = MLP(layer_sizes, input_range=input_range)
    elif kind in ("kan_bspline", "kan_chebyshev"):
        basis = "bspline" if kind == "kan_bspline" else "chebyshev"
        module = KAN(layer_sizes, basis=basis, input_range=input_range, **options)
    else:
        raise PdekitUserError(
            f"unknown net kind {kind!r}: use 'kan_bspline', 'kan_chebyshev' or 'mlp'"
        )
    return deepxde_net(module)


def _mlp_size(n_in: int, width: int, depth: int, n_out: int) -> int:
    return (n_in + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * n_out


def mlp_width_for(n_params_target: int, n_in: int, n_out: int, depth: int = 3) -> int:
    """Hidden width of a ``depth``-hidden-layer MLP whose size is closest to a target.

    Examples
    --------
    >>> mlp_width_for(1000, 2, 1)
    21
    """
    return min(range(1, 1025), key=lambda w: abs(_mlp_size(n_in, w, depth, n_out) - n_params_target))
