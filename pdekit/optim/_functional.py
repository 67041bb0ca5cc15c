"""Shared machinery of the second-order optimizers: flat parameter vectors and linearised residuals.

Every optimizer in :mod:`pdekit.optim` sees the model through a *residual closure*: a callable
``closure()`` that computes the residual vector ``r(theta)`` (any shape; it is flattened) from the
optimizer's parameters with autograd enabled. The loss is ``L = 1/2 ||r||^2``. At the current
parameters, :class:`Linearization` evaluates the closure once, keeps its graph, and provides

* ``vjp(W)``: ``J^T w`` for a batch of rows ``W`` of shape ``(B, n)`` (reverse mode),
* ``jvp(V)``: ``J v`` for ``V`` of shape ``(B, p)``, by the transpose trick: ``u -> J^T u`` is
  linear in ``u``, and its vector-Jacobian product is ``J v`` (one double-backward pass; works for
  any closure, including PINN residuals that call ``torch.autograd.grad`` themselves),
* ``jacobian()``: the dense ``(n, p)`` Jacobian, built from ``min(n, p)`` batched products,
* ``hvp(V)``: products with the exact Hessian of ``L`` (double backward of the gradient).

When the closure is a :class:`FunctionalResidual` (a pure function of the parameters built with
:func:`functional_residual`), the products use ``torch.func.jvp`` / ``torch.func.vjp`` instead:
forward mode for ``J v``, one linearisation shared by all products of a step.

Parameters are handled as one flat real vector (:class:`ParamVector`): complex parameters (the
spectral weights of an FNO) count as their real and imaginary parts, so ``p`` real unknowns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

__all__ = [
    "ParamVector",
    "Linearization",
    "FunctionalResidual",
    "functional_residual",
    "PointwiseResidual",
    "pointwise_residual",
    "ResidualClosureError",
]


class ResidualClosureError(ValueError):
    """The closure did not return a residual tensor that depends on the parameters."""


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype if dtype.is_complex else dtype


class ParamVector:
    """A list of parameter tensors seen as one flat real vector of length ``p``.

    Parameters
    ----------
    params : iterable of Tensor
        Floating-point or complex tensors on one device with one real precision.

    Examples
    --------
    >>> a, b = torch.zeros(2), torch.zeros(1, dtype=torch.complex64)
    >>> pv = ParamVector([a, b])
    >>> pv.p
    4
    >>> pv.set_(torch.arange(4.0)); b.tolist()
    [(2+3j)]
    """

    def __init__(self, params: Iterable[torch.Tensor]):
        self.params = list(params)
        if not self.params:
            raise ValueError("the optimizer got no parameters")
        dtypes = {_real_dtype(p.dtype) for p in self.params}
        devices = {p.device for p in self.params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise ValueError(
                f"all parameters need one precision and one device, got {sorted(map(str, dtypes))} "
                f"on {sorted(map(str, devices))}"
            )
        self.dtype = dtypes.pop()
        self.device = devices.pop()
        self.sizes = [p.numel() * (2 if p.is_complex() else 1) for p in self.params]
        self.p = int(sum(self.sizes))

    def _real(self, t: torch.Tensor) -> torch.Tensor:
        return torch.view_as_real(t) if t.is_complex() else t

    def get(self) -> torch.Tensor:
        """A detached copy of the parameters as a ``(p,)`` vector."""
        return torch.cat([self._real(p.detach()).reshape(-1) for p in self.params])

    @torch.no_grad()
    def set_(self, theta: torch.Tensor) -> None:
        """Copy the ``(p,)`` vector ``theta`` into the parameters (in place)."""
        for p, chunk in zip(self.params, self.split(theta)):
            p.copy_(chunk)

    @torch.no_grad()
    def add_(self, delta: torch.Tensor, alpha: float = 1.0) -> None:
        """``theta <- theta + alpha * delta`` in place."""
        for p, chunk in zip(self.params, self.split(delta)):
            p.add_(chunk, alpha=alpha)

    def split(self, vec: torch.Tensor) -> list[torch.Tensor]:
        """Cut a ``(p,)`` or ``(B, p)`` vector into tensors shaped (and typed) like the params."""
        lead = vec.shape[:-1]
        out = []
        for p, chunk in zip(self.params, torch.split(vec, self.sizes, dim=-1)):
            if p.is_complex():
                chunk = torch.view_as_complex(chunk.reshape(*lead, *p.shape, 2).contiguous())
            else:
                chunk = chunk.reshape(*lead, *p.shape)
            out.append(chunk.to(p.dtype))
        return out

    def cat(self, tensors: Sequence[torch.Tensor | None], batch: int | None = None) -> torch.Tensor:
        """Inverse of :meth:`split` (``None`` entries are zeros): ``(p,)`` or ``(batch, p)``."""
        lead = () if batch is None else (batch,)
        parts = []
        for p, t in zip(self.params, tensors):
            if t is None:
                size = p.numel() * (2 if p.is_complex() else 1)
                parts.append(torch.zeros(*lead, size, dtype=self.dtype, device=self.device))
            else:
                parts.append(self._real(t).reshape(*lead, -1).to(self.dtype))
        return torch.cat(parts, dim=-1)


def _batched_grad(outputs, inputs, grad_outputs, *, retain_graph=True, create_graph=False):
    """``torch.autograd.grad`` for a batch of ``grad_outputs`` (leading dim B); vmap, else a loop."""
    B = grad_outputs[0].shape[0]
    kw = dict(retain_graph=True, create_graph=create_graph, allow_unused=True)
    if B > 1:
        try:
            return torch.autograd.grad(outputs, inputs, grad_outputs, is_grads_batched=True, **kw)
        except (RuntimeError, NotImplementedError):
            pass  # an op without a batching rule: fall back to a loop
    rows = [
        torch.autograd.grad(outputs, inputs, [g[b] for g in grad_outputs], **kw) for b in range(B)
    ]
    return [
        None if rows[0][k] is None else torch.stack([row[k] for row in rows])
        for k in range(len(inputs))
    ]


class FunctionalResidual:
    """A residual closure that is also a pure function of the parameters.

    Build it with :func:`functional_residual`. Calling it with no argument evaluates the residual at
    the module's current parameters (so it is a valid closure for every optimizer); the optimizers
    detect it and take Jacobian products with ``torch.func.jvp`` / ``torch.func.vjp``.
    """

    def __init__(self, module: torch.nn.Module, fn: Callable[[Callable], torch.Tensor]):
        self.module = module
        self.fn = fn
        self.names = [n for n, _ in module.named_parameters()]

    def __call__(self) -> torch.Tensor:
        return self.fn(self.module)

    def at(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        """The residual (flattened) with the module's parameters replaced by ``params``."""
        mapping = dict(zip(self.names, params))

        def call(*args, **kwargs):
            return torch.func.functional_call(self.module, mapping, args, kwargs)

        return self.fn(call).reshape(-1)


