"""DataLoader throughput from the HDF5 dataset vs the same data held in memory.

For each resolution (64^2, 256^2) and DataLoader worker count (0, 2) this measures

* ``loader``: samples/s of a shuffled epoch through the DataLoader alone;
* ``train``: samples/s of FNO training steps (forward, backward, Adam) fed by that loader, and
  the median time a step waits for its batch (``fetch_ms``),

once from a :class:`pdekit.data.PDEDataset` (lazy HDF5 reads, normalised on the fly) and once from
a ``TensorDataset`` of the same normalised tensors in memory, and reports the ratio. The goal is a
``train`` ratio >= 0.9: reading must not limit training.

The data come from a synthetic family defined here (smooth random ``a``, ``u`` = a smoothed
``a``), written with the same engine as ``pdekit generate``; the FNO is
``neuralop.models.FNO(n_modes=(16, 16), hidden_channels=32, n_layers=4)``.

Usage::

    python experiments/bench_data.py [--quick] [--json PATH] [--device cpu|cuda] [--threads N]

With ``--json``: ``{"meta": {...}, "results": [one record per resolution and worker count]}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import _common
import numpy as np
import torch

from pdekit.data import PDEDataset, generate
from pdekit.pdes.base import PDEFamily, Solution


@dataclass(frozen=True)
class SmoothRandom(PDEFamily):
    """Synthetic fields: ``a`` a spectrally smoothed random field, ``u`` a further smoothed ``a``."""

    name: ClassVar[str] = "bench-smooth-random"
    resolution: int = 64

    def sample_inputs(self, n, generator):
        r = self.resolution
        noise = torch.randn(n, r, r, generator=generator)
        k = torch.fft.fftfreq(r) * r
        filt = 1.0 / (1.0 + k[:, None] ** 2 + k[None, :] ** 2)
        return {"a": torch.fft.ifft2(torch.fft.fft2(noise) * filt).real * r}

    def solve(self, inputs, **kwargs):
        a = inputs["a"]
        r = self.resolution
        k = torch.fft.fftfreq(r) * r
        filt = 1.0 / (1.0 + k[:, None] ** 2 + k[None, :] ** 2)
        u = torch.fft.ifft2(torch.fft.fft2(a) * filt).real
        n = a.shape[0]
        return Solution({"u": u}, torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.float64))

    def field_dims(self):
        return {"a": ("sample", "x", "y"), "u": ("sample", "x", "y")}

    def coords(self):
        x = np.linspace(0.0, 1.0, self.resolution)
        return {"x": x, "y": x}


def _in_memory(ds: PDEDataset) -> torch.utils.data.TensorDataset:
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.utils.data.TensorDataset(torch.stack(xs), torch.stack(ys))


def _loader(dataset, batch_size, workers):
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )


class _Batches:
    """Endless batches from a DataLoader (restarting the epoch when it ends)."""

    def __init__(self, loader):
        self.loader, self.it = loader, iter(loader)

    def next(self):
        try:
            return next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)


def _loader_rates(loaders: dict, n_batches: int, repeats: int = 3) -> dict:
    """Best samples/s of each loader over ``repeats`` alternating runs of ``n_batches`` batches.

    Alternating the sources and keeping the best run makes the comparison robust to other load
    on the machine. One warm-up batch per loader (worker start-up) is excluded.
    """
    batches = {k: _Batches(v) for k, v in loaders.items()}
    for b in batches.values():
        b.next()
    best = dict.fromkeys(loaders, 0.0)
    for _ in range(repeats):
        for k, b in batches.items():
            count, t0 = 0, time.perf_counter()
            for _ in range(n_batches):
                count += b.next()[0].shape[0]
            best[k] = max(best[k], count / (time.perf_counter() - t0))
    return best


def _make_model(device):
    from neuralop.models import FNO

    torch.manual_seed(0)
    return FNO(n_modes=(16, 16), in_channels=1, out_channels=1, hidden_channels=32, n_layers=4).to(device)


def _train_rates(loaders: dict, n_steps: int, device) -> dict:
    """Samples/s of FNO training steps fed by each loader: batch size / median step time.

    One model per source, identical initialisation; steps alternate between the sources so that
    both see the same background load. A step includes fetching its batch.
    """
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="neuralop")
    state = {}
    for k, loader in loaders.items():
        model = _make_model(device)
        state[k] = (_Batches(loader), model, torch.optim.Adam(model.parameters(), lr=1e-3))

    def step(k):
        batches, model, opt = state[k]
        t0 = time.perf_counter()
        x, y = batches.next()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        t_fetch = time.perf_counter() - t0
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return x.shape[0], t_fetch, time.perf_counter() - t0

    for k in loaders:
        step(k)  # warm-up
    times = {k: [] for k in loaders}
    fetch = {k: [] for k in loaders}
    n = {}
    for _ in range(n_steps):
        for k in loaders:
            n[k], tf, dt = step(k)
            times[k].append(dt)
            fetch[k].append(tf)
    out = {}
    for k in loaders:
        out[f"train_{k}"] = n[k] / float(np.median(times[k]))
        out[f"fetch_ms_{k}"] = 1e3 * float(np.median(fetch[k]))
        out[f"step_ms_{k}"] = 1e3 * float(np.median(times[k]))
    return out


def run(quick: bool, device: torch.device, workers_list=(0, 2)) -> list[dict]:
    # resolution: (samples, batch size, loader batches per run, training steps per source)
    if quick:
        settings = {64: (256, 16, 16, 4), 256: (64, 4, 8, 2)}
    else:
        settings = {64: (1024, 32, 32, 12), 256: (256, 8, 16, 6)}
    records = []
    with tempfile.TemporaryDirectory(prefix="pdekit-bench-") as tmp:
        for res, (n, batch_size, n_batches, n_steps) in settings.items():
            root = Path(tmp) / f"r{res}"
            generate(SmoothRandom(resolution=res), root, {"train": n}, shard_size=max(16, n // 8))
            h5 = PDEDataset(root, "train", inputs=("a",), targets=("u",))
            mem = _in_memory(h5)
            for workers in workers_list:
                rec = {"resolution": res, "workers": workers, "batch_size": batch_size, "n_samples": n}
                loaders = {"memory": _loader(mem, batch_size, workers), "hdf5": _loader(h5, batch_size, workers)}
                for k, v in _loader_rates(loaders, n_batches).items():
                    rec[f"loader_{k}"] = v
                rec.update(_train_rates(loaders, n_steps, device))
                del loaders
                rec["loader_ratio"] = rec["loader_hdf5"] / rec["loader_memory"]
                rec["train_ratio"] = rec["train_hdf5"] / rec["train_memory"]
                # load-robust view: share of an FNO step spent waiting for HDF5 data
                rec["data_wait_fraction_hdf5"] = rec["fetch_ms_hdf5"] / rec["step_ms_hdf5"]
                records.append(rec)
                print(
                    f"{res:>4}^2 workers={workers}: loader {rec['loader_hdf5']:9.0f} vs "
                    f"{rec['loader_memory']:9.0f} samples/s (ratio {rec['loader_ratio']:.2f}); "
                    f"FNO train {rec['train_hdf5']:7.1f} vs {rec['train_memory']:7.1f} samples/s "
                    f"(ratio {rec['train_ratio']:.2f}; batch fetch {rec['fetch_ms_hdf5']:.2f} vs "
                    f"{rec['fetch_ms_memory']:.2f} ms of a {rec['step_ms_hdf5']:.0f} ms step)",
                    flush=True,
                )
    return records


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _common.add_common_args(p, quick="fewer samples and steps (about a minute)",
                            device="device of the FNO training steps (cpu, cuda)")
    args = p.parse_args(argv)
    _common.apply_threads(args)
    device = torch.device(args.device)
    t0 = time.perf_counter()
    records = run(args.quick, device)
    if args.json:
        meta = _common.run_meta(
            device, alone=args.alone, benchmark="bench_data", quick=args.quick,
            model="neuralop FNO n_modes=(16,16) hidden_channels=32 n_layers=4, Adam, MSE",
            seconds=time.perf_counter() - t0,
        )
        _common.write_json(args.json, records, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
