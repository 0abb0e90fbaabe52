r"""Emission densities of the HMM family: (autoregressive) Gaussian and categorical.

**Autoregressive Gaussian** (the Gaussian HMM is the case ``L = 0``). In state
:math:`k`, with lags :math:`L \ge 0` and optional inputs :math:`u_t \in R^p`,

.. math::

    y_t \mid z_t = k \sim N\!\Big(b_k + \sum_{l=1}^{L} A_{k,l}\, y_{t-l} + C_k u_t,\; \Sigma_k\Big)
    \qquad (t \ge L),

written as a regression :math:`y_t \sim N(W_k^\top x_t, \Sigma_k)` on the regressor
:math:`x_t = (1, y_{t-1}, \dots, y_{t-L}, u_t) \in R^q`, :math:`q = 1 + Ld + p`
(``weights[k]`` is :math:`W_k`, shape ``(q, d)``). The first :math:`L`
observations of a sequence have no full history: they use their own
state-dependent Gaussian :math:`y_t \mid z_t = k \sim N(\mu^0_k, \Sigma^0_k)`
(``init_means``, ``init_covs``), learned by EM like the rest.

Missing data (NaN). Missing coordinates of :math:`y_t` are marginalised
exactly (the Gaussian of the observed coordinates); a fully missing row
contributes likelihood 1. When the lag window of step :math:`t` holds a missing
value the regression is undefined; the step then *restarts* the
autoregression and is scored by the initial Gaussian
:math:`N(\mu^0_k, \Sigma^0_k)`, exactly like the first :math:`L` steps (a gap
splits a sequence into pieces that each start afresh). EM uses conditional
expectations of the missing coordinates, so it stays an exact EM.

Priors (MAP-EM; the objective reported by EM includes them). Per state,

.. math::

    \log p(W_k, \Sigma_k) = -\tfrac{\nu_0}{2}\log|\Sigma_k|
    - \tfrac12 \operatorname{tr}\!\big(\Sigma_k^{-1}(\psi I + W_k^\top \Lambda W_k)\big),

with :math:`\Lambda = \lambda\,\mathrm{diag}(0, 1, \dots, 1)` (ridge on every
coefficient but the intercept). The M-step (:mod:`hmm.emission_updates`) is then closed-form:
:math:`W_k = (S^{xx}_k + \Lambda)^{-1} S^{xy}_k` and
:math:`\Sigma_k = (M_k + \psi I)/(n_k + \nu_0)` with
:math:`M_k = S^{yy}_k - S^{yx}_k W_k` (diagonal: its diagonal; tied: pooled over
states with the prior counted once); a degenerate (singular) maximiser keeps
the previous covariance. Defaults :math:`\psi = 10^{-6}` (``reg_covar``),
:math:`\nu_0 = 0`, :math:`\lambda = 10^{-6}` keep every covariance positive
definite; set all three to zero for the plain maximum-likelihood estimate.

**Categorical**: :math:`y_t \in \{0, \dots, M-1\}` (stored as float, NaN missing),
:math:`p(y_t = m \mid z_t = k) = B_{km}`, with Dirichlet pseudo-counts ``pseudo_count``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba as nb
import numpy as np

from statespace._numerics.fastmath import FASTMATH
from statespace._numerics.gaussian import count_observed, logpdf_observed
from statespace._numerics.linalg import cholesky, solve_lower
from statespace._standalone import standalone
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.validation import as_float_array, check_covariance, check_finite, check_int, check_stochastic_matrix

_LOG_2PI = math.log(2.0 * math.pi)


class _EmissionPriorBase(NamedTuple):
    reg_covar: float = 1e-6
    cov_dof: float = 0.0
    ridge: float = 1e-6
    pseudo_count: float = 0.0


class EmissionPrior(_EmissionPriorBase):
    r"""Regularisation of the M-step (see the module docstring).

    Attributes:
        reg_covar: :math:`\psi`, added to every covariance's scatter matrix.
        cov_dof: :math:`\nu_0`, prior degrees of freedom of the covariances.
        ridge: :math:`\lambda`, ridge penalty on the regression coefficients.
        pseudo_count: Dirichlet pseudo-counts of the categorical emission.

    Each is a finite number ``>= 0`` (all zero: plain maximum likelihood).
    """

    __slots__ = ()

    def __new__(cls, reg_covar=1e-6, cov_dof=0.0, ridge=1e-6, pseudo_count=0.0):
        values = []
        for name, v in zip(cls._fields, (reg_covar, cov_dof, ridge, pseudo_count)):
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise ParameterError(f"{name}: expected a finite non-negative number, got {v!r}") from None
            if not (math.isfinite(x) and x >= 0.0):
                raise ParameterError(f"{name}: expected a finite non-negative number, got {x}")
            values.append(x)
        return super().__new__(cls, *values)


# --------------------------------------------------------------------------- containers
class _GaussianBase(NamedTuple):
    weights: np.ndarray
    covs: np.ndarray
    init_means: np.ndarray
    init_covs: np.ndarray
    lags: int
    input_dim: int


class GaussianEmissionParams(_GaussianBase):
    """Autoregressive Gaussian emission (``lags=0``: plain Gaussian).

    Attributes:
        weights: ``(K, q, d)`` regression matrices on ``x_t = (1, y_{t-1}..y_{t-L}, u_t)``.
        covs: ``(K, d, d)`` innovation covariances.
        init_means: ``(K, d)`` means of the initial Gaussian (first ``L`` steps, restarts).
        init_covs: ``(K, d, d)`` covariances of the initial Gaussian.
        lags: ``L``.
        input_dim: ``p``.
    """

    __slots__ = ()

    def __new__(cls, weights, covs, init_means=None, init_covs=None, lags: int = 0, input_dim: int = 0):
        lags, input_dim = check_int("lags", lags, minimum=0), check_int("input_dim", input_dim, minimum=0)
        weights = check_finite("weights", as_float_array("weights", weights, 3))
        K, q, d = weights.shape
        if q != 1 + lags * d + input_dim:
            raise ShapeError(
                f"weights: expected (K, {1 + lags * d + input_dim}, d) for lags={lags}, input_dim={input_dim}, got {weights.shape}"
            )
        covs = as_float_array("covs", covs, 3)
        if covs.shape != (K, d, d):
            raise ShapeError(f"covs: expected shape ({K}, {d}, {d}), got {covs.shape}")
        for k in range(K):
            check_covariance(f"covs[{k}]", covs[k], d)
        init_means = (
            np.zeros((K, d))
            if init_means is None
            else check_finite("init_means", as_float_array("init_means", init_means, 2))
        )
        if init_means.shape != (K, d):
            raise ShapeError(f"init_means: expected shape ({K}, {d}), got {init_means.shape}")
        init_covs = covs.copy() if init_covs is None else as_float_array("init_covs", init_covs, 3)
        if init_covs.shape != (K, d, d):
            raise ShapeError(f"init_covs: expected shape ({K}, {d}, {d}), got {init_covs.shape}")
        for k in range(K):
            check_covariance(f"init_covs[{k}]", init_covs[k], d)
        return super().__new__(cls, weights, covs, init_means, init_covs, lags, input_dim)

    @classmethod
    def _trusted(cls, weights, covs, init_means, init_covs, lags: int, input_dim: int) -> GaussianEmissionParams:
        """The container without validation, for EM's M-step (:func:`hmm.emission_updates.gaussian_m_step`).

        Its arrays are float64 and shaped as the previous parameters', its covariances
        pass :func:`hmm.emission_updates.gaussian_m_step`'s own positive-definiteness
        test, so validating them again each iteration would only cost time.
        """
        return _GaussianBase.__new__(cls, weights, covs, init_means, init_covs, lags, input_dim)

    @classmethod
    def from_ar(cls, bias, covs, ar_coefs=None, input_coefs=None, init_means=None, init_covs=None):
        """Build from ``bias (K, d)``, ``ar_coefs (K, L, d, d)`` (``A_{k,l}``) and ``input_coefs (K, d, p)`` (``C_k``)."""
        bias = as_float_array("bias", bias, 2)
        K, d = bias.shape
        ar = np.zeros((K, 0, d, d)) if ar_coefs is None else as_float_array("ar_coefs", ar_coefs, 4)
        if ar.shape[0] != K or ar.shape[2:] != (d, d):
            raise ShapeError(f"ar_coefs: expected shape ({K}, L, {d}, {d}), got {ar.shape}")
        C = np.zeros((K, d, 0)) if input_coefs is None else as_float_array("input_coefs", input_coefs, 3)
        if C.shape[:2] != (K, d):
            raise ShapeError(f"input_coefs: expected shape ({K}, {d}, p), got {C.shape}")
        L, p = ar.shape[1], C.shape[2]
        W = np.empty((K, 1 + L * d + p, d))
        W[:, 0] = bias
        for l in range(L):
            W[:, 1 + l * d : 1 + (l + 1) * d] = np.transpose(ar[:, l], (0, 2, 1))
        W[:, 1 + L * d :] = np.transpose(C, (0, 2, 1))
        return cls(W, covs, init_means, init_covs, L, p)

    @property
    def n_states(self) -> int:
        """``K``, the number of hidden states (the leading axis of ``weights``)."""
        return self.weights.shape[0]

    @property
    def obs_dim(self) -> int:
        """``d``, the dimension of an observation (the last axis of ``weights``)."""
        return self.weights.shape[2]

    @property
    def bias(self) -> np.ndarray:
        """``(K, d)`` intercepts ``b_k`` (the means when ``L = 0`` and no inputs)."""
        return self.weights[:, 0].copy()

    @property
    def ar_coefs(self) -> np.ndarray:
        """``(K, L, d, d)``: ``ar_coefs[k, l-1] = A_{k,l}``."""
        K, _, d = self.weights.shape
        out = np.empty((K, self.lags, d, d))
        for l in range(self.lags):
            out[:, l] = np.transpose(self.weights[:, 1 + l * d : 1 + (l + 1) * d], (0, 2, 1))
        return out

    @property
    def input_coefs(self) -> np.ndarray:
        """``(K, d, p)``: ``C_k``."""
        d = self.obs_dim
        return np.transpose(self.weights[:, 1 + self.lags * d :], (0, 2, 1)).copy()


class _CategoricalBase(NamedTuple):
    probs: np.ndarray


class CategoricalEmissionParams(_CategoricalBase):
    """Categorical emission: ``probs (K, M)``, rows summing to one."""

    __slots__ = ()

    def __new__(cls, probs):
        return super().__new__(cls, check_stochastic_matrix("probs", probs))

    @classmethod
    def _trusted(cls, probs: np.ndarray) -> CategoricalEmissionParams:
        """The container without validation, for EM's M-step (rows normalised there)."""
        return _CategoricalBase.__new__(cls, probs)

    @property
    def n_states(self) -> int:
        """``K``, the number of hidden states (the rows of ``probs``)."""
        return self.probs.shape[0]

    @property
    def obs_dim(self) -> int:
        """The observation dimension, which is always 1 (one column holding a symbol code ``0..M-1``)."""
        return 1