def functional_residual(
    module: torch.nn.Module, fn: Callable[[Callable], torch.Tensor]
) -> FunctionalResidual:
    """Wrap ``fn(model) -> residual`` so the optimizers can use ``torch.func`` products.

    ``fn`` receives a callable standing for the module (call it like the module) and must build the
    residual from it with torch operations that ``torch.func`` transforms (use ``torch.func.grad``
    / ``vmap`` for input derivatives, not ``torch.autograd.grad``). The optimizers must be given
    ``module.parameters()`` in their natural order.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> x, y = torch.randn(8, 2), torch.randn(8, 1)
    >>> closure = functional_residual(net, lambda model: model(x) - y)
    >>> closure().shape
    torch.Size([8, 1])
    """
    return FunctionalResidual(module, fn)


class PointwiseResidual(FunctionalResidual):
    """A residual made of blocks ``weight * fn(model, x_i)``, each a function of one point ``x_i``.

    Build it with :func:`pointwise_residual`. Because row ``i`` of the Jacobian depends on point
    ``i`` only, the dense Jacobian is ``vmap(jacrev(fn))`` over the points: one batched reverse pass
    instead of ``min(n, p)`` passes, the fast path of :class:`~pdekit.optim.GaussNewton`.
    """

    def __init__(self, module: torch.nn.Module, blocks: Sequence[tuple]):
        super().__init__(module, None)
        self.blocks = []
        for block in blocks:
            if len(block) == 2:
                fn, points = block
                weight = 1.0 / float(_n_points(points)) ** 0.5
            elif len(block) == 3:
                fn, points, weight = block
            else:
                raise ValueError("a block is (fn, points) or (fn, points, weight)")
            self.blocks.append((fn, points, float(weight)))

    def _call(self, mapping):
        def call(*args, **kwargs):
            return torch.func.functional_call(self.module, mapping, args, kwargs)

        return call

    def __call__(self) -> torch.Tensor:
        return self.at(tuple(p for _, p in self.module.named_parameters()))

    def at(self, params: Sequence[torch.Tensor]) -> torch.Tensor:
        call = self._call(dict(zip(self.names, params)))
        out = [
            w * torch.func.vmap(lambda x, fn=fn: fn(call, x))(pts).reshape(-1)
            for fn, pts, w in self.blocks
        ]
        return torch.cat(out)

    def jacobian_at(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Per-parameter Jacobians ``(n, *param.shape)`` by ``vmap(jacrev)`` over the points."""
        mapping = dict(zip(self.names, params))
        per_block = []
        for fn, pts, w in self.blocks:

            def point(m, x, fn=fn, w=w):
                return w * fn(self._call(m), x)

            jac = torch.func.vmap(torch.func.jacrev(point), in_dims=(None, 0))(mapping, pts)
            per_block.append([jac[name] for name in self.names])
        out = []
        for k in range(len(self.names)):
            blocks = [b[k] for b in per_block]
            shape = params[k].shape
            out.append(torch.cat([b.reshape(-1, *shape) for b in blocks]))
        return out


def _n_points(points) -> int:
    if isinstance(points, torch.Tensor):
        return points.shape[0]
    return _n_points(next(iter(points.values())) if isinstance(points, dict) else points[0])


def pointwise_residual(module: torch.nn.Module, *blocks: tuple) -> PointwiseResidual:
    """A residual closure from per-point residual functions (PINN collocation, operator samples).

    Parameters
    ----------
    module : torch.nn.Module
        The model; give the optimizer ``module.parameters()`` in their natural order.
    *blocks : tuple
        ``(fn, points)`` or ``(fn, points, weight)``. ``fn(model, x)`` returns the residual (a
        scalar or a small tensor) at **one** point ``x`` (a row of ``points``, or a tuple of rows
        when ``points`` is a tuple of tensors); ``model`` is called like the module on unbatched
        inputs and derivatives in ``x`` use ``torch.func`` (``jacrev``, ``hessian``). The block is
        ``weight * vmap(fn)(points)``; the default weight ``1/sqrt(len(points))`` makes
        ``1/2 ||r||^2`` half the mean squared residual of each block.

    Examples
    --------
    The residual of ``-u'' = pi^2 sin(pi x)`` at 16 points and of ``u(0) = u(1) = 0``:

    >>> import math
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> def pde(model, x):
    ...     u_xx = torch.func.hessian(lambda y: model(y)[0])(x)[0, 0]
    ...     return -u_xx - math.pi**2 * torch.sin(math.pi * x[0])
    >>> def bc(model, x):
    ...     return model(x)[0]
    >>> closure = pointwise_residual(net, (pde, torch.rand(16, 1)), (bc, torch.tensor([[0.0], [1.0]])))
    >>> closure().shape
    torch.Size([18])
    """
    return PointwiseResidual(module, blocks)


class Linearization:
    """The residual of a closure at the current parameters and its Jacobian products.

    Parameters
    ----------
    closure : callable
        Returns the residual vector; evaluated once, with autograd enabled.
    pv : ParamVector
        The parameters the products are taken with respect to.

    Attributes
    ----------
    r : Tensor
        The detached, flattened residual ``(n,)``.
    loss : float
        ``1/2 ||r||^2``.
    n, p : int
        Number of residuals and of (real) parameters.

    Examples
    --------
    >>> A = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> x = torch.zeros(2, requires_grad=True)
    >>> lin = Linearization(lambda: A @ x - 1.0, ParamVector([x]))
    >>> torch.equal(lin.jacobian(), A), lin.jvp(torch.eye(2)).T.tolist() == A.tolist()
    (True, True)
    """

    def __init__(self, closure: Callable[[], torch.Tensor], pv: ParamVector):
        self.pv = pv
        self._functional = isinstance(closure, FunctionalResidual)
        self._closure = closure
        if self._functional:
            primals = tuple(p.detach() for p in pv.params)
            r, self._vjp_fn = torch.func.vjp(closure.at, primals)
            self._primals = primals
        else:
            with torch.enable_grad():
                r = closure()
            if not isinstance(r, torch.Tensor):
                raise ResidualClosureError(
                    f"the closure must return the residual vector (a tensor), got {type(r).__name__}"
                )
            r = r.reshape(-1)
            if not r.requires_grad:
                raise ResidualClosureError(
                    "the residual returned by the closure does not depend on the parameters "
                    "(was it computed under torch.no_grad() or from detached tensors?)"
                )
        if r.is_complex():
            raise ResidualClosureError("complex residuals are not supported; stack real and imag")
        self._r = r
        self.r = r.detach()
        self.n = self.r.numel()
        self.p = pv.p
        self.loss = 0.5 * float(self.r.double().square().sum())
        self._u = None
        self._gu = None
        self._grad_graph = None

    # -- products ---------------------------------------------------------------------------------
    def vjp(self, W: torch.Tensor) -> torch.Tensor:
        """``J^T w`` for each row of ``W`` ``(B, n)``; returns ``(B, p)``."""
        W = W.to(self.r.dtype)
        if self._functional:
            try:
                (grads,) = torch.func.vmap(self._vjp_fn)(W)
                return self.pv.cat(grads, batch=W.shape[0])
            except (RuntimeError, NotImplementedError):
                return torch.stack([self.pv.cat(self._vjp_fn(w)[0]) for w in W])
        grads = _batched_grad([self._r], self.pv.params, [W])
        return self.pv.cat(grads, batch=W.shape[0])

    def jvp(self, V: torch.Tensor) -> torch.Tensor:
        """``J v`` for each row of ``V`` ``(B, p)``; returns ``(B, n)``."""
        if self._functional:
            rows = []
            for v in V:
                tangents = tuple(t.detach() for t in self.pv.split(v))
                _, jv = torch.func.jvp(self._closure.at, (self._primals,), (tangents,))
                rows.append(jv)
            return torch.stack(rows).to(self.r.dtype)
        if self._gu is None:
            with torch.enable_grad():
                self._u = torch.zeros_like(self.r, requires_grad=True)
                gu = torch.autograd.grad(
                    self._r, self.pv.params, self._u, create_graph=True, retain_graph=True,
                    allow_unused=True,
                )
            self._gu = [g for g in gu if g is not None]
            self._gu_index = [k for k, g in enumerate(gu) if g is not None]
        if not self._gu:
            return torch.zeros(V.shape[0], self.n, dtype=self.r.dtype, device=self.r.device)
        parts = self.pv.split(V.to(self.pv.dtype))
        outs = [parts[k] for k in self._gu_index]
        (jv,) = _batched_grad(self._gu, [self._u], outs)
        if jv is None:  # the residual is constant in the parameters
            return torch.zeros(V.shape[0], self.n, dtype=self.r.dtype, device=self.r.device)
        return jv.reshape(V.shape[0], self.n)

    def ggn_vp(self, V: torch.Tensor) -> torch.Tensor:
        """Gauss-Newton products ``J^T J v`` for ``V`` ``(B, p)``."""
        return self.vjp(self.jvp(V))

    def gradient(self) -> torch.Tensor:
        """``g = J^T r``, the gradient of ``L = 1/2 ||r||^2``, as a ``(p,)`` vector."""
        return self.vjp(self.r[None])[0]

    def hvp(self, V: torch.Tensor) -> torch.Tensor:
        """Products with the exact Hessian of ``L`` (``J^T J`` plus the residual curvature)."""
        if self._functional:
            rows = []
            for v in V:
                tangents = tuple(t.detach() for t in self.pv.split(v))

                def grad_fn(*ps):
                    return torch.func.grad(lambda q: 0.5 * self._closure.at(q).square().sum())(ps)

                _, hv = torch.func.jvp(grad_fn, self._primals, tangents)
                rows.append(self.pv.cat(hv))
            return torch.stack(rows)
        if self._grad_graph is None:
            with torch.enable_grad():
                loss = 0.5 * self._r.square().sum()
                g = torch.autograd.grad(loss, self.pv.params, create_graph=True, allow_unused=True)
            self._grad_graph = [x for x in g if x is not None]
            self._grad_index = [k for k, x in enumerate(g) if x is not None]
        parts = self.pv.split(V.to(self.pv.dtype))
        outs = [parts[k] for k in self._grad_index]
        hv = _batched_grad(self._grad_graph, self.pv.params, outs)
        return self.pv.cat(hv, batch=V.shape[0])

    def jacobian(self, chunk: int | None = None) -> torch.Tensor:
        """The dense Jacobian ``(n, p)``: ``vmap(jacrev)`` for a :class:`PointwiseResidual`, else
        from ``min(n, p)`` products in chunks of ``chunk``."""
        if isinstance(self._closure, PointwiseResidual):
            jac = self._closure.jacobian_at(self._primals)
            return self.pv.cat(jac, batch=self.n).to(self.r.dtype)
        m = min(self.n, self.p)
        if chunk is None:  # small batches: vmap over a double-backward graph scales poorly
            chunk = max(1, min(m, 32, (1 << 24) // max(self.n, self.p)))
        eye_dim = self.n if self.n <= self.p else self.p
        blocks = []
        for start in range(0, m, chunk):
            stop = min(start + chunk, m)
            E = torch.zeros(stop - start, eye_dim, dtype=self.r.dtype, device=self.r.device)
            E[torch.arange(stop - start), torch.arange(start, stop)] = 1
            blocks.append(self.vjp(E) if self.n <= self.p else self.jvp(E))
        J = torch.cat(blocks)
        return J if self.n <= self.p else J.T.contiguous()


def evaluate_loss(closure: Callable[[], torch.Tensor]) -> float:
    """``1/2 ||closure()||^2`` as a float (autograd stays enabled: PINN residuals need it)."""
    with torch.enable_grad():
        r = closure()
    return 0.5 * float(r.detach().double().square().sum())
