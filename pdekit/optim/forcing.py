"""Forcing terms of inexact Newton methods: how accurately to solve each inner CG system.

References
----------
.. [1] S. C. Eisenstat, H. F. Walker, "Choosing the forcing terms in an inexact Newton method",
   SIAM J. Sci. Comput. 17 (1996) 16-32.
.. [2] U. Villa, N. Petra, O. Ghattas, "hIPPYlib", ACM Trans. Math. Softw. 47 (2021) 16 (the
   ``sqrt(||g_k|| / ||g_0||)`` rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from pdekit.errors import PdekitUserError

__all__ = ["EisenstatWalker", "Forcing", "relative_forcing"]

Forcing = Literal["ew2", "hippylib"] | float


def relative_forcing(gnorm: float, g0: float, eta_max: float = 0.5) -> float:
    """``min(eta_max, sqrt(||g_k|| / ||g_0||))`` (``eta_max`` when ``||g_0|| = 0``).

    Examples
    --------
    >>> relative_forcing(0.04, 4.0)
    0.1
    """
    return min(eta_max, math.sqrt(gnorm / g0)) if g0 > 0 else eta_max


@dataclass
class EisenstatWalker:
    """Forcing terms ``eta_k``: the CG tolerance relative to ``||g_k||`` at Newton iteration ``k``.

    Call it once per outer iteration with ``||g_k||``; it remembers the previous values.

    Parameters
    ----------
    choice : {"ew2", "hippylib"} or float
        ``"ew2"``: Eisenstat-Walker choice 2, ``eta_k = gamma (||g_k|| / ||g_{k-1}||)^alpha`` with
        the safeguard ``eta_k >= gamma eta_{k-1}^alpha`` when that exceeds 0.1, capped at
        ``eta_max``; ``"hippylib"``: :func:`relative_forcing`; a float: a constant.
    eta_max, gamma, alpha : float

    Examples
    --------
    >>> ew = EisenstatWalker()
    >>> round(ew(1.0), 3), round(ew(0.1), 4)     # eta_max, then the safeguard 0.9 * 0.5**2
    (0.5, 0.225)
    >>> round(ew(0.001), 4)                      # 0.9 * 0.01**2, safeguard 0.9 * 0.225**2 < 0.1
    0.0001

    References
    ----------
    .. [1] S. C. Eisenstat, H. F. Walker, SIAM J. Sci. Comput. 17 (1996) 16-32.
    """

    choice: Forcing = "ew2"
    eta_max: float = 0.5
    gamma: float = 0.9
    alpha: float = 2.0
    _prev_g: float | None = field(default=None, repr=False)
    _prev_eta: float | None = field(default=None, repr=False)
    _g0: float | None = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.choice, (int, float)) and self.choice not in ("ew2", "hippylib"):
            raise PdekitUserError(
                f"forcing must be 'ew2', 'hippylib' or a float, got {self.choice!r}"
            )

    def __call__(self, gnorm: float) -> float:
        if self._g0 is None:
            self._g0 = gnorm
        if isinstance(self.choice, (int, float)):
            eta = float(self.choice)
        elif self.choice == "hippylib":
            eta = relative_forcing(gnorm, self._g0, self.eta_max)
        elif self._prev_g is None:
            eta = self.eta_max
        else:
            eta = self.gamma * (gnorm / self._prev_g) ** self.alpha
            safe = self.gamma * self._prev_eta**self.alpha
            if safe > 0.1:
                eta = max(eta, safe)
            eta = min(eta, self.eta_max)
        self._prev_g, self._prev_eta = gnorm, eta
        return eta
