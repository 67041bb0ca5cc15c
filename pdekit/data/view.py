"""One sample view shared by pdekit's torch Datasets: channels, windows, subsampling, normalisation.

:class:`~pdekit.data.PDEDataset` (pdekit's own shards) and
:class:`~pdekit.data.importers.ImportedDataset` (PDEBench and Well files) differ only in how they
read one field of one sample from disk. Everything else lives here:

* :class:`SampleView` maps an item index to ``(sample, window start)``, decides which time steps
  each field contributes, subsamples the spatial axes and stacks the fields as channels;
* :class:`Normalizer` standardises a field, ``(v - mean) / std``, and maps targets back to
  physical units; :func:`safe_std` is its one rule for a missing or zero ``std`` (use 1);
* :class:`ViewDataset` is the torch ``Dataset`` base class built on both: a subclass supplies
  ``_reader(sample)``, a function ``read(field, times)`` returning the raw array of one field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import torch

from pdekit.data.schema import spatial_dims_of
from pdekit.errors import DatasetError

__all__ = ["Reader", "SampleView", "Normalizer", "ViewDataset", "safe_std"]

Role = Literal["in", "out"]
#: ``read(field, times)``: the raw array of one field of one sample, ``(time, *spatial)`` for a
#: time-dependent field (only the steps ``times`` when it is a slice), ``spatial`` otherwise.
Reader = Callable[[str, "slice | None"], np.ndarray]


def safe_std(entry: Mapping) -> float:
    """The ``std`` of a statistics entry, or 1 when it is missing, zero or negative.

    A constant field (``std == 0``) is then only shifted by its mean, never divided by zero.

    Examples
    --------
    >>> safe_std({"mean": 1.0, "std": 2.0}), safe_std({"mean": 1.0, "std": 0.0})
    (2.0, 1.0)
    """
    std = entry["std"]
    return std if std and std > 0 else 1.0


class Normalizer:
    """Per-field standardisation ``(v - mean) / std`` with fixed (train-split) statistics.

    Parameters
    ----------
    stats : mapping
        ``{field: {"mean": m, "std": s, ...}}``; fields with ``std == 0`` use ``std = 1``.
    fields : sequence of str
        Fields that :meth:`encode` will be asked for; each must have an entry in ``stats``.
    source : str
        What ``stats`` is, for the error message (e.g. ``"data/stats.json"``).

    Examples
    --------
    >>> n = Normalizer({"u": {"mean": 1.0, "std": 2.0}}, ("u",))
    >>> n.encode("u", np.array([3.0], np.float32)).tolist()
    [1.0]
    >>> n.decode(torch.tensor([[1.0]]), ("u",), [1], n_spatial=1).tolist()
    [[3.0]]
    """

    def __init__(self, stats: Mapping[str, Mapping], fields: Sequence[str], *, source: str = "stats"):
        for name in fields:
            if stats.get(name) is None:
                raise DatasetError(f"{source} has no statistics for field {name!r}")
        self.stats = stats
        self._coef = {
            name: (np.float32(stats[name]["mean"]), np.float32(1.0 / safe_std(stats[name])))
            for name in fields
        }

    def mean_std(self, name: str) -> tuple[float, float]:
        """``(mean, std)`` of field ``name``, the std guarded by :func:`safe_std`."""
        entry = self.stats[name]
        return entry["mean"], safe_std(entry)

    def encode(self, name: str, arr: np.ndarray) -> np.ndarray:
        """Standardise one field's array (float32 statistics, the array's own dtype kept)."""
        mean, inv = self._coef[name]
        return (arr - mean) * inv

    def decode(
        self, y: torch.Tensor, fields: Sequence[str], channels: Sequence[int], n_spatial: int
    ) -> torch.Tensor:
        """Physical units of ``y``: field ``fields[i]`` fills ``channels[i]`` channels on dim
        ``-1 - n_spatial``."""
        scale, shift = [], []
        for name, c in zip(fields, channels):
            mean, std = self.mean_std(name)
            scale += [std] * c
            shift += [mean] * c
        shape = (-1,) + (1,) * n_spatial
        scale_t = torch.tensor(scale, dtype=y.dtype, device=y.device).reshape(shape)
        shift_t = torch.tensor(shift, dtype=y.dtype, device=y.device).reshape(shape)
        return y * scale_t + shift_t


class SampleView:
    """How the items ``(x, y)`` of a dataset are cut out of its samples.

    Parameters
    ----------
    inputs, targets : sequence of str
        Fields stacked as channels of ``x`` and ``y``.
    dims : mapping
        ``{field: dims}`` of every field of the source; ``"sample"`` may lead, ``"time"`` marks a
        time-dependent field, ``x``, ``y``, ``z`` are the spatial dims.
    shapes : mapping
        ``{field: sizes}`` of the dims other than ``"sample"``, in order.
    n_samples : int
        Samples in the dataset.
    subsample : int or tuple of int
        Keep every ``s``-th point in each spatial dimension.
    time_window : (int, int), optional
        ``(n_in, n_out)``: for start ``t0``, time-dependent inputs give steps
        ``t0 .. t0+n_in-1`` and time-dependent targets ``t0+n_in .. t0+n_in+n_out-1``.
    window_stride : int
        Step between window starts.
    dtype : numpy dtype, optional
        Cast every field to it after subsampling (``None``: keep the stored dtype).
    source : str
        The dataset's name in error messages.

    Examples
    --------
    >>> view = SampleView(("u",), ("u",), {"u": ("sample", "time", "x")}, {"u": (5, 8)}, 2,
    ...                   time_window=(2, 1), subsample=2)
    >>> len(view), view.spatial_shape, view.locate(3)
    (6, (4,), (1, 0))
    >>> x, y = view.item(lambda name, t: np.arange(40.0).reshape(5, 8)[t], t0=0)
    >>> x.shape, y[0].tolist()
    (torch.Size([2, 4]), [16.0, 18.0, 20.0, 22.0])
    """

    def __init__(
        self,
        inputs: Sequence[str],
        targets: Sequence[str],
        dims: Mapping[str, Sequence[str]],
        shapes: Mapping[str, Sequence[int]],
        n_samples: int,
        *,
        subsample: int | Sequence[int] = 1,
        time_window: tuple[int, int] | None = None,
        window_stride: int = 1,
        dtype=None,
        source: str = "dataset",
    ):
        self.inputs, self.targets = tuple(inputs), tuple(targets)
        if not self.inputs or not self.targets:
            raise ValueError("inputs and targets must each name at least one field")
        for name in self.inputs + self.targets:
            if name not in dims:
                raise DatasetError(f"{source} has no field {name!r}; it has {', '.join(dims)}")
        self._dims = {k: tuple(d for d in v if d != "sample") for k, v in dims.items()}
        self._shapes = {k: tuple(v) for k, v in shapes.items()}
        self.dtype = dtype
        used = self.used
        spatial = {spatial_dims_of(self._dims[k]) for k in used}
        if len(spatial) != 1:
            raise ValueError(f"fields {used} do not share the same spatial dims")
        n_sp = len(next(iter(spatial)))
        sub = (subsample,) * n_sp if isinstance(subsample, int) else tuple(subsample)
        if len(sub) != n_sp or any(int(s) < 1 for s in sub):
            raise ValueError(f"subsample must be a positive int or {n_sp} positive ints, got {subsample!r}")
        self.subsample = tuple(int(s) for s in sub)
        self._slices = tuple(slice(None, None, s) for s in self.subsample)
        self.time_window = None if time_window is None else (int(time_window[0]), int(time_window[1]))
        self.window_stride = int(window_stride)
        self._starts = self._window_starts(time_window)
        self._len = int(n_samples) * len(self._starts)
        self.in_channels = sum(self.n_channels(k, "in") for k in self.inputs)
        self.out_channels = sum(self.n_channels(k, "out") for k in self.targets)
        shape = self._shapes[used[0]][len(self._shapes[used[0]]) - n_sp:]
        self.spatial_shape = tuple(len(range(0, n, s)) for n, s in zip(shape, self.subsample))

    @property
    def used(self) -> tuple[str, ...]:
        """Inputs then targets (a field in both appears twice)."""
        return self.inputs + self.targets

    def _timed(self, name: str) -> bool:
        return "time" in self._dims[name]

    def _n_time(self, name: str) -> int:
        return self._shapes[name][self._dims[name].index("time")]

    def _window_starts(self, requested) -> np.ndarray:
        if self.time_window is None:
            return np.zeros(1, dtype=np.int64)
        n_in, n_out = self.time_window
        timed = [k for k in self.used if self._timed(k)]
        if not timed:
            raise ValueError("time_window needs at least one time-dependent field")
        if n_in < 1 or n_out < 1 or self.window_stride < 1:
            raise ValueError(f"time_window needs n_in, n_out >= 1, got {requested!r}")
        n_time = self._n_time(timed[0])
        if n_in + n_out > n_time:
            raise ValueError(f"time_window {requested} is longer than the {n_time} time steps")
        return np.arange(0, n_time - n_in - n_out + 1, self.window_stride)

    def n_channels(self, name: str, role: Role) -> int:
        """Channels that field ``name`` contributes as an input (``"in"``) or target (``"out"``)."""
        if not self._timed(name):
            return 1
        if self.time_window is None:
            return self._n_time(name)
        return self.time_window[0] if role == "in" else self.time_window[1]

    def __len__(self) -> int:
        return self._len

    def locate(self, index: int) -> tuple[int, int]:
        """``(sample position in the dataset, window start t0)`` of item ``index``."""
        if not -self._len <= index < self._len:
            raise IndexError(f"index {index} out of range for {self._len} items")
        index %= self._len
        sample, w = divmod(index, len(self._starts))
        return int(sample), int(self._starts[w])

    def times(self, name: str, t0: int, role: Role) -> slice | None:
        """The time steps field ``name`` contributes at window start ``t0`` (``None``: all/none)."""
        if self.time_window is None or not self._timed(name):
            return None
        n_in, n_out = self.time_window
        lo = t0 if role == "in" else t0 + n_in
        return slice(lo, lo + (n_in if role == "in" else n_out))

    def field(self, read: Reader, name: str, t0: int, role: Role,
              normalizer: Normalizer | None = None) -> np.ndarray:
        """One field as channels ``(c, *spatial)``: read, subsampled, cast, normalised."""
        arr = read(name, self.times(name, t0, role))
        if not self._timed(name):
            arr = arr[None]
        arr = arr[(Ellipsis, *self._slices)]
        if self.dtype is not None:
            arr = arr.astype(self.dtype)
        return arr if normalizer is None else normalizer.encode(name, arr)

    def item(self, read: Reader, t0: int,
             normalizer: Normalizer | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of the sample behind ``read`` at window start ``t0``."""
        x = [self.field(read, k, t0, "in", normalizer) for k in self.inputs]
        y = [self.field(read, k, t0, "out", normalizer) for k in self.targets]
        x = x[0] if len(x) == 1 else np.concatenate(x)
        y = y[0] if len(y) == 1 else np.concatenate(y)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


