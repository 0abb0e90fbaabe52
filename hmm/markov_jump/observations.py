r"""How a Markov jump process is observed at the times ``t_0 < t_1 < ... < t_{T-1}``.

Three observation models, each giving per-step log-likelihoods
:math:`\ell_t(k) = \log p(y_t \mid x_{t} = k)` (0 for a missing, NaN, observation):

* ``ExactStates``: ``y_t = x_t`` (the state code as a float);
  :math:`\ell_t(k) = 0` if ``k == y_t`` else :math:`-\infty`.
* ``NoisyLabels``: a label ``y_t`` in ``0..M-1`` drawn from row ``x_t`` of a
  misclassification matrix ``B`` (:math:`B_{km} = p(y = m \mid x = k)`).
  ``NoisyLabels.uniform_replacement(K, eps)`` is the model "with probability
  ``eps`` the label is replaced by a uniformly random state":
  :math:`B = (1 - \varepsilon) I + \varepsilon / K`.
* ``GaussianLevels``: :math:`y_t \sim N(m_{x_t}, s_{x_t}^2)` (ion-channel currents).

EM learns the observation parameters from the smoothed marginals
:math:`\gamma_t(k)`: ``learn="full"`` re-estimates every entry of ``B``
(:math:`B_{km} \propto \sum_t \gamma_t(k) 1[y_t = m]`), ``learn="symmetric"`` only
the replacement rate (its closed-form maximiser is
:math:`\varepsilon = \frac{K}{K-1} \frac{\sum_t \sum_k \gamma_t(k) 1[y_t \ne k]}{\#\{t: y_t \text{ observed}\}}`),
``learn="none"`` keeps ``B``; Gaussian levels use weighted means and variances.

The three share the methods that :class:`~hmm.markov_jump.MarkovJumpProcess` and its
EM call: ``check_data``, ``log_likelihoods``, ``statistics``, ``m_step``, ``m_step_from_statistics``,
``sample`` and ``kernel_fields``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from statespace.errors import DataError, ParameterError, ShapeError
from statespace.validation import (
    as_float_array,
    check_finite,
    check_int,
    check_real,
    check_stochastic_matrix,
    split_batch,
)

#: Codes of the observation models inside the compiled kernels.
EXACT, LABELS, GAUSSIAN = 0, 1, 2

_LEARN = ("full", "symmetric", "none")


def check_times(name: str, times) -> np.ndarray:
    """Observation times: a finite, strictly increasing 1-D float array whose gaps are finite."""
    t = as_float_array(name, times, 1)
    if t.shape[0] == 0:
        raise ShapeError(f"{name}: expected at least one observation time")
    if not np.isfinite(t).all():
        i = int(np.argmax(~np.isfinite(t)))
        raise DataError(f"{name}: non-finite time {t[i]} at index {i}")
    with np.errstate(over="ignore"):
        d = np.diff(t)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        raise DataError(
            f"{name}: times must be strictly increasing, but times[{i}] = {t[i]} <= times[{i - 1}] = {t[i - 1]}"
        )
    if not np.isfinite(d).all():
        i = int(np.argmax(~np.isfinite(d))) + 1
        raise DataError(f"{name}: the gap times[{i}] - times[{i - 1}] = {t[i]} - ({t[i - 1]}) overflows float64")
    return t


def as_time_grids(name: str, times) -> tuple[list[np.ndarray], bool]:
    """Observation times by the sequence rule of ``statespace.validation``: ``(grids, single)``.

    One grid is a 1-D array or a flat list of numbers (``[0.0, 0.5, 2.0]``); several
    are a list/tuple of arrays, one per sequence. Each grid passes :func:`check_times`.
    """
    if times is None:
        raise ShapeError(f"{name}: a Markov jump process needs the observation times of each sequence")
    items, single = split_batch(name, times)
    return [check_times(name if single else f"{name}[{i}]", g) for i, g in enumerate(items)], single


def time_grids(name: str, times, lengths) -> list[np.ndarray]:
    """One checked time grid per observation sequence, of the sequence's length (see :func:`as_time_grids`)."""
    grids, one = as_time_grids(name, times)
    if len(grids) != len(lengths):
        raise ShapeError(f"{name}: expected one time array per sequence ({len(lengths)}), got {len(grids)}")
    for i, (g, n) in enumerate(zip(grids, lengths)):
        if len(g) != n:
            raise ShapeError(
                f"{name if one else f'{name}[{i}]'}: has {len(g)} entries but the sequence has {n} observations"
            )
    return grids


def _check_codes(name: str, y: np.ndarray, n_codes: int, what: str) -> None:
    v = y[:, 0]
    ok = np.isnan(v) | ((v >= 0) & (v < n_codes) & (v == np.round(v)))
    if not ok.all():
        t = int(np.argmax(~ok))
        raise DataError(
            f"{name}: unknown {what} {v[t]} at time step {t}; expected an integer code in 0..{n_codes - 1} or NaN"
        )


