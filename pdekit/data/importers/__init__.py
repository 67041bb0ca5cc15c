"""Read-only adapters for PDEBench and The Well HDF5 files: xarray views and a torch Dataset.

Both adapters map a foreign file onto pdekit's conventions: data variables with dims
``(sample, [time,] x[, y[, z]])``, coordinates ``time``, ``x``, ``y``, ``z`` stored beside them, and
the file's attributes as root attributes (plus ``source_format`` and ``source_path``). Nothing is
written to the source file.

**PDEBench** (Takamoto et al. 2022). Two layouts:

* flat (1-D advection/Burgers/reaction-diffusion, 1/2/3-D CFD, 2-D Darcy): coordinates
  ``x-coordinate`` (required), ``y-coordinate``, ``z-coordinate``, ``t-coordinate``; every other
  dataset whose first axis is the sample axis is a field, ``(N, *spatial)`` or
  ``(N, T, *spatial)``. ``tensor`` becomes ``u`` and the Darcy coefficient ``nu`` becomes ``a``
  (pdekit's Darcy names; change with ``rename``); the CFD fields keep their names (``density``,
  ``pressure``, ``Vx``, ...). A time axis of length 1 without ``t-coordinate`` (Darcy's
  ``tensor (N, 1, X, Y)``) is squeezed. PDEBench stores ``t-coordinate`` with one value more than
  the time axis; the first ``T`` values are kept. Parameters are read from the root attributes and,
  when missing there, from the file name (``..._Nu0.001...`` gives ``nu = 0.001``).
* one group per sample (2-D diffusion-reaction, shallow water): ``<seed>/data (T, X, Y, C)`` and
  ``<seed>/grid/{x, y, t}``; channel ``c`` becomes field ``u`` (one channel) or ``u_c``.

**The Well** (Ohana et al. 2024): root attributes ``dataset_name``, ``grid_type``,
``n_spatial_dims``, ``n_trajectories``, ``simulation_parameters``; groups ``dimensions``,
``boundary_conditions``, ``scalars``, ``t0_fields``, ``t1_fields``, ``t2_fields``. A scalar field
keeps its name; vector and tensor fields are split into one variable per component named with the
Well's own spatial dim names (``velocity_x``, ``stress_xy``), as the Well's loader flattens them.
Spatial dims are renamed to ``x, y, z`` in order (the original names are kept in the attribute
``source_spatial_dims``). A field that is not sample-varying has no ``sample`` dim. Scalars become
variables (dims ``(sample?, time?)``), boundary-condition masks become variables
``bc_<name>_mask``, and each condition's type becomes the attribute ``bc_<dim>`` (``periodic``,
``wall``, ``open``), as in pdekit's own shards; all of them are also summarised as JSON in the
attribute ``boundary_conditions``.

:class:`ImportedDataset` is the torch ``Dataset`` of such a file, with the interface of
:class:`pdekit.data.dataset.PDEDataset` (``(x, y)`` channels first, ``normalize``, ``subsample``,
``time_window``): both are a :class:`pdekit.data.view.SampleView` over their own file reader.
pdekit's own ``PDEDataset`` reads only pdekit dataset folders.

Modules: ``pdebench`` and ``the_well`` (the scans of each layout), ``views`` (layout detection and
the xarray views), ``dataset`` (:class:`ImportedDataset`).

References
----------
.. [1] M. Takamoto, T. Praditia, R. Leiteritz, D. MacKinlay, F. Alesiani, D. Pflueger,
   M. Niepert, "PDEBench: an extensive benchmark for scientific machine learning",
   NeurIPS 2022 Datasets and Benchmarks, arXiv:2210.07182.
.. [2] R. Ohana, M. McCabe, L. Meyer, et al., "The Well: a large-scale collection of diverse
   physics simulations for machine learning", NeurIPS 2024 Datasets and Benchmarks,
   arXiv:2412.00568.
"""

from pdekit.data.importers.dataset import ImportedDataset
from pdekit.data.importers.views import detect_layout, open_imported, open_pdebench, open_the_well

__all__ = ["open_pdebench", "open_the_well", "open_imported", "detect_layout", "ImportedDataset"]
