"""A torch ``Dataset`` over a pdekit dataset folder that reads shards lazily.

Only paths and the manifest are kept in the object; HDF5 files are opened on first use inside
each process (a DataLoader worker under fork, spawn or forkserver), at most ``max_open_files`` at a
time, and dropped when the object is pickled or the process id changes. Each item reads one sample
(one HDF5 chunk) from disk, so nothing is loaded up front.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pdekit.data.schema import read_manifest, read_stats, spatial_dims_of
from pdekit.errors import DatasetError

__all__ = ["PDEDataset"]


class PDEDataset(torch.utils.data.Dataset):
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
        self.inputs, self.targets = tuple(inputs), tuple(targets)
        fields = manifest["fields"]
        for name in self.inputs + self.targets:
            if name not in fields:
                raise DatasetError(
                    f"{self.root} has no field {name!r}; it has {', '.join(fields)}"
                )
        if not self.inputs or not self.targets:
            raise ValueError("inputs and targets must each name at least one field")
        self._dims = {k: tuple(v["dims"]) for k, v in fields.items()}
        self._shapes = {k: tuple(v["shape"]) for k, v in fields.items()}
        used = self.inputs + self.targets
        spatial = {spatial_dims_of(self._dims[k]) for k in used}
        if len(spatial) != 1:
            raise ValueError(f"fields {used} do not share the same spatial dims")
        n_sp = len(next(iter(spatial)))
        sub = (subsample,) * n_sp if isinstance(subsample, int) else tuple(subsample)
        if len(sub) != n_sp or any(int(s) < 1 for s in sub):
            raise ValueError(f"subsample must be a positive int or {n_sp} positive ints, got {subsample!r}")
        self.subsample = tuple(int(s) for s in sub)
        self._slices = tuple(slice(None, None, s) for s in self.subsample)

        entries = manifest["splits"][split]
        if not entries:
            raise DatasetError(f"{self.root}: split {split!r} has no finished shards")
        self._paths = [str(self.root / e["path"]) for e in entries]
        counts = np.array([e["n_samples"] for e in entries], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        n_samples = int(self._offsets[-1])

        self.time_window = None if time_window is None else (int(time_window[0]), int(time_window[1]))
        self.window_stride = int(window_stride)
        timed = [k for k in used if "time" in self._dims[k]]
        if self.time_window is not None:
            n_in, n_out = self.time_window
            if not timed:
                raise ValueError("time_window needs at least one time-dependent field")
            if n_in < 1 or n_out < 1 or self.window_stride < 1:
                raise ValueError(f"time_window needs n_in, n_out >= 1, got {time_window!r}")
            n_time = self._shapes[timed[0]][0]
            if n_in + n_out > n_time:
                raise ValueError(f"time_window {time_window} is longer than the {n_time} time steps")
            self._starts = np.arange(0, n_time - n_in - n_out + 1, self.window_stride)
        else:
            self._starts = np.zeros(1, dtype=np.int64)
        self._len = n_samples * len(self._starts)

        self.normalize = bool(normalize)
        try:
            self.stats = read_stats(self.root)["fields"]
        except DatasetError:
            if normalize:
                raise
            self.stats = {}
        self._norm = {}
        for name in used:
            if normalize:
                s = self.stats.get(name)
                if s is None:
                    raise DatasetError(f"{self.root}/stats.json has no statistics for field {name!r}")
                std = s["std"] if s["std"] and s["std"] > 0 else 1.0
                self._norm[name] = (np.float32(s["mean"]), np.float32(1.0 / std))
        self.max_open_files = int(max_open_files)
        self.in_channels = sum(self._n_channels(k, "in") for k in self.inputs)
        self.out_channels = sum(self._n_channels(k, "out") for k in self.targets)
        shape = self._shapes[used[0]][-n_sp:]
        self.spatial_shape = tuple(len(range(0, n, s)) for n, s in zip(shape, self.subsample))
        self._files: OrderedDict = OrderedDict()
        self._pid = os.getpid()

    def _n_channels(self, name: str, role: str) -> int:
        if "time" not in self._dims[name]:
            return 1
        if self.time_window is None:
            return self._shapes[name][0]
        return self.time_window[0] if role == "in" else self.time_window[1]

    def __len__(self) -> int:
        return self._len

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
            handles = {"": f, **{k: f[k] for k in set(self.inputs + self.targets)}}
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
    def locate(self, index: int) -> tuple[int, int, int]:
        """``(shard, sample within shard, window start t0)`` of item ``index``."""
        if not -self._len <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} items")
        index %= self._len
        sample, w = divmod(index, len(self._starts))
        shard = int(np.searchsorted(self._offsets, sample, side="right") - 1)
        return shard, int(sample - self._offsets[shard]), int(self._starts[w])

    def _read(self, handles: dict, name: str, local: int, t0: int, role: str) -> np.ndarray:
        var = handles[name]
        if "time" in self._dims[name]:
            if self.time_window is None:
                arr = var[local]
            else:
                n_in, n_out = self.time_window
                lo = t0 if role == "in" else t0 + n_in
                arr = var[local, lo : lo + (n_in if role == "in" else n_out)]
        else:
            arr = var[local][None]
        arr = arr[(Ellipsis, *self._slices)]
        if self.normalize:
            mean, inv = self._norm[name]
            arr = (arr - mean) * inv
        return arr

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        shard, local, t0 = self.locate(int(index))
        f = self._file(shard)
        try:
            x = [self._read(f, k, local, t0, "in") for k in self.inputs]
            y = [self._read(f, k, local, t0, "out") for k in self.targets]
        except (OSError, KeyError) as e:
            raise DatasetError(
                f"cannot read sample {local} of {self._paths[shard]}: {e} (run `pdekit verify {self.root}`)"
            ) from None
        x = x[0] if len(x) == 1 else np.concatenate(x)
        y = y[0] if len(y) == 1 else np.concatenate(y)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))

    def denormalize(self, y: torch.Tensor, fields: Sequence[str] | None = None) -> torch.Tensor:
        """Undo the normalisation of a (batch of) target tensor(s), channels on dim -1-n_spatial."""
        fields = self.targets if fields is None else tuple(fields)
        if not self.normalize:
            return y
        n_sp = len(self.spatial_shape)
        scale, shift = [], []
        for k in fields:
            s = self.stats[k]
            std = s["std"] if s["std"] and s["std"] > 0 else 1.0
            c = self._n_channels(k, "out")
            scale += [std] * c
            shift += [s["mean"]] * c
        shape = (-1,) + (1,) * n_sp
        scale_t = torch.tensor(scale, dtype=y.dtype, device=y.device).reshape(shape)
        shift_t = torch.tensor(shift, dtype=y.dtype, device=y.device).reshape(shape)
        return y * scale_t + shift_t

    def __repr__(self) -> str:
        return (
            f"PDEDataset({str(self.root)!r}, split={self.split!r}, n={self._len}, "
            f"inputs={self.inputs}, targets={self.targets}, spatial_shape={self.spatial_shape})"
        )
