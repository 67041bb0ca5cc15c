"""Figures for docs/inverse.md: one Darcy inversion end to end.

    python experiments/inverse_plots.py [--out docs/img] [--n 40] [--device cpu|cuda]

Writes ``inverse_fields.png`` (true log-permeability with the sensors, the observed pressure,
the Gauss-Newton-CG estimate, the pointwise error) and ``inverse_convergence.png`` (objective and
data misfit against PDE solves for Gauss-Newton-CG, trust region and L-BFGS).

The truth, the sensors and the noise are drawn on the CPU with the seeded generator (the same
problem on every device); the prior of the inverse problem is built on ``--device``, so the
inversions (prior mean start, forward, adjoint and incremental solves) run there. With ``--json``:
``{"meta": {..., "n", "seed"}, "results": [one row per method]}``.
"""

from __future__ import annotations

import argparse
import os

import _common
import torch

from pdekit.core.grid import Grid
from pdekit.inverse import (
    DarcyModel,
    GaussianRandomFieldPrior,
    InverseProblem,
    Observations,
    PointObservation,
    estimate,
    random_points,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--n", type=int, default=40, help="nodes per dimension")
    ap.add_argument("--seed", type=int, default=0)
    _common.add_common_args(ap, quick="a 24 x 24 grid (a smoke run)",
                            device="device of the inversions (the problem is drawn on the CPU)",
                            threads=1)
    args = ap.parse_args(argv)
    if args.quick:
        args.n = 24
    _common.apply_threads(args)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # --- the inversion (the same steps as the user guide) -------------------------------------
    grid = Grid((args.n, args.n))
    gen = torch.Generator().manual_seed(args.seed)
    prior = GaussianRandomFieldPrior(grid, alpha=2.0, tau=3.0, sigma=1.0)
    truth = prior.sample(1, gen)[0]
    model = DarcyModel(grid)
    points = random_points(100, generator=gen)
    u_true = model.solve(truth)
    obs = Observations.synthetic(PointObservation(grid, points), u_true, 0.01, gen)
    if args.device != "cpu":
        with torch.device(args.device):
            prior = GaussianRandomFieldPrior(grid, alpha=2.0, tau=3.0, sigma=1.0)
    problem = InverseProblem(model, prior)
    runs = {
        "Gauss-Newton-CG": estimate(problem, obs, "gauss-newton"),
        "trust region": estimate(problem, obs, "trust-region"),
        "L-BFGS": estimate(problem, obs, "lbfgs", max_iter=300),
    }
    estimates = {name: res.m.detach().cpu() for name, res in runs.items()}
    est = estimates["Gauss-Newton-CG"]
    err = float((est - truth).norm() / truth.norm())

    os.makedirs(args.out, exist_ok=True)
    ext = [0, 1, 0, 1]
    vmin, vmax = float(truth.min()), float(truth.max())
    fig, ax = plt.subplots(1, 4, figsize=(13, 3.3), constrained_layout=True)
    panels = [
        (truth, "true log-permeability m", "viridis", (vmin, vmax)),
        (u_true.detach(), "pressure u and the 100 sensors", "magma", (None, None)),
        (est, f"GN-CG estimate (rel. error {err:.2f})", "viridis", (vmin, vmax)),
        ((est - truth).abs(), "|estimate - truth|", "Reds", (0, None)),
    ]
    for a, (f, title, cmap, (lo, hi)) in zip(ax, panels):
        im = a.imshow(f.T.numpy(), origin="lower", extent=ext, cmap=cmap, vmin=lo, vmax=hi)
        a.set_title(title, fontsize=9)
        a.set_xticks([]), a.set_yticks([])
        fig.colorbar(im, ax=a, shrink=0.8)
    for a in (ax[0], ax[1]):
        a.scatter(points[:, 0], points[:, 1], s=4, c="w", edgecolors="k", linewidths=0.3)
    fig.savefig(os.path.join(args.out, "inverse_fields.png"), dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5), constrained_layout=True)
    j_star = min(min(h["objective"] for h in r.history) for r in runs.values())
    for name, res in runs.items():
        s = [h["pde_solves"] for h in res.history]
        gap = [max(h["objective"] - j_star, 1e-6) for h in res.history]
        ax[0].semilogy(s, gap, ".-", label=name, ms=3)
        ax[1].semilogy(s, [h["misfit"] for h in res.history], ".-", label=name, ms=3)
    ax[1].axhline(0.5 * obs.n_obs, color="gray", ls="--", lw=0.8, label="n_obs / 2 (noise level)")
    for a, t in zip(ax, ("J - J* (J = misfit + prior; J* = best final value)", "data misfit")):
        a.set_xlabel("PDE solves (forward + adjoint + incremental)")
        a.set_title(t, fontsize=10)
        a.legend(fontsize=8)
    fig.savefig(os.path.join(args.out, "inverse_convergence.png"), dpi=80)
    plt.close(fig)
    rows = []
    for name, res in runs.items():
        h = res.history[-1]
        rel_error = float((estimates[name] - truth).norm() / truth.norm())
        rows.append({"method": name, "objective": h["objective"], "misfit": h["misfit"],
                     "pde_solves": h["pde_solves"], "rel_error": rel_error})
        print(
            f"{name:16s} objective {h['objective']:.3f} misfit {h['misfit']:.2f} "
            f"solves {h['pde_solves']} rel error {rel_error:.3f}"
        )
    if args.json:
        meta = _common.run_meta(args.device, alone=args.alone, n=args.n, seed=args.seed,
                                quick=args.quick)
        _common.write_json(args.json, rows, meta)


if __name__ == "__main__":
    main()
