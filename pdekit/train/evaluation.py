"""Evaluation of a trained operator: mean relative L2 and H1 errors in physical units."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from pdekit.train.distributed import all_reduce_sum, is_distributed
from pdekit.train.losses import relative_h1, relative_l2
from pdekit.train.processor import DataProcessor

__all__ = ["evaluate_model"]


def evaluate_model(
    model: torch.nn.Module,
    datasets: Mapping[str, Dataset],
    processor: DataProcessor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    n_samples: int | None = None,
    amp: bool = False,
    num_workers: int = 0,
) -> dict[str, float]:
    """Mean relative L2 and H1 errors, in physical units, of ``model`` on each named dataset.

    Returns ``{"<name>_l2": ..., "<name>_h1": ..., "<name>_n": ...}``. Under ``torchrun`` every
    process evaluates a strided share of each set and the sums are all-reduced. The model's
    training mode is restored afterwards.

    Examples
    --------
    >>> x = torch.randn(4, 1, 8, 8)
    >>> ds = torch.utils.data.TensorDataset(x, x)
    >>> m = evaluate_model(torch.nn.Identity(), {"test_8": ds}, DataProcessor.identity(1, 1))
    >>> m["test_8_l2"], m["test_8_n"]
    (0.0, 4)
    """
    device = torch.device(device)
    rank, world = 0, 1
    if is_distributed():
        import torch.distributed as dist

        rank, world = dist.get_rank(), dist.get_world_size()
    processor = processor.to(device)
    out: dict[str, float] = {}
    was_training = model.training
    model.eval()
    try:
        for name, ds in datasets.items():
            indices = range(min(len(ds), n_samples) if n_samples else len(ds))
            share = Subset(ds, indices[rank::world])
            loader = DataLoader(share, batch_size=batch_size, shuffle=False,
                                num_workers=num_workers)
            sums = torch.zeros(3, dtype=torch.float64)
            for x, y in loader:
                with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16,
                                                     enabled=amp):
                    pred = model(x.to(device))
                pred = processor.decode_targets(pred.float())
                target = processor.decode_targets(y.to(device))
                sums[0] += float(relative_l2(pred, target, reduction="sum"))
                sums[1] += float(relative_h1(pred, target, reduction="sum"))
                sums[2] += x.shape[0]
            all_reduce_sum(sums)
            n = max(float(sums[2]), 1.0)
            out[f"{name}_l2"] = float(sums[0]) / n
            out[f"{name}_h1"] = float(sums[1]) / n
            out[f"{name}_n"] = int(sums[2])
    finally:
        model.train(was_training)
    return out