class ViewDataset(torch.utils.data.Dataset):
    """Base class of a torch ``Dataset`` made of a :class:`SampleView` and a file reader.

    A subclass sets ``view`` (a :class:`SampleView`), ``normalizer`` (a :class:`Normalizer` or
    ``None``) and ``stats``, and implements ``_reader(sample)``.

    Examples
    --------
    >>> class Ramp(ViewDataset):
    ...     def __init__(self):
    ...         self.view = SampleView(("a",), ("a",), {"a": ("sample", "x")}, {"a": (4,)}, 3)
    ...         self.normalizer, self.stats = None, {}
    ...     def _reader(self, sample):
    ...         return lambda name, times: np.arange(4.0) + sample
    >>> ds = Ramp()
    >>> len(ds), ds[2][1].tolist()
    (3, [[2.0, 3.0, 4.0, 5.0]])
    """

    view: SampleView
    normalizer: Normalizer | None
    stats: dict

    def _reader(self, sample: int) -> Reader:
        raise NotImplementedError

    @property
    def normalize(self) -> bool:
        """Whether items are standardised."""
        return self.normalizer is not None

    inputs = property(lambda self: self.view.inputs, doc="Fields stacked as channels of ``x``.")
    targets = property(lambda self: self.view.targets, doc="Fields stacked as channels of ``y``.")
    subsample = property(lambda self: self.view.subsample, doc="Spatial subsampling steps.")
    time_window = property(lambda self: self.view.time_window, doc="``(n_in, n_out)`` or ``None``.")
    window_stride = property(lambda self: self.view.window_stride, doc="Step between windows.")
    in_channels = property(lambda self: self.view.in_channels, doc="Channels of ``x``.")
    out_channels = property(lambda self: self.view.out_channels, doc="Channels of ``y``.")
    spatial_shape = property(lambda self: self.view.spatial_shape, doc="Shape after subsampling.")

    def _n_channels(self, name: str, role: Role) -> int:
        return self.view.n_channels(name, role)

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample, t0 = self.view.locate(int(index))
        return self.view.item(self._reader(sample), t0, self.normalizer)

    def denormalize(self, y: torch.Tensor, fields: Sequence[str] | None = None) -> torch.Tensor:
        """Undo the normalisation of (a batch of) target tensors, channels on dim
        ``-1 - n_spatial``; ``fields`` defaults to the targets."""
        fields = self.targets if fields is None else tuple(fields)
        if self.normalizer is None:
            return y
        channels = [self.view.n_channels(k, "out") for k in fields]
        return self.normalizer.decode(y, fields, channels, len(self.spatial_shape))
