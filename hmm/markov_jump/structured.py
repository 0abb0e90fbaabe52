r"""Maximum likelihood for structured rates :math:`Q = Q(\theta)`.

Many generators are functions of a few physical parameters, e.g. the discrete
flashing ratchet (:func:`flashing_ratchet_rates`). With ``rate_fn`` a JAX
function returning the ``(K, K)`` rates (its diagonal is ignored and set so
that rows sum to zero), the log-likelihood

.. math::

    \ell(\theta) = \sum_{s} \log p(y_s \mid \theta), \qquad
    p(y_s) = \pi_0^\top D_0 \prod_{t \ge 1} e^{Q(\theta) \Delta_t} D_t \mathbf 1,
    \quad D_t = \mathrm{diag}(p(y_t \mid x)),

is differentiable through ``jax.scipy.linalg.expm``. One exponential per
distinct interval length is computed; exact observations reduce the likelihood
to transition counts, :math:`\sum_u \sum_{ab} C_{u,ab} \log P_u(\theta)_{ab}`, and
noisy ones run the scaled forward recursion batched over sequences. The
maximiser is found with L-BFGS-B (exact gradients), and standard errors come
from the observed information :math:`H = -\nabla^2 \ell(\hat\theta)`:
:math:`\mathrm{se}_i = \sqrt{(H^{-1})_{ii}}` (valid for an interior maximum).
``H`` is obtained by central differences of the exact JAX gradient, which needs
no compilation beyond the gradient's.

The initial distribution is the stationary law of :math:`Q(\theta)`
(``initial="stationary"``, what a process started in equilibrium has) or a
fixed vector. The observation model is held fixed. JAX runs in float64 inside
these functions only (``jax.enable_x64`` context), so other JAX users keep
their precision.

Example::

    import numpy as np
    from hmm.markov_jump import MarkovJumpProcess, fit_structured, flashing_ratchet_rates, generator_from_rates
    truth = MarkovJumpProcess(generator_from_rates(flashing_ratchet_rates([1.0, 1.0, 1.0])))  # exact states
    times = [np.linspace(0.0, 1.0, 50)] * 20
    states, _ = truth.sample(times=times, rng=0)
    res = fit_structured(flashing_ratchet_rates, [0.5, 0.5, 0.5], states, times,
                         bounds=[(None, None), (1e-6, None), (1e-6, None)])
    res.theta, res.std_errors
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from statespace.errors import DataError, ParameterError, ShapeError
from statespace.validation import as_float_array, as_sequences, check_fit_options, split_batch

from .expectations import transition_matrices
from .generator import MJPParams, check_generator, stationary_distribution
from .inference import interval_table, raise_if_impossible, sequence_log_likelihoods
from .observations import ExactStates, time_grids


class StructuredFit(NamedTuple):
    """Result of :func:`fit_structured`.

    Attributes:
        theta: the maximum-likelihood parameters.
        std_errors: ``sqrt(diag(inverse observed information))`` (NaN, with a warning,
            where the information is not positive definite).
        covariance: the inverse observed information.
        log_likelihood: the maximised log-likelihood.
        params: the fitted ``MJPParams`` (``Q(theta)``, its initial distribution).
        converged: the optimiser's success flag.
        n_iter: optimiser iterations.
    """

    theta: np.ndarray
    std_errors: np.ndarray
    covariance: np.ndarray
    log_likelihood: float
    params: Any
    converged: bool
    n_iter: int


def flashing_ratchet_rates(theta):
    r"""The six-state discrete flashing ratchet (Roldan & Parrondo 2010), ``theta = (V, r, b)``.

    States 0-2 have the potential on, 3-5 off: :math:`q_{ij} = e^{-V (j - i)/2}`
    within 0-2, :math:`q_{ij} = b` within 3-5, :math:`q_{i,i+3} = q_{i+3,i} = r`,
    all other rates zero. Computes in numpy (float64) for numpy input and in JAX
    for JAX arrays (what :func:`fit_structured` passes).
    """
    if isinstance(theta, (np.ndarray, list, tuple)):
        xp = np
        theta = np.asarray(theta, dtype=np.float64)
    else:
        import jax.numpy as xp
    V, r, b = theta[0], theta[1], theta[2]
    idx = xp.arange(3.0)
    on = xp.exp(-V * (idx[None, :] - idx[:, None]) / 2.0) * (1.0 - xp.eye(3))
    off = b * (1.0 - xp.eye(3))
    sw = r * xp.eye(3)
    top = xp.concatenate([on, sw], axis=1)
    bottom = xp.concatenate([sw, off], axis=1)
    return xp.concatenate([top, bottom], axis=0)


def _generator(rate_fn, theta):
    import jax.numpy as jnp

    R = rate_fn(theta)
    R = R * (1.0 - jnp.eye(R.shape[0]))
    return R - jnp.diag(R.sum(axis=1))


def _stationary(Q):
    import jax.numpy as jnp

    K = Q.shape[0]
    # pi Q = 0 is invariant under scaling; unscaled tiny rates would vanish beside the ones row.
    A = (Q / jnp.max(jnp.abs(Q))).T.at[-1].set(jnp.ones(K))
    rhs = jnp.zeros(K).at[-1].set(1.0)
    return jnp.linalg.solve(A, rhs)


def _transition_matrices(Q, lengths, halvings, n_squarings: int):
    """``exp(Q d)`` for each length ``d``, differentiable in ``Q``, for gaps of any length.

    ``jax.scipy.linalg.expm`` returns NaN beyond 16 squarings (about ``|Q| d > 3e5``),
    and its squarings let a row-sum error grow geometrically. A length is
    therefore first divided by ``2^halvings`` (chosen from the starting rates,
    so that ``mu d / 2^halvings <= 1``), exponentiated, and squared back
    ``halvings`` times with its rows clipped at 0 and renormalised (a
    stochastic matrix squared cannot overflow), as in
    ``generator_expm``. ``n_squarings`` is
    the largest ``halvings`` (static: the length of the scan).
    """
    import jax
    import jax.numpy as jnp
    from jax.scipy.linalg import expm

    P = jax.vmap(lambda d, k: expm(Q * jnp.ldexp(d, -k)))(lengths, halvings)
    if n_squarings == 0:
        return P

    def square(P, i):
        P2 = jnp.maximum(jnp.einsum("uij,ujk->uik", P, P), 0.0)
        P2 = P2 / jnp.sum(P2, axis=2, keepdims=True)
        return jnp.where((i < halvings)[:, None, None], P2, P), None

    P, _ = jax.lax.scan(square, P, jnp.arange(n_squarings))
    return P


def _halvings(lengths, rate) -> np.ndarray:
    """How many times to halve each length so that ``rate * length <= 1`` (0 for the short ones)."""
    if rate <= 0.0:
        return np.zeros(len(lengths), dtype=np.int64)
    with np.errstate(divide="ignore"):
        k = np.ceil(np.log2(rate) + np.log2(np.asarray(lengths, dtype=np.float64)))
    return np.clip(k, 0, None).astype(np.int64)


def _loglik_counts(rate_fn, n_squarings, theta, lengths, halvings, counts, first, fixed_initial):
    """Exact observations: transition counts per interval length."""
    import jax.numpy as jnp

    Q = _generator(rate_fn, theta)
    P = _transition_matrices(Q, lengths, halvings, n_squarings)
    logP = jnp.log(jnp.where(counts > 0, P, 1.0))
    pi0 = _stationary(Q) if fixed_initial is None else fixed_initial
    return jnp.sum(counts * logP) + jnp.sum(first * jnp.log(jnp.where(first > 0, pi0, 1.0)))


def _loglik_forward(rate_fn, n_squarings, theta, lengths, halvings, L, idx, fixed_initial):
    """Noisy observations: scaled forward recursion batched over padded sequences.

    Padding steps point at an identity matrix (index ``U``) and have zero
    log-likelihood, so they change nothing. A step of zero probability gives
    ``-inf`` (its filtered row is kept finite, so no NaN follows).
    """
    import jax
    import jax.numpy as jnp

    S, T, K = L.shape
    Q = _generator(rate_fn, theta)
    P = jnp.concatenate([_transition_matrices(Q, lengths, halvings, n_squarings), jnp.eye(K)[None]], axis=0)
    pi0 = _stationary(Q) if fixed_initial is None else fixed_initial

    def norm(v, l):
        m = jnp.max(l, axis=1, keepdims=True)
        m = jnp.where(jnp.isfinite(m), m, 0.0)
        w = v * jnp.exp(l - m)
        c = jnp.sum(w, axis=1, keepdims=True)
        ok = c > 0.0
        return jnp.where(ok, w / jnp.where(ok, c, 1.0), 1.0 / K), jnp.log(c[:, 0]) + m[:, 0]

    alpha, ll0 = norm(jnp.broadcast_to(pi0, (S, K)), L[:, 0])
    if T == 1:
        return jnp.sum(ll0)

    def step(alpha, inp):
        l, i = inp
        return norm(jnp.einsum("si,sij->sj", alpha, P[i]), l)

    _, cs = jax.lax.scan(step, alpha, (jnp.swapaxes(L[:, 1:], 0, 1), idx.T))
    return jnp.sum(ll0) + jnp.sum(cs)


#: Jitted objectives per (rate_fn, likelihood kind): data are arguments, so a
#: new data set of the same shapes reuses the compiled code.
_COMPILED: dict = {}


def _build_objective(rate_fn, ys, grids, observation, initial, K, rate):
    """``(f, data)`` with ``f(theta, *data)`` the log-likelihood, jitted once per ``rate_fn``
    (and per number of squarings the longest gap needs at the starting uniformisation ``rate``)."""
    import jax
    import jax.numpy as jnp

    table = interval_table(grids)
    U = len(table.lengths)
    lengths_np = table.lengths if U else np.ones(1)
    halvings = _halvings(lengths_np, rate)
    n_squarings = int(halvings.max())
    lengths = jnp.asarray(lengths_np)
    fixed = None if isinstance(initial, str) else jnp.asarray(initial)
    exact = isinstance(observation, ExactStates) and all(not np.isnan(y).any() for y in ys)
    if exact:
        counts = np.zeros((max(U, 1), K, K))
        first = np.zeros(K)
        for s, y in enumerate(ys):
            c = y[:, 0].astype(np.int64)
            first[c[0]] += 1
            start = table.offsets[s] - s
            np.add.at(counts, (table.index[start : start + len(c) - 1], c[:-1], c[1:]), 1.0)
        data = (lengths, jnp.asarray(halvings), jnp.asarray(counts), jnp.asarray(first), fixed)
        kernel = _loglik_counts
    else:
        Tmax = max(len(y) for y in ys)
        L = np.zeros((len(ys), Tmax, K))
        idx = np.full((len(ys), max(Tmax - 1, 0)), U, dtype=np.int64)
        for s, y in enumerate(ys):
            L[s, : len(y)] = observation.log_likelihoods(y, K)
            start = table.offsets[s] - s
            idx[s, : len(y) - 1] = table.index[start : start + len(y) - 1]
        data = (lengths, jnp.asarray(halvings), jnp.asarray(L), jnp.asarray(idx), fixed)
        kernel = _loglik_forward
    key = (rate_fn, exact, n_squarings)
    if key not in _COMPILED:
        f = jax.jit(lambda theta, *d: kernel(rate_fn, n_squarings, theta, *d))
        _COMPILED[key] = (
            f,
            jax.jit(jax.value_and_grad(lambda theta, *d: -kernel(rate_fn, n_squarings, theta, *d))),
        )
    return _COMPILED[key], data


def _prepare(y, times, observation, K):
    ys, single = as_sequences("y", y, obs_dim=1)
    grids = time_grids("times", times, [len(s) for s in ys])
    for i, s in enumerate(ys):
        observation.check_data("y" if single else f"y[{i}]", s, K)
    return ys, grids


def _raise_impossible(Q, initial, observation, ys, grids, single):
    """Name the sequence and step at which the data are impossible under ``Q`` (the numpy forward pass)."""
    pi0 = stationary_distribution(Q) if isinstance(initial, str) else np.asarray(initial)
    table = interval_table(grids)
    P = transition_matrices(Q, table.lengths)
    L = np.concatenate([observation.log_likelihoods(y, Q.shape[0]) for y in ys])
    lls = sequence_log_likelihoods(pi0, P, table.index, table.offsets, L)
    raise_if_impossible(lls, pi0, P, table, L, grids, single)
    raise DataError("theta0: the log-likelihood at rate_fn(theta0) is not finite")


def _check_initial(initial, K):
    if isinstance(initial, str):
        if initial != "stationary":
            raise ParameterError(f"initial: expected 'stationary' or a probability vector, got {initial!r}")
        return initial
    return MJPParams(np.zeros((K, K)), initial).initial


def structured_log_likelihood(rate_fn, theta, y, times, observation=None, initial="stationary") -> float:
    """``log p(y | Q(theta))`` (summed over sequences)."""
    import jax

    theta = np.atleast_1d(as_float_array("theta", theta, (0, 1)))
    with jax.enable_x64(True):
        K, rate = _check_rates(rate_fn, theta)
        observation = ExactStates() if observation is None else observation
        ys, grids = _prepare(y, times, observation, K)
        (f, _), data = _build_objective(rate_fn, ys, grids, observation, _check_initial(initial, K), K, rate)
        return float(f(jax.numpy.asarray(theta), *data))


def observed_information(rate_fn, theta, y, times, observation=None, initial="stationary") -> np.ndarray:
    """``-Hessian`` of the log-likelihood at ``theta`` (central differences of the JAX gradient)."""
    import jax

    theta = np.atleast_1d(as_float_array("theta", theta, (0, 1)))
    with jax.enable_x64(True):
        K, rate = _check_rates(rate_fn, theta)
        observation = ExactStates() if observation is None else observation
        ys, grids = _prepare(y, times, observation, K)
        (_, value_and_grad), data = _build_objective(
            rate_fn, ys, grids, observation, _check_initial(initial, K), K, rate
        )
        return _information(value_and_grad, theta, data)


def _check_rates(rate_fn, theta) -> tuple[int, float]:
    """``(K, mu)``: the number of states and the uniformisation rate ``max_i sum_j q_ij`` at ``theta``."""
    import jax.numpy as jnp

    R = np.asarray(rate_fn(jnp.asarray(theta)))
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ShapeError(f"rate_fn: expected a square (K, K) matrix of rates, got shape {R.shape}")
    off = R * (1.0 - np.eye(R.shape[0]))
    check_generator("rate_fn(theta0)", off - np.diag(off.sum(axis=1)))
    return R.shape[0], float(off.sum(axis=1).max())


def fit_structured(
    rate_fn,
    theta0,
    y,
    times,
    observation=None,
    initial="stationary",
    bounds=None,
    max_iter: int = 500,
    tol: float = 1e-10,
) -> StructuredFit:
    """Maximum-likelihood ``theta`` for rates ``rate_fn(theta)``, with standard errors.

    Args:
        rate_fn: JAX function ``theta -> (K, K)`` rates (diagonal ignored).
        theta0: starting parameters (warm start).
        y, times: observations and observation times (one sequence or lists).
        observation: the (fixed) observation model; exact states by default.
        initial: ``"stationary"`` or a fixed ``(K,)`` distribution.
        bounds: L-BFGS-B bounds per parameter, e.g. ``(1e-8, None)`` for a rate.
    """
    import jax
    import scipy.optimize

    max_iter, tol = check_fit_options(max_iter, tol)
    theta0 = np.atleast_1d(as_float_array("theta0", theta0, (0, 1)))
    with jax.enable_x64(True):
        K, rate = _check_rates(rate_fn, theta0)
        observation = ExactStates() if observation is None else observation
        ys, grids = _prepare(y, times, observation, K)
        single = split_batch("y", y)[1]
        init = _check_initial(initial, K)
        (_, value_and_grad), data = _build_objective(rate_fn, ys, grids, observation, init, K, rate)

        def objective(th):
            v, g = value_and_grad(jax.numpy.asarray(th), *data)
            v = float(v)
            if not np.isfinite(v):
                return np.inf, np.zeros_like(th)
            return v, np.asarray(g, dtype=np.float64)

        v0, _ = objective(theta0)
        if not np.isfinite(v0):
            Q0 = np.asarray(_generator(rate_fn, jax.numpy.asarray(theta0)))
            _raise_impossible(Q0, init, observation, ys, grids, single)
        res = scipy.optimize.minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-8},
        )
        theta = np.asarray(res.x, dtype=np.float64)
        H = _information(value_and_grad, theta, data)
        Q = np.asarray(_generator(rate_fn, jax.numpy.asarray(theta)))
        pi0 = np.asarray(_stationary(jax.numpy.asarray(Q))) if isinstance(init, str) else init
    cov, se = _invert_information(H)
    pi0 = np.clip(pi0, 0.0, None)
    params = MJPParams(Q, pi0 / pi0.sum(), observation)
    return StructuredFit(theta, se, cov, -float(res.fun), params, bool(res.success), int(res.nit))


def _information(value_and_grad, theta, data) -> np.ndarray:
    """``-Hessian`` of the log-likelihood: central differences of the exact (AD) gradient.

    Differencing the automatic gradient (step ``1e-5`` relative, error ~1e-8
    relative) costs ``2p`` gradient calls and no extra compilation, whereas
    ``jax.hessian`` through ``expm`` and the forward scan takes tens of seconds
    to compile; for standard errors the difference is immaterial.
    """
    import jax.numpy as jnp

    p = theta.shape[0]
    H = np.empty((p, p))
    for i in range(p):
        h = 1e-5 * max(1.0, abs(theta[i]))
        e = np.zeros(p)
        e[i] = h
        gp = np.asarray(value_and_grad(jnp.asarray(theta + e), *data)[1])
        gm = np.asarray(value_and_grad(jnp.asarray(theta - e), *data)[1])
        H[i] = (gp - gm) / (2 * h)
    # value_and_grad differentiates the negative log-likelihood: H is already the information.
    return 0.5 * (H + H.T)


def _invert_information(H):
    try:
        np.linalg.cholesky(H)
        cov = np.linalg.inv(H)
        return cov, np.sqrt(np.diag(cov))
    except np.linalg.LinAlgError:
        warnings.warn(
            "observed information is not positive definite at the optimum (boundary or non-identified "
            "parameters): standard errors are NaN",
            RuntimeWarning,
            stacklevel=3,
        )
        n = H.shape[0]
        return np.full((n, n), np.nan), np.full(n, np.nan)
