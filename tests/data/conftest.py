"""Fixtures for the data tests: small datasets of the fake families in ``fakepde``."""

from __future__ import annotations

import fakepde  # noqa: F401  (registers fake-smooth and fake-heat)
import pytest

from pdekit.data import generate
from pdekit.pdes import get_pde


@pytest.fixture(scope="session")
def smooth_ds(tmp_path_factory):
    """fake-smooth at 8x8: train 10 samples (shards of 4, 4, 2), test 4 samples."""
    out = tmp_path_factory.mktemp("smooth") / "ds"
    generate(get_pde("fake-smooth", resolution=8), out, {"train": 10, "test": 4}, shard_size=4, seed=3)
    return out


@pytest.fixture(scope="session")
def heat_ds(tmp_path_factory):
    """fake-heat: u(sample, time=6, x=16), train 6 samples in shards of 4."""
    out = tmp_path_factory.mktemp("heat") / "ds"
    generate(get_pde("fake-heat", resolution=16, n_time=6), out, {"train": 6}, shard_size=4)
    return out
