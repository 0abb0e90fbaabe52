r"""The learning hooks of the linear-Gaussian model for the particle learning routines of :mod:`smc.learning`.

:func:`parametrization` maps the learned fields among ``m0, F, H`` (entries) and
``P0, Q, R`` (log-Cholesky: the log-diagonal and the strict lower triangle of the
Cholesky factor) to an unconstrained vector; frozen fields are kept. Time-varying
fields and the input matrices ``B, D`` are never learned here. Its ``log_joint`` is
:math:`\log p_\theta(x_{0:T-1}, y_{0:T-1})` in ``jax.numpy`` with NaN coordinates of
``y`` marginalised; it is ``None`` for a model with inputs (its density would need
``B u_t`` and ``D u_t``, which the hook's signature does not carry), so Markov score
climbing refuses such a model instead of following the gradient of another model.

:class:`LGPrior` is the conjugate prior of Bayesian particle Gibbs: entries of
:math:`F` independent :math:`N(F_\text{mean}, s_F^2)`, :math:`Q \sim IW(\nu_Q, \Psi_Q)`,
:math:`R \sim IW(\nu_R, \Psi_R)` (inverse-gamma in one dimension). Given the
states, :math:`\operatorname{vec} F` is Gaussian with precision
:math:`s_F^{-2} I + Q^{-1} \otimes \sum_t x_{t-1}x_{t-1}^\top` (row-major vec),
:math:`Q \mid \cdot \sim IW(\nu_Q + n_\text{trans}, \Psi_Q + \sum_t r_t r_t^\top)`
and :math:`R \mid \cdot \sim IW(\nu_R + n_\text{obs}, \Psi_R + \sum_t e_t e_t^\top)`.
Fields in the model's ``frozen`` set are kept; ``m0, P0, H, B, D`` are always
kept (``H`` fixes the scale of the states). Rows with some but not all
coordinates missing cannot update ``R`` conjugately and raise an error when
``R`` is learned.

Both are reached through the model: ``model.parametrization()`` and ``model.gibbs_prior()``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError, ParameterError
from ..interface import Parametrization
from .params import LGSSMParams

_FIELDS = ("m0", "P0", "F", "B", "Q", "H", "D", "R")
_COV_FIELDS = ("P0", "Q", "R")
_LEARNABLE = ("m0", "P0", "F", "Q", "H", "R")


def parametrization(model) -> Parametrization:
    """The :class:`~statespace.interface.Parametrization` of a linear-Gaussian model's non-frozen fields.

    Raises:
        ParameterError: a learned field is time-varying, or every field is frozen.
    """
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
        fields = {f: getattr(base, f) for f in _FIELDS}
        for f in learn:
            v = th[slices[f]]
            shape = np.asarray(getattr(base, f)).shape
            if f in _COV_FIELDS:
                fields[f] = _cov_from(v, shape[0], np)
            else:
                fields[f] = v.reshape(shape)
        return type(model)(LGSSMParams(**fields), frozen=model.frozen)

    def log_joint(theta, x, y):
        import jax.numpy as jnp

        p = {f: jnp.asarray(np.asarray(getattr(base, f), dtype=float)) for f in _LEARNABLE}
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

    joint = log_joint if base.input_dim == 0 else None
    return Parametrization(tuple(names), to_vector, from_vector, joint, natural)


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


class LGPrior(NamedTuple):
    """Conjugate priors of a linear-Gaussian model's ``F, Q, R`` for Bayesian particle Gibbs (module docstring).

    ``Q_scale`` / ``R_scale`` are the inverse-Wishart scale matrices (a scalar means
    that multiple of the identity); the degrees of freedom must exceed ``dim - 1``.
    """

    F_mean: float = 0.0
    F_sd: float = 1.0
    Q_df: float = 3.0
    Q_scale: float | np.ndarray = 1.0
    R_df: float = 3.0
    R_scale: float | np.ndarray = 1.0

    def _learned(self, model):
        return [f for f in ("F", "Q", "R") if f not in model.frozen]

    def names(self, model):
        """Names of the sampled entries, in the order of :meth:`values`: ``"F[i,j]"``, ``"Q[i,j]"``,
        ``"R[i,j]"`` for every entry of each of ``F, Q, R`` not in ``model.frozen``."""
        out = []
        for f in self._learned(model):
            a = getattr(model.params, f)
            out += [f"{f}[{','.join(map(str, idx))}]" for idx in np.ndindex(a.shape)]
        return tuple(out)

    def values(self, model):
        """The learned matrices among ``F, Q, R`` of ``model``, each flattened row-major, concatenated."""
        return np.concatenate([np.ravel(getattr(model.params, f)) for f in self._learned(model)])

    def draw(self, model, paths, data, rng):
        """One Gibbs sweep over the learned parameters among ``F, Q, R`` given the state trajectories.

        Draws, in turn, each from the values just drawn: ``vec F | Q, x`` (Gaussian; prior
        ``N(F_mean, F_sd^2)`` on each entry), ``Q | F, x ~ IW(Q_df + n_trans, Q_scale + sum_t r_t r_t^T)``
        with the transition residuals ``r_t = x_t - F x_{t-1} - B u_t``, and
        ``R | x, y ~ IW(R_df + n_obs, R_scale + sum_t e_t e_t^T)`` with the residuals
        ``e_t = y_t - H x_t - D u_t`` of the fully observed rows. Frozen parameters and
        ``m0, P0, H, B, D`` are kept.

        Args:
            model: the current time-invariant :class:`~statespace.LinearGaussianSSM`.
            paths: one ``(T_i, d)`` state trajectory per sequence.
            data: the ``(y, inputs)`` pairs of the sequences, ``y`` of shape ``(T_i, m)``
                (``inputs`` ``None`` without inputs).
            rng: a ``numpy.random.Generator``.

        Returns:
            A new model of the same class with the same frozen set.

        Raises:
            DataError: ``R`` is learned and a row of ``y`` is partly missing (the conditional
                of ``R`` is then not inverse-Wishart; freeze ``R``).
        """
        from scipy.stats import invwishart

        p = model.params
        learn = self._learned(model)
        d, m = p.state_dim, p.obs_dim
        fields = {f: getattr(p, f) for f in _FIELDS}
        kps = [model.kernel_params(inputs=u) for _, u in data]

        def bu(kp, T):
            return np.broadcast_to(kp.bu, (T, d)) if kp.bu.shape[0] == 1 else kp.bu

        F, Q = np.asarray(p.F), np.asarray(p.Q)
        if "F" in learn:
            Sxx = np.zeros((d, d))
            Sxz = np.zeros((d, d))
            for x, kp in zip(paths, kps):
                tgt = x[1:] - bu(kp, len(x))[1:]
                Sxx += x[:-1].T @ x[:-1]
                Sxz += tgt.T @ x[:-1]
            Qi = np.linalg.inv(Q)
            prec = np.eye(d * d) / self.F_sd**2 + np.kron(Qi, Sxx)
            lin = np.full(d * d, self.F_mean / self.F_sd**2) + (Qi @ Sxz).ravel()
            L = np.linalg.cholesky(prec)
            mean = np.linalg.solve(prec, lin)
            F = (mean + np.linalg.solve(L.T, rng.standard_normal(d * d))).reshape(d, d)
            fields["F"] = F
        if "Q" in learn:
            S = _scale(self.Q_scale, d)
            n = 0
            for x, kp in zip(paths, kps):
                r = x[1:] - x[:-1] @ F.T - bu(kp, len(x))[1:]
                S = S + r.T @ r
                n += len(r)
            fields["Q"] = _invwishart(invwishart, self.Q_df + n, S, rng)
        if "R" in learn:
            S = _scale(self.R_scale, m)
            n = 0
            H = np.asarray(p.H)
            for (yy, _), x, kp in zip(data, paths, kps):
                du = np.broadcast_to(kp.du, (len(yy), m)) if kp.du.shape[0] == 1 else kp.du
                obs = ~np.isnan(yy)
                partial = obs.any(axis=1) & ~obs.all(axis=1)
                if partial.any():
                    t = int(np.argmax(partial))
                    raise DataError(f"y: row {t} is partly missing; R cannot be drawn conjugately (freeze R)")
                rows = obs.all(axis=1)
                e = yy[rows] - x[rows] @ H.T - du[rows]
                S = S + e.T @ e
                n += int(rows.sum())
            fields["R"] = _invwishart(invwishart, self.R_df + n, S, rng)
        return type(model)(LGSSMParams(**fields), frozen=model.frozen)


def _scale(s, n):
    s = np.asarray(s, dtype=float)
    return s * np.eye(n) if s.ndim == 0 else s.copy()


def _invwishart(dist, df, scale, rng):
    draw = dist.rvs(df=df, scale=scale, random_state=rng)
    draw = np.atleast_2d(draw)
    return 0.5 * (draw + draw.T)
