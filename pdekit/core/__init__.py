"""pdekit's solver core: grids, stencils, Krylov solvers, preconditioners, differentiable solves.

Only torch, numpy and scipy are imported here; nothing from the layers above. The solver settings
of every solve are one :class:`~pdekit.core.solve_config.SolveConfig`; the multi-system engine
(ordering, recycling chains, batching) is :func:`pdekit.core.sequence.solve_sequence`.
"""
