r"""State-conditional empirical RUL readout: the RUL distribution of each latent state, learned from data.

A degradation model with a discrete state ``z_t`` (an HMM's filtered
distribution :math:`\alpha_k = p(z_t = k \mid y_{0:t})`) predicts the remaining
useful life through :math:`p(r \mid z_t = k)`. The Markov chain itself gives
this as a phase-type distribution (:mod:`~statespace.prognostics.phase_type`),
but a left-to-right chain's sojourns are geometric, which makes it too wide
and biased when the real stage durations are not. The readout instead learns
:math:`p(r \mid z_t = k, \text{age } t)` from run-to-failure engines, whose RUL
is known at every cycle (``r_{it} = T_i - 1 - t``), weighting cycle ``t`` of
engine ``i`` by a posterior :math:`w_{itk}` of its state and by a Gaussian
kernel in age around the query age ``a`` (bandwidth ``h``):

.. math::

    C_k(a, r) = \sum_{i,t:\, r_{it} = r} w_{itk}\, e^{-(t-a)^2 / 2h^2}, \qquad
    \hat p(r \mid k, a) = \frac{C_k(a, r) + \lambda\, \bar p_k(r)}{\sum_{r'} C_k(a, r') + \lambda},

with :math:`\bar p_k` the age-free readout of state ``k`` (the same sum with
no kernel, normalised) as a prior of strength ``lambda`` pseudo-cycles, so
that a state never seen at some age falls back on its pooled readout. The
predictive RUL is the mixture over the current state distribution,
optionally conditioned on :math:`r \le H` (test engines cut at most ``H``
cycles before failure):

.. math::

    p(r \mid y_{0:t}) \propto \mathbb 1[r \le H] \sum_k \alpha_k\, \hat p(r \mid k, t).

Under the HMM, ``r`` is independent of the past observations given
``z_t``; the readout relaxes this to independence given ``(z_t, t)`` and
replaces the chain's geometric durations by the observed ones. With filtered
posteriors as weights (what the model will see at prediction time), the
readout also corrects the filter's systematic lag. The age kernel carries the
information a memoryless healthy state loses: how long the engine has run.

Example::

    import numpy as np
    from statespace.prognostics import StateRULReadout
    probs = [np.eye(2)[(np.arange(T) >= T - 10).astype(int)] for T in (40, 50)]  # 2 states
    ro = StateRULReadout(age_bandwidth=None).fit(probs)
    ro.distribution([0.0, 1.0], age=45).mean   # 4.5: RUL uniform on 0..9 in the last state
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..errors import DataError, ShapeError
from ..validation import as_float_array, check_int, check_probability_vector, check_real
from .phase_type import PhaseTypeDistribution


class StateRULReadout:
    """Empirical ``p(RUL | state, age)`` from run-to-failure state posteriors (see the module docstring).

    Args:
        age_bandwidth: ``h``, the Gaussian kernel width in cycles (``None``: no age conditioning).
        prior_strength: ``lambda``, pseudo-cycles of the age-free readout added to each state.
        horizon: condition predictions on ``RUL <= horizon`` (``None``: no conditioning).
    """

    def __init__(self, age_bandwidth: float | None = 20.0, prior_strength: float = 1.0, horizon: int | None = None):
        self.age_bandwidth = (
            None if age_bandwidth is None else check_real("age_bandwidth", age_bandwidth, 0.0, strict=True)
        )
        self.prior_strength = check_real("prior_strength", prior_strength, 0.0, strict=True)
        self.horizon = None if horizon is None else check_int("horizon", horizon, minimum=0)

    def fit(self, state_probs) -> StateRULReadout:
        """Learn the readout from run-to-failure engines.

        Args:
            state_probs: list of ``(T_i, K)`` state posteriors, one per engine, whose
                last row is the engine's last operating cycle (RUL 0).
        """
        if not isinstance(state_probs, (list, tuple)) or not state_probs:
            raise ShapeError("state_probs: expected a non-empty list of per-engine (T_i, K) arrays")
        arrays = [as_float_array(f"state_probs[{i}]", p, 2) for i, p in enumerate(state_probs)]
        K = arrays[0].shape[1]
        for i, p in enumerate(arrays):
            if p.shape[1] != K:
                raise ShapeError(f"state_probs[{i}]: expected {K} columns (states), got {p.shape[1]}")
            if len(p) == 0:
                raise ShapeError(f"state_probs[{i}]: engine has no cycles")
            bad = ~np.isfinite(p) | (p < 0)
            if bad.any():
                t, k = np.argwhere(bad)[0]
                raise DataError(f"state_probs[{i}]: invalid probability {p[t, k]} at cycle {t}, state {k}")
        # one row per training cycle: its age, its RUL and its state posterior (memory O(cycles x K))
        self.ages_ = np.concatenate([np.arange(len(p)) for p in arrays]).astype(np.float64)
        self.ruls_ = np.concatenate([np.arange(len(p) - 1, -1, -1) for p in arrays])
        self.weights_ = np.vstack(arrays)
        self.n_states_ = K
        # the cycles grouped by RUL, each group in cycle order (what sums the cycles of every RUL)
        self.by_rul_ = np.argsort(self.ruls_, kind="stable")
        self.rul_starts_ = np.searchsorted(self.ruls_[self.by_rul_], np.arange(int(self.ruls_.max()) + 2))
        pooled = self._counts(np.ones(len(self.ruls_)))
        mass = pooled.sum(axis=1, keepdims=True)
        if not (mass > 0).any():
            raise DataError("state_probs: no posterior mass in any state")
        # a state no training cycle visits reads out the RUL of all cycles
        overall = pooled.sum(axis=0) / pooled.sum()
        self.pooled_ = np.where(mass > 0, pooled / np.where(mass > 0, mass, 1.0), overall)
        return self

    def _counts(self, cycle_weights) -> np.ndarray:
        """``(K, R)``: posterior mass of each state on the cycles with each RUL, cycles weighted."""
        return _rul_sums(self.weights_, cycle_weights, self.by_rul_, self.rul_starts_).T

    def conditional(self, age: float) -> np.ndarray:
        """``(K, R)`` table of ``p(r | k, age)`` on ``r = 0..R-1``."""
        self._require()
        if self.age_bandwidth is None:
            return self.pooled_.copy()
        C = self._counts(np.exp(-0.5 * ((self.ages_ - float(age)) / self.age_bandwidth) ** 2))
        lam = self.prior_strength
        return (C + lam * self.pooled_) / (C.sum(axis=1, keepdims=True) + lam)

    def distribution(self, state_probs, age: float) -> PhaseTypeDistribution:
        """Predictive RUL given the state distribution ``(K,)`` at a cycle of the given age (0-based index)."""
        self._require()
        alpha = check_probability_vector("state_probs", state_probs, self.n_states_)
        return self._predictive(alpha @ self.conditional(self._check_age("age", age)))

    def distributions(self, state_probs, ages) -> list[PhaseTypeDistribution]:
        """:meth:`distribution` for many engines, ``(N, K)`` state distributions at ``(N,)`` ages:
        each distinct age's table is computed once (the cuts of a cross-validation share ages)."""
        self._require()
        probs = as_float_array("state_probs", state_probs, 2)
        ages = as_float_array("ages", ages, 1)
        if probs.shape != (ages.shape[0], self.n_states_):
            raise ShapeError(
                f"state_probs, ages: expected shapes (N, {self.n_states_}) and (N,), got {probs.shape} and {ages.shape}"
            )
        for i, p in enumerate(probs):
            check_probability_vector(f"state_probs[{i}]", p, self.n_states_)
            self._check_age(f"ages[{i}]", ages[i])
        out = [None] * len(ages)
        for age in np.unique(ages):
            rows = np.flatnonzero(ages == age)
            for i, pmf in zip(rows, probs[rows] @ self.conditional(age)):
                out[i] = self._predictive(pmf)
        return out

    @staticmethod
    def _check_age(name: str, age) -> float:
        return check_real(name, age, 0.0)

    def _predictive(self, pmf) -> PhaseTypeDistribution:
        """Normalised (and horizon-conditioned) distribution from a mixture of readout rows."""
        if self.horizon is not None:
            pmf = np.r_[pmf, np.zeros(max(0, self.horizon + 1 - len(pmf)))][: self.horizon + 1]
        z = pmf.sum()
        if z <= 0:
            # every RUL within the horizon has zero weight: the horizon itself is the best guess
            pmf = np.zeros_like(pmf)
            pmf[-1], z = 1.0, 1.0
        pmf = pmf / z
        x = np.arange(len(pmf))
        mean = float(x @ pmf)
        return PhaseTypeDistribution(x, pmf, 0.0, mean, float(((x - mean) ** 2) @ pmf))

    def _require(self):
        if not hasattr(self, "pooled_"):
            raise DataError("StateRULReadout: call fit before predicting")


@nb.njit(cache=True)
def _rul_sums(weights, cycle_weights, order, starts):
    """``(R, K)``: row ``r`` sums ``weights[c] * cycle_weights[c]`` over the cycles ``c`` with RUL ``r`` in cycle
    order (``order[starts[r]:starts[r+1]]``): one pass, where a sparse product needed the weighted
    ``(cycles, K)`` copy of the posteriors at every age."""
    out = np.zeros((len(starts) - 1, weights.shape[1]))
    for r in range(len(starts) - 1):
        for i in range(starts[r], starts[r + 1]):
            c = order[i]
            for k in range(weights.shape[1]):
                out[r, k] += weights[c, k] * cycle_weights[c]
    return out
