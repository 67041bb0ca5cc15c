"""Second-order trainers against Adam / Adam + L-BFGS: relative L2 error against wall time.

Problems (float64 PINNs on one fixed set of collocation points; same network and initialisation
for every optimizer). The PINN problems and their training loop are library code,
:mod:`pdekit.pinn.second_order` (:func:`~pdekit.pinn.second_order.pinn_problem`,
:func:`~pdekit.pinn.second_order.train_pinn_second_order`):

1. ``poisson2d``: -lap u = 2 pi^2 sin(pi x) sin(pi y) on [0,1]^2, u = 0 on the boundary; a
   2-64-1 tanh MLP (deepxde ``FNN``), 900 interior + 120 boundary points (30 per side).
2. ``heat1d``: u_t = u_xx / 4 on (x, t) in [0,1]^2, u = exp(-pi^2 t / 4) sin(pi x); 2-64-1 tanh,
   900 interior + 120 initial/boundary points.
3. ``kinn_poisson2d``: problem 1 with a KAN (:class:`pdekit.pinn.kan.KAN`, B-spline edges).
4. ``fno_darcy``: a small FNO on pdekit Darcy data (``get_pde("darcy")``), Gauss-Newton-CG on
   mini-batches against AdamW; the error is the mean relative L2 test error.

Optimizers: ``gauss_newton`` (:class:`pdekit.optim.GaussNewton`; for the FNO, whose Jacobian is too
large to form, :class:`pdekit.optim.GaussNewtonCG`), ``trust_region``
(:class:`pdekit.optim.TrustRegion`, GGN curvature), ``adam`` (torch Adam; AdamW for the FNO) and
``adam_lbfgs`` (deepxde's Adam then L-BFGS on the same network and points).

Usage::

    python experiments/second_order_benchmark.py [--quick] [--json PATH] [--device cpu]
        [--max-seconds S] [--problems poisson2d,heat1d]

With ``--json PATH`` it writes
``{"results": [{"problem", "optimizer", "rel_l2", "seconds", "iterations", "history"}], ...}`` there
and an error-against-time plot next to it (same stem, ``.png``); without it, it writes nothing.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import torch

os.environ.setdefault("DDE_BACKEND", "pytorch")

PROBLEMS = ("poisson2d", "heat1d", "kinn_poisson2d", "fno_darcy")


# ---------------------------------------------------------------------------------------------
# PINN problems (pdekit.pinn.second_order)
# ---------------------------------------------------------------------------------------------
def _make_net(kind: str, device, dtype=torch.float64, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "mlp":
        import deepxde as dde

        net = dde.nn.FNN([2, 64, 1], "tanh", "Glorot normal")
    else:
        from pdekit.pinn.kan import KAN

        net = KAN([2, 5, 5, 1], grid_size=5, spline_order=3, input_range=(0.0, 1.0), dtype=dtype)
    return net.to(device=device, dtype=dtype)


class _Clock:
    """Wall time of the optimisation only (evaluations for the history are excluded)."""

    def __init__(self):
        self.spent, self._t = 0.0, None

    def start(self):
        self._t = time.perf_counter()

    def stop(self):
        self.spent += time.perf_counter() - self._t


def _run_pinn_torch(opt_name, net, problem, budget, log_every=1.0) -> dict:
    from pdekit.optim import GaussNewton, TrustRegion
    from pdekit.pinn.second_order import train_pinn_second_order

    if opt_name == "gauss_newton":
        opt = GaussNewton(net.parameters(), damping=1e-3)
    elif opt_name == "trust_region":
        opt = TrustRegion(net.parameters(), curvature="ggn", jacobian="dense", radius=1.0)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    out = train_pinn_second_order(net, problem, opt, seconds=budget, log_every=log_every)
    return out.as_dict()


def _run_pinn_deepxde(net, problem, budget, log_every=1.0) -> dict:
    """deepxde Adam (half the budget) then L-BFGS, on the same network and training points."""
    import deepxde as dde

    dde.config.set_default_float("float64")
    geom = dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0])
    bpts = problem.boundary.detach().cpu().numpy()
    anchors = torch.cat([problem.interior, problem.boundary]).detach().cpu().numpy()
    exact = problem.exact

    def on_anchor_boundary(x, on_boundary):
        return bool(((abs(bpts - x).sum(1)) < 1e-12).any())

    bc = dde.icbc.DirichletBC(geom, lambda x: exact(torch.as_tensor(x)).numpy()[:, None],
                              on_anchor_boundary)
    data = dde.data.PDE(geom, problem.pde_deepxde, [bc], num_domain=0, num_boundary=0,
                        anchors=anchors)
    model = dde.Model(data, net)
    history, state = [], {"t0": None, "spent": 0.0, "next": 0.0}

    class Timer(dde.callbacks.Callback):
        def __init__(self, limit):
            super().__init__()
            self.limit = limit

        def on_train_begin(self):
            state["t0"] = time.perf_counter()

        def on_epoch_end(self):
            now = time.perf_counter()
            state["spent"] += now - state["t0"]
            if state["spent"] >= state["next"]:
                history.append((state["spent"], problem.relative_l2_error(net)))
                state["next"] = state["spent"] + log_every
            if state["spent"] >= self.limit:
                self.model.stop_training = True
            state["t0"] = time.perf_counter()

    history.append((0.0, problem.relative_l2_error(net)))
    model.compile("adam", lr=1e-3)
    model.train(iterations=10**7, callbacks=[Timer(budget / 2)], verbose=0, display_every=10**7)
    its = model.train_state.step
    dde.optimizers.config.set_LBFGS_options(maxiter=10**6)
    opts = dde.optimizers.config.LBFGS_options  # 20 iterations per call: the timer can stop it
    opts["iter_per_step"], opts["fun_per_step"] = 20, 25
    model.compile("L-BFGS")
    model.train(callbacks=[Timer(budget)], verbose=0, display_every=10**7)
    err = problem.relative_l2_error(net)
    history.append((state["spent"], err))
    return dict(rel_l2=err, seconds=state["spent"], iterations=int(model.train_state.step) + its,
                history=history)


# ---------------------------------------------------------------------------------------------
# FNO on Darcy
# ---------------------------------------------------------------------------------------------
def _darcy_data(n_train, n_test, resolution, device):
    from pdekit.pdes import get_pde

    fam = get_pde("darcy", resolution=resolution)
    gen = torch.Generator().manual_seed(0)
    inputs = fam.sample_inputs(n_train + n_test, gen)
    u = fam.solve(inputs, method="spsolve").fields["u"]
    a = inputs["a"]
    a_mean, a_std = a[:n_train].mean(), a[:n_train].std()
    u_std = u[:n_train].std()
    x = ((a - a_mean) / a_std)[:, None].float().to(device)
    y = (u / u_std)[:, None].float().to(device)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _run_fno(opt_name, data, budget, device, batch_size=8, log_every=2.0) -> dict:
    # A training loop of its own until the Trainer takes closures for second-order steps.
    from pdekit.models import get_model
    from pdekit.optim import GaussNewtonCG

    x_tr, y_tr, x_te, y_te = data
    torch.manual_seed(0)
    model = get_model("fno", n_modes=(8, 8), hidden_channels=16, n_layers=2).to(device)

    def test_error():
        with torch.no_grad():
            pred = model(x_te)
        num = (pred - y_te).flatten(1).norm(dim=1)
        return float((num / y_te.flatten(1).norm(dim=1)).mean())

    if opt_name == "gauss_newton":
        opt = GaussNewtonCG(model.parameters(), damping=1e-2, cg_maxiter=20)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    clock, history, it, next_log = _Clock(), [(0.0, test_error())], 0, 0.0
    while clock.spent < budget:
        for idx in torch.randperm(x_tr.shape[0], generator=gen).split(batch_size):
            xb, yb = x_tr[idx], y_tr[idx]
            scale = yb.flatten(1).norm(dim=1)[:, None, None, None] * math.sqrt(len(idx))
            clock.start()
            if opt_name == "gauss_newton":
                # residual: per-sample relative errors, so 1/2 ||r||^2 = mean(rel_l2^2) / 2
                opt.step(lambda xb=xb, yb=yb, s=scale: ((model(xb) - yb) / s).flatten())
            else:
                opt.zero_grad()
                pred = model(xb)
                rel = (pred - yb).flatten(1).norm(dim=1) / yb.flatten(1).norm(dim=1)
                rel.mean().backward()
                opt.step()
            clock.stop()
            it += 1
            if clock.spent >= next_log:
                history.append((clock.spent, test_error()))
                next_log = clock.spent + log_every
            if clock.spent >= budget:
                break
    err = test_error()
    history.append((clock.spent, err))
    return dict(rel_l2=err, seconds=clock.spent, iterations=it, history=history)


# ---------------------------------------------------------------------------------------------
def _plot(results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = [p for p in PROBLEMS if any(r["problem"] == p for r in results)]
    fig, axes = plt.subplots(1, len(problems), figsize=(4.5 * len(problems), 3.6), squeeze=False)
    for ax, prob in zip(axes[0], problems):
        for r in results:
            if r["problem"] != prob:
                continue
            t, e = zip(*r["history"])
            ax.semilogy(t, e, label=r["optimizer"])
        ax.set_title(prob)
        ax.set_xlabel("wall time [s]")
        ax.set_ylabel("relative L2 error" if prob != "fno_darcy" else "test rel. L2")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short budgets (a smoke run)")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="write the results here and the plot next to it (.png); default: none")
    ap.add_argument("--device", default="cpu",
                    help="torch device of the networks and points (cpu, cuda, cuda:N)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="wall-time budget of each run (default 300 s PINN / 120 s FNO; "
                         "--quick: 20 s / 15 s)")
    ap.add_argument("--problems", default=",".join(PROBLEMS),
                    help=f"comma-separated subset of {', '.join(PROBLEMS)}")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (1: these small problems are op-latency bound)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    budget_pinn = args.max_seconds or (20.0 if args.quick else 300.0)
    budget_fno = args.max_seconds or (15.0 if args.quick else 120.0)
    results = []

    def record(problem, optimizer, out, **extra):
        row = dict(problem=problem, optimizer=optimizer, **out, **extra)
        results.append(row)
        print(f"{problem:15s} {optimizer:13s} rel_l2={row['rel_l2']:.3e} "
              f"seconds={row['seconds']:.1f} iterations={row['iterations']}", flush=True)

    from pdekit.pinn.second_order import pinn_problem

    for problem in ("poisson2d", "heat1d"):
        if problem not in problems:
            continue
        prob = pinn_problem(problem, device=device)
        net0 = _make_net("mlp", device)
        for opt_name in ("gauss_newton", "trust_region", "adam"):
            record(problem, opt_name, _run_pinn_torch(opt_name, copy.deepcopy(net0), prob,
                                                      budget_pinn))
        record(problem, "adam_lbfgs", _run_pinn_deepxde(copy.deepcopy(net0), prob, budget_pinn))
    if "kinn_poisson2d" in problems:
        prob = pinn_problem("poisson2d", device=device)
        net0 = _make_net("kan", device)
        for opt_name in ("gauss_newton", "adam"):
            record("kinn_poisson2d", opt_name,
                   _run_pinn_torch(opt_name, copy.deepcopy(net0), prob, budget_pinn),
                   network="pdekit.pinn.kan.KAN([2, 5, 5, 1], B-spline)")
    if "fno_darcy" in problems:
        torch.set_default_dtype(torch.float32)  # deepxde may have switched it to float64
        n_train, n_test = (32, 8) if args.quick else (200, 50)
        data = _darcy_data(n_train, n_test, 32, device)
        record("fno_darcy", "gauss_newton", _run_fno("gauss_newton", data, budget_fno, device),
               variant="GaussNewtonCG")
        record("fno_darcy", "adam", _run_fno("adamw", data, budget_fno, device), variant="AdamW")

    summary = {}
    for problem in problems:
        rows = {r["optimizer"]: r for r in results if r["problem"] == problem}
        if "gauss_newton" in rows and "adam" in rows and rows["gauss_newton"]["rel_l2"] > 0:
            summary[problem] = {"adam_over_gauss_newton": rows["adam"]["rel_l2"]
                                / rows["gauss_newton"]["rel_l2"]}
    out = {"results": results, "summary": summary,
           "settings": {"quick": args.quick, "device": str(device), "budget_pinn_s": budget_pinn,
                        "budget_fno_s": budget_fno, "torch_threads": torch.get_num_threads()}}
    if args.json is not None:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        _plot(results, path.with_suffix(".png"))
    for problem, s in summary.items():
        print(f"{problem}: Adam error / Gauss-Newton error at equal time = "
              f"{s['adam_over_gauss_newton']:.3g}")
    return out


if __name__ == "__main__":
    main()