def _categorical_loglik(logB: np.ndarray, y: np.ndarray) -> np.ndarray:
    v = y[:, 0]
    out = np.zeros((len(v), logB.shape[0]))
    seen = ~np.isnan(v)
    out[seen] = logB[:, v[seen].astype(np.int64)].T
    return out


class ExactStates:
    """The state itself is observed (``y_t = x_t``; NaN = missing). It has no parameters."""

    __slots__ = ()
    kind = EXACT

    def __eq__(self, other):
        return isinstance(other, ExactStates)

    def __hash__(self):
        return hash(ExactStates)

    def __repr__(self):
        return "ExactStates()"

    def check_data(self, name: str, y: np.ndarray, K: int) -> None:
        """Raise :class:`~statespace.errors.DataError` naming ``name`` and the time step at the first
        observed value of ``y`` (``(T, 1)``, NaN = missing) that is not a state code ``0..K-1``."""
        _check_codes(name, y, K, "state")

    def log_likelihoods(self, y: np.ndarray, K: int) -> np.ndarray:
        """The ``(T, K)`` matrix :math:`\\log p(y_t \\mid x_t = k)` for ``y`` ``(T, 1)``: 0 where
        ``k == y_t`` or ``y_t`` is missing, ``-inf`` elsewhere."""
        with np.errstate(divide="ignore"):
            return _categorical_loglik(np.log(np.eye(K)), y)

    def statistics(self, gammas, ys) -> np.ndarray:
        """Empty: exact states have no parameters to learn."""
        return np.zeros(0)

    def m_step(self, gammas, ys):
        """``self``: exact states have no parameters to learn."""
        return self

    def m_step_from_statistics(self, stats, K: int):
        """``self``: exact states have no parameters (and ``stats`` is empty)."""
        return self

    def sample(self, states: np.ndarray, K: int, rng) -> np.ndarray:
        """The state codes ``states`` (``(T,)`` ints) themselves, as a ``(T, 1)`` float array (``rng`` is not used)."""
        return states.astype(np.float64)[:, None]

    def kernel_fields(self, K: int):
        """The observation fields ``(kind, log_emission, means, stds)`` of the compiled kernel parameters:
        ``(EXACT, log(I + 1e-300), zeros, ones)``; the kernels compare ``y_t`` with the state and ignore the rest."""
        return EXACT, np.log(np.eye(K) + 1e-300), np.zeros(K), np.ones(K)


class _LabelsBase(NamedTuple):
    emission: np.ndarray
    learn: str


