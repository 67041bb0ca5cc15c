"""Datasets: HDF5 shard format, generation engine, lazy torch Dataset, xarray view, verification.

See ``docs/datasets.md`` for the user guide.
"""

from pdekit.data.dataset import PDEDataset
from pdekit.data.generate import GenerateSummary, generate, generate_shard, plan_shards, shard_seed
from pdekit.data.schema import FORMAT, FORMAT_VERSION, read_manifest, read_stats
from pdekit.data.verify import VerifyReport, verify
from pdekit.data.xarray_view import open_xarray

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "GenerateSummary",
    "PDEDataset",
    "VerifyReport",
    "generate",
    "generate_shard",
    "open_xarray",
    "plan_shards",
    "read_manifest",
    "read_stats",
    "shard_seed",
    "verify",
]