# --------------------------------------------------------------------------- compiled kernels
def cholesky_factors(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors ``(K, d, d)`` and log-determinants ``(K,)`` (:func:`inverse_factors`)."""
    return inverse_factors(covs)[:2]


def inverse_factors(covs: np.ndarray) -> tuple:
    """``(chol, logdet, Linv, diag)`` of a stack ``covs (K, d, d)``: lower Cholesky factors,
    log-determinants, the factors' inverses ``Linv[k] = chol[k]^{-1}`` (so ``covs[k]^{-1} =
    Linv[k]^T Linv[k]``), and whether every inverse is diagonal.

    One compiled call (:func:`factor_stack`); a stack it refuses (not positive definite, or a
    pivot beyond float64's range) goes to LAPACK, which raises ``LinAlgError`` or returns the
    factors it did before (the compiled call costs a microsecond, NumPy's stacked calls tens)."""
    chol, logdet, Linv, ok, _, diag = factor_stack(covs)
    if not ok.all():
        chol = np.ascontiguousarray(np.linalg.cholesky(covs))
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        Linv = np.ascontiguousarray(np.linalg.inv(chol))
        diag = not np.tril(Linv, -1).any()
    return chol, logdet, Linv, diag


def factor_stack(covs: np.ndarray) -> tuple:
    """``(chol, logdet, Linv, ok, spread, diag)`` by the library's Cholesky loop alone: :func:`inverse_factors`'
    arrays, ``ok[k]`` whether matrix ``k`` has a factor (:func:`statespace._numerics.linalg.cholesky`:
    positive definite, pivots within float64's range), and ``spread[k]`` the squared ratio of its factor's
    largest to smallest diagonal entry (a lower bound on its condition number). The other entries of a
    refused matrix are meaningless."""
    covs = np.ascontiguousarray(covs, dtype=np.float64)
    chol, Linv = np.zeros_like(covs), np.zeros_like(covs)
    logdet, spread, ok = np.empty(covs.shape[0]), np.empty(covs.shape[0]), np.empty(covs.shape[0], dtype=np.bool_)
    diag = _factor_stack(covs, chol, logdet, Linv, ok, spread)
    return chol, logdet, Linv, ok, spread, diag


@nb.njit(cache=True)
def _factor_stack(covs, chol, logdet, Linv, ok, spread):
    """:func:`factor_stack` into zeroed ``chol, Linv``; returns whether every inverse is diagonal. The
    inverse by forward substitution, column ``j`` of ``L^{-1}`` solving ``L x = e_j`` (``x_i = 0``, ``i < j``)."""
    K, d = covs.shape[0], covs.shape[1]
    diag = True
    for k in range(K):
        L, X = chol[k], Linv[k]
        ok[k] = cholesky(covs[k], L, d)
        if not ok[k]:
            continue
        s = 0.0
        lo, hi = math.inf, 0.0
        for j in range(d):
            s += math.log(L[j, j])
            lo, hi = min(lo, L[j, j]), max(hi, L[j, j])
            X[j, j] = 1.0 / L[j, j]
            for i in range(j + 1, d):
                t = 0.0
                for l in range(j, i):
                    t -= L[i, l] * X[l, j]
                X[i, j] = t / L[i, i]
                if X[i, j] != 0.0:
                    diag = False
        logdet[k] = 2.0 * s
        spread[k] = (hi / lo) ** 2
    return diag


@nb.njit(cache=True)
def regressor(y, u, t, L, x):
    """Fill ``x = (1, y_{t-1}..y_{t-L}, u_t)``; False when ``t < L`` or the lag window has a NaN."""
    x[0] = 1.0
    if t < L:
        return False
    d = y.shape[1]
    for l in range(L):
        for j in range(d):
            v = y[t - 1 - l, j]
            if math.isnan(v):
                return False
            x[1 + l * d + j] = v
    p = u.shape[1]
    for j in range(p):
        x[1 + L * d + j] = u[t, j]
    return True


@nb.njit(cache=True)
def observed_split(yrow):
    """Indices of the observed (non-NaN) and of the missing coordinates of ``yrow``."""
    d = yrow.shape[0]
    n_obs = 0
    for j in range(d):
        if not math.isnan(yrow[j]):
            n_obs += 1
    obs = np.empty(n_obs, np.int64)
    mis = np.empty(d - n_obs, np.int64)
    a = 0
    b = 0
    for j in range(d):
        if math.isnan(yrow[j]):
            mis[b] = j
            b += 1
        else:
            obs[a] = j
            a += 1
    return obs, mis


@nb.njit(cache=True)
def gaussian_logpdf(yrow, mean, cov, chol, logdet):
    """``log N(yrow; mean, cov)`` over the observed (non-NaN) coordinates; 0 when all are missing.

    A complete row is whitened with the precomputed factor ``chol``; a partial one goes to
    :func:`statespace._numerics.gaussian.logpdf_observed`.
    """
    d = yrow.shape[0]
    n_obs = count_observed(yrow)
    if n_obs == 0:
        return 0.0
    r = np.empty(d)
    for i in range(d):
        r[i] = yrow[i] - mean[i]
    if n_obs == d:
        return -0.5 * (d * _LOG_2PI + logdet + solve_lower(chol, r, d))
    return logpdf_observed(r, cov)


TIME_BLOCK = 256  # time steps whitened together (measured best of 32-256 at d = 1-8)


@nb.njit(cache=True)
def clean_rows(y, L):
    """``ok[t]``: step ``t`` has a full lag window and no missing coordinate (the blocked fast path applies)."""
    ok = np.empty(y.shape[0], np.bool_)
    clean_rows_into(y, L, 0, y.shape[0], ok)
    return ok


@nb.njit(cache=True, inline="always")
def clean_rows_into(y, L, a, b, ok):
    """:func:`clean_rows` of the sequence in rows ``a:b`` of ``y`` into ``ok[a:b]``, without a temporary: first
    whether each row is fully observed, then, from the last row back, whether its lag window is too (a row's
    window lies below it, where the flags are still those of the first pass)."""
    d = y.shape[1]
    for t in range(a, b):
        full = True
        for j in range(d):
            if math.isnan(y[t, j]):
                full = False
        ok[t] = full
    if L > 0:
        for t in range(b - 1, a - 1, -1):
            good = t - a >= L and ok[t]
            for l in range(1, L + 1):
                if good and not ok[t - l]:
                    good = False
            ok[t] = good


@nb.njit(cache=True, inline="always")
def stacked_block(y, u, L, fast, t0, Zb):
    """Column ``s`` of ``Zb (q + d, TIME_BLOCK)`` is :math:`z_t = (x_t, y_t)` for step ``t = t0 + s``:
    the regressor :math:`x_t = (1, y_{t-1}, \\dots, y_{t-L}, u_t)` stacked on the observation, where
    ``fast[t]`` (fully observed, full lag window: :func:`clean_rows`), and zeros for the other steps
    and past the end, which the blocked loops then carry without a branch."""
    T, d = y.shape
    p = u.shape[1]
    q = 1 + L * d + p
    for s in range(TIME_BLOCK):
        t = t0 + s
        use = t < T and fast[t]
        Zb[0, s] = 1.0 if use else 0.0
        for l in range(L):
            for j in range(d):
                Zb[1 + l * d + j, s] = y[t - 1 - l, j] if use else 0.0
        for j in range(p):
            Zb[1 + L * d + j, s] = u[t, j] if use else 0.0
        for j in range(d):
            Zb[q + j, s] = y[t, j] if use else 0.0


@nb.njit(cache=True, fastmath=FASTMATH, inline="always")
def _whiten_block(Zb, R, Z, QF, W, Linv, const, diag, out, t0, n):
    """Rows ``t0:t0+n`` of ``out`` from the block's stacked regressors and observations ``Zb``
    (:func:`stacked_block`: rows ``0:q`` are ``x_t``, rows ``q:q+d`` are ``y_t``).

    Inlined, so that the call with ``n = TIME_BLOCK`` compiles to loops of a constant
    trip count (unrolled and vectorised without remainder code: twice as fast).
    """
    K, q, d = W.shape
    for k in range(K):
        for j in range(d):
            for s in range(n):
                R[j, s] = Zb[q + j, s]
            for i in range(q):
                w = W[k, i, j]
                for s in range(n):
                    R[j, s] -= w * Zb[i, s]
        for s in range(n):
            QF[s] = 0.0
        for i in range(d):
            if diag:
                c = Linv[k, i, i]
                for s in range(n):
                    z = c * R[i, s]
                    QF[s] += z * z
            else:
                for s in range(n):
                    Z[s] = 0.0
                for j in range(i + 1):
                    c = Linv[k, i, j]
                    for s in range(n):
                        Z[s] += c * R[j, s]
                for s in range(n):
                    QF[s] += Z[s] * Z[s]
        ck = const[k]
        for s in range(n):
            out[t0 + s, k] = ck - 0.5 * QF[s]


@standalone
@nb.njit(cache=True, fastmath=FASTMATH)
def ar_loglik(y, u, L, W, Linv, const, diag, covs, chol, logdet, mu0, covs0, chol0, logdet0, out):
    r"""Fill ``out (T, K)`` with the emission log-likelihoods of the autoregressive Gaussian; returns ``out``.

    Fully observed steps with a full lag window take the fast path, in blocks of
    :data:`TIME_BLOCK` steps laid out with time innermost (``(d, block)`` residuals,
    ``(q, block)`` regressors), so that every loop over time is a contiguous
    vector loop: per state, the residual :math:`r = y_t - W_k^\top x_t`, its
    whitening :math:`z = L_k^{-1} r` by the precomputed inverse Cholesky factor
    (``diag``: every ``Linv[k]`` is diagonal and its zeros, which add exactly
    nothing, are skipped) and :math:`\text{const}_k - \tfrac12 \lVert z \rVert^2`
    with ``const = -(d log 2pi + log|S|)/2``. Each step's arithmetic is that of
    the per-step loop, in the same order; only the layout changed (whitening one
    step at a time kept the ``d^2/2`` products of a small triangle in scalar
    registers: 3x slower at ``d = 8``).
    Other steps (missing coordinates, restarts) go through :func:`gaussian_logpdf`.
    """
    T, d = y.shape
    K, q, _ = W.shape
    ok = clean_rows(y, L)
    Zb = np.empty((q + d, TIME_BLOCK))
    R = np.empty((d, TIME_BLOCK))
    Z = np.empty(TIME_BLOCK)
    QF = np.empty(TIME_BLOCK)
    for t0 in range(0, T, TIME_BLOCK):
        n = min(TIME_BLOCK, T - t0)
        stacked_block(y, u, L, ok, t0, Zb)  # the other steps get zeros here and are redone below
        if n == TIME_BLOCK:
            _whiten_block(Zb, R, Z, QF, W, Linv, const, diag, out, t0, TIME_BLOCK)
        else:
            _whiten_block(Zb, R, Z, QF, W, Linv, const, diag, out, t0, n)
    x = np.empty(q)
    mean = np.empty(d)
    for t in range(T):
        if ok[t]:
            continue
        has_reg = regressor(y, u, t, L, x)
        for k in range(K):
            if has_reg:
                for j in range(d):
                    s = 0.0
                    for i in range(q):
                        s += W[k, i, j] * x[i]
                    mean[j] = s
                out[t, k] = gaussian_logpdf(y[t], mean, covs[k], chol[k], logdet[k])
            else:
                out[t, k] = gaussian_logpdf(y[t], mu0[k], covs0[k], chol0[k], logdet0[k])
    return out


@nb.njit(cache=True, fastmath=FASTMATH)
def scalar_loglik(y, mean, inv_sd, const, out):
    """Fill ``out (T, K)`` with the log-likelihoods of a 1-D Gaussian HMM (no lags, no inputs); a NaN step scores 0.

    The common case gets its own kernel: one pass, the state loop vectorised,
    none of the regressor bookkeeping of :func:`ar_loglik`. ``out`` comes from
    NumPy, whose large allocations use huge pages (cheaper first touch).
    """
    T = y.shape[0]
    K = mean.shape[0]
    for t in range(T):
        yt = y[t, 0]
        row = out[t]
        if math.isnan(yt):
            for k in range(K):
                row[k] = 0.0
        else:
            for k in range(K):
                z = inv_sd[k] * (yt - mean[k])
                row[k] = const[k] - 0.5 * z * z
    return out


def gaussian_loglik(e: GaussianEmissionParams, y: np.ndarray, u: np.ndarray, out=None) -> np.ndarray:
    """``(T, K)`` emission log-likelihoods of one sequence (NaN handled as documented), written into
    ``out`` (a C-contiguous ``(T, K)`` float64 array) when given."""
    if out is None:
        out = np.empty((y.shape[0], e.n_states))
    if e.lags == 0 and e.input_dim == 0 and e.obs_dim == 1:
        var = e.covs[:, 0, 0]
        return scalar_loglik(
            y, np.ascontiguousarray(e.weights[:, 0, 0]), 1.0 / np.sqrt(var), -0.5 * (_LOG_2PI + np.log(var)), out
        )
    return ar_loglik(y, u, e.lags, e.weights, *gaussian_factors(e), out)


def gaussian_factors(e: GaussianEmissionParams) -> tuple:
    """What :func:`ar_loglik` reads between ``weights`` and ``out``, computed once per parameter value:
    ``Linv, const, diag, covs, chol, logdet, init_means, init_covs, chol0, logdet0``."""
    chol, logdet, Linv, diag = inverse_factors(e.covs)
    chol0, logdet0 = cholesky_factors(e.init_covs)
    const = -0.5 * (e.obs_dim * _LOG_2PI + logdet)
    return Linv, const, diag, e.covs, chol, logdet, e.init_means, e.init_covs, chol0, logdet0


@nb.njit(cache=True)
def categorical_loglik(y, logB, out):
    """``out[t, k] = log B[k, y_t]`` (0 where ``y_t`` is missing) into the ``(T, K)`` array ``out``; returns it."""
    T = y.shape[0]
    K = logB.shape[0]
    for t in range(T):
        v = y[t, 0]
        if math.isnan(v):
            for k in range(K):
                out[t, k] = 0.0
            continue
        m = int(v)
        for k in range(K):
            out[t, k] = logB[k, m]
    return out


def check_categorical_data(name: str, y: np.ndarray, n_symbols: int) -> None:
    """Symbols must be integers in ``0 .. n_symbols-1`` (NaN missing)."""
    if y.shape[1] != 1:
        raise ShapeError(f"{name}: categorical observations are one column of symbols, got shape {y.shape}")
    v = y[:, 0]
    ok = np.isnan(v) | ((v >= 0) & (v < n_symbols) & (v == np.round(v)))
    if not ok.all():
        t = int(np.argmin(ok))
        raise DataError(
            f"{name}: time step {t} holds {v[t]:g}; expected an integer symbol in 0..{n_symbols - 1} or NaN"
        )
