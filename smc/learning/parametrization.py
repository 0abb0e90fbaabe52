r"""Unconstrained parameter vectors for gradient-based learning.

Score ascent and Markov score climbing move a vector :math:`\theta \in \mathbb{R}^p`;
a :class:`Parametrization` maps it to a model and back, and names its entries
(for traces and ArviZ). Two are built in:

* stochastic volatility: :math:`\theta = (\mu, \operatorname{atanh}\phi, \log\sigma)`;
* linear-Gaussian: the learned fields among ``m0, F, H`` (entries) and
  ``P0, Q, R`` (log-Cholesky: the log-diagonal and the strict lower triangle of
  the Cholesky factor); frozen fields are kept. Time-varying fields and the
  input matrices ``B, D`` are never learned here.

Each also carries a JAX log joint density :math:`\log p_\theta(x_{0:T-1}, y_{0:T-1})`
(NaN observations marginalised) for Markov score climbing; a user model supplies
its own :class:`Parametrization` with ``log_joint`` written in ``jax.numpy``.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from statespace.errors import ParameterError


class Parametrization(NamedTuple):
    """A map between an unconstrained vector and a model.

    Attributes:
        names: the names of the vector's entries.
        to_vector: ``to_vector(model) -> theta`` (``(p,)`` float64).
        from_vector: ``from_vector(theta) -> model``.
        log_joint: optional ``log_joint(theta, x, y) -> scalar`` in ``jax.numpy``
            (``x`` is ``(T, state_dim)``, ``y`` is ``(T, obs_dim)`` with NaN for missing),
            needed by Markov score climbing.
        natural: ``natural(model) -> dict`` of the reported (constrained) parameters.
    """

    names: tuple
    to_vector: Callable
    from_vector: Callable
    log_joint: Callable | None = None
    natural: Callable | None = None


def enable_x64():
    """Switch JAX to float64 (the library's precision) and return ``jax.numpy``."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return jnp


def for_model(model) -> Parametrization:
    """The built-in parametrization of a shipped model."""
    from statespace import LinearGaussianSSM, StochasticVolatility

    if isinstance(model, StochasticVolatility):
        return stochastic_volatility()
    if isinstance(model, LinearGaussianSSM):
        return linear_gaussian(model)
    raise ParameterError(
        f"parametrization: no built-in parametrization for {type(model).__name__}; pass a smc.learning.Parametrization"
    )


# --------------------------------------------------------------------------
# stochastic volatility
# --------------------------------------------------------------------------
def stochastic_volatility() -> Parametrization:
    from statespace import StochasticVolatility

    def to_vector(m):
        p = m.params
        return np.array([p.mu, math.atanh(p.phi), math.log(p.sigma)])

    def from_vector(th):
        phi = math.tanh(float(th[1]))
        phi = max(min(phi, 1.0 - 1e-12), -1.0 + 1e-12)
        return StochasticVolatility(float(th[0]), phi, math.exp(float(th[2])))

    return Parametrization(("mu", "atanh_phi", "log_sigma"), to_vector, from_vector, _sv_log_joint,
                           lambda m: {"mu": m.params.mu, "phi": m.params.phi, "sigma": m.params.sigma})


def _sv_log_joint(theta, x, y):
    import jax.numpy as jnp

    mu, phi, log_s = theta[0], jnp.tanh(theta[1]), theta[2]
    s2 = jnp.exp(2.0 * log_s)
    x = x[:, 0]
    yy = y[:, 0]
    v0 = s2 / (1.0 - phi**2)
    lp = -0.5 * (jnp.log(2 * jnp.pi * v0) + (x[0] - mu) ** 2 / v0)
    r = x[1:] - mu - phi * (x[:-1] - mu)
    lp += jnp.sum(-0.5 * (jnp.log(2 * jnp.pi * s2) + r**2 / s2))
    obs = ~jnp.isnan(yy)
    y0 = jnp.where(obs, yy, 0.0)
    le = -0.5 * (jnp.log(2 * jnp.pi) + x + y0**2 * jnp.exp(-x))
    return lp + jnp.sum(jnp.where(obs, le, 0.0))


# --------------------------------------------------------------------------
# linear-Gaussian
# --------------------------------------------------------------------------
_COV_FIELDS = ("P0", "Q", "R")
_LEARNABLE = ("m0", "P0", "F", "Q", "H", "R")


def linear_gaussian(model) -> Parametrization:
    """Parametrization of a :class:`~statespace.LinearGaussianSSM`'s non-frozen fields."""
    from statespace import LinearGaussianSSM
    from statespace.linear_gaussian import LGSSMParams

    base = model.params
    frozen = set(model.frozen) | {"B", "D"}
    learn = [f for f in _LEARNABLE if f not in frozen]
    for f in learn:
        if getattr(base, f).ndim == 3:
            raise ParameterError(f"{f}: time-varying parameters cannot be learned; freeze it")
    if not learn:
        raise ParameterError("frozen: every parameter is frozen, nothing to learn")
    names, slices = [], {}
    for f in learn:
        a = np.asarray(getattr(base, f))
        start = len(names)
        if f in _COV_FIELDS:
            n = a.shape[0]
            names += [f"log_chol_{f}[{i},{i}]" for i in range(n)]
            names += [f"chol_{f}[{i},{j}]" for i in range(n) for j in range(i)]
        else:
            names += [f"{f}[{','.join(map(str, idx))}]" for idx in np.ndindex(a.shape)]
        slices[f] = slice(start, len(names))

    def to_vector(m):
        out = []
        for f in learn:
            a = np.asarray(getattr(m.params, f), dtype=float)
            if f in _COV_FIELDS:
                L = np.linalg.cholesky(a)
                out += list(np.log(np.diag(L)))
                out += [L[i, j] for i in range(len(a)) for j in range(i)]
            else:
                out += list(a.ravel())
        return np.array(out)

    def from_vector(th):
        th = np.asarray(th, dtype=float)
        fields = {f: getattr(base, f) for f in ("m0", "P0", "F", "B", "Q", "H", "D", "R")}
        for f in learn:
            v = th[slices[f]]
            shape = np.asarray(getattr(base, f)).shape
            if f in _COV_FIELDS:
                fields[f] = _cov_from(v, shape[0], np)
            else:
                fields[f] = v.reshape(shape)
        return LinearGaussianSSM(LGSSMParams(**fields), frozen=model.frozen)

    def log_joint(theta, x, y):
        import jax.numpy as jnp

        p = {f: jnp.asarray(np.asarray(getattr(base, f), dtype=float)) for f in ("m0", "P0", "F", "Q", "H", "R")}
        for f in learn:
            v = theta[slices[f]]
            shape = np.asarray(getattr(base, f)).shape
            p[f] = _cov_from(v, shape[0], jnp) if f in _COV_FIELDS else v.reshape(shape)
        lp = _mvn_logpdf(x[0] - p["m0"], p["P0"], jnp)
        r = x[1:] - x[:-1] @ p["F"].T
        lp += _mvn_logpdf_rows(r, p["Q"], jnp)
        obs = ~jnp.isnan(y)
        e = jnp.where(obs, y - x @ p["H"].T, 0.0)
        return lp + _masked_gaussian_rows(e, obs, p["R"], jnp)

    def natural(m):
        out = {}
        for f in learn:
            a = np.asarray(getattr(m.params, f))
            for idx in np.ndindex(a.shape):
                out[f"{f}[{','.join(map(str, idx))}]"] = float(a[idx])
        return out

    return Parametrization(tuple(names), to_vector, from_vector, log_joint, natural)


def _cov_from(v, n, xp):
    """Covariance from ``[log diag(L), strict lower(L)]``."""
    if xp is np:
        L = np.diag(np.exp(v[:n]))
        k = n
        for i in range(n):
            for j in range(i):
                L[i, j] = v[k]
                k += 1
        return L @ L.T
    L = xp.diag(xp.exp(v[:n]))
    rows, cols = np.tril_indices(n, -1)
    order = np.argsort(rows * n + cols, kind="stable")
    if len(rows):
        L = L.at[rows[order], cols[order]].set(v[n:])
    return L @ L.T


def _mvn_logpdf(r, S, jnp):
    L = jnp.linalg.cholesky(S)
    z = jnp.linalg.solve(L, r)
    return -0.5 * (r.shape[0] * jnp.log(2 * jnp.pi) + 2 * jnp.sum(jnp.log(jnp.diag(L))) + z @ z)


def _mvn_logpdf_rows(r, S, jnp):
    L = jnp.linalg.cholesky(S)
    import jax.scipy.linalg as jsl

    z = jsl.solve_triangular(L, r.T, lower=True)
    n, d = r.shape
    return -0.5 * (n * d * jnp.log(2 * jnp.pi) + 2 * n * jnp.sum(jnp.log(jnp.diag(L))) + jnp.sum(z * z))


def _masked_gaussian_rows(e, obs, R, jnp):
    """Sum over rows of log N(e_o; 0, R_oo) on the observed coordinates ``o`` of each row.

    A missing coordinate's row and column of ``R`` are replaced by the identity's,
    which leaves the observed block's determinant and quadratic form unchanged.
    """
    m = obs.astype(e.dtype)
    Rm = m[:, :, None] * m[:, None, :] * R[None] + (1.0 - m)[:, :, None] * jnp.eye(R.shape[0])[None]
    L = jnp.linalg.cholesky(Rm)
    import jax.scipy.linalg as jsl

    z = jsl.solve_triangular(L, e[:, :, None], lower=True)[:, :, 0]
    logdet = 2 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=1, axis2=2)), axis=1)
    return jnp.sum(-0.5 * (jnp.sum(m, axis=1) * jnp.log(2 * jnp.pi) + logdet + jnp.sum(z * z, axis=1)))

