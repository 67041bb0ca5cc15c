"""PNG plots of a training run: sample predictions and learning curves.

matplotlib is an optional dependency (``pip install 'pdekit[plot]'``); it is imported inside the
functions with the non-interactive ``Agg`` backend, so plotting works on headless machines.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pdekit.errors import PdekitUserError

__all__ = ["plot_samples", "plot_learning_curves"]


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PdekitUserError(
            "plots need matplotlib (pip install 'pdekit[plot]'), or set plots: false"
        ) from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path


def plot_samples(
    x: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, path: str | os.PathLike, *,
    title: str = "",
) -> Path:
    """One row per sample: input (first channel), truth, prediction and error (first channel).

    Parameters
    ----------
    x, y, pred : Tensor
        ``(n, C, *spatial)`` with one or two spatial dimensions, physical units.
    path : path-like
        PNG file to write (parent folders are created).
    title : str

    Examples
    --------
    >>> import tempfile
    >>> u = torch.rand(2, 1, 8, 8)
    >>> p = plot_samples(u, u, u + 0.1, tempfile.mkdtemp() + "/s.png")
    >>> p.stat().st_size > 1000
    True
    """
    plt = _pyplot()
    x, y, pred = (t.detach().float().cpu() for t in (x, y, pred))
    n, n_sp = x.shape[0], x.dim() - 2
    if n_sp not in (1, 2):
        raise ValueError(f"plot_samples draws 1-D or 2-D fields, got shape {tuple(x.shape)}")
    columns = [("input", x[:, 0]), ("truth", y[:, 0]), ("prediction", pred[:, 0]),
               ("error", pred[:, 0] - y[:, 0])]
    fig, axes = plt.subplots(n, 4, figsize=(12, 2.8 * n), squeeze=False)
    for i in range(n):
        lo = float(torch.minimum(y[i, 0].min(), pred[i, 0].min()))
        hi = float(torch.maximum(y[i, 0].max(), pred[i, 0].max()))
        for j, (label, data) in enumerate(columns):
            ax = axes[i, j]
            if n_sp == 2:
                kw = {"vmin": lo, "vmax": hi} if label in ("truth", "prediction") else {}
                if label == "error":
                    m = float(data[i].abs().max()) or 1.0
                    kw = {"cmap": "RdBu_r", "vmin": -m, "vmax": m}
                im = ax.imshow(data[i].T.numpy(), origin="lower", **kw)
                fig.colorbar(im, ax=ax, fraction=0.046)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                ax.plot(data[i].numpy())
            if i == 0:
                ax.set_title(label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_learning_curves(history: list[dict], path: str | os.PathLike) -> Path:
    """Train loss and every evaluation metric (``*_l2``, ``*_h1``) against the epoch (log scale).

    Examples
    --------
    >>> import tempfile
    >>> rows = [{"epoch": e, "train_loss": 1 / e, "test_l2": 2 / e} for e in (1, 2, 3)]
    >>> p = plot_learning_curves(rows, tempfile.mkdtemp() + "/c.png")
    >>> p.stat().st_size > 1000
    True
    """
    plt = _pyplot()
    keys: list[str] = []
    for r in history:
        keys += [k for k in r if k not in keys and (k.startswith("train_") or
                                                    k.endswith(("_l2", "_h1")))]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for k in keys:
        pts = [(r["epoch"], r[k]) for r in history if isinstance(r.get(k), (int, float))]
        if pts:
            ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss / relative error")
    if any(r.get(k, 0) > 0 for r in history for k in keys):
        ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if keys:
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
