"""Dense joint-Gaussian oracle for small linear-Gaussian state-space models.

Builds the full mean and covariance of all states ``X = (x_0, ..., x_{T-1})`` and
observations ``Y`` by plain matrix algebra (no recursion shared with the Kalman
code), then conditions on the observed entries of ``Y``.
"""

import numpy as np


def _at(a, t):
    return a[t] if a.ndim == 3 else a


def joint(params, T, inputs=None):
    """Mean and covariance of the stacked states and observations."""
    d, m = params.state_dim, params.obs_dim
    u = np.zeros((T, params.input_dim)) if inputs is None else np.asarray(inputs)
    # X = mu_X + L eps, eps ~ N(0, blockdiag(P0, Q_1, ..., Q_{T-1}))
    L = np.zeros((T * d, T * d))
    noise = np.zeros((T * d, T * d))
    mu_x = np.zeros(T * d)
    for t in range(T):
        noise[t * d : (t + 1) * d, t * d : (t + 1) * d] = params.P0 if t == 0 else _at(params.Q, t)
        prod = np.eye(d)
        for s in range(t, -1, -1):
            L[t * d : (t + 1) * d, s * d : (s + 1) * d] = prod
            if s > 0:
                prod = prod @ _at(params.F, s)
    # x_0 ~ N(m0, P0) carries no B u_0 term
    mu_x[:d] = params.m0
    for t in range(1, T):
        mu_x[t * d : (t + 1) * d] = _at(params.F, t) @ mu_x[(t - 1) * d : t * d] + params.B @ u[t]
    cov_x = L @ noise @ L.T
    Hb = np.zeros((T * m, T * d))
    Rb = np.zeros((T * m, T * m))
    for t in range(T):
        Hb[t * m : (t + 1) * m, t * d : (t + 1) * d] = _at(params.H, t)
        Rb[t * m : (t + 1) * m, t * m : (t + 1) * m] = _at(params.R, t)
    mu_y = Hb @ mu_x + (u @ params.D.T).ravel()
    cov_y = Hb @ cov_x @ Hb.T + Rb
    cov_xy = cov_x @ Hb.T
    return mu_x, cov_x, mu_y, cov_y, cov_xy


def condition(params, y, inputs=None, upto=None):
    """Posterior mean/cov of X given the observed entries of ``y[:upto]``, and their log-likelihood."""
    T, m = y.shape
    mu_x, cov_x, mu_y, cov_y, cov_xy = joint(params, T, inputs)
    flat = y.ravel()
    keep = ~np.isnan(flat)
    if upto is not None:
        keep &= np.repeat(np.arange(T), m) < upto
    o = np.flatnonzero(keep)
    if len(o) == 0:
        return mu_x, cov_x, 0.0
    S = cov_y[np.ix_(o, o)]
    r = flat[o] - mu_y[o]
    G = np.linalg.solve(S, cov_xy[:, o].T).T
    mean = mu_x + G @ r
    cov = cov_x - G @ cov_xy[:, o].T
    _, logdet = np.linalg.slogdet(S)
    ll = -0.5 * (len(o) * np.log(2 * np.pi) + logdet + r @ np.linalg.solve(S, r))
    return mean, cov, ll


def block(cov, d, t, s):
    return cov[t * d : (t + 1) * d, s * d : (s + 1) * d]


def random_spd(rng, n, scale=1.0):
    a = rng.normal(size=(n, n))
    return scale * (a @ a.T / n + 0.3 * np.eye(n))


def random_params(rng, d=3, m=2, p=0, T=None, time_varying=()):
    """Random valid parameters; names in ``time_varying`` get a leading axis of length ``T``."""
    from statespace.linear_gaussian import LGSSMParams

    def stack(name, make):
        return np.stack([make() for _ in range(T)]) if name in time_varying else make()

    def make_F():
        a = rng.normal(size=(d, d))
        return 0.9 * a / max(1.0, np.abs(np.linalg.eigvals(a)).max())

    return LGSSMParams(
        m0=rng.normal(size=d),
        P0=random_spd(rng, d),
        F=stack("F", make_F),
        B=rng.normal(size=(d, p)) if p else None,
        Q=stack("Q", lambda: random_spd(rng, d, 0.5)),
        H=stack("H", lambda: rng.normal(size=(m, d))),
        D=rng.normal(size=(m, p)) if p else None,
        R=stack("R", lambda: random_spd(rng, m, 0.5)),
    )


def condition_joint(params, y, inputs=None):
    """Posterior mean and covariance of ``Z = (X, Y)`` given the observed entries of ``y``.

    Observed entries of ``Y`` come out with their value and zero variance; missing
    ones with their exact conditional distribution (what EM imputes).
    """
    T, m = y.shape
    mu_x, cov_x, mu_y, cov_y, cov_xy = joint(params, T, inputs)
    mu = np.concatenate([mu_x, mu_y])
    cov = np.block([[cov_x, cov_xy], [cov_xy.T, cov_y]])
    o = len(mu_x) + np.flatnonzero(~np.isnan(y.ravel()))
    G = np.linalg.solve(cov[np.ix_(o, o)], cov[:, o].T).T
    mean = mu + G @ (y.ravel()[o - len(mu_x)] - mu[o])
    post = cov - G @ cov[:, o].T
    return mean, post
