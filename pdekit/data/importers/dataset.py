"""The torch ``Dataset`` of a PDEBench or Well file (the reader behind a shared sample view)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from pdekit.data.importers._layout import Layout, _open_h5
from pdekit.data.importers.views import scan_file
from pdekit.data.view import Normalizer, Reader, SampleView, ViewDataset

__all__ = ["ImportedDataset"]


class ImportedDataset(ViewDataset):
    """Samples ``(x, y)`` of a PDEBench or Well file, with the interface of ``PDEDataset``.

    Parameters
    ----------
    path : path-like
        The HDF5 file (opened lazily in each process; nothing is loaded up front).
    inputs, targets : sequence of str
        pdekit field names (as in :func:`open_imported`) stacked as channels of ``x`` and ``y``; a
        time-dependent field gives one channel per returned time step.
    layout : {"auto", "pdebench", "the-well"}
    rename : dict, optional
        Extra PDEBench renames.
    normalize : bool
        Standardise every field with ``stats`` (default: mean and std over the selected
        samples, computed once in float64 by reading them).
    stats : dict, optional
        ``{field: {"mean": m, "std": s}}``, e.g. the ``stats`` of the training set for a test set.
    subsample : int or tuple of int
        Keep every ``s``-th point per spatial dimension.
    time_window : (int, int), optional
        ``(n_in, n_out)`` windows as in ``PDEDataset``; ``None``: whole trajectories.
    window_stride : int
    samples : slice or sequence of int, optional
        Which samples of the file to use (e.g. ``slice(0, 9000)`` for a train split).

    Examples
    --------
    >>> ds = ImportedDataset("1D_Burgers_Sols_Nu0.1.hdf5", ("u",), ("u",),
    ...                      time_window=(10, 1))           # doctest: +SKIP
    >>> x, y = ds[0]; x.shape, y.shape                        # doctest: +SKIP
    (torch.Size([10, 1024]), torch.Size([1, 1024]))
    """

    def __init__(
        self,
        path: str | os.PathLike,
        inputs: Sequence[str],
        targets: Sequence[str],
        *,
        layout: Layout = "auto",
        rename: dict | None = None,
        normalize: bool = True,
        stats: dict | None = None,
        subsample: int | Sequence[int] = 1,
        time_window: tuple[int, int] | None = None,
        window_stride: int = 1,
        samples: slice | Sequence[int] | None = None,
    ):
        self.path = str(path)
        with _open_h5(path) as f:
            scan = scan_file(f, self.path, layout, rename)
        self.layout = scan.fmt
        self._vars = scan.fields
        self._keys = scan.sample_keys
        self._index = np.arange(scan.n_samples)[samples if samples is not None else slice(None)]
        if len(self._index) == 0:
            raise ValueError("no samples selected")
        sizes = {d: len(v[1]) for d, v in scan.coords.items()}
        self.view = SampleView(
            inputs, targets, {k: v.dims for k, v in self._vars.items()},
            {k: tuple(sizes[d] for d in v.dims if d != "sample") for k, v in self._vars.items()},
            len(self._index), subsample=subsample, time_window=time_window,
            window_stride=window_stride, dtype=np.float32, source=self.path,
        )
        self._file = None
        self._pid = os.getpid()
        self.stats = {}
        self.normalizer = None
        if normalize:
            used = self.view.used
            self.stats = dict(stats) if stats is not None else self._compute_stats(used)
            self.normalizer = Normalizer(self.stats, used, source="argument 'stats'")

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def _h5(self):
        if self._pid != os.getpid():
            self._file, self._pid = None, os.getpid()
        if self._file is None:
            self._file = _open_h5(self.path)
        return self._file

    def close(self) -> None:
        """Close the file this process opened."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def _raw(self, name: str, sample: int, times: slice | None = None) -> np.ndarray:
        var, f = self._vars[name], self._h5()
        if var.per_sample_group:
            dset, lead = f[f"{self._keys[sample]}/{var.path}"], ()
        else:
            dset, lead = f[var.path], ((sample,) if var.has_sample else ())
        if times is not None and "time" in var.dims:
            arr = dset[lead + (times,)]
        else:
            arr = dset[lead] if lead else dset[()]
        return np.asarray(arr[var.select] if var.select else arr)

    def _compute_stats(self, names) -> dict:
        out = {}
        for name in names:
            count, s1, s2 = 0, 0.0, 0.0
            rows = self._index if self._vars[name].has_sample else self._index[:1]
            for i in rows:
                a = self._raw(name, int(i)).astype(np.float64)
                count, s1, s2 = count + a.size, s1 + a.sum(), s2 + (a * a).sum()
            mean = s1 / count
            out[name] = {"mean": float(mean), "std": float(np.sqrt(max(s2 / count - mean**2, 0.0)))}
        self.close()
        return out

    def locate(self, index: int) -> tuple[int, int]:
        """``(sample index in the file, window start t0)`` of item ``index``."""
        position, t0 = self.view.locate(index)
        return int(self._index[position]), t0

    def _reader(self, sample: int) -> Reader:
        file_sample = int(self._index[sample])
        return lambda name, times: self._raw(name, file_sample, times)

    def __repr__(self) -> str:
        return (f"ImportedDataset({self.path!r}, layout={self.layout!r}, n={len(self)}, "
                f"inputs={self.inputs}, targets={self.targets}, spatial_shape={self.spatial_shape})")
