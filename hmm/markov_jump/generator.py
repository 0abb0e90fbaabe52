r"""The generator of a Markov jump process and what follows from it.

A continuous-time Markov chain on states ``0..K-1`` is defined by its generator
(rate matrix) :math:`Q` and its initial distribution :math:`\pi_0`:

.. math::

    q_{ij} \ge 0 \ (i \ne j), \qquad q_{ii} = -\textstyle\sum_{j \ne i} q_{ij}, \qquad
    P(t) = e^{Q t}, \quad P(t)_{ij} = \Pr(x_{s+t} = j \mid x_s = i).

The chain stays in state ``i`` for an exponential time of rate :math:`-q_{ii}`
and then jumps to ``j`` with probability :math:`q_{ij} / (-q_{ii})`. Zero
off-diagonal rates are *structural zeros*: the direct jump is impossible, and
EM keeps it so (the expected count of an impossible jump is zero).

Derived quantities (all for an irreducible chain where it matters):

* stationary distribution: :math:`\pi Q = 0`, :math:`\sum_i \pi_i = 1`;
* relaxation times :math:`\tau_k = -1/\mathrm{Re}\,\lambda_k` for the non-zero
  eigenvalues :math:`\lambda_k` of :math:`Q`, slowest first;
* mean first-passage times :math:`m_{ij}` (expected time to first reach ``j``
  from ``i``), solving :math:`\sum_k q_{ik} m_{kj} = -1` for :math:`i \ne j`,
  :math:`m_{jj} = 0`.

Example::

    import numpy as np
    from hmm.markov_jump import MJPParams, stationary_distribution
    Q = np.array([[-1.0, 1.0], [2.0, -2.0]])
    p = MJPParams(Q)                       # uniform initial distribution
    stationary_distribution(p.Q)           # array([2/3, 1/3])
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from statespace.errors import ParameterError, ShapeError
from statespace.validation import as_float_array, check_finite, check_probability_vector

from .observations import ExactStates, GaussianLevels, NoisyLabels

#: Rows of a generator must sum to zero within this tolerance (relative to the row's largest rate).
ROW_SUM_RTOL = 1e-8


def check_generator(name: str, Q) -> np.ndarray:
    """A square matrix with non-negative off-diagonal entries and rows summing to zero."""
    Q = check_finite(name, as_float_array(name, Q, 2))
    K = Q.shape[0]
    if Q.shape != (K, K) or K < 1:
        raise ShapeError(f"{name}: expected a square (K, K) generator, got shape {Q.shape}")
    off = Q - np.diag(np.diag(Q))
    if (off < 0).any():
        i, j = (int(v) for v in np.argwhere(off < 0)[0])
        raise ParameterError(f"{name}: negative rate {Q[i, j]} at ({i}, {j}); off-diagonal rates must be >= 0")
    sums = Q.sum(axis=1)
    scale = np.maximum(np.abs(Q).max(axis=1), 1.0)
    bad = np.abs(sums) > ROW_SUM_RTOL * scale
    if bad.any():
        i = int(np.argmax(bad))
        raise ParameterError(
            f"{name}: row {i} sums to {sums[i]:.6g}, expected 0 (set the diagonal to minus the sum of the row's rates)"
        )
    return Q


def generator_from_rates(rates) -> np.ndarray:
    """A generator whose off-diagonal entries are ``rates`` (its diagonal is ignored and recomputed)."""
    R = np.array(as_float_array("rates", rates, 2), copy=True)
    np.fill_diagonal(R, 0.0)
    np.fill_diagonal(R, -R.sum(axis=1))
    return R


class _MJPParamsBase(NamedTuple):
    Q: np.ndarray
    initial: np.ndarray
    observation_kind: str
    emission: Any
    means: Any
    stds: Any
    learn: str


class MJPParams(_MJPParamsBase):
    """Parameters of a (possibly hidden) Markov jump process.

    Build it as ``MJPParams(Q, initial, observation)``; the observation model is
    stored flat (``observation_kind``, ``emission``, ``means``, ``stds``, ``learn``)
    so that ``statespace.persistence.save_params`` can write it, and
    :attr:`observation` rebuilds it.

    Attributes:
        Q: ``(K, K)`` generator: off-diagonal rates ``>= 0``, rows summing to zero.
        initial: ``(K,)`` distribution of the state at the first observation time
            (uniform when omitted).
        observation: the observation model (``hmm.markov_jump.observations``);
            exact states when omitted.
    """

    __slots__ = ()

    def __new__(
        cls, Q, initial=None, observation=None, observation_kind=None, emission=None, means=None, stds=None, learn=None
    ):
        Q = check_generator("Q", Q)
        K = Q.shape[0]
        if initial is None:
            initial = np.full(K, 1.0 / K)
        initial = check_probability_vector("initial", initial, K)
        if observation is None:
            observation = _observation_from_fields(observation_kind, emission, means, stds, learn)
        if not isinstance(observation, (ExactStates, NoisyLabels, GaussianLevels)):
            raise ParameterError(
                f"observation: expected ExactStates, NoisyLabels or GaussianLevels, got {type(observation).__name__}"
            )
        if isinstance(observation, NoisyLabels):
            rows, fields = (
                observation.emission.shape[0],
                ("labels", observation.emission, None, None, observation.learn),
            )
        elif isinstance(observation, GaussianLevels):
            learn = "full" if observation.learn else "none"
            rows, fields = observation.means.shape[0], ("gaussian", None, observation.means, observation.stds, learn)
        else:
            rows, fields = K, ("exact", None, None, None, "none")
        if rows != K:
            raise ShapeError(f"observation: its parameters cover {rows} states but Q has {K}")
        Q = Q.copy()
        initial = initial.copy()
        Q.flags.writeable = False
        initial.flags.writeable = False
        return super().__new__(cls, Q, initial, *fields)

    def __getnewargs__(self):
        # copy and pickle (Dask ships parameters to workers) rebuild through __new__, whose third
        # positional argument is the observation model, not the first flat field
        return (self.Q, self.initial, self.observation)

    @property
    def observation(self):
        """The observation model (rebuilt from the stored fields)."""
        return _observation_from_fields(self.observation_kind, self.emission, self.means, self.stds, self.learn)

    @property
    def n_states(self) -> int:
        """``K``, the number of states of the jump process (the size of ``Q``)."""
        return self.Q.shape[0]


def _observation_from_fields(kind, emission, means, stds, learn):
    if kind is None or kind == "exact":
        return ExactStates()
    if kind == "labels":
        return NoisyLabels(emission, learn if learn is not None else "full")
    if kind == "gaussian":
        return GaussianLevels(means, stds, learn != "none")
    raise ParameterError(f"observation_kind: expected 'exact', 'labels' or 'gaussian', got {kind!r}")


def stationary_distribution(Q) -> np.ndarray:
    """The ``pi`` with ``pi Q = 0`` and ``sum(pi) = 1`` (unique for an irreducible chain).

    Grassmann-Taksar-Heyman state reduction: states are censored one by one
    (eliminating ``k`` adds ``q_ik q_kj / s_k`` to the rate ``i -> j``, with
    ``s_k`` the sum of ``k``'s rates to the states that remain), then ``pi`` is
    rebuilt from ``pi_k s_k = sum_{i<k} pi_i q_ik``. No subtraction occurs, so
    every entry is accurate to a few ulps relative, even for nearly decoupled
    chains where a null-space or least-squares solve loses digits in
    proportion to the condition number. When a state cannot exit to those
    that remain (a reducible chain) the stationary law is not unique and one
    is returned by least squares on ``Q / max|q_ij|``.
    """
    Q = check_generator("Q", Q)
    K = Q.shape[0]
    scale = np.abs(Q).max()
    if scale == 0.0:
        return np.full(K, 1.0 / K)
    A = (Q - np.diag(np.diag(Q))) / scale  # pi is scale-free; products of rates of 1e-300 would underflow
    exit_rates = np.empty(K)
    for k in range(K - 1, 0, -1):
        exit_rates[k] = A[k, :k].sum()
        if not exit_rates[k] > 0.0:
            return _stationary_least_squares(Q)
        A[:k, :k] += np.outer(A[:k, k], A[k, :k]) / exit_rates[k]
    pi = np.empty(K)
    pi[0] = 1.0
    for k in range(1, K):
        pi[k] = pi[:k] @ A[:k, k] / exit_rates[k]
    return pi / pi.sum()


def _stationary_least_squares(Q) -> np.ndarray:
    K = Q.shape[0]
    scale = np.abs(Q).max()
    # Replace one balance equation by the normalisation; least squares copes with
    # the rank deficiency of reducible chains by returning one stationary law.
    A = np.vstack([Q.T / scale, np.ones((1, K))])
    rhs = np.zeros(K + 1)
    rhs[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def relaxation_times(Q) -> np.ndarray:
    """``-1 / Re(lambda)`` for the non-zero eigenvalues of ``Q``, slowest first (``K - 1`` values when irreducible)."""
    Q = check_generator("Q", Q)
    lam = np.linalg.eigvals(Q)
    scale = max(np.abs(lam).max(), 1e-300)
    re = lam.real[np.abs(lam) > 1e-10 * scale]
    return np.sort(-1.0 / re)[::-1]


def mean_first_passage_times(Q) -> np.ndarray:
    """``M[i, j]``: expected time to first reach ``j`` starting from ``i`` (``M[j, j] = 0``).

    ``inf`` where the chain started at ``i`` misses ``j`` with positive
    probability (``j`` unreachable, or reachable only along some paths of a
    reducible chain); the finite entries solve ``sum_k q_ik m_kj = -1`` on the
    states that hit ``j`` almost surely.
    """
    Q = check_generator("Q", Q)
    K = Q.shape[0]
    adj = (Q > 0) & ~np.eye(K, dtype=bool)
    M = np.zeros((K, K))
    for j in range(K):
        g = adj.copy()
        g[j] = False  # the clock stops at j
        reach = g.copy()
        for k in range(K):  # Warshall's transitive closure
            reach |= reach[:, k : k + 1] & reach[k : k + 1, :]
        hits = reach[:, j]
        sure = np.array(
            [i != j and hits[i] and all(hits[k] or k == j for k in np.flatnonzero(reach[i])) for i in range(K)]
        )
        m = np.full(K, np.inf)
        m[j] = 0.0
        if sure.any():
            idx = np.flatnonzero(sure)
            m[idx] = np.linalg.solve(Q[np.ix_(idx, idx)], -np.ones(len(idx)))
        M[:, j] = m
    return M