class NoisyLabels(_LabelsBase):
    """Labels drawn from a misclassification matrix ``emission`` (``(K, M)``, rows sum to one).

    ``learn`` says what EM re-estimates: ``"full"`` (every entry), ``"symmetric"``
    (one replacement rate; needs ``M == K``), or ``"none"``.
    """

    __slots__ = ()
    kind = LABELS

    def __new__(cls, emission, learn: str = "full"):
        B = check_stochastic_matrix("emission", emission)
        if B.ndim != 2:
            raise ShapeError(f"emission: expected a (K, M) matrix, got shape {B.shape}")
        if learn not in _LEARN:
            raise ParameterError(f"learn: expected one of {_LEARN}, got {learn!r}")
        if learn == "symmetric" and B.shape[0] != B.shape[1]:
            raise ShapeError(f"emission: learn='symmetric' needs a square matrix, got shape {B.shape}")
        B = B.copy()
        B.flags.writeable = False
        return super().__new__(cls, B, learn)

    @classmethod
    def uniform_replacement(cls, K: int, rate: float, learn: str = "symmetric") -> NoisyLabels:
        """With probability ``rate`` the label is a uniformly random state: ``(1 - rate) I + rate / K``."""
        K = check_int("K", K, minimum=1)
        rate = check_real("rate", rate, 0.0, 1.0)
        return cls((1.0 - rate) * np.eye(K) + rate / K, learn)

    @property
    def replacement_rate(self) -> float:
        """``eps`` of the uniform-replacement form (meaningful when ``learn='symmetric'``)."""
        K = self.emission.shape[0]
        return float(self.emission[0, 1 % K] * K) if K > 1 else 0.0

    def check_data(self, name: str, y: np.ndarray, K: int) -> None:
        """Check that ``emission`` has ``K`` rows and every observed label is a code ``0..M-1``.

        Raises:
            ShapeError: ``emission`` does not have one row per state.
            DataError: an observed value is not a label code (naming ``name`` and the time step).
        """
        if self.emission.shape[0] != K:
            raise ShapeError(f"emission: expected {K} rows (one per state), got {self.emission.shape[0]}")
        _check_codes(name, y, self.emission.shape[1], "label")

    def log_likelihoods(self, y: np.ndarray, K: int) -> np.ndarray:
        r"""The ``(T, K)`` matrix :math:`\log B_{k, y_t}` for labels ``y`` ``(T, 1)`` (``-inf`` where ``B`` is
        zero), 0 where ``y_t`` is missing."""
        with np.errstate(divide="ignore"):
            return _categorical_loglik(np.log(self.emission), y)

    def m_step(self, gammas, ys):
        r"""The EM update of ``B`` from the smoothed marginals of the label sequences ``ys``.

        ``gammas`` are ``(T_i, K)`` arrays :math:`\gamma_t(k) = p(x_t = k \mid y)` paired with
        the ``(T_i, 1)`` arrays ``ys``; they give the expected counts
        :math:`N_{km} = \sum_t \gamma_t(k) 1[y_t = m]`. ``learn="full"``:
        :math:`B_{km} = N_{km} / \sum_{m'} N_{km'}` (a state with no weight keeps its row);
        ``"symmetric"``: :math:`B = (1 - \varepsilon) I + \varepsilon / K` with the maximising
        :math:`\varepsilon = \frac{K}{K-1} \sum_{k \ne m} N_{km} / \sum_{k,m} N_{km}`;
        ``"none"``: ``self``.
        """
        if self.learn == "none":
            return self
        return self.m_step_from_statistics(self.statistics(gammas, ys), self.emission.shape[0])

    def statistics(self, gammas, ys) -> np.ndarray:
        r"""The expected counts :math:`N_{km}` of :meth:`m_step`, flattened (``K*M``; additive over sequences)."""
        K, M = self.emission.shape
        counts = np.zeros((K, M))
        for g, y in zip(gammas, ys):
            v = y[:, 0]
            seen = ~np.isnan(v)
            labels, weights = v[seen].astype(np.int64), g[seen]
            # per state, the weighted counts of the symbols: bincount sums a sequence's steps in order,
            # as np.add.at did, without its per-element dispatch (EM calls this at every iteration)
            for k in range(K):
                counts[k] += np.bincount(labels, weights=weights[:, k], minlength=M)
        return counts.ravel()

    def m_step_from_statistics(self, stats, K: int):
        """M-step from expected counts ``stats = vec(E[sum_t e_{x_t} onehot(y_t)])`` (``K*M``)."""
        if self.learn == "none":
            return self
        return self._from_counts(np.clip(np.asarray(stats).reshape(self.emission.shape), 0.0, None))

    def _from_counts(self, counts):
        K, M = self.emission.shape
        if self.learn == "symmetric":
            total = counts.sum()
            mismatch = total - np.trace(counts)
            a = mismatch / ((K - 1) * total) if total > 0 and K > 1 else self.emission[0, 1 % K]
            B = np.full((K, K), a)
            np.fill_diagonal(B, 1.0 - (K - 1) * a)
            return NoisyLabels(B, self.learn)
        rows = counts.sum(axis=1, keepdims=True)
        B = np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), self.emission)
        return NoisyLabels(B, self.learn)

    def sample(self, states: np.ndarray, K: int, rng) -> np.ndarray:
        """Labels for the state codes ``states`` (``(T,)`` ints): label ``t`` is drawn from row ``states[t]``
        of ``emission`` with ``rng``; a ``(T, 1)`` float array."""
        cum = np.cumsum(self.emission[states], axis=1)
        u = rng.random(len(states))[:, None]
        labels = np.minimum((u >= cum).sum(axis=1), self.emission.shape[1] - 1)
        return labels.astype(np.float64)[:, None]

    def kernel_fields(self, K: int):
        """The observation fields ``(kind, log_emission, means, stds)`` of the compiled kernel parameters:
        ``(LABELS, log emission, zeros, ones)`` (the Gaussian fields are unused)."""
        with np.errstate(divide="ignore"):
            return LABELS, np.log(self.emission), np.zeros(K), np.ones(K)


class _GaussianBase(NamedTuple):
    means: np.ndarray
    stds: np.ndarray
    learn: bool


