"""KINN benchmark: KAN (B-spline, Chebyshev) vs MLP PINNs at comparable parameter counts.

Problems (after Wang et al. 2024, KINN, arXiv:2406.11045; facts in shared/research/kinn_pinn.md):

* ``poisson2d`` (strong): ``-lap u = 2 pi^2 sin(pi x) sin(pi y)`` on ``[0, 1]^2``, ``u = 0`` on the
  boundary (hard, distance ``16 x(1-x) y(1-y)``); exact ``u = sin(pi x) sin(pi y)``.
* ``multiscale1d`` (strong): ``-u'' = f`` on ``[0, 1]``, exact ``u = sin(2 pi x) + 0.1 sin(20 pi x)``.
* ``inclusion`` (energy): ``-div(a grad u) = -16 r^2`` on ``[-1, 1]^2`` with ``a = 1/15`` in the disk
  ``r < 0.5`` and 1 outside, exact ``u = 15 r^4`` inside, ``r^4 + 0.875`` outside (KINN's
  heterogeneous problem); Dirichlet data by lift ``r^4 + 0.875`` and distance ``(1-x^2)(1-y^2)``.
* ``plate_hole`` (strong and energy): quarter plate ``[0, 20]^2`` minus a hole of radius 5, plane
  stress, E = 1000, nu = 0.3, traction 100 on ``x = 20``, symmetry on ``x = 0`` / ``y = 0`` (hard).
  Solved in units ``L = 20, E, t`` (the error is scale-free); the reference is a P2 finite-element
  solve with scikit-fem (``pip install pdekit[fem]``).

Usage::

    python experiments/kinn_benchmark.py --quick --json results.json

``--quick`` uses few iterations and points (a smoke-size comparison, minutes on a CPU); the default
budget is closer to KINN's. Output: ``{"meta": {...}, "results": [{"problem", "net", "form",
"rel_l2", "n_params", "seconds"}], "references": {...}}``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import _common
import numpy as np
import torch

from pdekit.pinn import relative_l2_error
from pdekit.pinn.energy import BoundaryTerm, energy_model
from pdekit.pinn.networks import import_deepxde, make_net, mlp_width_for
from pdekit.pinn.strong import strong_form_model, train

PI = np.pi
NETS = ("kan_bspline", "kan_chebyshev", "mlp")


@dataclass(frozen=True)
class Budget:
    iterations: int
    n_domain: int
    n_boundary: int
    lr: float


@dataclass(frozen=True)
class Case:
    """One benchmark problem in one form: network shapes, budgets and a model builder."""

    problem: str
    form: str
    n_in: int
    n_out: int
    input_range: tuple
    kan_bspline: tuple  # (hidden widths, grid size)
    kan_chebyshev: tuple  # (hidden widths, degree)
    quick: Budget
    full: Budget
    build: Callable  # (net, budget) -> deepxde.Model
    evaluate: Callable  # model -> rel_l2


def _net(case: Case, kind: str):
    if kind == "kan_bspline":
        hidden, g = case.kan_bspline
        return make_net(kind, [case.n_in, *hidden, case.n_out], input_range=case.input_range,
                        grid_size=g, grid_range=(-1.0, 1.0))
    if kind == "kan_chebyshev":
        hidden, d = case.kan_chebyshev
        return make_net(kind, [case.n_in, *hidden, case.n_out], input_range=case.input_range,
                        degree=d)
    ref = _net(case, "kan_bspline").num_trainable_parameters()
    w = mlp_width_for(ref, case.n_in, case.n_out, depth=3)
    return make_net("mlp", [case.n_in, w, w, w, case.n_out], input_range=case.input_range)


def _rel_l2(model, x, ref) -> float:
    return relative_l2_error(model.predict(x.astype(np.float32)), ref)


# ----------------------------------------------------------------------------- poisson2d
def _poisson2d() -> Case:
    dde = import_deepxde()
    geom = dde.geometry.Rectangle([0, 0], [1, 1])

    def exact(x):
        return np.sin(PI * x[:, :1]) * np.sin(PI * x[:, 1:])

    def pde(x, u):
        f = 2 * PI**2 * torch.sin(PI * x[:, :1]) * torch.sin(PI * x[:, 1:])
        return -dde.grad.hessian(u, x, i=0, j=0) - dde.grad.hessian(u, x, i=1, j=1) - f

    def build(net, b: Budget):
        net.apply_output_transform(
            lambda x, u: 16 * x[:, :1] * (1 - x[:, :1]) * x[:, 1:] * (1 - x[:, 1:]) * u
        )
        return strong_form_model(geom, pde, [], net, n_domain=b.n_domain, solution=exact)

    g = np.linspace(0, 1, 51)
    xt = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    return Case("poisson2d", "strong", 2, 1, (0.0, 1.0), ([8, 8], 5), ([10, 10], 5),
                Budget(500, 300, 0, 5e-3), Budget(20000, 2000, 0, 1e-3),
                build, lambda m: _rel_l2(m, xt, exact(xt)))


# -------------------------------------------------------------------------- multiscale1d
def _multiscale1d() -> Case:
    dde = import_deepxde()
    geom = dde.geometry.Interval(0, 1)

    def exact(x):
        return np.sin(2 * PI * x) + 0.1 * np.sin(20 * PI * x)

    def pde(x, u):
        f = 4 * PI**2 * torch.sin(2 * PI * x) + 40 * PI**2 * torch.sin(20 * PI * x)
        return (-dde.grad.hessian(u, x) - f) / (40 * PI**2)

    def build(net, b: Budget):
        net.apply_output_transform(lambda x, u: 4 * x * (1 - x) * u)
        return strong_form_model(geom, pde, [], net, n_domain=b.n_domain, solution=exact)

    xt = np.linspace(0, 1, 2001)[:, None]
    return Case("multiscale1d", "strong", 1, 1, (0.0, 1.0), ([8, 8], 24), ([18, 18], 5),
                Budget(500, 200, 0, 5e-3), Budget(20000, 1000, 0, 1e-3),
                build, lambda m: _rel_l2(m, xt, exact(xt)))


# ----------------------------------------------------------------------------- inclusion
A_IN, R0 = 1.0 / 15.0, 0.5
C_OUT = R0**4 * (1 / A_IN - 1.0)  # continuity of u at r = R0


def _inclusion_exact(x):
    r4 = (x[:, :1] ** 2 + x[:, 1:] ** 2) ** 2
    return np.where(r4 < R0**4, r4 / A_IN, r4 + C_OUT)


def _inclusion() -> Case:
    dde = import_deepxde()
    geom = dde.geometry.Rectangle([-1, -1], [1, 1])

    def psi(x, u, du):
        r2 = (x**2).sum(-1)
        a = torch.where(r2 < R0**2, A_IN, 1.0)
        return 0.5 * a * (du[:, 0, :] ** 2).sum(-1) + 16 * r2 * u[:, 0]  # f = -16 r^2

    def build(net, b: Budget):
        return energy_model(
            geom, psi, net,
            distance=lambda x: (1 - x[:, :1] ** 2) * (1 - x[:, 1:] ** 2),
            lift=lambda x: (x[:, :1] ** 2 + x[:, 1:] ** 2) ** 2 + C_OUT,
            n_domain=b.n_domain, volume=4.0, sampling="pseudo", resample=True,
        )

    xt = np.random.default_rng(1).uniform(-1, 1, (10000, 2))
    return Case("inclusion", "energy", 2, 1, (-1.0, 1.0), ([5, 5], 20), ([12, 12], 5),
                Budget(500, 1000, 0, 5e-3), Budget(20000, 10000, 0, 1e-3),
                build, lambda m: _rel_l2(m, xt, _inclusion_exact(xt)))


# ---------------------------------------------------------------------------- plate_hole
NU, RADIUS = 0.3, 0.25  # nondimensional: L = 20 -> 1, hole 5 -> 0.25, E = 1, traction = 1


def _plate_mesh(n: int):
    """Structured triangle mesh of the quarter plate: rays from the hole to the outer edges."""
    import skfem

    s = np.linspace(0, 1, 2 * n + 1)
    t = np.linspace(0, 1, n + 1) ** 1.5  # graded towards the hole
    th = s * PI / 2
    inner = RADIUS * np.stack([np.cos(th), np.sin(th)], 1)
    outer = np.where(s[:, None] <= 0.5, np.stack([np.ones_like(s), 2 * s], 1),
                     np.stack([2 - 2 * s, np.ones_like(s)], 1))
    p = ((1 - t[None, :, None]) * inner[:, None] + t[None, :, None] * outer[:, None]).reshape(-1, 2)
    idx = np.arange(len(p)).reshape(2 * n + 1, n + 1)
    a, b, c, d = (idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(),
                  idx[:-1, 1:].ravel())
    tri = np.concatenate([np.stack([a, b, c]), np.stack([a, c, d])], 1)
    return skfem.MeshTri(np.ascontiguousarray(p.T), tri)


def plate_reference(points: np.ndarray, n: int = 32) -> np.ndarray:
    """P2 finite-element displacement (nondimensional) of the plate at ``points`` (scikit-fem)."""
    import skfem
    from skfem.models.elasticity import lame_parameters, linear_elasticity

    mesh = _plate_mesh(n)
    elem = skfem.ElementVector(skfem.ElementTriP2())
    basis = skfem.Basis(mesh, elem)
    lam, mu = lame_parameters(1.0, NU)
    lam = 2 * lam * mu / (lam + 2 * mu)  # plane stress
    K = skfem.asm(linear_elasticity(lam, mu), basis)
    right = skfem.FacetBasis(mesh, elem, facets=mesh.facets_satisfying(lambda x: np.isclose(x[0], 1)))

    @skfem.LinearForm
    def load(v, w):
        return v[0]

    f = skfem.asm(load, right)
    fixed = np.concatenate([basis.get_dofs(lambda x: np.isclose(x[0], 0)).all("u^1"),
                            basis.get_dofs(lambda x: np.isclose(x[1], 0)).all("u^2")])
    u = skfem.solve(*skfem.condense(K, f, D=fixed))
    return np.stack([b.probes(points.T) @ uc for uc, b in basis.split(u)], 1)


def _plate_points(n: int) -> np.ndarray:
    x = np.random.default_rng(2).random((n, 2))
    return x[np.hypot(x[:, 0], x[:, 1]) > RADIUS + 1e-3]


def _stresses(dde, x, u):
    exx = dde.grad.jacobian(u, x, i=0, j=0)
    eyy = dde.grad.jacobian(u, x, i=1, j=1)
    gxy = dde.grad.jacobian(u, x, i=0, j=1) + dde.grad.jacobian(u, x, i=1, j=0)
    c = 1.0 / (1 - NU**2)
    return c * (exx + NU * eyy), c * (eyy + NU * exx), gxy / (2 * (1 + NU))


def _plate_case(form: str, reference: Callable[[], np.ndarray], xt: np.ndarray) -> Case:
    dde = import_deepxde()
    geom = dde.geometry.CSGDifference(dde.geometry.Rectangle([0, 0], [1, 1]),
                                      dde.geometry.Disk([0, 0], RADIUS))

    def hard_symmetry(x):  # u_x = 0 on x = 0, u_y = 0 on y = 0
        return x

    def pde(x, u):
        sxx, syy, sxy = _stresses(dde, x, u)
        return [dde.grad.jacobian(sxx, x, j=0) + dde.grad.jacobian(sxy, x, j=1),
                dde.grad.jacobian(sxy, x, j=0) + dde.grad.jacobian(syy, x, j=1)]

    def on(where):
        return lambda x, on_b: on_b and where(x)

    def traction(k, nx, ny, load=0.0):  # k-th component of sigma.n minus the load
        def residual(x, u, _):
            sxx, syy, sxy = _stresses(dde, x, u)
            n_x, n_y = nx(x), ny(x)
            t = (sxx * n_x + sxy * n_y) if k == 0 else (sxy * n_x + syy * n_y)
            return t - load
        return residual

    def hole_n(i):
        return lambda x: -x[:, i : i + 1] / torch.sqrt((x**2).sum(-1, keepdim=True))

    def build_strong(net, b: Budget):
        net.apply_output_transform(lambda x, u: hard_symmetry(x) * u)
        is_right = on(lambda x: np.isclose(x[0], 1))
        is_top = on(lambda x: np.isclose(x[1], 1))
        is_hole = on(lambda x: np.isclose(np.hypot(x[0], x[1]), RADIUS))

        def one(x):
            return 1.0

        def zero(x):
            return 0.0

        bcs = [
            dde.icbc.OperatorBC(geom, traction(0, one, zero, 1.0), is_right),
            dde.icbc.OperatorBC(geom, traction(1, one, zero), is_right),
            dde.icbc.OperatorBC(geom, traction(0, zero, one), is_top),
            dde.icbc.OperatorBC(geom, traction(1, zero, one), is_top),
            dde.icbc.OperatorBC(geom, traction(0, hole_n(0), hole_n(1)), is_hole),
            dde.icbc.OperatorBC(geom, traction(1, hole_n(0), hole_n(1)), is_hole),
        ]
        return strong_form_model(geom, pde, bcs, net, n_domain=b.n_domain,
                                 n_boundary=b.n_boundary)

    def psi(x, u, du):
        exx, eyy, gxy = du[:, 0, 0], du[:, 1, 1], du[:, 0, 1] + du[:, 1, 0]
        c = 1.0 / (1 - NU**2)
        sxx, syy, sxy = c * (exx + NU * eyy), c * (eyy + NU * exx), gxy / (2 * (1 + NU))
        return 0.5 * (sxx * exx + syy * eyy + sxy * gxy)

    load = BoundaryTerm(lambda x, u: -u[:, 0], lambda x: np.isclose(x[:, 0], 1.0), 1.0)

    def build_energy(net, b: Budget):
        return energy_model(geom, psi, net, distance=hard_symmetry, n_domain=b.n_domain,
                            boundary_terms=[load], n_boundary=b.n_boundary,
                            volume=1 - PI * RADIUS**2 / 4, sampling="pseudo", resample=True)

    cache: dict = {}

    def evaluate(model):
        if "ref" not in cache:
            cache["ref"] = reference()
        return _rel_l2(model, xt, cache["ref"])

    if form == "strong":
        build, quick = build_strong, Budget(300, 400, 200, 5e-3)
    else:
        build, quick = build_energy, Budget(300, 1000, 400, 5e-3)
    return Case("plate_hole", form, 2, 2, (0.0, 1.0), ([5, 5, 5], 15), ([13, 13], 5),
                quick, Budget(20000, 4000, 1000, 1e-3), build, evaluate)


# ---------------------------------------------------------------------------------- main
def run(quick: bool, problems, nets, seed: int = 0, log=None) -> dict:
    dde = import_deepxde()
    log = log or (lambda msg: print(msg, flush=True))
    xt = _plate_points(4000)
    ref_cache: dict = {}

    def reference():
        if "u" not in ref_cache:
            ref_cache["u"] = plate_reference(xt, n=32)
            coarse = plate_reference(xt, n=16)
            ref_cache["check"] = relative_l2_error(coarse, ref_cache["u"])
        return ref_cache["u"]

    cases = {
        "poisson2d": [_poisson2d],
        "multiscale1d": [_multiscale1d],
        "inclusion": [_inclusion],
        "plate_hole": [lambda: _plate_case("strong", reference, xt),
                       lambda: _plate_case("energy", reference, xt)],
    }
    results = []
    for name in problems:
        for make in cases[name]:
            case = make()
            budget = case.quick if quick else case.full
            for kind in nets:
                dde.config.set_random_seed(seed)
                net = _net(case, kind)
                model = case.build(net, budget)
                t0 = time.perf_counter()
                train(model, iterations=budget.iterations, lr=budget.lr,
                      decay=("step", max(1, budget.iterations // 3), 0.5),
                      display_every=max(1, budget.iterations))
                seconds = time.perf_counter() - t0
                row = {"problem": case.problem, "net": kind, "form": case.form,
                       "rel_l2": case.evaluate(model), "n_params": net.num_trainable_parameters(),
                       "seconds": round(seconds, 2)}
                results.append(row)
                log(f"{row['problem']:>12s} {row['form']:>6s} {kind:>13s} "
                    f"rel_l2={row['rel_l2']:.3e} params={row['n_params']:5d} {seconds:7.1f}s")
    out: dict = {"results": results,
                 "settings": {"quick": quick, "seed": seed, "torch_threads": torch.get_num_threads()}}
    if "check" in ref_cache:
        out["references"] = {"plate_hole_fem_p2_n16_vs_n32_rel_l2": ref_cache["check"]}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _common.add_common_args(parser, quick="smoke-size budget (minutes on a CPU)",
                            device="torch device (default cpu)")
    parser.add_argument("--problems", nargs="+", default=["poisson2d", "multiscale1d", "inclusion",
                                                          "plate_hole"])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import_deepxde()  # deepxde may move the default device to CUDA on import; then choose
    torch.set_default_device(args.device)
    _common.apply_threads(args)
    out = run(args.quick, args.problems, args.nets, seed=args.seed)
    if args.json:
        settings = {k: v for k, v in out.pop("settings").items() if k != "torch_threads"}
        meta = _common.run_meta(args.device, alone=args.alone, **settings)
        _common.write_json(args.json, out.pop("results"), meta, **out)


if __name__ == "__main__":
    main()
