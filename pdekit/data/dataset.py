"""A torch ``Dataset`` over a pdekit dataset folder that reads shards lazily.

Only paths and the manifest are kept in the object; HDF5 files are opened on first use inside
each process (a DataLoader worker under fork, spawn or forkserver), at most ``max_open_files`` at a
time, and dropped when the object is pickled or the process id changes. Each item reads one sample
(one HDF5 chunk) from disk, so nothing is loaded up front. Windows, subsampling, channels and
normalisation are those of :class:`pdekit.data.view.SampleView`, shared with
:class:`pdekit.data.importers.ImportedDataset`; this module only reads pdekit shards.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pdekit.data.schema import read_manifest, read_stats
from pdekit.data.view import Normalizer, Reader, SampleView, ViewDataset
from pdekit.errors import DatasetError

__all__ = ["PDEDataset"]


class PDEDataset(ViewDataset):
    """Samples ``(x, y)`` of one split, channels first, ready for a neural operator.

    Parameters
    ----------
    root : path-like
        Dataset folder (holding ``manifest.json``).
    split : str
        Split to read (``"train"``, ``"test"``, ...).
    inputs, targets : sequence of str
        Fields stacked as channels of ``x`` and ``y``. A time-dependent field contributes one
        channel per time step it returns.
    normalize : bool
        Standardise every field with the train-split mean and std from ``stats.json``.
    subsample : int or tuple of int
        Keep every ``s``-th point in each spatial dimension (one int for all, or one per dim).
    time_window : (int, int), optional
        ``(n_in, n_out)``: items become windows; for start ``t0``, time-dependent inputs give
        steps ``t0 .. t0+n_in-1`` and time-dependent targets steps ``t0+n_in .. t0+n_in+n_out-1``;
        static fields are returned whole. ``None``: whole trajectories.
    window_stride : int
        Step between window starts ``t0``.
    max_open_files : int
        HDF5 files kept open per process.

    Attributes
    ----------
    in_channels, out_channels : int
    spatial_shape : tuple of int
        Spatial shape after subsampling.
    stats : dict
        ``{field: {"mean", "std", ...}}`` from ``stats.json``.
    view : SampleView
        Windows, subsampling and channels.
    normalizer : Normalizer or None
        The standardisation (``None`` when ``normalize=False``).

    Examples
    --------
    >>> ds = PDEDataset("data/sample", "train", inputs=("a",), targets=("u",))  # doctest: +SKIP
    >>> x, y = ds[0]                                                           # doctest: +SKIP
    >>> x.shape, y.shape                                                       # doctest: +SKIP
    (torch.Size([1, 64, 64]), torch.Size([1, 64, 64]))
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        inputs: Sequence[str] = ("a",),
        targets: Sequence[str] = ("u",),
        *,
        normalize: bool = True,
        subsample: int | Sequence[int] = 1,
        time_window: tuple[int, int] | None = None,
        window_stride: int = 1,
        max_open_files: int = 8,
    ):
        self.root = Path(root)
        manifest = read_manifest(self.root)
        if split not in manifest["splits"]:
            raise DatasetError(
                f"{self.root} has no split {split!r}; it has {', '.join(manifest['splits'])}"
            )
        self.split = split
        entries = manifest["splits"][split]
        if not entries:
            raise DatasetError(f"{self.root}: split {split!r} has no finished shards")
        self._paths = [str(self.root / e["path"]) for e in entries]
        counts = np.array([e["n_samples"] for e in entries], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        fields = manifest["fields"]
        self.view = SampleView(
            inputs, targets, {k: v["dims"] for k, v in fields.items()},
            {k: v["shape"] for k, v in fields.items()}, int(self._offsets[-1]),
            subsample=subsample, time_window=time_window, window_stride=window_stride,
            source=str(self.root),
        )
        try:
            self.stats = read_stats(self.root)["fields"]
        except DatasetError:
            if normalize:
                raise
            self.stats = {}
        self.normalizer = (
            Normalizer(self.stats, self.view.used, source=f"{self.root}/stats.json")
            if normalize else None
        )
        self.max_open_files = int(max_open_files)
        self._files: OrderedDict = OrderedDict()
        self._pid = os.getpid()

    # -- file handles ------------------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = OrderedDict()
        return state

    def _file(self, i: int) -> dict:
        """``{field: h5py.Dataset}`` of shard ``i``, opened in this process (LRU cache).

        Dataset handles are cached with the file: looking a dataset up by name costs far more
        than reading one sample from it.
        """
        import h5py

        if self._pid != os.getpid():  # forked: never touch the parent's handles
            self._files = OrderedDict()
            self._pid = os.getpid()
        handles = self._files.get(i)
        if handles is not None:
            self._files.move_to_end(i)
            return handles
        path = self._paths[i]
        try:
            f = h5py.File(path, "r")
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read shard {path}: {e} (run `pdekit verify {self.root}`)") from None
        if f.attrs.get("format") != "pdekit":
            f.close()
            raise DatasetError(f"not a pdekit shard: {path} has no format='pdekit' attribute")
        try:
            handles = {"": f, **{k: f[k] for k in set(self.view.used)}}
        except KeyError as e:
            f.close()
            raise DatasetError(f"cannot read shard {path}: {e} (run `pdekit verify {self.root}`)") from None
        self._files[i] = handles
        while len(self._files) > self.max_open_files:
            _, old = self._files.popitem(last=False)
            old[""].close()
        return handles

    def close(self) -> None:
        """Close the files this process opened."""
        if self._pid == os.getpid():
            for handles in self._files.values():
                handles[""].close()
        self._files = OrderedDict()

    # -- items -------------------------------------------------------------------------------
    def _shard_of(self, sample: int) -> tuple[int, int]:
        shard = int(np.searchsorted(self._offsets, sample, side="right") - 1)
        return shard, int(sample - self._offsets[shard])

    def locate(self, index: int) -> tuple[int, int, int]:
        """``(shard, sample within shard, window start t0)`` of item ``index``."""
        sample, t0 = self.view.locate(index)
        return (*self._shard_of(sample), t0)

    def _reader(self, sample: int) -> Reader:
        shard, local = self._shard_of(sample)
        handles = self._file(shard)

        def read(name: str, times: slice | None) -> np.ndarray:
            try:
                var = handles[name]
                return var[local] if times is None else var[local, times]
            except (OSError, KeyError) as e:
                raise DatasetError(
                    f"cannot read sample {local} of {self._paths[shard]}: {e} "
                    f"(run `pdekit verify {self.root}`)"
                ) from None

        return read

    def __repr__(self) -> str:
        return (
            f"PDEDataset({str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"inputs={self.inputs}, targets={self.targets}, spatial_shape={self.spatial_shape})"
        )
