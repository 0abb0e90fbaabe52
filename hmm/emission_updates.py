r"""Expected sufficient statistics and closed-form M-steps of the HMM emissions.

For the autoregressive Gaussian of :mod:`hmm.emissions` (regression
:math:`y_t \sim N(W_k^\top x_t, \Sigma_k)`), EM needs per state

.. math::

    n_k = \sum_t \gamma_t(k), \quad S^{xx}_k = \sum_t \gamma_t(k) x_t x_t^\top, \quad
    S^{xy}_k = \sum_t \gamma_t(k) x_t \hat y_t^\top, \quad
    S^{yy}_k = \sum_t \gamma_t(k) (\hat y_t \hat y_t^\top + C_t),

with :math:`\hat y_t, C_t` the conditional mean and covariance of :math:`y_t` given
its observed coordinates (exact EM with missing data), plus the same moments of the
initial / restart steps. The M-step is weighted least squares with the priors of
:mod:`hmm.emissions` (ridge :math:`\Lambda`, covariance prior :math:`\psi, \nu_0`):

.. math::

    W_k = (S^{xx}_k + \Lambda)^{-1} S^{xy}_k, \qquad
    \Sigma_k = \frac{S^{yy}_k - S^{yx}_k W_k + \psi I}{n_k + \nu_0}.

Categorical: :math:`B_{km} \propto \sum_t \gamma_t(k) [y_t = m] + \text{pseudo-count}`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.copy import copy_into
from statespace._numerics.fastmath import FASTMATH
from statespace._numerics.linalg import cholesky, solve_lower
from statespace._ragged import even_cuts, n_threads_for, run_parts
from statespace._scratch import scratch
from statespace._standalone import standalone
from statespace.validation import check_finite

from .emissions import (
    TIME_BLOCK,
    CategoricalEmissionParams,
    EmissionPrior,
    GaussianEmissionParams,
    clean_rows_into,
    factor_stack,
    inverse_factors,
    observed_split,
    regressor,
    stacked_block,
)


@nb.njit(cache=True)
def _conditional_fill(yrow, mean, cov, yhat, C):
    r"""``yhat = E[y | observed]``, ``C = Cov[y | observed]`` (zero on observed coordinates).

    With :math:`S_{oo} = L L^\top`, :math:`z = L^{-1} r_o` and :math:`W = L^{-1} S_{om}`:
    :math:`E[y_m \mid y_o] = \mu_m + W^\top z` and :math:`\operatorname{Cov} = S_{mm} - W^\top W`,
    by the library's small-matrix loops (:mod:`statespace._numerics.linalg`; LAPACK's wrappers took
    4.7 s to compile before an AR model's first fit, for rows that are rarely partly observed). Should
    round-off make the factor of :math:`S_{oo}` (a principal block of a covariance) fail, the missing
    coordinates are NaN, which the M-step rejects rather than pass on.
    """
    d = yrow.shape[0]
    obs, mis = observed_split(yrow)
    n_obs = obs.shape[0]
    n_mis = d - n_obs
    C[:] = 0.0
    if n_obs == 0:
        copy_into(mean, yhat)
        copy_into(cov, C)
        return
    L = np.empty((n_obs, n_obs))
    z = np.empty(n_obs)
    W = np.empty((n_mis, n_obs))
    for i in range(n_obs):
        yhat[obs[i]] = yrow[obs[i]]
        z[i] = yrow[obs[i]] - mean[obs[i]]
        for j in range(n_obs):
            L[i, j] = cov[obs[i], obs[j]]
    for i in range(n_mis):
        for j in range(n_obs):
            W[i, j] = cov[mis[i], obs[j]]
    if not cholesky(L, L, n_obs):
        for i in range(n_mis):
            yhat[mis[i]] = np.nan
        return
    solve_lower(L, z, n_obs)
    for i in range(n_mis):
        solve_lower(L, W[i], n_obs)
    for i in range(n_mis):
        s = mean[mis[i]]
        for j in range(n_obs):
            s += W[i, j] * z[j]
        yhat[mis[i]] = s
        for i2 in range(n_mis):
            c = cov[mis[i], mis[i2]]
            for j in range(n_obs):
                c -= W[i, j] * W[i2, j]
            C[mis[i], mis[i2]] = c


@standalone
@nb.njit(cache=True)
def ar_accumulate(y, u, L, gamma, W, covs, mu0, covs0, n, Sxx, Sxy, Syy, n0, s0, S00):
    """Add the expected sufficient statistics of one sequence, weighted by ``gamma (T, K)``.

    Regression steps feed ``n, Sxx (K,q,q), Sxy (K,q,d), Syy (K,d,d)``; initial /
    restart steps feed ``n0, s0 (K,d), S00 (K,d,d)``. Missing coordinates enter by
    their conditional expectation under the current parameters.
    """
    T, d = y.shape
    K, q, _ = W.shape
    x = np.empty(q)
    yhat = np.empty(d)
    C = np.zeros((d, d))
    for t in range(T):
        n_obs = _n_observed(y, t)
        if n_obs == 0:
            continue
        has_reg = regressor(y, u, t, L, x)
        for k in range(K):
            w = gamma[t, k]
            if w == 0.0:
                continue
            _expected_row(y, t, k, n_obs, has_reg, x, W, covs, mu0, covs0, yhat, C)
            _add_stats(k, w, x, has_reg, yhat, C, n_obs < d, n, Sxx, Sxy, Syy, n0, s0, S00)


@nb.njit(cache=True)
def _n_observed(y, t):
    n_obs = 0
    for j in range(y.shape[1]):
        if not math.isnan(y[t, j]):
            n_obs += 1
    return n_obs


@nb.njit(cache=True)
def _expected_row(y, t, k, n_obs, has_reg, x, W, covs, mu0, covs0, yhat, C):
    """``yhat = E[y_t | observed, z_t = k]`` and ``C`` its conditional covariance (zero when all observed)."""
    d = y.shape[1]
    if n_obs == d:
        for j in range(d):
            yhat[j] = y[t, j]
    elif has_reg:
        mean = np.empty(d)  # only for partly observed rows: rare, and no cost on the common path
        for j in range(d):
            s = 0.0
            for i in range(x.shape[0]):
                s += W[k, i, j] * x[i]
            mean[j] = s
        _conditional_fill(y[t], mean, covs[k], yhat, C)
    else:
        _conditional_fill(y[t], mu0[k], covs0[k], yhat, C)


@nb.njit(cache=True)
def _add_stats(k, w, x, has_reg, yhat, C, partial, n, Sxx, Sxy, Syy, n0, s0, S00):
    q = x.shape[0]
    d = yhat.shape[0]
    if has_reg:
        n[k] += w
        for i in range(q):
            wx = w * x[i]
            for i2 in range(q):
                Sxx[k, i, i2] += wx * x[i2]
            for j in range(d):
                Sxy[k, i, j] += wx * yhat[j]
        for i in range(d):
            wy = w * yhat[i]
            for j in range(d):
                Syy[k, i, j] += wy * yhat[j]
        if partial:
            for i in range(d):
                for j in range(d):
                    Syy[k, i, j] += w * C[i, j]
    else:
        n0[k] += w
        for i in range(d):
            s0[k, i] += w * yhat[i]
            for j in range(d):
                S00[k, i, j] += w * yhat[i] * yhat[j]
        if partial:
            for i in range(d):
                for j in range(d):
                    S00[k, i, j] += w * C[i, j]


@nb.njit(cache=True)
def ar_accumulate_step(y, u, t, L, k, W, covs, mu0, covs0, n, Sxx, Sxy, Syy, n0, s0, S00):
    """Add the statistics of step ``t`` in state ``k`` (weight 1): the per-particle version."""
    d = y.shape[1]
    q = W.shape[1]
    n_obs = _n_observed(y, t)
    if n_obs == 0:
        return
    x = np.empty(q)
    yhat = np.empty(d)
    C = np.zeros((d, d))
    has_reg = regressor(y, u, t, L, x)
    _expected_row(y, t, k, n_obs, has_reg, x, W, covs, mu0, covs0, yhat, C)
    _add_stats(k, 1.0, x, has_reg, yhat, C, n_obs < d, n, Sxx, Sxy, Syy, n0, s0, S00)


@nb.njit(cache=True)
def ar_accumulate_batch(y, u, offsets, L, gamma, W, covs, mu0, covs0, n, Sxx, Sxy, Syy, n0, s0, S00):
    """:func:`ar_accumulate` over each sequence of a ragged batch (the lag window restarts at each start)."""
    for s in range(offsets.shape[0] - 1):
        a, b = offsets[s], offsets[s + 1]
        ar_accumulate(y[a:b], u[a:b], L, gamma[a:b], W, covs, mu0, covs0, n, Sxx, Sxy, Syy, n0, s0, S00)


#: Rows per chunk of :func:`weighted_scatter` (a multiple of ``TIME_BLOCK``): the unit of its parallel work.
SCATTER_CHUNK_ROWS = 64 * TIME_BLOCK


def weighted_scatter(y, u, L, offsets, gamma, diagonal, S):
    r"""Add :math:`\sum_t \gamma_t(k)\, z_t z_t^\top` over the fast rows ``t`` to ``S[k]``; returns the fast-row mask.

    :math:`z_t = (x_t, y_t)` stacks the regressors :math:`x_t = (1, y_{t-1}, \dots,
    y_{t-L}, u_t)` of :mod:`hmm.emissions` and the observations; a row is fast when it
    is fully observed and has a full lag window inside its sequence (``offsets``:
    the window restarts at each start). The blocks of ``S (K, q + d, q + d)`` are
    then :math:`S^{xx}_k`, :math:`S^{xy}_k` and :math:`S^{yy}_k`, and ``S[k, 0, 0]``
    is :math:`n_k`. ``diagonal``: the ``yy`` block gets its diagonal only (all the
    M-step of diagonal covariances reads). Only the upper triangle is summed, then
    mirrored. The rows are cut into chunks of :data:`SCATTER_CHUNK_ROWS` (fixed,
    so that the sums do not depend on the threads), summed on threads and added in chunk order.

    Blocks of :data:`hmm.emissions.TIME_BLOCK` steps are copied with time innermost
    (rows not fast weighted 0, the last block padded with zeros), so that every
    entry is a vectorised dot product over time of a constant length: 4x faster
    than adding one step's outer product at a time at ``d = 8``, and without the
    ``(T, q^2)`` outer-product arrays of a matrix-product formulation (3x faster
    with ``L = 1``).
    """
    N = y.shape[0]
    # kept scratch (an E-step's): a fresh (N,) block is fresh pages on a Dask worker at every iteration
    fast = clean_batch_rows(y, L, offsets, scratch("hmm.scatter.fast", -(-N // 8)).view(np.bool_)[:N])
    cuts = np.append(np.arange(0, N, SCATTER_CHUNK_ROWS), N).astype(np.int64)
    parts = np.zeros((len(cuts) - 1, *S.shape))
    threads = max(1, min(n_threads_for(None), len(parts)))  # no rows: one empty part
    run_parts(
        lambda c0, c1: _scatter_chunks(y, u, L, fast, gamma, diagonal, cuts, c0, c1, parts),
        even_cuts(len(parts), threads),
    )
    _add_mirrored(parts, S)
    return fast


@nb.njit(cache=True)
def _add_mirrored(parts, S):
    """``S += parts[c]`` in chunk order (the sums then do not depend on the threads), then the lower
    triangles of ``S`` set from the upper ones (one compiled call: NumPy's loop and mirror cost 15 us,
    half of a short sequence's statistics)."""
    K, p = S.shape[0], S.shape[1]
    for c in range(parts.shape[0]):
        for k in range(K):
            for i in range(p):
                for j in range(i, p):
                    S[k, i, j] += parts[c, k, i, j]
    for k in range(K):
        for i in range(p):
            for j in range(i):
                S[k, i, j] = S[k, j, i]


@nb.njit(cache=True)
def clean_batch_rows(y, L, offsets, fast):
    """:func:`~hmm.emissions.clean_rows` of every sequence of a ragged batch (the lag window restarts at each
    start) into the ``(N,)`` flags ``fast``; returns them."""
    for i in range(offsets.shape[0] - 1):
        clean_rows_into(y, L, offsets[i], offsets[i + 1], fast)
    return fast


@nb.njit(cache=True, nogil=True, fastmath=FASTMATH)
def _scatter_chunks(y, u, L, fast, gamma, diagonal, cuts, c0, c1, parts):
    """The upper triangles of :func:`weighted_scatter`'s sums over chunks ``c0:c1`` of rows, chunk ``c`` into ``parts[c]``."""
    K, p = parts.shape[1], parts.shape[2]
    q = p - y.shape[1]
    T = y.shape[0]
    Zb = np.empty((p, TIME_BLOCK))
    Gb = np.empty((K, TIME_BLOCK))
    Wb = np.empty(TIME_BLOCK)
    for c in range(c0, c1):
        S = parts[c]
        for t0 in range(cuts[c], cuts[c + 1], TIME_BLOCK):
            stacked_block(y, u, L, fast, t0, Zb)
            for s in range(TIME_BLOCK):
                t = t0 + s
                use = t < T and fast[t]
                for k in range(K):
                    Gb[k, s] = gamma[t, k] if use else 0.0
            for k in range(K):
                Gk = Gb[k]
                for i in range(p):
                    Zi = Zb[i]
                    for s in range(TIME_BLOCK):
                        Wb[s] = Gk[s] * Zi[s]
                    for j in range(i, i + 1 if diagonal and i >= q else p):
                        Zj = Zb[j]
                        acc = 0.0
                        for s in range(TIME_BLOCK):
                            acc += Wb[s] * Zj[s]
                        S[k, i, j] += acc


def gaussian_accumulate(
    e: GaussianEmissionParams, y, u, gamma, stats: GaussianStats, offsets=None, diagonal: bool = False
) -> None:
    """Add the expected statistics of one sequence, or of a ragged batch (``offsets``), to ``stats`` (in place).

    The fast rows (full lag window, fully observed) are summed in one compiled pass
    (:func:`weighted_scatter`); the few others (missing coordinates, restarts) go
    through :func:`ar_accumulate`. Without lags the rows are independent given
    ``gamma``, so a batch is summed as one long sequence. ``diagonal``: the fast rows
    add only the diagonal of ``S^yy``, all that the M-step of diagonal covariances
    reads (it drops the off-diagonal entries of every scatter matrix).
    """
    T, d = y.shape
    K = gamma.shape[1]
    offsets = _accumulate_offsets(e, T, offsets)
    q = e.weights.shape[1]
    S = np.zeros((K, q + d, q + d))
    fast = weighted_scatter(y, u, e.lags, offsets, gamma, diagonal, S)
    stats.n[:] += S[:, 0, 0]
    stats.Sxx[:] += S[:, :q, :q]
    stats.Sxy[:] += S[:, :q, q:]
    stats.Syy[:] += S[:, q:, q:]
    if not fast.all():
        g_slow = np.where(fast[:, None], 0.0, gamma)
        ar_accumulate_batch(y, u, offsets, e.lags, g_slow, e.weights, e.covs, e.init_means, e.init_covs, *stats)


def _accumulate_offsets(e: GaussianEmissionParams, T: int, offsets) -> np.ndarray:
    """The sequence boundaries :func:`gaussian_accumulate` sums over: without lags the rows are independent
    given ``gamma``, so a batch is one long sequence."""
    return np.array([0, T], dtype=np.int64) if offsets is None or e.lags == 0 else offsets


def gaussian_accumulate_kernels(e: GaussianEmissionParams, y, u, offsets=None, diagonal: bool = False) -> list:
    """The compiled kernels of :func:`gaussian_accumulate` with arguments of the types it passes them
    (empty arrays, no ``gamma`` needed), for :func:`statespace._parallel_compile.compile_together`.

    The statistics of the rows that are not fast (:func:`ar_accumulate_batch`) are summed on every
    call of an autoregressive model (a sequence's first ``L`` rows), and otherwise only for data with
    missing values."""
    T, d = y.shape
    K, q = e.n_states, e.weights.shape[1]
    offsets = _accumulate_offsets(e, T, offsets)
    gamma, fast = np.empty((0, K)), np.empty(0, np.bool_)
    cuts, parts = np.zeros(1, np.int64), np.empty((0, K, q + d, q + d))
    calls = [
        (clean_batch_rows, (y, e.lags, offsets, fast)),
        (_scatter_chunks, (y, u, e.lags, fast, gamma, diagonal, cuts, 0, 0, parts)),
        (_add_mirrored, (parts, np.empty((K, q + d, q + d)))),
    ]
    if e.lags or np.isnan(y).any():
        stats = GaussianStats.zeros(K, q, d)
        calls.insert(
            0,
            (ar_accumulate_batch, (y, u, offsets, e.lags, gamma, e.weights, e.covs, e.init_means, e.init_covs, *stats)),
        )
    return calls


@nb.njit(cache=True)
def categorical_accumulate(y, gamma, counts):
    T = y.shape[0]
    K = counts.shape[0]
    for t in range(T):
        v = y[t, 0]
        if math.isnan(v):
            continue
        m = int(v)
        for k in range(K):
            counts[k, m] += gamma[t, k]


class GaussianStats(NamedTuple):
    """Expected sufficient statistics of the autoregressive Gaussian (summed over sequences)."""

    n: np.ndarray
    Sxx: np.ndarray
    Sxy: np.ndarray
    Syy: np.ndarray
    n0: np.ndarray
    s0: np.ndarray
    S00: np.ndarray

    @classmethod
    def zeros(cls, K: int, q: int, d: int) -> GaussianStats:
        return cls(
            np.zeros(K),
            np.zeros((K, q, q)),
            np.zeros((K, q, d)),
            np.zeros((K, d, d)),
            np.zeros(K),
            np.zeros((K, d)),
            np.zeros((K, d, d)),
        )

    def flat(self) -> np.ndarray:
        return np.concatenate([a.ravel() for a in self])

    @classmethod
    def from_flat(cls, v: np.ndarray, K: int, q: int, d: int) -> GaussianStats:
        shapes = [(K,), (K, q, q), (K, q, d), (K, d, d), (K,), (K, d), (K, d, d)]
        out, i = [], 0
        for s in shapes:
            size = math.prod(s)
            out.append(v[i : i + size].reshape(s))
            i += size
        return cls(*out)


def _ridge(q: int, lam: float) -> np.ndarray:
    R = lam * np.eye(q)
    R[0, 0] = 0.0
    return R


def _diagonal_part(M: np.ndarray) -> np.ndarray:
    """The diagonal matrices of the diagonals of a stack ``M (n, d, d)``."""
    out = np.zeros_like(M)
    i = np.arange(M.shape[1])
    out[:, i, i] = M[:, i, i]
    return out


def gaussian_m_step(
    stats: GaussianStats, old: GaussianEmissionParams, covariance_type: str, prior: EmissionPrior, frozen=frozenset()
) -> GaussianEmissionParams:
    """The closed-form MAP update (see the module docstring). States without weight keep ``old``.

    ``frozen`` names fields of ``old`` to keep (``"weights"``, ``"covs"``, ``"init_means"``,
    ``"init_covs"``); the others maximise the objective given the kept ones.
    """
    K, q, d = old.weights.shape
    Lam = _ridge(q, prior.ridge)
    Psi = prior.reg_covar * np.eye(d)
    W = old.weights.copy()
    covs = old.covs.copy()
    # expected counts are dimensionless: a state with less than 1e-10 of one
    # observation's weight carries no information and keeps ``old`` (no effect on units).
    # The prior (psi, Lambda) is a density in the data's units, chosen by the user:
    # the fit is scale-equivariant when it is rescaled with the data (psi -> c^2 psi).
    tiny = 1e-10
    active = stats.n > tiny
    Sxx = stats.Sxx + Lam
    if "weights" not in frozen and active.any():
        try:  # all states in one stacked solve; a singular system sends them one by one
            W[active] = np.linalg.solve(Sxx[active], stats.Sxy[active])
        except np.linalg.LinAlgError:
            for k in np.flatnonzero(active):
                try:
                    W[k] = np.linalg.solve(Sxx[k], stats.Sxy[k])
                except np.linalg.LinAlgError:
                    W[k] = np.linalg.lstsq(Sxx[k], stats.Sxy[k], rcond=None)[0]
    SyxW = np.swapaxes(stats.Sxy, 1, 2) @ W
    M = stats.Syy - SyxW - np.swapaxes(SyxW, 1, 2) + np.swapaxes(W, 1, 2) @ Sxx @ W
    Ms = np.where(active[:, None, None], 0.5 * (M + np.swapaxes(M, 1, 2)), 0.0)
    if "covs" not in frozen and active.any():
        if covariance_type == "tied":
            covs[:] = (Ms[active].sum(axis=0) + Psi) / (stats.n[active].sum() + prior.cov_dof)
        else:
            new = (Ms[active] + Psi) / (stats.n[active] + prior.cov_dof)[:, None, None]
            covs[active] = _diagonal_part(new) if covariance_type == "diag" else new
    mu0, S0 = old.init_means.copy(), old.init_covs.copy()
    for k in range(K):
        if stats.n0[k] <= tiny:
            continue
        if "init_means" not in frozen:
            mu0[k] = stats.s0[k] / stats.n0[k]
        if "init_covs" not in frozen:
            M0 = stats.S00[k] - stats.n0[k] * np.outer(mu0[k], mu0[k])
            if "init_means" in frozen:  # scatter about the kept mean, not the weighted average
                r = stats.s0[k] - stats.n0[k] * mu0[k]
                M0 = M0 - np.outer(r, mu0[k]) - np.outer(mu0[k], r)
            S0[k] = (0.5 * (M0 + M0.T) + Psi) / (stats.n0[k] + prior.cov_dof)
            if covariance_type == "diag":
                S0[k] = np.diag(np.diag(S0[k]))
    # a degenerate maximiser (e.g. one initial observation and no prior) is not a
    # usable covariance: keep the old one, which cannot lower the EM objective
    for new, prev in ((covs, old.covs), (S0, old.init_covs)):
        bad = ~_usable(new)
        new[bad] = prev[bad]
    # the covariances are positive definite and the arrays shaped as ``old``'s: only
    # the means can still fail (overflowing statistics), so they alone are checked
    check_finite("weights", W)
    check_finite("init_means", mu0)
    return GaussianEmissionParams._trusted(W, covs, mu0, S0, old.lags, old.input_dim)


#: Largest condition number an M-step covariance may have; beyond it the previous one is kept.
_MAX_CONDITION = 1e12


def _usable(S: np.ndarray) -> np.ndarray:
    """``(n,)``: whether each matrix of a stack ``S (n, d, d)`` is positive definite with condition
    number at most :data:`_MAX_CONDITION`, judged by its Cholesky factor's diagonal (the squared ratio
    of its largest to smallest entry).

    Relative to the matrix itself, so rescaling the data never changes which
    covariances are accepted. A covariance estimated from fewer points than
    dimensions is singular in exact arithmetic and, after round-off, has an
    eigenvalue ~1e-16 times the others: accepting it would make the likelihood
    a function of round-off (and EM non-monotone). The factors come from one compiled
    call over the stack (:func:`~hmm.emissions.factor_stack`), which refuses a matrix
    that is not positive definite, holds a NaN or has a pivot beyond float64's range.
    """
    _, _, _, ok, spread, _ = factor_stack(S)
    return ok & (spread <= _MAX_CONDITION)


def gaussian_log_prior(p: GaussianEmissionParams, covariance_type: str, prior: EmissionPrior, uses_init: bool) -> float:
    r"""The log-prior maximised together with the likelihood (constants dropped):
    :math:`-\sum_k \big[\tfrac{\nu_0}{2}\log|\Sigma_k| + \tfrac12 \operatorname{tr}(\Sigma_k^{-1}(\psi I
    + W_k^\top \Lambda W_k))\big]` (tied: the :math:`\psi` and :math:`\nu_0` terms once), plus the
    :math:`\psi` and :math:`\nu_0` terms of the initial covariances when the model uses them.

    Through each covariance's inverse Cholesky factor :math:`X = L^{-1}` (:func:`~hmm.emissions.inverse_factors`,
    one compiled call): :math:`\operatorname{tr}(\Sigma^{-1} M) = \sum_{ij} (X M)_{ij} X_{ij}` and
    :math:`\operatorname{tr}(\Sigma^{-1}) = \|X\|_F^2`.
    """
    if prior.reg_covar == 0 and prior.cov_dof == 0 and prior.ridge == 0:
        return 0.0
    W = p.weights[:, 1:]  # Lambda = ridge diag(0, 1, .., 1): the intercept row is not penalised
    WLW = prior.ridge * (np.swapaxes(W, 1, 2) @ W)
    _, logdet, X, _ = inverse_factors(p.covs)
    total = 0.5 * ((X @ WLW) * X).sum()
    n = 1 if covariance_type == "tied" else len(X)
    total += _covariance_penalty(X[:n], logdet[:n], prior)
    if uses_init:
        _, logdet0, X0, _ = inverse_factors(p.init_covs)
        total += _covariance_penalty(X0, logdet0, prior)
    return -float(total)


def _covariance_penalty(X: np.ndarray, logdet: np.ndarray, prior: EmissionPrior) -> float:
    """``sum_k dof/2 log|S_k| + psi/2 tr(S_k^{-1})`` (the negated log-prior) from the covariances'
    inverse Cholesky factors ``X`` and log-determinants."""
    out = 0.5 * prior.reg_covar * float((X * X).sum())
    if prior.cov_dof:
        out += 0.5 * prior.cov_dof * float(logdet.sum())
    return out


def categorical_m_step(
    counts: np.ndarray, old: CategoricalEmissionParams, prior: EmissionPrior
) -> CategoricalEmissionParams:
    num = counts + prior.pseudo_count
    tot = num.sum(axis=1, keepdims=True)
    B = np.where(tot > 0, num / np.where(tot > 0, tot, 1.0), old.probs)
    return CategoricalEmissionParams._trusted(B)


def categorical_log_prior(p: CategoricalEmissionParams, prior: EmissionPrior) -> float:
    if prior.pseudo_count == 0:
        return 0.0
    with np.errstate(divide="ignore"):
        return float(prior.pseudo_count * np.log(p.probs).sum())
