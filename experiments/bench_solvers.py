"""Benchmark: Darcy linear systems with pdekit's solvers against scipy and pyamg.

Darcy in the FNO convention (n x n nodes with the boundary, flux form, harmonic faces), coefficient
12 where a GRF N(0, (-lap + 9 I)^-2) is >= 0 and 3 elsewhere, f = 1, solved to a relative residual
of 1e-8. For each method: seconds per system (setup included where it is paid per coefficient),
iterations, and the true relative residual ||b - A x|| / ||b|| computed in float64.

    python experiments/bench_solvers.py [--quick] [--json PATH] [--device cpu|cuda] [--threads N]

Methods: ``mgpcg`` (pdekit CG + geometric multigrid V-cycle, batch 1 and batch 16),
``jacobi_pcg`` (pdekit CG + Jacobi, batch 16), ``spsolve`` (scipy SuperLU), ``pyamg`` (pyamg CG
with the faster of Ruge-Stueben and smoothed aggregation, setup included). scipy and pyamg run on
the CPU; the matrix assembly for them is not timed (it is free for a user who already has the
scipy matrix).
"""

from __future__ import annotations

import argparse
import sys
import time

import _common
import numpy as np
import scipy.sparse.linalg as spla
import torch

from pdekit.core.grid import Grid
from pdekit.core.krylov import solve as krylov_solve
from pdekit.core.multigrid import multigrid_preconditioner
from pdekit.core.precond import jacobi
from pdekit.core.stencils import diffusion
from pdekit.pdes import get_pde

RTOL = 1e-8


def darcy_coefficients(n: int, count: int, seed: int, device) -> torch.Tensor:
    family = get_pde("darcy", resolution=n, coefficient="threshold")
    gen = torch.Generator().manual_seed(seed)
    return family.sample_inputs(count, gen)["a"].to(device=device, dtype=torch.float64)


def true_residual(A_scipy, x: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(b - A_scipy @ x) / np.linalg.norm(b))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_pdekit(a: torch.Tensor, method: str, batch: int, device) -> dict:
    n = a.shape[-1]
    grid = Grid((n, n))
    count = a.shape[0]
    times, its, res = [], [], []
    for start in range(0, count - batch + 1, batch):
        ab = a[start : start + batch]
        _sync(device)
        t0 = time.perf_counter()
        op = diffusion(grid, ab)
        M = multigrid_preconditioner(op) if method == "mgpcg" else jacobi(op)
        b = op.rhs(1.0).reshape(batch, -1)
        result = krylov_solve(
            op.as_linear_operator(), b, method="cg", rtol=RTOL, M=M, maxiter=20000
        )
        _sync(device)
        times.append(time.perf_counter() - t0)
        its.extend(result.iterations.tolist())
        x = result.x.detach().cpu().numpy()
        bn = b.cpu().numpy()
        for i in range(batch):
            res.append(true_residual(op.to_scipy(i), x[i], bn[i]))
    return {
        "method": method,
        "n": n,
        "batch": batch,
        "sec_per_system": float(np.sum(times) / (len(times) * batch)),
        "rel_residual": float(np.max(res)),
        "iterations": float(np.mean(its)),
    }


def run_spsolve(a: torch.Tensor, count: int) -> dict:
    n = a.shape[-1]
    grid = Grid((n, n))
    times, res = [], []
    for i in range(count):
        op = diffusion(grid, a[i].cpu())
        A = op.to_scipy().tocsc()
        b = op.rhs(1.0).reshape(-1).numpy()
        t0 = time.perf_counter()
        x = spla.spsolve(A, b)
        times.append(time.perf_counter() - t0)
        res.append(true_residual(A, x, b))
    return {
        "method": "spsolve",
        "n": n,
        "batch": 1,
        "sec_per_system": float(np.mean(times)),
        "rel_residual": float(np.max(res)),
        "iterations": 0.0,
    }


def run_pyamg(a: torch.Tensor, count: int) -> dict:
    import pyamg

    n = a.shape[-1]
    grid = Grid((n, n))
    best = None
    for kind, build in (
        ("rs", pyamg.ruge_stuben_solver),
        ("sa", pyamg.smoothed_aggregation_solver),
    ):
        times, res, its = [], [], []
        for i in range(count):
            op = diffusion(grid, a[i].cpu())
            A = op.to_scipy()
            b = op.rhs(1.0).reshape(-1).numpy()
            hist: list[float] = []
            t0 = time.perf_counter()
            ml = build(A)
            x = ml.solve(b, tol=RTOL, accel="cg", maxiter=500, residuals=hist)
            times.append(time.perf_counter() - t0)
            res.append(true_residual(A, x, b))
            its.append(len(hist) - 1)
        row = {
            "method": "pyamg",
            "variant": kind,
            "n": n,
            "batch": 1,
            "sec_per_system": float(np.mean(times)),
            "rel_residual": float(np.max(res)),
            "iterations": float(np.mean(its)),
        }
        if best is None or row["sec_per_system"] < best["sec_per_system"]:
            best = row
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_common_args(parser, quick="n = 128, 256 only, fewer systems",
                            device="torch device for pdekit (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    _common.apply_threads(args)
    device = torch.device(args.device)

    sizes = [128, 256] if args.quick else [128, 256, 512]
    batch = 16
    rows = []
    for n in sizes:
        a = darcy_coefficients(n, batch, args.seed + n, device)
        n_direct = 2 if args.quick else 4
        cases = [
            (run_pdekit, (a[:4] if args.quick else a[: batch // 2], "mgpcg", 1, device)),
            (run_pdekit, (a, "mgpcg", batch, device)),
            (run_pdekit, (a, "jacobi_pcg", batch, device)),
            (run_spsolve, (a, n_direct)),
            (run_pyamg, (a, n_direct)),
        ]
        for fn, fn_args in cases:
            row = fn(*fn_args)
            rows.append(row)
            print(
                f"n={row['n']:4d} {row['method']:<11s} batch={row['batch']:2d} "
                f"{1e3 * row['sec_per_system']:9.2f} ms/system  its={row['iterations']:7.1f}  "
                f"relres={row['rel_residual']:.1e}",
                flush=True,
            )
        best_ref = min(
            r["sec_per_system"] for r in rows if r["n"] == n and r["method"] in ("spsolve", "pyamg")
        )
        mg16 = next(
            r for r in rows if r["n"] == n and r["method"] == "mgpcg" and r["batch"] == batch
        )
        print(
            f"n={n}: best(spsolve, pyamg) / mgpcg(batch {batch}) = {best_ref / mg16['sec_per_system']:.2f}x"
        )

    if args.json:
        meta = _common.run_meta(device, alone=args.alone, rtol=RTOL, quick=args.quick)
        _common.write_json(args.json, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