class GaussianLevels(_GaussianBase):
    """``y_t ~ N(means[x_t], stds[x_t]^2)``; EM re-estimates both when ``learn``."""

    __slots__ = ()
    kind = GAUSSIAN

    def __new__(cls, means, stds, learn: bool = True):
        m = check_finite("means", as_float_array("means", means, 1)).copy()
        s = check_finite("stds", as_float_array("stds", stds, 1)).copy()
        if s.shape != m.shape:
            raise ShapeError(f"stds: expected shape {m.shape} to match means, got {s.shape}")
        if (s <= 0).any():
            i = int(np.argmax(s <= 0))
            raise ParameterError(f"stds: expected positive standard deviations, got {s[i]} at state {i}")
        m.flags.writeable = False
        s.flags.writeable = False
        return super().__new__(cls, m, s, bool(learn))

    def check_data(self, name: str, y: np.ndarray, K: int) -> None:
        """Raise :class:`~statespace.errors.ShapeError` unless there is one level per state (``K``); any
        real ``y`` is possible under Gaussian levels."""
        if self.means.shape[0] != K:
            raise ShapeError(f"means: expected {K} levels (one per state), got {self.means.shape[0]}")

    def log_likelihoods(self, y: np.ndarray, K: int) -> np.ndarray:
        """The ``(T, K)`` matrix of log-densities of :math:`N(m_k, s_k^2)` at ``y_t`` for ``y`` ``(T, 1)``,
        0 where ``y_t`` is missing (``-inf`` where ``y_t`` is too many standard deviations away for float64)."""
        v = y[:, :1]
        with np.errstate(over="ignore"):  # z^2 beyond 1e308: log-density -inf, the step impossible
            z = (v - self.means[None]) / self.stds[None]
            out = -0.5 * (math.log(2 * math.pi) + z * z) - np.log(self.stds)[None]
        out[np.isnan(v[:, 0])] = 0.0
        return out

    def m_step(self, gammas, ys):
        r"""The EM update of the levels from the smoothed marginals of the sequences ``ys``.

        ``gammas`` are ``(T_i, K)`` arrays :math:`\gamma_t(k) = p(x_t = k \mid y)` paired with
        the ``(T_i, 1)`` arrays ``ys``; each level becomes the :math:`\gamma`-weighted mean
        and standard deviation of the observed ``y_t``. A state with no weight keeps its level; variances are floored at ``1e-12`` times the
        largest per-state mean square of ``y`` (a level fitted to a single point would
        otherwise collapse). ``self`` when ``learn`` is False.
        """
        if not self.learn:
            return self
        return self.m_step_from_statistics(self.statistics(gammas, ys), self.means.shape[0])

    def statistics(self, gammas, ys) -> np.ndarray:
        r"""Per state :math:`\sum_t \gamma_t(k) (1, y_t, y_t^2)` over the observed ``y_t``, flattened (``3K``; additive)."""
        m = np.zeros((self.means.shape[0], 3))
        for g, y in zip(gammas, ys):
            v = y[:, 0]
            seen = ~np.isnan(v)
            gs, vs = g[seen], v[seen]
            m[:, 0] += gs.sum(axis=0)
            m[:, 1] += gs.T @ vs
            m[:, 2] += gs.T @ (vs * vs)
        return m.ravel()

    def m_step_from_statistics(self, stats, K: int):
        """M-step from ``stats`` = per state ``E[sum_t (1, y_t, y_t^2) 1[x_t = k]]`` (``3K``)."""
        if not self.learn:
            return self
        m = np.asarray(stats).reshape(K, 3)
        return self._from_moments(np.clip(m[:, 0], 0.0, None), m[:, 1], m[:, 2])

    def _from_moments(self, w, s1, s2):
        ok = w > 1e-12
        means = np.where(ok, s1 / np.where(ok, w, 1.0), self.means)
        var = np.where(ok, s2 / np.where(ok, w, 1.0) - means**2, self.stds**2)
        # A level explained by a single point would collapse to zero variance (unbounded likelihood).
        # Each state's floor is relative to its own mean square, so the fit does not depend on the
        # data's units (y -> c y gives means -> c means, stds -> |c| stds exactly) and one outlier
        # held by another state does not inflate it; a state whose data are all exactly zero keeps
        # its previous variance.
        mean_square = np.where(ok, s2 / np.where(ok, w, 1.0), 0.0)
        var = np.where(mean_square > 0, np.maximum(var, 1e-12 * mean_square), np.where(var > 0, var, self.stds**2))
        return GaussianLevels(means, np.sqrt(var), self.learn)

    def sample(self, states: np.ndarray, K: int, rng) -> np.ndarray:
        r""":math:`y_t \sim N(m_{x_t}, s_{x_t}^2)` drawn with ``rng`` for the state codes ``states`` (``(T,)``
        ints), as a ``(T, 1)`` array."""
        return (self.means[states] + self.stds[states] * rng.standard_normal(len(states)))[:, None]

    def kernel_fields(self, K: int):
        """The observation fields ``(kind, log_emission, means, stds)`` of the compiled kernel parameters:
        ``(GAUSSIAN, zeros, means, stds)`` (the label matrix is unused)."""
        return GAUSSIAN, np.zeros((K, 1)), np.asarray(self.means), np.asarray(self.stds)
