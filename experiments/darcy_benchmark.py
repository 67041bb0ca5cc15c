"""Darcy flow benchmark: FNO, TFNO, MG-TFNO, MgNO and LSM at one training budget.

Every model learns ``a -> u`` for pdekit's Darcy family (the FNO benchmark setting: ``a`` in
{3, 12} from a thresholded Gaussian random field, ``f = 1``, ``u = 0`` on the boundary) with the
same budget: the same data, epochs, batch size, AdamW (lr 1e-3, weight decay 1e-4), cosine
schedule and relative L2 training loss in physical units, through pdekit's
:class:`~pdekit.train.Trainer`. Reported per model: test relative L2 (mean over ``--seeds``),
parameters, seconds per training epoch and peak memory.

Data: ``get_pde("darcy", resolution=R)`` written once by the dataset engine
(:func:`pdekit.data.generate.generate`) into ``--data-dir`` (default ``$PDEKIT_CACHE/darcy_benchmark``
or, without ``PDEKIT_CACHE``, ``~/.cache/pdekit/darcy_benchmark``) and reused by later
runs. Full: 64x64, 1000 train / 200 test, 100 epochs, batch 20. ``--quick``: 32x32 (generated at
32, not subsampled), 200 / 50, 5 epochs, batch 10, smaller models (a smoke run of a few minutes).
The normalised splits are read once through :class:`~pdekit.data.PDEDataset` into memory; the
trainer decodes predictions and targets to physical units with the dataset's statistics.

Seeds: the dataset has one fixed seed (``--data-seed``); ``--seeds 0,1,2`` retrains every model
with each seed (initial weights and batch order) and reports the mean and standard deviation.

Timing and memory (see ``meta`` in the JSON):

* ``sec_per_epoch`` is the mean of the Trainer's per-epoch ``time_s``: iterating the DataLoader,
  forward, loss, backward, optimiser step and the schedule step; evaluation (only after the last
  epoch) and model construction are excluded. Before each model's run a throw-away copy takes
  two AdamW steps on one batch, so that one-time costs of the process (thread pools, kernel
  selection, FFT plans) do not land in the first model's first epoch.
* ``peak_mem_mb`` on CUDA is ``torch.cuda.max_memory_allocated`` during the model's run. On the
  CPU it is the process's peak resident set size during the run minus the RSS before the model
  was built: the kernel's peak counter (``VmHWM``) is reset through ``/proc/self/clear_refs``
  before each model (method ``"rss-hwm-reset"``); where that is not possible it is the growth of
  ``getrusage(RUSAGE_SELF).ru_maxrss`` (``"ru_maxrss-delta"``), which only sees a model that
  needs more than every earlier one. Both include allocator caches and the in-memory dataset's
  batches; ``tracemalloc`` is not used because it does not see torch's tensor allocations.
* ``throughput_ratio_vs_neuralop`` R: the same FNO (the ``fno`` configuration, the same initial
  weights: a copy of one freshly built model) is trained for ``--throughput-epochs`` epochs by
  pdekit's Trainer (no callbacks: no logging, checkpoints or progress bar) and by
  ``neuralop.training.Trainer`` (2.0: ``verbose=False``, no checkpoints, no test loaders), on the
  same in-memory tensors, batch size, ``torch.optim.AdamW`` and cosine schedule. neuraloperator
  gets a DataLoader of ``{"x", "y"}`` dicts (shuffled, seeded), its ``DefaultDataProcessor`` with
  a ``UnitGaussianNormalizer`` holding the same target mean and std, and its ``LpLoss(d=2, p=2,
  reduction="sum")`` (relative L2 in normalised units, summed over the batch as its Trainer
  expects); pdekit's loss is the batch-mean relative L2 in physical units. Each side's time is
  the sum of its per-epoch training times: pdekit's ``time_s`` and neuraloperator's
  ``epoch_train_time`` (``train_one_epoch``: the loader loop and the scheduler step), which both
  exclude evaluation. The runs alternate pdekit, neuralop, neuralop, pdekit (``--throughput-
  repeats`` such pairs) to cancel a drift of the machine's load; R is pdekit's samples per second
  over all its timed epochs divided by neuraloperator's (the FNO is warmed up once before the
  first run). Goal: R >= 0.95. On a machine shared with other jobs single epochs can be
  several times slower than others; ``throughput`` also holds the per-epoch times and the
  ratios of the median and of the fastest epoch, which such bursts distort less.

Reference numbers (different protocols; compare only within one): the FNO paper reaches a
relative L2 of 0.0108 on the classic Darcy data (85x85, 1000 training samples, 500 epochs); LSM
reports 0.0065 on the same data; MgNO reports lower still (0.00176 on its smooth Darcy set, a
different protocol). This benchmark's default budget is far smaller (100 epochs at 64x64).

Usage::

    python experiments/darcy_benchmark.py --quick --json darcy_quick.json      # minutes on a CPU
    python experiments/darcy_benchmark.py --device cuda --json darcy.json      # 64^2, 1000 / 200
    python experiments/darcy_benchmark.py --models fno,mgno,lsm --epochs 500 --seeds 0,1,2

Output: a table on stdout and, with ``--json``, ``{"meta": {...}, "results": [{"model", "rel_l2",
"n_params", "sec_per_epoch", "epochs", "n_train", "resolution", "peak_mem_mb", ...}, ...],
"throughput_ratio_vs_neuralop": R, "throughput": {...}}``.

References
----------
.. [1] Z. Li et al., "Fourier neural operator for parametric partial differential equations",
   ICLR 2021, arXiv:2010.08895 (sec. 5.2: Darcy flow).
.. [2] J. Kossaifi et al., "Multi-grid tensorized Fourier neural operator for high-resolution
   PDEs", TMLR 2024, arXiv:2310.00120.
.. [3] J. He, X. Liu, J. Xu, "MgNO: Efficient parameterization of linear operators via
   multigrid", ICLR 2024, arXiv:2310.19809.
.. [4] H. Wu et al., "Solving high-dimensional PDEs with latent spectral models", ICML 2023,
   arXiv:2301.12664.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import dataclasses
import gc
import resource
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common
import torch


@dataclasses.dataclass(frozen=True)
class Setting:
    """Data and training budget of one benchmark run (the same for every model)."""

    resolution: int
    n_train: int
    n_test: int
    epochs: int
    batch_size: int
    lr: float = 1e-3
    weight_decay: float = 1e-4
    data_seed: int = 0


FULL = Setting(resolution=64, n_train=1000, n_test=200, epochs=100, batch_size=20)
QUICK = Setting(resolution=32, n_train=200, n_test=50, epochs=5, batch_size=10)

#: Model configurations, full (64^2) and quick (32^2). FNO: the paper's 12 modes per side
#: (neuraloperator 2.0 counts both signs: 24) and width 32, zero domain padding for the
#: non-periodic problem; TFNO / MG-TFNO: the same with Tucker rank 0.1 and one patching level;
#: MgNO: the reference Darcy model (572,661 parameters); LSM: the paper's Darcy model (width 64).
MODELS = {
    "fno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4, "domain_padding": 0.125},
    "tfno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4, "domain_padding": 0.125},
    "mgtfno": {"n_modes": (24, 24), "hidden_channels": 32, "n_layers": 4,
               "domain_padding": 0.125, "levels": 1, "padding_fraction": 0.0625,
               "boundary": "zeros"},
    "mgno": {},
    "lsm": {"width": 64},
}
QUICK_MODELS = {
    "fno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 4, "domain_padding": 0.125},
    "tfno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 4, "domain_padding": 0.125},
    "mgtfno": {"n_modes": (12, 12), "hidden_channels": 16, "n_layers": 4,
               "domain_padding": 0.125, "levels": 1, "padding_fraction": 0.0625,
               "boundary": "zeros"},
    "mgno": {"hidden_channels": 12, "n_layers": 3},
    "lsm": {"width": 16, "projection_channels": 32},
}


# -- data --------------------------------------------------------------------------------------
def make_dataset(setting: Setting, root: Path, threads: int) -> Path:
    """Generate (or reuse) the Darcy dataset with the dataset engine; return its folder."""
    from pdekit.data.generate import generate
    from pdekit.pdes import get_pde

    family = get_pde("darcy", resolution=setting.resolution)
    out = root / (f"darcy{setting.resolution}_{setting.n_train}+{setting.n_test}"
                  f"_seed{setting.data_seed}")
    summary = generate(family, out, {"train": setting.n_train, "test": setting.n_test},
                       seed=setting.data_seed, shard_size=100, threads=threads)
    print(summary, file=sys.stderr)
    return out


@dataclasses.dataclass(frozen=True)
class Splits:
    """The normalised splits in memory and the processor that decodes them."""

    train: torch.utils.data.TensorDataset
    test: torch.utils.data.TensorDataset
    processor: torch.nn.Module
    target_mean: float
    target_std: float


def load_splits(root: Path) -> Splits:
    """Read both splits once through :class:`~pdekit.data.PDEDataset` (normalised)."""
    from pdekit.data import PDEDataset
    from pdekit.train.processor import DataProcessor

    def tensors(split):
        ds = PDEDataset(root, split, inputs=("a",), targets=("u",), normalize=True)
        x, y = next(iter(torch.utils.data.DataLoader(ds, batch_size=len(ds))))
        ds.close()
        return ds, torch.utils.data.TensorDataset(x, y)

    train_ds, train = tensors("train")
    _, test = tensors("test")
    processor = DataProcessor.from_dataset(train_ds)
    return Splits(train, test, processor, float(processor.out_mean[0]),
                  float(processor.out_std[0]))


# -- memory ------------------------------------------------------------------------------------
class PeakMemory:
    """Peak memory of a block: CUDA allocator peak, or the process's peak RSS growth (MiB)."""

    def __init__(self, device: str):
        self.device = torch.device(device)
        self.method = "cuda.max_memory_allocated" if self.device.type == "cuda" else (
            "rss-hwm-reset" if self._reset_hwm() else "ru_maxrss-delta")
        self.mb = float("nan")

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _status_kb(key: str) -> float:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
        raise KeyError(key)

    @staticmethod
    def _maxrss_kb() -> float:
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        try:  # hand freed heap back to the OS so that the baseline is the live memory
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if self.method == "rss-hwm-reset":
            self._reset_hwm()
            self._base = self._status_kb("VmRSS")
        else:
            self._base = self._maxrss_kb()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
            self.mb = (peak - self._base) / 2**20
        elif self.method == "rss-hwm-reset":
            self.mb = (self._status_kb("VmHWM") - self._base) / 1024
        else:
            self.mb = (self._maxrss_kb() - self._base) / 1024


