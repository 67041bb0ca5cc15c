"""The main job on a small default: generate -> train -> evaluate (``make demo``).

1. generates a small Darcy dataset (FNO convention, coefficient 3/12, f = 1) on a 65 x 65 grid with
   the Krylov-recycling generator (recycled multigrid-preconditioned CG over a greedy-ordered
   sequence) into ``OUT/data-...`` (resumed if it is already there);
2. trains FNO and TFNO on every second node (33 x 33) with the same budget;
3. evaluates both on the test split at 33 x 33 and, zero-shot, at 65 x 65, prints the table and
   writes the plots (input / truth / prediction / error, learning curves) under ``OUT/<model>/``.

The default (500 train / 100 test samples, 60 epochs per model) takes about 5 minutes on 2 CPU cores::

    python -m pdekit.cli.demo [--out runs/demo] [--epochs 60] [--models fno,tfno] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _model_spec(name: str) -> dict:
    if name == "fno":
        return {"name": "fno", "n_modes": [12, 12], "hidden_channels": 32, "n_layers": 4}
    if name == "tfno":
        return {"name": "tfno", "n_modes": [12, 12], "hidden_channels": 32, "n_layers": 4}
    return {"name": name}


def _train_config(data: Path, out: Path, model: str, epochs: int, device: str, seed: int) -> dict:
    return {
        "dataset": str(data),
        "model": _model_spec(model),
        "train_subsample": 2,
        "epochs": epochs,
        "batch_size": 16,
        "loss": "h1",
        "optimizer": {"name": "adamw", "lr": 5e-3, "weight_decay": 1e-4, "grad_clip": 1.0},
        "scheduler": {"name": "cosine", "min_lr": 1e-5},
        "eval": {"splits": ["test"], "subsamples": [2, 1], "every": max(epochs // 5, 1),
                 "n_plot_samples": 4},
        "device": device,
        "seed": seed,
        "out_dir": str(out / model),
        "checkpoint_every": max(epochs // 5, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pdekit.cli.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--resolution", type=int, default=65, help="grid nodes per side (default 65)")
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=60, help="epochs per model (default 60)")
    parser.add_argument("--models", default="fno,tfno", help="comma-separated registry names")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch
    import yaml

    from pdekit.data import generate
    from pdekit.errors import PdekitUserError
    from pdekit.pdes import get_pde
    from pdekit.train.cli_commands import train_main

    out = Path(args.out)
    # one folder per setting, so a rerun with other options never collides with an earlier dataset
    data = out / f"data-{args.resolution}-{args.n_train}-{args.n_test}-seed{args.seed}"
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        if args.resolution % 2 == 0:
            raise PdekitUserError("--resolution must be odd so that every second node keeps the boundary")
        print(f"[1/3] generating Darcy {args.resolution}x{args.resolution}: {args.n_train} train + "
              f"{args.n_test} test samples with recycled MG-PCG into {data}", flush=True)
        t0 = time.perf_counter()
        summary = generate(
            get_pde("darcy", resolution=args.resolution),
            data,
            {"train": args.n_train, "test": args.n_test},
            seed=args.seed,
            shard_size=50,
            device=args.device,
            threads=torch.get_num_threads(),
            progress=True,
            solver={"method": "rcg", "preconditioner": "mg", "ordering": "greedy", "n_chains": 5},
        )
        print(f"      {summary}  [{time.perf_counter() - t0:.0f} s]", flush=True)

        rows = []
        for i, model in enumerate(models):
            print(f"[2/3] training {model} ({i + 1}/{len(models)}) for {args.epochs} epochs", flush=True)
            run = out / model
            if run.exists():  # the demo owns its run folders: start each model afresh
                shutil.rmtree(run)
            run.mkdir(parents=True)
            cfg_path = run.parent / f"{model}.yaml"
            cfg_path.write_text(yaml.safe_dump(
                _train_config(data, out, model, args.epochs, args.device, args.seed), sort_keys=False))
            t1 = time.perf_counter()
            code = train_main(cfg_path)
            if code != 0:
                return code
            rows.append((model, run, time.perf_counter() - t1))
    except PdekitUserError as e:
        print(f"pdekit demo: error: {e}", file=sys.stderr)
        return 2

    lo, hi = (args.resolution + 1) // 2, args.resolution
    print(f"[3/3] results (relative L2 on the test split; trained at {lo}x{lo}, "
          f"{hi}x{hi} is zero-shot super-resolution)")
    print(f"{'model':<8}{'params':>10}{f'L2 @ {lo}':>12}{f'L2 @ {hi}':>12}{'train s':>10}")
    table = []
    for model, run, seconds in rows:
        last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
        final = last[-1]
        from pdekit.models import count_parameters, load_model

        n_params = count_parameters(load_model(run / "checkpoints" / "model.pt"))
        l2_lo, l2_hi = final.get(f"test_{lo}_l2"), final.get(f"test_{hi}_l2")
        print(f"{model:<8}{n_params:>10,}{l2_lo:>12.4f}{l2_hi:>12.4f}{seconds:>10.0f}")
        table.append({"model": model, "n_params": n_params, f"test_{lo}_l2": l2_lo,
                      f"test_{hi}_l2": l2_hi, "train_seconds": seconds})
    (out / "results.json").write_text(json.dumps(table, indent=2))
    print(f"plots: {', '.join(str(r / 'plots') for _, r, _ in rows)}; table: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
