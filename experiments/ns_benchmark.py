"""Navier-Stokes vorticity benchmark: 10 input frames -> the next 10, predicted autoregressively.

The protocol of the FNO and LSM papers: every model maps the 10 frames ``w(t-9) .. w(t)`` to
``w(t+1)`` and is rolled out 10 times, each prediction replacing the oldest input frame; it is
trained through the whole rollout (full back-propagation) with the relative L2 loss of the 10
predicted frames, and the reported error is the relative L2 error of the 10-frame rollout on the
test set. Trajectories record ``w`` at ``t = 0, 1, ..., 20``; inputs are ``t = 1..10`` and
targets ``t = 11..20``, as in the FNO data (the initial field ``t = 0`` is not used).

Data: pdekit's ``navier-stokes`` family (FNO forcing and initial law, pseudo-spectral, periodic)
written by the dataset engine (:func:`pdekit.data.generate.generate`) into a cache folder, reused
on the next run (``--data-dir``, default ``$PDEKIT_CACHE/ns_benchmark`` or
``~/.cache/pdekit/ns_benchmark``). Training:
pdekit's :class:`~pdekit.train.Trainer` with the same budget for every model (epochs, batch size,
AdamW, cosine schedule, seed); the models come from the registry. MgNO uses its paper's NS
settings (periodic padding, no 1x1 branch, conv biases, normalisation, increment prediction);
FNO and LSM their papers' widths.

Usage::

    python experiments/ns_benchmark.py --quick --json ns_quick.json        # minutes on a CPU
    python experiments/ns_benchmark.py --device cuda --json ns.json        # 64^2, 1000 / 200
    python experiments/ns_benchmark.py --models fno,mgno,lsm --epochs 500 --nu 1e-4

Output: a table on stdout and, with ``--json``, ``{"meta": {...}, "results": [{"model",
"rel_l2", "n_params", "sec_per_epoch", "epochs", "n_train", "resolution"}, ...]}``.

References
----------
.. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895 (sec. 5.3: data and the 10 -> 10 protocol).
.. [2] H. Wu et al., "Solving high-dimensional PDEs with latent spectral models", ICML 2023,
   arXiv:2301.12664.
.. [3] J. He, X. Liu, J. Xu, "MgNO: Efficient parameterization of linear operators via
   multigrid", ICLR 2024, arXiv:2310.19809.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import _common
import torch

N_IN = 10  # input frames
N_OUT = 10  # predicted frames
T0 = 1  # first input frame (t = 1): skip the initial condition, as the FNO data does


@dataclasses.dataclass(frozen=True)
class Setting:
    """Data and training budget of one benchmark run (the same for every model)."""

    resolution: int
    nu: float
    dt: float
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0


FULL = Setting(resolution=64, nu=1e-3, dt=4e-3, n_train=1000, n_test=200, epochs=100,
               batch_size=20, lr=1e-3)
QUICK = Setting(resolution=32, nu=1e-3, dt=1e-2, n_train=48, n_test=16, epochs=2,
                batch_size=8, lr=1e-3)

#: Model configurations (one step: N_IN frames -> 1 frame), full and quick.
MGNO_NS = {"padding_mode": "circular", "bias": True, "linear_branch": False, "norm": True,
           "residual": True}
MODELS = {
    "fno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4},
    "tfno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4},
    "mgtfno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4, "boundary": "periodic"},
    "mgno": {"hidden_channels": 32, "n_layers": 5, "n_iterations": [(1, 0)] * 3 + [(2, 0)] * 2,
             **MGNO_NS},
    "lsm": {"width": 64},
}
QUICK_MODELS = {
    "fno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 2},
    "tfno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 2},
    "mgtfno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 2, "boundary": "periodic"},
    "mgno": {"hidden_channels": 12, "n_layers": 2, "n_iterations": [(1, 0)] * 3 + [(2, 0)],
             **MGNO_NS},
    "lsm": {"width": 16, "projection_channels": 32},
}


class Rollout(torch.nn.Module):
    """Autoregressive rollout of a one-step model: ``(B, n_in, *grid) -> (B, n_steps, *grid)``.

    Each step predicts the next frame from the last ``n_in`` frames and appends it to the window.
    """

    def __init__(self, step: torch.nn.Module, n_in: int, n_steps: int) -> None:
        super().__init__()
        self.step = step
        self.in_channels, self.out_channels = int(n_in), int(n_steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames, window = [], x
        for _ in range(self.out_channels):
            frame = self.step(window)
            frames.append(frame)
            window = torch.cat([window[:, 1:], frame], dim=1)
        return torch.cat(frames, dim=1)


def make_dataset(setting: Setting, root: Path, threads: int) -> Path:
    """Generate (or reuse) the trajectories with the dataset engine; return the folder."""
    from pdekit.data.generate import generate
    from pdekit.pdes import get_pde

    family = get_pde("navier-stokes", resolution=setting.resolution, nu=setting.nu,
                     t_final=float(T0 + N_IN + N_OUT - 1), n_records=T0 + N_IN + N_OUT - 1,
                     dt=setting.dt)
    name = (f"ns{setting.resolution}_nu{setting.nu:g}_dt{setting.dt:g}_"
            f"{setting.n_train}+{setting.n_test}_seed{setting.seed}")
    out = root / name
    summary = generate(family, out, {"train": setting.n_train, "test": setting.n_test},
                       seed=setting.seed, shard_size=50, threads=threads)
    if not summary.max_rel_residual < float("inf"):
        raise RuntimeError(f"{out}: some trajectories blew up; lower --dt")
    print(summary, file=sys.stderr)
    return out


def windows(root: Path, split: str, normalize: bool = True):
    """The dataset of ``(frames T0..T0+9, frames T0+10..T0+19)`` pairs, one per trajectory."""
    from torch.utils.data import Subset

    from pdekit.data import PDEDataset

    ds = PDEDataset(root, split, inputs=("w",), targets=("w",), time_window=(N_IN, N_OUT),
                    normalize=normalize)
    return Subset(ds, [i for i in range(len(ds)) if ds.locate(i)[2] == T0])


def persistence_error(root: Path) -> float:
    """Relative L2 error of repeating the last input frame 10 times (the trivial baseline)."""
    from pdekit.train import relative_l2

    total, n = 0.0, 0
    for x, y in torch.utils.data.DataLoader(windows(root, "test", normalize=False), batch_size=50):
        pred = x[:, -1:].expand_as(y)
        total += float(relative_l2(pred, y, reduction="sum"))
        n += x.shape[0]
    return total / n


def run_model(name: str, config: dict, setting: Setting, root: Path, device: str) -> dict:
    """Train one model with the shared budget and evaluate its 10-step rollout."""
    from pdekit.models import count_parameters, get_model
    from pdekit.train import Trainer
    from pdekit.train.config import config_from_dict
    from pdekit.train.trainer import seed_everything

    train, test = windows(root, "train"), windows(root, "test")
    seed_everything(setting.seed)
    step = get_model(name, in_channels=N_IN, out_channels=1, **config)
    model = Rollout(step, N_IN, N_OUT)
    with tempfile.TemporaryDirectory() as out_dir:
        cfg = config_from_dict({
            "dataset": str(root), "model": {"name": name}, "inputs": ["w"], "targets": ["w"],
            "n_train": min(setting.n_train, len(train)), "epochs": setting.epochs,
            "batch_size": setting.batch_size, "loss": "l2",
            "optimizer": {"name": "adamw", "lr": setting.lr, "weight_decay": 1e-4},
            "scheduler": {"name": "cosine"},
            "eval": {"every": setting.epochs},
            "device": device, "seed": setting.seed, "out_dir": out_dir,
            "progress": False, "plots": False,
        })
        trainer = Trainer(model, train, cfg, eval_datasets={"test": test}, callbacks=[])
        start = time.perf_counter()
        metrics = trainer.fit()
        seconds = time.perf_counter() - start
    train_times = [h["time_s"] for h in trainer.history]
    return {
        "model": name,
        "rel_l2": metrics["test_l2"],
        "n_params": count_parameters(step),
        "sec_per_epoch": sum(train_times) / len(train_times),
        "epochs": setting.epochs,
        "n_train": cfg.n_train,
        "resolution": setting.resolution,
        "n_test": metrics["test_n"],
        "train_loss": metrics["train_loss"],
        "total_seconds": seconds,
        "config": config,
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_common_args(
        p, quick="32^2, 48 / 16 trajectories, 2 epochs, small models (a smoke run)",
        device="cpu, cuda, cuda:N (training)")
    p.add_argument("--models", default="fno,mgno,lsm", help="comma-separated registry names")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset cache folder (default $PDEKIT_CACHE/ns_benchmark or "
                        "~/.cache/pdekit/ns_benchmark)")
    for field in ("resolution", "n_train", "n_test", "epochs", "batch_size", "seed"):
        p.add_argument(f"--{field.replace('_', '-')}", type=int, default=None)
    for field in ("nu", "dt", "lr"):
        p.add_argument(f"--{field}", type=float, default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.apply_threads(args)
    setting = _common.override_setting(QUICK if args.quick else FULL, args)
    names = _common.model_names(args.models, "ns_benchmark")
    if names is None:
        return 2
    configs = QUICK_MODELS if args.quick else MODELS
    root = make_dataset(setting, args.data_dir or _common.cache_dir("ns_benchmark"),
                        args.threads or 1)

    persistence = persistence_error(root)
    print(f"persistence baseline (repeat the last input frame): rel. L2 {persistence:.4f}")
    results = []
    print(f"{'model':<8} {'rel. L2':>9} {'params':>11} {'s/epoch':>8}  ({setting.epochs} epochs, "
          f"{setting.n_train} train, {setting.resolution}^2, device {args.device})")
    for name in names:
        r = run_model(name, configs.get(name, {}), setting, root, args.device)
        results.append(r)
        print(f"{name:<8} {r['rel_l2']:>9.4f} {r['n_params']:>11,} {r['sec_per_epoch']:>8.2f}",
              flush=True)
    if args.json:
        meta = _common.run_meta(args.device, alone=args.alone, **dataclasses.asdict(setting),
                                n_in=N_IN, n_out=N_OUT, quick=args.quick,
                                persistence_rel_l2=persistence)
        _common.write_json(args.json, results, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
