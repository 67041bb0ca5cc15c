"""Benchmark: time-dependent data generation (Navier-Stokes 64^2, Burgers 1024) at the FNO settings.

    python experiments/bench_timedependent.py [--quick] [--json PATH] [--device cpu|cuda]

Throughput: generation samples/s of pdekit (torch, batched over samples) and of a straightforward
numpy port of the same scheme run in this process (the way the FNO scripts generate data: one
batch, a Python loop over time steps, FFTs from the array library). Both use the same batch, dtype
and precomputed spectral multipliers; the numpy port is checked to agree with pdekit. A full FNO
trajectory is long (NS: T = 50 at dt = 1e-4 is 500,000 steps), so each method runs a fixed
number of steps and samples/s = batch / (seconds per step * steps per trajectory). pdekit runs
the families' equations through the steppers of ``pdekit.core.timestepping`` (``euler_cn``,
``etdrk4``); the numpy ports are written out by hand, and the Burgers one computes its own ETDRK4
coefficients (phi functions by series and recurrence, not pdekit's contour integrals), so the
agreement column checks pdekit against independent code.

* Navier-Stokes: nu = 1e-3, dt = 1e-4, T = 50, scheme "euler-cn" (the FNO generator), 64^2.
* Burgers: nu = 0.1, dt = 1e-4, T = 1, ETDRK4, 1024 points.

Convergence: relative L2 error at the final time against a reference, for a sequence of dt, with
the observed order (slope of log error vs log dt). NS (64^2, FNO initial condition and forcing,
nu = 1e-3, T = 1): reference ab2-cn at dt_min / 8. Burgers (u0 = sin 2 pi x, nu = 0.01,
1024 points, T = 0.5): the exact Cole-Hopf solution.

JSON: ``{"results": [{"problem", "method", "resolution", "samples_per_sec", ...}],
"convergence": [...], "meta": {...}}`` with methods ``pdekit`` and ``numpy_reference``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np
import torch

from pdekit.pdes.burgers import Burgers, burgers_1d
from pdekit.pdes.navier_stokes import NavierStokes, fno_forcing, navier_stokes_2d

NS = {"nu": 1e-3, "dt": 1e-4, "t_final": 50.0, "n": 64}
BG = {"nu": 0.1, "dt": 1e-4, "t_final": 1.0, "n": 1024}


# ------------------------------------------------------------------------ numpy reference
def numpy_navier_stokes(w0: np.ndarray, f: np.ndarray, nu: float, dt: float, steps: int):
    """The FNO scheme (explicit Euler advection + forcing, Crank-Nicolson viscosity, 2/3 rule)."""
    n = w0.shape[-1]
    rdt = w0.dtype
    m = np.fft.fftfreq(n, d=1.0 / n)
    mr = np.arange(n // 2 + 1)
    kx = (2 * np.pi * m)[:, None].astype(rdt)
    ky = (2 * np.pi * mr)[None, :].astype(rdt)
    k2 = kx**2 + ky**2
    inv = np.where(k2 > 0, 1 / np.where(k2 > 0, k2, 1), 0).astype(rdt)
    dx = np.where(np.abs(m)[:, None] == n // 2, 0, kx).astype(rdt)
    dy = np.where(mr[None, :] == n // 2, 0, ky).astype(rdt)
    mult = np.stack(np.broadcast_arrays(1j * dy * inv, -1j * dx * inv, 1j * dx, 1j * dy))
    keep = ((3 * np.abs(m)[:, None] < n) & (3 * mr[None, :] < n)).astype(rdt)
    half = 0.5 * dt * nu * k2
    a = (1 - half) / (1 + half)
    b = dt / (1 + half) * keep
    f_term = np.fft.rfft2(f) * (dt / (1 + half))
    w_h = np.fft.rfft2(w0)
    for _ in range(steps):
        q = np.fft.irfft2(w_h[:, None] * mult, s=(n, n))
        nl = np.fft.rfft2(q[:, 0] * q[:, 2] + q[:, 1] * q[:, 3])
        w_h = a * w_h - b * nl + f_term
    return np.fft.irfft2(w_h, s=(n, n))


def phi_functions(z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``phi_1, phi_2, phi_3`` of real ``z`` (``phi_k(z) = sum_j z^j / (j + k)!``), float64.

    Independent of pdekit's contour integrals: the Taylor series (30 terms) for ``|z| < 1`` and
    the recurrence ``phi_{k+1} = (phi_k - 1/k!) / z`` from ``phi_0 = e^z`` elsewhere, where its
    cancellation costs at most a few ulps.
    """
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 1
    zs = np.where(small, z, 0.0)
    series = [np.zeros_like(z) for _ in range(3)]
    for k in range(1, 4):
        for j in range(30):
            series[k - 1] += zs**j / math.factorial(j + k)
    zl = np.where(small, 1.0, z)
    p1 = (np.exp(zl) - 1) / zl
    p2 = (p1 - 1) / zl
    p3 = (p2 - 0.5) / zl
    return tuple(np.where(small, s_, p) for s_, p in zip(series, (p1, p2, p3)))


