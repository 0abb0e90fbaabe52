r"""The convergence monitor shared by every EM loop of the library.

EM (and generalised EM, whose M-step only has to raise the expected
complete-data objective) never decreases its objective :math:`\ell_k` (the
log-likelihood, plus the log-prior for MAP-EM). In floating point the objective
is a long sum, so two evaluations of numerically equal parameters can differ by
round-off; a larger drop means something went wrong (an M-step that is not a
maximiser, a floor that moved a parameter, numerical failure in the E-step).

The rule, applied after each new objective :math:`\ell_k` (with
:math:`\Delta_k = \ell_k - \ell_{k-1}` and :math:`s_k = \max(1, |\ell_{k-1}|)`):

* round-off allowance :math:`a_k = \text{ROUNDOFF}\cdot s_k` with ``ROUNDOFF = 1e-9``:
  far above the float64 round-off of a sum of log-densities
  (about :math:`10^{-16}` per term, relative to :math:`|\ell|`), far below any
  genuine EM progress worth reporting;
* :math:`\Delta_k < -a_k`: the objective **dropped**. The loop stops, keeps the
  best parameters seen (those before the drop), reports ``converged=False`` and
  warns with :class:`ObjectiveDecreaseWarning`, naming the iteration and the drop;
* :math:`-a_k \le \Delta_k < \text{tol}\cdot s_k`: **converged** (the improvement
  is below the tolerance and not a genuine decrease);
* otherwise the loop continues, until ``max_iter``.

Example::

    from statespace.convergence import ConvergenceMonitor
    monitor = ConvergenceMonitor(tol=1e-6, label="toy ascent")
    theta = 0.0
    monitor.record(-(theta - 1.0) ** 2, theta)          # the start
    for n_iter in range(1, 100):
        theta += 0.5 * (1.0 - theta)                    # each step raises -(theta - 1)^2
        if monitor.record(-(theta - 1.0) ** 2, theta):  # once per evaluated parameter set
            break
    monitor.result(n_iter)                              # a FitResult: params, history, converged, n_iter

The history handed back (``FitResult.log_likelihoods``) ends with the objective
of the returned parameters: after a drop it stops at the best entry (the warning
reports the dropped value).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .errors import ParameterError
from .interface import FitResult

#: Relative size of an objective decrease attributed to round-off (see the module docstring).
ROUNDOFF = 1e-9


class ObjectiveDecreaseWarning(RuntimeWarning):
    """An EM iteration lowered its objective beyond round-off; the fit stopped at the best parameters."""


def roundoff_allowance(objective: float) -> float:
    """The largest decrease of ``objective`` attributed to round-off: ``ROUNDOFF * max(1, |objective|)``."""
    return ROUNDOFF * max(1.0, abs(float(objective)))


class ConvergenceMonitor:
    """Record the objective of each parameter set EM visits and decide when to stop.

    Args:
        tol: relative tolerance (``>= 0``): converged when the improvement is below
            ``tol * max(1, |previous objective|)`` (and not a drop beyond round-off).
        label: names the algorithm in warnings and errors.

    Call :meth:`record` with each objective and the parameters it belongs to, in
    the order EM visits them; it returns ``True`` when the loop must stop
    (converged, or the objective dropped). :meth:`result` builds the
    :class:`~statespace.interface.FitResult`.
    """

    def __init__(self, tol: float, label: str = "EM"):
        tol = float(tol)
        if not tol >= 0.0 or math.isinf(tol):
            raise ParameterError(f"tol: expected a finite non-negative tolerance, got {tol}")
        self.tol = tol
        self.label = label
        self.history: list[float] = []
        self.converged = False
        self.decreased = False
        self._params: Any = None
        self._best_params: Any = None
        self._best_index = -1

    def record(self, objective: float, params: Any) -> bool:
        """Add the objective of ``params``; ``True`` means stop (see the module docstring)."""
        objective = float(objective)
        k = len(self.history)
        if math.isnan(objective) or objective == math.inf:
            raise ParameterError(
                f"{self.label}: the objective is {objective} at iteration {k}; the parameters are numerically invalid"
            )
        self.history.append(objective)
        self._params = params
        if k == 0:
            self._best_params, self._best_index = params, 0
            return False
        prev = self.history[-2]
        delta = objective - prev
        scale = max(1.0, abs(prev))
        if delta < -ROUNDOFF * scale:
            self.decreased = True
            best = self.history[self._best_index]
            warnings.warn(
                f"{self.label}: the objective decreased at iteration {k} from {prev:.17g} to {objective:.17g} "
                f"(by {-delta:.3g}, beyond the round-off allowance {ROUNDOFF * scale:.3g}); stopping and keeping the "
                f"parameters of iteration {self._best_index} (objective {best:.17g}), converged=False",
                ObjectiveDecreaseWarning,
                stacklevel=3,
            )
            return True
        if objective >= self.history[self._best_index]:
            self._best_params, self._best_index = params, k
        if delta < self.tol * scale:
            self.converged = True
            return True
        return False

    @property
    def best_params(self) -> Any:
        """The parameters the fit returns: the best seen after a drop, else the last recorded."""
        return self._best_params if self.decreased else self._params

    def result(self, n_iter: int) -> FitResult:
        """The :class:`FitResult`: returned parameters, their history, the flag, ``n_iter``."""
        hist = self.history[: self._best_index + 1] if self.decreased else self.history
        return FitResult(self.best_params, np.asarray(hist, dtype=np.float64), self.converged, int(n_iter))
