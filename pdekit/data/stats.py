"""Streaming per-field moments: computed per shard, merged into the train-split statistics.

Moments are kept in float64 as ``(count, mean, m2, min, max)`` and merged with the pairwise
update of Chan, Golub and LeVeque, so the statistics of a split do not depend on the order in
which shards finish.

References
----------
.. [1] T. F. Chan, G. H. Golub, R. J. LeVeque, "Updating formulae and a pairwise algorithm for
   computing sample variances", Stanford CS report STAN-CS-79-773, 1979.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["moments", "merge_moments", "stats_from_moments"]


def moments(array: np.ndarray) -> dict:
    """Count, mean, sum of squared deviations, min and max of the finite entries of ``array``.

    Examples
    --------
    >>> m = moments(np.array([1.0, 2.0, 3.0]))
    >>> m["count"], m["mean"], m["m2"]
    (3, 2.0, 2.0)
    """
    a = np.asarray(array, dtype=np.float64).ravel()
    finite = np.isfinite(a)
    n_bad = int(a.size - finite.sum())
    if n_bad:
        a = a[finite]
    if a.size == 0:
        return {"count": 0, "mean": 0.0, "m2": 0.0, "min": None, "max": None, "nonfinite": n_bad}
    mean = float(a.mean())
    return {
        "count": int(a.size),
        "mean": mean,
        "m2": float(((a - mean) ** 2).sum()),
        "min": float(a.min()),
        "max": float(a.max()),
        "nonfinite": n_bad,
    }


def merge_moments(parts: list[dict]) -> dict:
    """Merge moments of disjoint pieces (Chan et al.'s pairwise update).

    Examples
    --------
    >>> x = np.arange(10.0)
    >>> m = merge_moments([moments(x[:3]), moments(x[3:])])
    >>> bool(np.isclose(m["m2"], moments(x)["m2"]))
    True
    """
    out = {"count": 0, "mean": 0.0, "m2": 0.0, "min": None, "max": None, "nonfinite": 0}
    for p in parts:
        out["nonfinite"] += int(p.get("nonfinite", 0))
        nb = p["count"]
        if nb == 0:
            continue
        na = out["count"]
        n = na + nb
        delta = p["mean"] - out["mean"]
        out["mean"] += delta * nb / n
        out["m2"] += p["m2"] + delta * delta * na * nb / n
        out["count"] = n
        out["min"] = p["min"] if out["min"] is None else min(out["min"], p["min"])
        out["max"] = p["max"] if out["max"] is None else max(out["max"], p["max"])
    return out


def stats_from_moments(m: dict) -> dict:
    """``{"mean", "std", "min", "max", "count"}`` from merged moments (population std)."""
    std = math.sqrt(m["m2"] / m["count"]) if m["count"] else 0.0
    return {"mean": m["mean"], "std": std, "min": m["min"], "max": m["max"], "count": m["count"]}