def numpy_etdrk4_coefficients(lin: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """Cox-Matthews ETDRK4 weights from the phi functions (not from pdekit).

    ``Q = dt/2 phi_1(dt L / 2)``, ``f1 = dt (phi_1 - 3 phi_2 + 4 phi_3)``,
    ``f2 = dt (phi_2 - 2 phi_3)``, ``f3 = dt (4 phi_3 - phi_2)``, all at ``dt L``.
    """
    z = dt * lin
    p1, p2, p3 = phi_functions(z)
    half1, _, _ = phi_functions(z / 2)
    return {"E": np.exp(z), "E2": np.exp(z / 2), "Q": 0.5 * dt * half1,
            "f1": dt * (p1 - 3 * p2 + 4 * p3), "f2": dt * (p2 - 2 * p3), "f3": dt * (4 * p3 - p2)}


def numpy_burgers(u0: np.ndarray, nu: float, dt: float, steps: int):
    """ETDRK4 with the 2/3 rule, its coefficients from :func:`numpy_etdrk4_coefficients`."""
    n = u0.shape[-1]
    rdt = u0.dtype
    mr = np.arange(n // 2 + 1)
    k = 2 * np.pi * mr
    c = {key: v.astype(rdt) for key, v in numpy_etdrk4_coefficients(-nu * k**2, dt).items()}
    E, E2, Q, f1, f2, f3 = (c[key] for key in ("E", "E2", "Q", "f1", "f2", "f3"))
    g = (-0.5j * np.where(mr == n // 2, 0, k) * (3 * mr < n)).astype(
        np.complex64 if rdt == np.float32 else np.complex128)

    def flux(v):
        u = np.fft.irfft(v, n=n)
        return g * np.fft.rfft(u * u)

    v = np.fft.rfft(u0)
    for _ in range(steps):
        Nv = flux(v)
        a = E2 * v + Q * Nv
        Na = flux(a)
        b = E2 * v + Q * Na
        Nb = flux(b)
        cc = E2 * a + Q * (2 * Nb - Nv)
        Nc = flux(cc)
        v = E * v + f1 * Nv + 2 * f2 * (Na + Nb) + f3 * Nc
    return np.fft.irfft(v, n=n)


# ------------------------------------------------------------------------------- timing
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_ns(batch, steps, dtype, device, threads, repeats):
    n, nu, dt = NS["n"], NS["nu"], NS["dt"]
    total_steps = round(NS["t_final"] / dt)
    fam = NavierStokes(resolution=n, precision="float64" if dtype == torch.float64 else "float32")
    w0 = fam.sample_inputs(batch, torch.Generator().manual_seed(0))["w0"]
    f = fno_forcing(n, dtype=dtype)
    rows = []
    torch.set_num_threads(threads)
    w0d, fd = w0.to(device), f.to(device)

    def run_torch():
        out = navier_stokes_2d(w0d, nu=nu, t_final=steps * dt, n_records=1, dt=dt, forcing=fd)
        _sync(device)
        return out

    run_torch()  # warm-up
    sec = _time(run_torch, repeats)
    rows.append(_row("navier-stokes", "pdekit", n, batch, steps, sec, total_steps, dtype,
                     f"{device}", threads))
    torch.set_num_threads(1)
    w0n, fn_ = w0.numpy(), f.numpy()
    sec_np = _time(lambda: numpy_navier_stokes(w0n, fn_, nu, dt, steps), repeats)
    rows.append(_row("navier-stokes", "numpy_reference", n, batch, steps, sec_np, total_steps,
                     dtype, "cpu", 1))
    ref = numpy_navier_stokes(w0n, fn_, nu, dt, 20)
    got = navier_stokes_2d(w0, nu=nu, t_final=20 * dt, n_records=1, dt=dt, forcing=f)[0][:, -1]
    diff = float(np.linalg.norm(got.numpy() - ref) / np.linalg.norm(ref))
    for r in rows:
        r["agreement_rel_l2_20_steps"] = diff
    return rows


def bench_burgers(batch, steps, dtype, device, threads, repeats):
    n, nu, dt = BG["n"], BG["nu"], BG["dt"]
    total_steps = round(BG["t_final"] / dt)
    fam = Burgers(resolution=n, precision="float64" if dtype == torch.float64 else "float32")
    u0 = fam.sample_inputs(batch, torch.Generator().manual_seed(0))["u0"]
    rows = []
    torch.set_num_threads(threads)
    u0d = u0.to(device)

    def run_torch():
        out = burgers_1d(u0d, nu=nu, t_final=steps * dt, n_records=1, dt=dt)
        _sync(device)
        return out

    run_torch()
    sec = _time(run_torch, repeats)
    rows.append(_row("burgers", "pdekit", n, batch, steps, sec, total_steps, dtype, f"{device}",
                     threads))
    torch.set_num_threads(1)
    u0n = u0.numpy()
    sec_np = _time(lambda: numpy_burgers(u0n, nu, dt, steps), repeats)
    rows.append(_row("burgers", "numpy_reference", n, batch, steps, sec_np, total_steps, dtype,
                     "cpu", 1))
    ref = numpy_burgers(u0n, nu, dt, 20)
    got = burgers_1d(u0, nu=nu, t_final=20 * dt, n_records=1, dt=dt)[0][:, -1]
    diff = float(np.linalg.norm(got.numpy() - ref) / np.linalg.norm(ref))
    for r in rows:
        r["agreement_rel_l2_20_steps"] = diff
    return rows


def _row(problem, method, n, batch, steps, sec, total_steps, dtype, device, threads):
    per_step = sec / steps
    return {
        "problem": problem,
        "method": method,
        "resolution": n,
        "samples_per_sec": batch / (per_step * total_steps),
        "batch": batch,
        "dtype": str(dtype).replace("torch.", ""),
        "device": device,
        "threads": threads,
        "steps_timed": steps,
        "steps_per_trajectory": total_steps,
        "ms_per_step": 1e3 * per_step,
    }


# --------------------------------------------------------------------------- convergence
def cole_hopf_sine(x, t, nu, n_terms=400):
    from scipy.special import ive

    a = 1.0 / (4 * math.pi * nu)
    k = np.arange(1, n_terms + 1)
    Ik = ive(k, a) * np.exp(-4 * math.pi**2 * k**2 * nu * t)
    num = 8 * math.pi * nu * (k * Ik) @ np.sin(2 * math.pi * np.outer(k, x))
    den = ive(0, a) + 2 * Ik @ np.cos(2 * math.pi * np.outer(k, x))
    return num / den


def convergence(quick: bool):
    torch.set_num_threads(1)
    rows = []
    n, T, nu = 64, 1.0, 1e-3
    fam = NavierStokes(resolution=n, precision="float64")
    w0 = fam.sample_inputs(2, torch.Generator().manual_seed(1))["w0"]
    f = fno_forcing(n, dtype=torch.float64)
    dts = [1e-2, 5e-3, 2.5e-3] + ([] if quick else [1.25e-3])
    ref, _ = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=1, dt=dts[-1] / 8, forcing=f,
                              scheme="ab2-cn")
    for scheme in ("euler-cn", "ab2-cn"):
        errs = []
        for dt in dts:
            w, _ = navier_stokes_2d(w0, nu=nu, t_final=T, n_records=1, dt=dt, forcing=f,
                                    scheme=scheme)
            errs.append(float((w[:, -1] - ref[:, -1]).norm() / ref[:, -1].norm()))
        rows += _conv_rows(f"navier-stokes {n}^2 nu={nu} T={T}", scheme, dts, errs)
    nb, nub, Tb = 1024, 0.01, 0.5
    x = np.arange(nb) / nb
    u0 = torch.tensor(np.sin(2 * math.pi * x))[None]
    exact = cole_hopf_sine(x, Tb, nub)
    dts = [1e-2, 5e-3, 2.5e-3] + ([] if quick else [1.25e-3])
    errs = []
    for dt in dts:
        u, _ = burgers_1d(u0, nu=nub, t_final=Tb, n_records=1, dt=dt)
        errs.append(float(np.linalg.norm(u[0, -1].numpy() - exact) / np.linalg.norm(exact)))
    rows += _conv_rows(f"burgers {nb} nu={nub} T={Tb} (Cole-Hopf)", "etdrk4", dts, errs)
    return rows


def _conv_rows(problem, scheme, dts, errs):
    order = float(np.polyfit(np.log(dts), np.log(errs), 1)[0])
    return [{"problem": problem, "scheme": scheme, "dt": dt, "rel_l2_error": e,
             "observed_order": order} for dt, e in zip(dts, errs)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps, shorter table")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--device", default="cpu", help="torch device for pdekit (default cpu)")
    parser.add_argument("--batch", type=int, default=20, help="samples per batch (FNO: 20)")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        print(f"bench_timedependent: error: device {args.device!r} is not available ({exc})",
              file=sys.stderr)
        return 2
    default_threads = torch.get_num_threads()
    thread_counts = sorted({1, default_threads}) if device.type == "cpu" else [default_threads]
    ns_steps, bg_steps, repeats = (50, 100, 2) if args.quick else (200, 500, 3)
    rows = []
    for dtype in (torch.float32, torch.float64):
        for threads in thread_counts:
            for fn, steps in ((bench_ns, ns_steps), (bench_burgers, bg_steps)):
                new = fn(args.batch, steps, dtype, device, threads, repeats)
                # one numpy row per (problem, dtype)
                rows += [r for r in new if r["method"] == "pdekit" or threads == thread_counts[0]]
    for r in rows:
        print(f"{r['problem']:<14s} n={r['resolution']:5d} {r['method']:<16s} {r['dtype']:<8s} "
              f"threads={r['threads']} batch={r['batch']:3d} {r['ms_per_step']:8.3f} ms/step "
              f"{r['samples_per_sec']:10.4g} samples/s  (agreement {r['agreement_rel_l2_20_steps']:.1e})",
              flush=True)
    conv = convergence(args.quick)
    print("\ntime-step convergence (relative L2 error at the final time)")
    for r in conv:
        print(f"{r['problem']:<42s} {r['scheme']:<9s} dt={r['dt']:<9.3g} "
              f"error={r['rel_l2_error']:.3e}  order={r['observed_order']:.2f}")
    torch.set_num_threads(default_threads)
    if args.json:
        meta = {
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": __import__("os").cpu_count(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "device": str(device),
            "quick": args.quick,
            "ns_settings": NS,
            "burgers_settings": BG,
        }
        with open(args.json, "w") as fh:
            json.dump({"results": rows, "convergence": conv, "meta": meta}, fh, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
