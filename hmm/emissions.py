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
coefficient but the intercept). The M-step is then closed-form:
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

from statespace.errors import DataError, ParameterError, ShapeError
from statespace.validation import as_float_array, check_covariance, check_finite, check_stochastic_matrix

_LOG_2PI = math.log(2.0 * math.pi)


class EmissionPrior(NamedTuple):
    """Regularisation of the Gaussian M-step (see the module docstring)."""

    reg_covar: float = 1e-6
    cov_dof: float = 0.0
    ridge: float = 1e-6
    pseudo_count: float = 0.0


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
        lags, input_dim = int(lags), int(input_dim)
        if lags < 0 or input_dim < 0:
            raise ParameterError(f"lags/input_dim: expected non-negative integers, got {lags}, {input_dim}")
        weights = check_finite("weights", as_float_array("weights", weights, 3))
        K, q, d = weights.shape
        if q != 1 + lags * d + input_dim:
            raise ShapeError(f"weights: expected (K, {1 + lags * d + input_dim}, d) for lags={lags}, input_dim={input_dim}, got {weights.shape}")
        covs = as_float_array("covs", covs, 3)
        if covs.shape != (K, d, d):
            raise ShapeError(f"covs: expected shape ({K}, {d}, {d}), got {covs.shape}")
        for k in range(K):
            check_covariance(f"covs[{k}]", covs[k], d)
        init_means = np.zeros((K, d)) if init_means is None else check_finite("init_means", as_float_array("init_means", init_means, 2))
        if init_means.shape != (K, d):
            raise ShapeError(f"init_means: expected shape ({K}, {d}), got {init_means.shape}")
        init_covs = covs.copy() if init_covs is None else as_float_array("init_covs", init_covs, 3)
        if init_covs.shape != (K, d, d):
            raise ShapeError(f"init_covs: expected shape ({K}, {d}, {d}), got {init_covs.shape}")
        for k in range(K):
            check_covariance(f"init_covs[{k}]", init_covs[k], d)
        return super().__new__(cls, weights, covs, init_means, init_covs, lags, input_dim)

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
        return self.weights.shape[0]

    @property
    def obs_dim(self) -> int:
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

    @property
    def n_states(self) -> int:
        return self.probs.shape[0]

    @property
    def obs_dim(self) -> int:
        return 1


