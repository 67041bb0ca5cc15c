"""pdekit's solver core: grids, stencils, Krylov solvers, preconditioners, differentiable solves.

Only torch, numpy and scipy are imported here; nothing from the layers above.
"""
