"""The data processor: owns normalisation, so models and the trainer stay clean.

:class:`~pdekit.data.PDEDataset` (with ``normalize=True``) already returns standardised fields,
``(v - mean) / std`` per field with the train-split statistics of ``stats.json``. The processor
therefore does **not** normalise again; it keeps the same per-channel ``mean`` and ``std`` to map
tensors back to physical units:

* :meth:`DataProcessor.decode_targets` turns a (normalised) prediction or target into physical
  units: the training loss and every evaluation metric are computed there, so they are the
  relative errors of the physical fields, whatever the normalisation;
* :meth:`DataProcessor.decode_inputs` turns the normalised inputs back into physical fields
  (``a = x * std_a + mean_a``): the physics loss needs the true coefficient.

For a dataset that returns raw fields (``normalize=False``), :meth:`DataProcessor.identity` is the
processor: decoding does nothing. This mirrors neuraloperator's ``DefaultDataProcessor``, except
that the encoding step lives in the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pdekit.data.view import safe_std

__all__ = ["DataProcessor"]


class DataProcessor(torch.nn.Module):
    """Per-channel affine maps between normalised tensors and physical units.

    Parameters
    ----------
    in_mean, in_std : sequence of float
        One value per input channel (``x = (a - mean) / std``).
    out_mean, out_std : sequence of float
        One value per target channel.

    Examples
    --------
    >>> p = DataProcessor([1.0], [2.0], [0.0], [10.0])
    >>> p.decode_targets(torch.ones(1, 1, 2)).tolist()
    [[[10.0, 10.0]]]
    >>> p.decode_inputs(torch.zeros(1, 1, 2)).tolist()
    [[[1.0, 1.0]]]
    """

    def __init__(
        self,
        in_mean: Sequence[float],
        in_std: Sequence[float],
        out_mean: Sequence[float],
        out_std: Sequence[float],
    ):
        super().__init__()
        for name, values in (("in_mean", in_mean), ("in_std", in_std),
                             ("out_mean", out_mean), ("out_std", out_std)):
            self.register_buffer(name, torch.as_tensor(list(values), dtype=torch.float32))
        if self.in_mean.shape != self.in_std.shape or self.out_mean.shape != self.out_std.shape:
            raise ValueError("mean and std must have one value per channel")

    @classmethod
    def identity(cls, in_channels: int, out_channels: int) -> DataProcessor:
        """The processor of a dataset that returns physical units."""
        return cls([0.0] * in_channels, [1.0] * in_channels,
                   [0.0] * out_channels, [1.0] * out_channels)

    @classmethod
    def from_dataset(cls, dataset) -> DataProcessor:
        """The processor matching a :class:`~pdekit.data.PDEDataset` (identity if unnormalised).

        Fields with several channels (time windows) repeat their field's mean and std.
        """
        x, y = dataset[0]
        n_in, n_out = int(x.shape[0]), int(y.shape[0])
        if not getattr(dataset, "normalize", False):
            return cls.identity(n_in, n_out)

        def per_channel(fields, role, n_channels):
            count = getattr(dataset, "_n_channels", None)
            means, stds = [], []
            for name in fields:
                s = dataset.stats[name]
                std = safe_std(s)
                c = count(name, role) if count is not None else n_channels // len(fields)
                means += [float(s["mean"])] * c
                stds += [float(std)] * c
            if len(means) != n_channels:
                raise ValueError(f"cannot match the statistics of {fields} to {n_channels} channels")
            return means, stds

        im, isd = per_channel(dataset.inputs, "in", n_in)
        om, osd = per_channel(dataset.targets, "out", n_out)
        return cls(im, isd, om, osd)

    @staticmethod
    def _affine(t: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        if t.dim() < 2 or t.shape[1] != mean.numel():
            raise ValueError(
                f"expected (batch, {mean.numel()}, *spatial), got shape {tuple(t.shape)}"
            )
        shape = (1, -1) + (1,) * (t.dim() - 2)
        mean = mean.to(device=t.device, dtype=t.dtype).reshape(shape)
        std = std.to(device=t.device, dtype=t.dtype).reshape(shape)
        return t * std + mean

    def decode_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Normalised targets or predictions ``(B, C_out, *spatial)`` -> physical units."""
        return self._affine(y, self.out_mean, self.out_std)

    def decode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs ``(B, C_in, *spatial)`` -> physical units."""
        return self._affine(x, self.in_mean, self.in_std)

    def encode_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Physical targets -> normalised (the inverse of :meth:`decode_targets`)."""
        shape = (1, -1) + (1,) * (y.dim() - 2)
        mean = self.out_mean.to(device=y.device, dtype=y.dtype).reshape(shape)
        std = self.out_std.to(device=y.device, dtype=y.dtype).reshape(shape)
        return (y - mean) / std

    def encode_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Physical inputs -> normalised (the inverse of :meth:`decode_inputs`)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        mean = self.in_mean.to(device=x.device, dtype=x.dtype).reshape(shape)
        std = self.in_std.to(device=x.device, dtype=x.dtype).reshape(shape)
        return (x - mean) / std

    def state(self) -> dict[str, list[float]]:
        """Plain lists of the four statistics (for checkpoints and JSON)."""
        return {k: v.tolist() for k, v in self.state_dict().items()}

    @classmethod
    def from_state(cls, state: dict) -> DataProcessor:
        """Inverse of :meth:`state`."""
        return cls(state["in_mean"], state["in_std"], state["out_mean"], state["out_std"])
