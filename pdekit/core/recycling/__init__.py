"""Krylov subspace recycling for sequences of related linear systems: GCRO-DR and deflated PCG.

A data generator solves ``A_i x_i = b_i`` for many similar systems. A *recycle space* (the
approximate invariant subspace of the smallest eigenvalues, found while solving one system) is
carried to the next one, which then converges as if those eigenvalues were gone. SKR (Wang et al.,
2024) is exactly this, with GCRO-DR(m=40, k=20) over a sorted sequence (see
:mod:`pdekit.core.ordering`).

* :func:`gcrodr`: GCRO-DR(m, k) of Parks et al. (2006) for general nonsingular systems, right
  preconditioned, with harmonic-Ritz recycling (strategy A, the ``k`` values of smallest modulus).
* :func:`rcg`: deflated preconditioned CG of Saad et al. (2000) for SPD systems, with the deflation
  space refreshed from the stored CG directions after every solve.
* :func:`recycled_solve`: either method, returning a :class:`~pdekit.core.solve_result.SolveResult`
  whose ``recycle`` field holds the new space.

The caller owns the recycle state (as with ``scipy.sparse.linalg.gcrotmk``'s ``CU``)::

    space = None
    for A, b in systems:
        x, info, space = gcrodr(A, b, recycle=space)

Everything is batched over ``B`` independent *chains* (``b`` of shape ``(B, n)``): chain ``i`` has its
own recycle space (row ``i`` of ``U``), its own convergence test, and is frozen once converged.

Conventions (shared with :mod:`pdekit.core.krylov`): system ``i`` has converged when the *true*
residual satisfies ``||b_i - A x_i|| <= max(rtol ||b_i||, atol)``; one iteration is one application of
``A`` inside the Krylov loop; ``maxiter`` (default ``10 n``) bounds the iterations of each system;
``matvecs`` counts every batched application of ``A``, including the ``k`` products that rebuild
``C = A U`` when the operator or the preconditioner changed between systems. With ``k = 0`` and no
recycle space, :func:`gcrodr` is GMRES(m) and reproduces :func:`pdekit.core.krylov.gmres` (same
iterates, iterations, matvecs and residual history: the true residual is recomputed every cycle).
With ``k > 0`` a cycle restarts from the recursively updated residual ``V (beta e1 - H y)`` (one
matvec per cycle saved) and the true residual is computed only to confirm convergence. The small
dense algebra (eigenproblems, QR, SVD) is batched over the chains in float64 torch (on the device
for deflated CG; on the host, where the Givens rotations live, for GCRO-DR); the ``(B, n, .)``
blocks stay on the device and dtype of ``b``. Rebuilding ``C = A U`` for a new matrix is one
batched application of ``A`` (and ``M``) to all ``k`` columns when the operator allows it.

Both solvers decide for themselves whether recycling pays (``adapt=True``, the default): they cap
``k`` by the iterations a plain solve needs, then measure the recycled solves against the plain
one, halving ``k`` or switching recycling off (``k = 0``, the plain method exactly). The decision
travels in ``RecycleSpace.stats`` (:class:`RecycleStats`: ``active``, ``k_used``, ``reason``).

Which vectors to recycle
------------------------
Parks et al. recycle *harmonic* Ritz vectors (``selection="harmonic"``, the default, safe for
indefinite and strongly nonnormal matrices). On SPD-like problems the smallest eigenvalues are
extreme, and plain Ritz vectors (``selection="ritz"``) approximate them better; ``docs/benchmarks.md``
compares the two (and scipy's ``gcrotmk``) on sorted sequences of PDE systems.

Layout: :mod:`.space` (:class:`RecycleSpace` and what both methods share), :mod:`.gcrodr`,
:mod:`.rcg`, and :mod:`.solve` (:func:`recycled_solve`).

References
----------
.. [1] M. L. Parks, E. de Sturler, G. Mackey, D. D. Johnson, S. Maiti, "Recycling Krylov subspaces
   for sequences of linear systems", SIAM J. Sci. Comput. 28(5):1651-1674, 2006.
.. [2] Y. Saad, M. Yeung, J. Erhel, F. Guyomarc'h, "A deflated version of the conjugate gradient
   algorithm", SIAM J. Sci. Comput. 21(5):1909-1926, 2000.
.. [3] H. Wang, Z. Hao, J. Wang, Z. Geng, Z. Wang, B. Li, F. Wu, "Accelerating data generation for
   neural operators via Krylov subspace recycling", ICLR 2024, arXiv:2401.09516.
"""

from pdekit.core.recycling.gcrodr import gcrodr
from pdekit.core.recycling.rcg import rcg
from pdekit.core.recycling.solve import recycled_solve
from pdekit.core.recycling.space import RecycleSpace, RecycleStats

__all__ = ["RecycleSpace", "RecycleStats", "gcrodr", "rcg", "recycled_solve"]