# -- training ----------------------------------------------------------------------------------
def train_config(setting: Setting, *, seed: int, device: str, out_dir: str, epochs: int):
    from pdekit.train.config import config_from_dict

    return config_from_dict({
        "dataset": "-", "model": {"name": "benchmark"}, "epochs": epochs,
        "batch_size": setting.batch_size, "loss": "l2",
        "optimizer": {"name": "adamw", "lr": setting.lr, "weight_decay": setting.weight_decay},
        "scheduler": {"name": "cosine"}, "eval": {"every": epochs},
        "device": device, "seed": seed, "out_dir": out_dir, "progress": False, "plots": False,
    })


def build_model(name: str, config: dict, seed: int) -> torch.nn.Module:
    from pdekit.models import get_model
    from pdekit.train.trainer import seed_everything

    seed_everything(seed)
    return get_model(name, in_channels=1, out_channels=1, **config)


def warm_up(model: torch.nn.Module, setting: Setting, splits: Splits, device: str) -> None:
    """Take two untimed AdamW steps on one batch (the caller discards the model).

    First-call costs (kernel selection, thread pools, FFT plans) would otherwise land in the
    first timed epoch of whichever run comes first.
    """
    from pdekit.train import relative_l2

    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=setting.lr)
    x, y = (t.to(device) for t in splits.train[: setting.batch_size])
    for _ in range(2):
        loss = relative_l2(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def run_model(name: str, config: dict, setting: Setting, splits: Splits, device: str,
              seed: int) -> dict:
    """Train one model with the shared budget; return its test error, cost and memory.

    The model is built and warmed up (:func:`warm_up`), dropped, and built again from the same
    seed for the measured run; the peak memory covers both (weights included).
    """
    from pdekit.models import count_parameters
    from pdekit.train import Trainer

    with PeakMemory(device) as mem, tempfile.TemporaryDirectory() as out_dir:
        warm_up(build_model(name, config, seed), setting, splits, device)
        gc.collect()
        model = build_model(name, config, seed)
        cfg = train_config(setting, seed=seed, device=device, out_dir=out_dir,
                           epochs=setting.epochs)
        trainer = Trainer(model, splits.train, cfg, eval_datasets={"test": splits.test},
                          processor=splits.processor, callbacks=[])
        start = time.perf_counter()
        metrics = trainer.fit()
        seconds = time.perf_counter() - start
    times = [h["time_s"] for h in trainer.history]
    return {
        "model": name,
        "seed": seed,
        "rel_l2": metrics["test_l2"],
        "rel_h1": metrics["test_h1"],
        "n_params": count_parameters(model),
        "sec_per_epoch": sum(times) / len(times),
        "epochs": setting.epochs,
        "n_train": len(splits.train),
        "n_test": metrics["test_n"],
        "resolution": setting.resolution,
        "peak_mem_mb": mem.mb,
        "train_loss": metrics["train_loss"],
        "total_seconds": seconds,
    }


def summarize(name: str, config: dict, runs: list[dict]) -> dict:
    """One result row per model: means over the seeds, per-seed errors kept."""
    errors = [r["rel_l2"] for r in runs]
    row = {k: runs[0][k] for k in ("model", "n_params", "epochs", "n_train", "n_test",
                                    "resolution")}
    row.update({
        "rel_l2": statistics.fmean(errors),
        "rel_l2_std": statistics.stdev(errors) if len(errors) > 1 else 0.0,
        "rel_l2_per_seed": errors,
        "rel_h1": statistics.fmean(r["rel_h1"] for r in runs),
        "sec_per_epoch": statistics.fmean(r["sec_per_epoch"] for r in runs),
        "peak_mem_mb": max(r["peak_mem_mb"] for r in runs),
        "train_loss": statistics.fmean(r["train_loss"] for r in runs),
        "total_seconds": sum(r["total_seconds"] for r in runs),
        "seeds": [r["seed"] for r in runs],
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
    })
    return row


# -- throughput against neuraloperator's Trainer -----------------------------------------------
def _pdekit_epochs(model, setting, splits, device, seed, epochs) -> list[float]:
    from pdekit.train import Trainer

    with tempfile.TemporaryDirectory() as out_dir:
        cfg = train_config(setting, seed=seed, device=device, out_dir=out_dir, epochs=epochs)
        trainer = Trainer(model, splits.train, cfg, processor=splits.processor, callbacks=[])
        trainer.fit()
    return [h["time_s"] for h in trainer.history]


class _DictDataset(torch.utils.data.Dataset):
    """``{"x", "y"}`` items (neuraloperator's batch format) with ``y`` in physical units."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i]}


def _neuralop_epochs(operator, setting, splits, device, seed, epochs) -> list[float]:
    from neuralop.data.transforms.data_processors import DefaultDataProcessor
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
    from neuralop.losses import LpLoss
    from neuralop.training import Trainer as NeuralopTrainer

    class TimedTrainer(NeuralopTrainer):
        def train_one_epoch(self, epoch, train_loader, training_loss):
            out = super().train_one_epoch(epoch, train_loader, training_loss)
            self.epoch_times.append(out[3])  # epoch_train_time: loader loop + scheduler step
            return out

    x, y_norm = splits.train.tensors
    y = y_norm * splits.target_std + splits.target_mean  # physical units, as neuralop expects
    shape = (1, 1, 1, 1)
    normalizer = UnitGaussianNormalizer(mean=torch.full(shape, splits.target_mean),
                                        std=torch.full(shape, splits.target_std), eps=0.0)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(_DictDataset(x, y), batch_size=setting.batch_size,
                                         shuffle=True, generator=generator)
    optimizer = torch.optim.AdamW(operator.parameters(), lr=setting.lr,
                                  weight_decay=setting.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    trainer = TimedTrainer(model=operator.to(device), n_epochs=epochs, device=device,
                           data_processor=DefaultDataProcessor(out_normalizer=normalizer),
                           eval_interval=epochs, verbose=False)
    trainer.epoch_times = []
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        # FNO.forward and LpLoss are called with every batch key (x and y) and warn about it
        warnings.simplefilter("ignore", UserWarning)
        trainer.train(loader, {}, optimizer, scheduler,
                      training_loss=LpLoss(d=2, p=2, reduction="sum"))
    return trainer.epoch_times


def measure_throughput(config: dict, setting: Setting, splits: Splits, device: str, seed: int,
                       epochs: int, repeats: int) -> dict:
    """pdekit's vs neuraloperator's Trainer on the same FNO, data and optimiser (see module doc)."""
    from pdekit.train.trainer import evaluate_model

    initial = build_model("fno", config, seed)
    warm_up(copy.deepcopy(initial), setting, splits, device)
    times: dict[str, list[float]] = {"pdekit": [], "neuralop": []}
    models: dict[str, torch.nn.Module] = {}
    for _ in range(repeats):
        for side in ("pdekit", "neuralop", "neuralop", "pdekit"):
            model = copy.deepcopy(initial)
            if side == "pdekit":
                times[side] += _pdekit_epochs(model, setting, splits, device, seed, epochs)
            else:
                times[side] += _neuralop_epochs(model.operator, setting, splits, device, seed,
                                                epochs)
            models[side] = model
    n = len(splits.train)
    rate = {side: n * len(t) / sum(t) for side, t in times.items()}
    errors = {side: evaluate_model(m, {"test": splits.test}, splits.processor,
                                   device=device)["test_l2"] for side, m in models.items()}
    fastest = {side: min(t) for side, t in times.items()}
    median = {side: statistics.median(t) for side, t in times.items()}
    return {
        "ratio": rate["pdekit"] / rate["neuralop"],
        # robust to bursts of load from other processes (same work every epoch)
        "ratio_median_epoch": median["neuralop"] / median["pdekit"],
        "ratio_fastest_epoch": fastest["neuralop"] / fastest["pdekit"],
        "samples_per_s": rate,
        "epoch_seconds": times,
        "epochs_per_run": epochs,
        "runs_per_trainer": 2 * repeats,
        "rel_l2_after_last_run": errors,
        "order": "pdekit, neuralop, neuralop, pdekit (repeated)",
    }


# -- command line ------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _common.add_common_args(
        p, quick="32^2, 200 / 50 samples, 5 epochs, small models (a smoke run)",
        device="cpu, cuda, cuda:N")
    p.add_argument("--models", default="fno,tfno,mgtfno,mgno,lsm",
                   help="comma-separated registry names")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset cache folder (default $PDEKIT_CACHE/darcy_benchmark or "
                        "~/.cache/pdekit/darcy_benchmark)")
    p.add_argument("--seeds", default="0",
                   help="comma-separated training seeds; errors are averaged over them")
    p.add_argument("--throughput-epochs", type=int, default=None,
                   help="epochs per throughput run (default min(epochs, 3))")
    p.add_argument("--throughput-repeats", type=int, default=1,
                   help="pairs of runs per trainer in the throughput measurement (0: skip it)")
    for field in ("resolution", "n_train", "n_test", "epochs", "batch_size", "data_seed"):
        p.add_argument(f"--{field.replace('_', '-')}", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    _common.apply_threads(args)
    setting = _common.override_setting(QUICK if args.quick else FULL, args)
    names = _common.model_names(args.models, "darcy_benchmark")
    if names is None:
        return 2
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        print(f"darcy_benchmark: --seeds must be comma-separated ints, got {args.seeds!r}",
              file=sys.stderr)
        return 2
    configs = QUICK_MODELS if args.quick else MODELS
    root = make_dataset(setting, args.data_dir or _common.cache_dir("darcy_benchmark"),
                        args.threads or 1)
    splits = load_splits(root)

    header = (f"{'model':<8} {'rel. L2':>9} {'+-':>7} {'params':>11} {'s/epoch':>8} "
              f"{'peak MiB':>9}")
    print(f"Darcy {setting.resolution}^2, {len(splits.train)} train / {len(splits.test)} test, "
          f"{setting.epochs} epochs, batch {setting.batch_size}, AdamW lr {setting.lr:g} + cosine, "
          f"rel. L2 loss, seeds {seeds}, device {args.device}, "
          f"{torch.get_num_threads()} torch threads")
    print(header)
    results = []
    for name in names:
        config = configs.get(name, {})
        runs = [run_model(name, config, setting, splits, args.device, s) for s in seeds]
        row = summarize(name, config, runs)
        results.append(row)
        print(f"{name:<8} {row['rel_l2']:>9.4f} {row['rel_l2_std']:>7.4f} {row['n_params']:>11,} "
              f"{row['sec_per_epoch']:>8.2f} {row['peak_mem_mb']:>9.1f}", flush=True)

    throughput, ratio = None, None
    if args.throughput_repeats > 0:
        epochs = args.throughput_epochs or min(setting.epochs, 3)
        throughput = measure_throughput(configs["fno"], setting, splits, args.device, seeds[0],
                                        epochs, args.throughput_repeats)
        ratio = throughput["ratio"]
        rate = throughput["samples_per_s"]
        print(f"throughput (fno, {2 * args.throughput_repeats} x {epochs} epochs per trainer): "
              f"pdekit {rate['pdekit']:.1f} samples/s, neuralop {rate['neuralop']:.1f} samples/s, "
              f"ratio R = {ratio:.3f} (goal >= 0.95; from the median epoch "
              f"{throughput['ratio_median_epoch']:.3f}, the fastest "
              f"{throughput['ratio_fastest_epoch']:.3f})")
    if args.json:
        meta = _common.run_meta(
            args.device, alone=args.alone, **dataclasses.asdict(setting),
            quick=args.quick,
            seeds=seeds,
            optimizer="torch.optim.AdamW",
            scheduler="cosine (per epoch, to 0)",
            loss="relative L2 in physical units (batch mean)",
            dataset=str(root),
            memory_method=PeakMemory(args.device).method,
            sec_per_epoch_timing="Trainer time_s per epoch: data loading, forward, loss, "
                                 "backward, optimiser and schedule steps; no evaluation",
            reference_rel_l2={"fno_paper_darcy85": 0.0108, "lsm_paper_darcy85": 0.0065},
        )
        _common.write_json(args.json, results, meta, throughput_ratio_vs_neuralop=ratio,
                           throughput=throughput)
    return 0


if __name__ == "__main__":
    sys.exit(main())