# --------------------------------------------------------------------------- compiled kernels
def cholesky_factors(covs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower Cholesky factors ``(K, d, d)`` and log-determinants ``(K,)``."""
    chol = np.linalg.cholesky(covs)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return np.ascontiguousarray(chol), logdet


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
def gaussian_logpdf(yrow, mean, cov, chol, logdet):
    """``log N(yrow; mean, cov)`` over the observed (non-NaN) coordinates; 0 when all are missing."""
    d = yrow.shape[0]
    n_obs = 0
    for j in range(d):
        if not math.isnan(yrow[j]):
            n_obs += 1
    if n_obs == 0:
        return 0.0
    if n_obs == d:
        z = np.empty(d)
        q = 0.0
        for i in range(d):
            s = yrow[i] - mean[i]
            for j in range(i):
                s -= chol[i, j] * z[j]
            z[i] = s / chol[i, i]
            q += z[i] * z[i]
        return -0.5 * (d * _LOG_2PI + logdet + q)
    idx = np.empty(n_obs, np.int64)
    c = 0
    for j in range(d):
        if not math.isnan(yrow[j]):
            idx[c] = j
            c += 1
    sub = np.empty((n_obs, n_obs))
    r = np.empty(n_obs)
    for a in range(n_obs):
        r[a] = yrow[idx[a]] - mean[idx[a]]
        for b in range(n_obs):
            sub[a, b] = cov[idx[a], idx[b]]
    lc = np.linalg.cholesky(sub)
    q = 0.0
    ld = 0.0
    z = np.empty(n_obs)
    for i in range(n_obs):
        s = r[i]
        for j in range(i):
            s -= lc[i, j] * z[j]
        z[i] = s / lc[i, i]
        q += z[i] * z[i]
        ld += 2.0 * math.log(lc[i, i])
    return -0.5 * (n_obs * _LOG_2PI + ld + q)


@nb.njit(cache=True, fastmath={"reassoc", "contract", "arcp", "nsz"})
def ar_loglik(y, u, L, W, Linv, const, covs, chol, logdet, mu0, covs0, chol0, logdet0):
    """Emission log-likelihoods ``(T, K)`` of the autoregressive Gaussian.

    Fully observed steps with a full lag window take the fast path: the
    precomputed inverse Cholesky factors ``Linv`` and ``const = -(d log 2pi + log|S|)/2``
    turn the density into multiplications only, with no allocation per step.
    Other steps (missing coordinates, restarts) go through :func:`gaussian_logpdf`.
    """
    T, d = y.shape
    K, q, _ = W.shape
    out = np.empty((T, K))
    x = np.empty(q)
    mean = np.empty(d)
    r = np.empty(d)
    for t in range(T):
        has_reg = regressor(y, u, t, L, x)
        full = True
        for j in range(d):
            if math.isnan(y[t, j]):
                full = False
        if has_reg and full and d == 1:
            for k in range(K):
                s = y[t, 0]
                for i in range(q):
                    s -= W[k, i, 0] * x[i]
                z = Linv[k, 0, 0] * s
                out[t, k] = const[k] - 0.5 * z * z
        elif has_reg and full:
            for k in range(K):
                for j in range(d):
                    s = y[t, j]
                    for i in range(q):
                        s -= W[k, i, j] * x[i]
                    r[j] = s
                qf = 0.0
                for i in range(d):
                    z = 0.0
                    for j in range(i + 1):
                        z += Linv[k, i, j] * r[j]
                    qf += z * z
                out[t, k] = const[k] - 0.5 * qf
        else:
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


def gaussian_loglik(e: "GaussianEmissionParams", y: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``(T, K)`` emission log-likelihoods of one sequence (NaN handled as documented)."""
    chol, logdet = cholesky_factors(e.covs)
    chol0, logdet0 = cholesky_factors(e.init_covs)
    d = e.obs_dim
    Linv = np.ascontiguousarray(np.linalg.inv(chol))
    const = -0.5 * (d * _LOG_2PI + logdet)
    return ar_loglik(y, u, e.lags, e.weights, Linv, const, e.covs, chol, logdet, e.init_means, e.init_covs, chol0, logdet0)


@nb.njit(cache=True)
def _conditional_fill(yrow, mean, cov, yhat, C):
    """``yhat = E[y | observed]``, ``C = Cov[y | observed]`` (zero on observed coordinates)."""
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
    C[:] = 0.0
    if n_obs == 0:
        yhat[:] = mean
        C[:] = cov
        return
    Soo = np.empty((n_obs, n_obs))
    Smo = np.empty((d - n_obs, n_obs))
    r = np.empty(n_obs)
    for i in range(n_obs):
        r[i] = yrow[obs[i]] - mean[obs[i]]
        for j in range(n_obs):
            Soo[i, j] = cov[obs[i], obs[j]]
    for i in range(d - n_obs):
        for j in range(n_obs):
            Smo[i, j] = cov[mis[i], obs[j]]
    G = np.linalg.solve(Soo, Smo.T).T  # S_mo S_oo^{-1}
    for i in range(n_obs):
        yhat[obs[i]] = yrow[obs[i]]
    for i in range(d - n_obs):
        s = mean[mis[i]]
        for j in range(n_obs):
            s += G[i, j] * r[j]
        yhat[mis[i]] = s
        for i2 in range(d - n_obs):
            c = cov[mis[i], mis[i2]]
            for j in range(n_obs):
                c -= G[i, j] * Smo[i2, j]
            C[mis[i], mis[i2]] = c


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
    mean = np.empty(d)
    yhat = np.empty(d)
    C = np.zeros((d, d))
    for t in range(T):
        n_obs = 0
        for j in range(d):
            if not math.isnan(y[t, j]):
                n_obs += 1
        if n_obs == 0:
            continue
        has_reg = regressor(y, u, t, L, x)
        for k in range(K):
            w = gamma[t, k]
            if w == 0.0:
                continue
            if n_obs == d:
                for j in range(d):
                    yhat[j] = y[t, j]
            else:
                if has_reg:
                    for j in range(d):
                        s = 0.0
                        for i in range(q):
                            s += W[k, i, j] * x[i]
                        mean[j] = s
                    _conditional_fill(y[t], mean, covs[k], yhat, C)
                else:
                    _conditional_fill(y[t], mu0[k], covs0[k], yhat, C)
            _add_stats(k, w, x, has_reg, yhat, C, n_obs < d, n, Sxx, Sxy, Syy, n0, s0, S00)


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
    n_obs = 0
    for j in range(d):
        if not math.isnan(y[t, j]):
            n_obs += 1
    if n_obs == 0:
        return
    x = np.empty(q)
    yhat = np.empty(d)
    C = np.zeros((d, d))
    has_reg = regressor(y, u, t, L, x)
    if n_obs == d:
        for j in range(d):
            yhat[j] = y[t, j]
    elif has_reg:
        mean = np.empty(d)
        for j in range(d):
            s = 0.0
            for i in range(q):
                s += W[k, i, j] * x[i]
            mean[j] = s
        _conditional_fill(y[t], mean, covs[k], yhat, C)
    else:
        _conditional_fill(y[t], mu0[k], covs0[k], yhat, C)
    _add_stats(k, 1.0, x, has_reg, yhat, C, n_obs < d, n, Sxx, Sxy, Syy, n0, s0, S00)


def design(y: np.ndarray, u: np.ndarray, L: int) -> tuple[np.ndarray, np.ndarray]:
    """Regressors ``X (T, q)`` and the mask of fast rows: full lag window and fully observed ``y_t``."""
    T, d = y.shape
    X = np.empty((T, 1 + L * d + u.shape[1]))
    X[:, 0] = 1.0
    for l in range(L):
        cols = slice(1 + l * d, 1 + (l + 1) * d)
        X[: l + 1, cols] = np.nan
        X[l + 1 :, cols] = y[: T - l - 1]
    X[:, 1 + L * d :] = u
    fast = ~(np.isnan(X).any(axis=1) | np.isnan(y).any(axis=1))
    return X, fast


def gaussian_accumulate(e: "GaussianEmissionParams", y, u, gamma, stats: "GaussianStats") -> None:
    """Add one sequence's expected statistics to ``stats`` (in place).

    Fast rows are summed with three matrix products over time
    (``gamma^T [x x^T]``, ``gamma^T [x y^T]``, ``gamma^T [y y^T]``); the few
    others (missing coordinates, restarts) go through :func:`ar_accumulate`.
    """
    T, d = y.shape
    X, fast = design(y, u, e.lags)
    q = X.shape[1]
    K = gamma.shape[1]
    all_fast = bool(fast.all())
    G, Xf, Yf = (gamma, X, y) if all_fast else (gamma[fast], X[fast], y[fast])
    stats.n[:] += G.sum(axis=0)
    n_f = len(Xf)
    stats.Sxx[:] += (G.T @ (Xf[:, :, None] * Xf[:, None, :]).reshape(n_f, q * q)).reshape(K, q, q)
    stats.Sxy[:] += (G.T @ (Xf[:, :, None] * Yf[:, None, :]).reshape(n_f, q * d)).reshape(K, q, d)
    stats.Syy[:] += (G.T @ (Yf[:, :, None] * Yf[:, None, :]).reshape(n_f, d * d)).reshape(K, d, d)
    if not all_fast:
        g_slow = np.where(fast[:, None], 0.0, gamma)
        ar_accumulate(y, u, e.lags, g_slow, e.weights, e.covs, e.init_means, e.init_covs, *stats)


@nb.njit(cache=True)
def categorical_loglik(y, logB):
    T = y.shape[0]
    K = logB.shape[0]
    out = np.zeros((T, K))
    for t in range(T):
        v = y[t, 0]
        if math.isnan(v):
            continue
        m = int(v)
        for k in range(K):
            out[t, k] = logB[k, m]
    return out


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


def check_categorical_data(name: str, y: np.ndarray, n_symbols: int) -> None:
    """Symbols must be integers in ``0 .. n_symbols-1`` (NaN missing)."""
    if y.shape[1] != 1:
        raise ShapeError(f"{name}: categorical observations are one column of symbols, got shape {y.shape}")
    v = y[:, 0]
    ok = np.isnan(v) | ((v >= 0) & (v < n_symbols) & (v == np.round(v)))
    if not ok.all():
        t = int(np.argmin(ok))
        raise DataError(f"{name}: time step {t} holds {v[t]:g}; expected an integer symbol in 0..{n_symbols - 1} or NaN")


# --------------------------------------------------------------------------- statistics and M-step
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
    def zeros(cls, K: int, q: int, d: int) -> "GaussianStats":
        return cls(np.zeros(K), np.zeros((K, q, q)), np.zeros((K, q, d)), np.zeros((K, d, d)), np.zeros(K), np.zeros((K, d)), np.zeros((K, d, d)))

    def flat(self) -> np.ndarray:
        return np.concatenate([a.ravel() for a in self])

    @classmethod
    def from_flat(cls, v: np.ndarray, K: int, q: int, d: int) -> "GaussianStats":
        shapes = [(K,), (K, q, q), (K, q, d), (K, d, d), (K,), (K, d), (K, d, d)]
        out, i = [], 0
        for s in shapes:
            size = int(np.prod(s))
            out.append(v[i : i + size].reshape(s))
            i += size
        return cls(*out)


def _ridge(q: int, lam: float) -> np.ndarray:
    R = lam * np.eye(q)
    R[0, 0] = 0.0
    return R


def _constrain(M: np.ndarray, covariance_type: str) -> np.ndarray:
    return np.diag(np.diag(M)) if covariance_type == "diag" else M


def gaussian_m_step(stats: GaussianStats, old: GaussianEmissionParams, covariance_type: str, prior: EmissionPrior, frozen=frozenset()) -> GaussianEmissionParams:
    """The closed-form MAP update (see the module docstring). States without weight keep ``old``."""
    K, q, d = old.weights.shape
    Lam = _ridge(q, prior.ridge)
    Psi = prior.reg_covar * np.eye(d)
    W = old.weights.copy()
    covs = old.covs.copy()
    tiny = 1e-10
    Ms = np.zeros((K, d, d))
    for k in range(K):
        if stats.n[k] <= tiny:
            continue
        if "coefs" not in frozen:
            A = stats.Sxx[k] + Lam
            try:
                W[k] = np.linalg.solve(A, stats.Sxy[k])
            except np.linalg.LinAlgError:
                W[k] = np.linalg.lstsq(A, stats.Sxy[k], rcond=None)[0]
        Wk = W[k]
        SyxW = stats.Sxy[k].T @ Wk
        M = stats.Syy[k] - SyxW - SyxW.T + Wk.T @ (stats.Sxx[k] + Lam) @ Wk
        Ms[k] = 0.5 * (M + M.T)
    if "covs" not in frozen:
        if covariance_type == "tied":
            active = stats.n > tiny
            if active.any():
                shared = _constrain((Ms[active].sum(axis=0) + Psi) / (stats.n[active].sum() + prior.cov_dof), "full")
                covs[:] = shared
        else:
            for k in range(K):
                if stats.n[k] > tiny:
                    covs[k] = _constrain((Ms[k] + Psi) / (stats.n[k] + prior.cov_dof), covariance_type)
    mu0, S0 = old.init_means.copy(), old.init_covs.copy()
    if "init" not in frozen:
        for k in range(K):
            if stats.n0[k] <= tiny:
                continue
            mu0[k] = stats.s0[k] / stats.n0[k]
            M0 = stats.S00[k] - stats.n0[k] * np.outer(mu0[k], mu0[k])
            S0[k] = _constrain((0.5 * (M0 + M0.T) + Psi) / (stats.n0[k] + prior.cov_dof), "diag" if covariance_type == "diag" else "full")
    # a degenerate maximiser (e.g. one initial observation and no prior) is not a
    # usable covariance: keep the old one, which cannot lower the EM objective
    for new, prev in ((covs, old.covs), (S0, old.init_covs)):
        for k in range(K):
            if not _is_pd(new[k]):
                new[k] = prev[k]
    return GaussianEmissionParams(W, covs, mu0, S0, old.lags, old.input_dim)


def _is_pd(S: np.ndarray) -> bool:
    try:
        c = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        return False
    dg = np.diag(c)
    return bool(np.all(np.isfinite(c)) and dg.min() > 1e-12 * max(1.0, dg.max()))


def gaussian_log_prior(p: GaussianEmissionParams, covariance_type: str, prior: EmissionPrior, uses_init: bool) -> float:
    """The log-prior maximised together with the likelihood (constants dropped)."""
    K, q, d = p.weights.shape
    Lam = _ridge(q, prior.ridge)
    Psi = prior.reg_covar * np.eye(d)
    if prior.reg_covar == 0 and prior.cov_dof == 0 and prior.ridge == 0:
        return 0.0
    total = 0.0
    covs = p.covs[:1] if covariance_type == "tied" else p.covs
    for S in covs:
        total -= 0.5 * prior.cov_dof * np.linalg.slogdet(S)[1] + 0.5 * np.trace(np.linalg.solve(S, Psi))
    for k in range(K):
        S = p.covs[k]
        total -= 0.5 * np.trace(np.linalg.solve(S, p.weights[k].T @ Lam @ p.weights[k]))
    if uses_init:
        for S in p.init_covs:
            total -= 0.5 * prior.cov_dof * np.linalg.slogdet(S)[1] + 0.5 * np.trace(np.linalg.solve(S, Psi))
    return float(total)


def categorical_m_step(counts: np.ndarray, old: CategoricalEmissionParams, prior: EmissionPrior) -> CategoricalEmissionParams:
    num = counts + prior.pseudo_count
    tot = num.sum(axis=1, keepdims=True)
    B = np.where(tot > 0, num / np.where(tot > 0, tot, 1.0), old.probs)
    return CategoricalEmissionParams(B)


def categorical_log_prior(p: CategoricalEmissionParams, prior: EmissionPrior) -> float:
    if prior.pseudo_count == 0:
        return 0.0
    with np.errstate(divide="ignore"):
        return float(prior.pseudo_count * np.log(p.probs).sum())
