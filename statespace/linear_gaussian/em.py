r"""Expectation-maximisation for linear-Gaussian SSMs (Shumway & Stoffer 1982).

Each iteration runs the Kalman filter and RTS smoother on every sequence
(E-step: the expected complete-data sufficient statistics of
:mod:`~statespace.linear_gaussian.kernels`, summed over sequences) and then
maximises the expected complete-data log-likelihood in closed form (M-step).
With :math:`z_t = (x_{t-1}, u_t)` and :math:`\langle\cdot\rangle` the summed
expectations, the transition block is a least-squares regression:

.. math::

    [F\ B] = \langle x_t z_t^\top\rangle \langle z_t z_t^\top\rangle^{-1}, \qquad
    Q = \tfrac{1}{N_\text{trans}} \big(\langle x_t x_t^\top\rangle
        - [F\ B] \langle x_t z_t^\top\rangle^\top\big),

and likewise ``[H D]`` and ``R`` from the emission statistics, with
:math:`m_0, P_0` the mean and covariance of the smoothed initial states over
sequences. Frozen parameters are kept: a frozen ``B`` moves its term to the
left-hand side (``F = (<x x_-^T> - B <u x_-^T>) <x_- x_-^T>^{-1}``), and a learned
``Q`` with ``F`` and ``B`` both frozen uses the residual statistic
:math:`\langle \varepsilon_t \varepsilon_t^\top\rangle`, which also covers
time-varying frozen ``F_t``. Time-varying parameters cannot be learned.

EM never decreases the log-likelihood; :func:`fit_em` records it per iteration
through ``ConvergenceMonitor``, which stops (keeping
the best parameters, warning, ``converged=False``) should round-off or a
covariance floor ever lower it.

Scale equivariance: the model is unchanged by the change of units
``y -> c y`` together with ``x -> a x`` (``m0 -> a m0``, ``P0 -> a^2 P0``,
``Q -> a^2 Q``, ``B -> a B``, ``H -> (c/a) H``, ``D -> c D``, ``R -> c^2 R``;
``F`` unchanged), which multiplies the likelihood by the Jacobian
:math:`|c|^{-Tm}`. The E-step and M-step commute with it, and the only floor
(the covariances' eigenvalues, :func:`_covariance`) is relative to each matrix,
so EM from transformed starting parameters visits exactly the transformed
iterates.
"""

from __future__ import annotations

import numpy as np

from .._ragged import packed
from ..convergence import ConvergenceMonitor
from ..distributed import EStep
from ..errors import ParameterError, ShapeError
from ..interface import FitResult
from ..progress import progress_bar
from ..validation import check_fit_options
from ._specialise import loops_for
from .batch import batch_e_step
from .data import prepare
from .kernels import stats_layout
from .params import LGSSMParams, check_frozen, check_not_time_varying, kernel_params
from .smoother import smooth_kernel_params


def _block(stats, off, rows, cols):
    return stats[off : off + rows * cols].reshape(rows, cols)


def _sym(a):
    return 0.5 * (a + a.T)


def _regress(Syz, Szz, known, learn_mask, left_fixed):
    """Solve the normal equations for the learned columns of ``C`` in ``y ~ C z``.

    ``Syz = <y z^T>``, ``Szz = <z z^T>``; ``learn_mask`` marks learned columns of ``C``;
    ``known`` holds the current ``C`` (its fixed columns move to the left-hand side).
    """
    if not learn_mask.any():
        return known
    if learn_mask.all():  # every column learned (the usual case): one solve, without the masks' indexing
        try:
            return np.linalg.solve(Szz.T, Syz.T).T
        except np.linalg.LinAlgError:
            raise ParameterError(
                f"{left_fixed}: the M-step normal equations are singular (degenerate states or inputs)"
            ) from None
    C = known.copy()
    L, K = learn_mask, ~learn_mask
    rhs = Syz[:, L] - (C[:, K] @ Szz[K][:, L] if K.any() else 0.0)
    try:
        C[:, L] = np.linalg.solve(Szz[np.ix_(L, L)].T, rhs.T).T
    except np.linalg.LinAlgError:
        raise ParameterError(
            f"{left_fixed}: the M-step normal equations are singular (degenerate states or inputs)"
        ) from None
    return C


#: Smallest eigenvalue an M-step covariance keeps, relative to its largest (condition number <= 1e12).
_EIG_FLOOR = 1e-12


def _covariance(Syy, Syz, Szz, C, n, name):
    """``(<y y^T> - C <y z^T>^T - <y z^T> C^T + C <z z^T> C^T) / n``, symmetric and positive definite.

    The exact M-step is positive semi-definite; round-off leaves eigenvalues near
    zero (or slightly negative) on nearly deterministic coordinates. They are raised
    to ``_EIG_FLOOR`` times the largest eigenvalue: a floor relative to the matrix,
    so that rescaling the data rescales the estimate exactly (an absolute floor
    would decide the fit at small data scales). A matrix that is round-off
    throughout (the data determine that block exactly) is floored relative to the
    second moment it was computed from.
    """
    cov = _sym(Syy - C @ Syz.T - Syz @ C.T + C @ Szz @ C.T) / n
    # No eigenvalue below the floor when cov - (floor bound) I has a Cholesky factor: the trace bounds
    # the largest eigenvalue, so the bound is at least the floor. A Cholesky factor costs a third of the
    # eigendecomposition, which then runs only for the nearly singular estimates it may change.
    bound = _EIG_FLOOR * float(np.trace(cov))
    if bound > 0.0:
        try:
            np.linalg.cholesky(cov - bound * np.eye(cov.shape[0]))
            return cov
        except np.linalg.LinAlgError:
            pass
    w, V = np.linalg.eigh(cov)
    top = float(w.max())
    if not top > 0.0:
        top = float(np.abs(np.diag(Syy)).max()) / n
        if not top > 0.0:
            raise ParameterError(
                f"{name}: the M-step estimate is exactly zero (the data determine this block without noise); "
                f"freeze {name} at a positive definite value"
            )
    floor = _EIG_FLOOR * top
    if (w < floor).any():
        cov = _sym((V * np.maximum(w, floor)) @ V.T)
    return cov


def _regression_update(stats, learn, offsets, rows, d, p, A, B, names):
    """The M-step of one regression block ``v_t = A x + B u_t + N(0, S)``: transition or emission.

    ``offsets`` locate, in ``stats``, the count ``n``, ``<v v^T>``, the residual second moment under
    the current parameters, ``<v x^T>``, ``<v u^T>``, ``<x x^T>``, ``<x u^T>`` and ``<u u^T>``;
    ``names`` are the parameters ``(A, B, S)``. ``[A B]`` solves the normal equations of ``v`` on
    ``z = (x, u)`` in its learned columns; ``S`` is the residual covariance around the new ``[A B]``,
    or around the current (frozen) one from the residual moment. Returns the learned parameters.
    """
    o_n, o_vv, o_res, o_vx, o_vu, o_xx, o_xu, o_uu = offsets
    a_name, b_name, s_name = names
    n = stats[o_n]
    new = {}
    if not (n > 0 and learn & set(names)):
        return new
    Svz = np.empty((rows, d + p))
    Svz[:, :d], Svz[:, d:] = _block(stats, o_vx, rows, d), _block(stats, o_vu, rows, p)
    Sxu = _block(stats, o_xu, d, p)
    Szz = np.empty((d + p, d + p))  # [[<x x^T>, <x u^T>], [<u x^T>, <u u^T>]]
    Szz[:d, :d], Szz[:d, d:] = _block(stats, o_xx, d, d), Sxu
    Szz[d:, :d], Szz[d:, d:] = Sxu.T, _block(stats, o_uu, p, p)
    mask = np.ones(d + p, dtype=bool)
    mask[:d] = a_name in learn
    mask[d:] = b_name in learn
    if learn & {a_name, b_name}:
        C = _regress(Svz, Szz, np.hstack([A, B]), mask, f"{a_name}/{b_name}")
        if a_name in learn:
            new[a_name] = C[:, :d]
        if b_name in learn:
            new[b_name] = C[:, d:]
    if s_name in learn:
        if learn & {a_name, b_name}:
            new[s_name] = _covariance(_block(stats, o_vv, rows, rows), Svz, Szz, C, n, s_name)
        else:
            new[s_name] = _covariance(
                _block(stats, o_res, rows, rows), np.zeros((rows, 1)), np.zeros((1, 1)), np.zeros((rows, 1)), n, s_name
            )
    return new


def m_step(params: LGSSMParams, stats: np.ndarray, frozen=()) -> LGSSMParams:
    """Parameters maximising the expected complete-data log-likelihood.

    ``stats`` is the sum over sequences of the expected sufficient statistics
    (exact from :func:`e_step`, or estimated by particle smoothing) in the layout
    of ``stats_layout``; it must have been
    computed under ``params`` (the residual statistics depend on them).
    """
    frozen = check_frozen(frozen)
    d, m, p = params.state_dim, params.obs_dim, params.input_dim
    lay = stats_layout(d, m, p)
    stats = np.asarray(stats, dtype=np.float64)
    if stats.shape != (lay.size,):
        raise ShapeError(f"stats: expected shape ({lay.size},) for d={d}, m={m}, p={p}, got {stats.shape}")
    if not np.isfinite(stats).all():
        bad = int(np.argmax(~np.isfinite(stats)))
        raise ParameterError(
            f"stats: non-finite sufficient statistic at index {bad} (the expected second moments exceed "
            "float64's range: rescale the data)"
        )
    learn = {n for n in ("m0", "P0", "F", "B", "Q", "H", "D", "R") if n not in frozen}
    if p == 0:
        learn -= {"B", "D"}
    check_not_time_varying(params, [n for n in ("F", "Q", "H", "R") if n in learn], "EM cannot learn")
    if "B" in learn:
        check_not_time_varying(params, ["F"], "prevents learning B")
    if "D" in learn:
        check_not_time_varying(params, ["H"], "prevents learning D")
    new = {}
    n0 = stats[lay.n0]
    if "m0" in learn or "P0" in learn:
        m0 = stats[lay.x0 : lay.x0 + d] / n0
        if "m0" in learn:
            new["m0"] = m0
        if "P0" in learn:
            # E[(x_0 - m0)(x_0 - m0)^T] around the new (or frozen) m0
            ref = new.get("m0", params.m0)
            Sxx = _block(stats, lay.x0x0, d, d) / n0
            new["P0"] = _covariance(Sxx, m0[:, None], np.ones((1, 1)), ref[:, None], 1.0, "P0")
    # transition x_t ~ F x_{t-1} + B u_t + N(0, Q), emission y_t ~ H x_t + D u_t + N(0, R)
    trans = (lay.nt, lay.xx, lay.qres, lay.xxp, lay.xu, lay.xpxp, lay.xpu, lay.uut)
    emis = (lay.ne, lay.yy, lay.rres, lay.yx, lay.yu, lay.xexe, lay.xeu, lay.uue)
    new.update(_regression_update(stats, learn, trans, d, d, p, params.F, params.B, ("F", "B", "Q")))
    new.update(_regression_update(stats, learn, emis, m, d, p, params.H, params.D, ("H", "D", "R")))
    return params.replace_built(**new) if new else params


def e_step(params: LGSSMParams, seqs, us) -> tuple[np.ndarray, float]:
    """Summed expected sufficient statistics and total log-likelihood over clean sequences ``seqs``
    (inputs ``us``, one per sequence): ``shard_e_step`` of their ``(y, u)`` items."""
    return shard_e_step(params, list(zip(seqs, us)))


def shard_e_step(params: LGSSMParams, shard) -> tuple[np.ndarray, float]:
    """Summed expected sufficient statistics and total log-likelihood over the ``(y, u)`` items of ``shard``,
    the E-step ``fn`` of :class:`~statespace.distributed.EStep`.

    A time-invariant model runs the whole shard as one ragged batch in one compiled
    call, parallel over sequences (``statespace.linear_gaussian.batch.batch_e_step``;
    a tiled shard gives its batch without a copy); time-varying parameters go
    sequence by sequence.
    """
    if not params.time_varying:
        y, offsets = packed(shard, 0)
        return batch_e_step(params, y, offsets, packed(shard, 1)[0] if params.input_dim else None)
    stats = np.zeros(stats_layout(params.state_dim, params.obs_dim, params.input_dim).size)
    ll = 0.0
    for i, (y, u) in enumerate(shard):
        kp = kernel_params(params, u, whitened=False)
        s = smooth_kernel_params(kp, y, label=f"y[{i}]" if len(shard) > 1 else "y")
        loops = loops_for(params.state_dim, params.obs_dim, len(y))
        loops.stats_loop(kp, y, s.smoothed_means, s.smoothed_covs, s.smoothed_cross_covs, stats)
        ll += s.log_likelihood
    return stats, ll


def fit_em(
    params: LGSSMParams, y, inputs=None, *, frozen=(), max_iter: int = 100, tol: float = 1e-6, progress=True
) -> FitResult:
    """Fit by EM from the initial ``params`` (warm start) on one sequence or a list of them.

    Args:
        params: initial parameters (their time-varying entries must be frozen).
        y, inputs: data as in ``kalman_filter``.
        frozen: names of parameters kept fixed (e.g. ``("F", "H")``).
        max_iter: maximum number of M-steps.
        tol: stop when an iteration improves the log-likelihood by less than
            ``tol * max(1, |loglik|)`` (``ConvergenceMonitor``).
        progress: show a progress bar with the current log-likelihood.

    Returns:
        :class:`~statespace.interface.FitResult` whose ``log_likelihoods[k]`` is the
        log-likelihood after ``k`` M-steps (entry 0: the initial parameters; the
        last entry belongs to the returned parameters). Should an iteration lower
        the log-likelihood beyond round-off, the fit stops with the parameters
        before it, ``converged=False`` and an
        :class:`~statespace.convergence.ObjectiveDecreaseWarning`.
    """
    frozen = check_frozen(frozen)
    max_iter, tol = check_fit_options(max_iter, tol)
    seqs, us, _ = prepare(params, y, inputs)
    monitor = ConvergenceMonitor(tol, "EM (linear-Gaussian)")
    n_iter = 0
    with (
        progress_bar(int(max_iter), "EM (linear-Gaussian)", progress) as bar,
        EStep(shard_e_step, list(zip(seqs, us))) as estep,
    ):
        stats, ll = estep(params)
        monitor.record(ll, params)
        for n_iter in range(1, int(max_iter) + 1):  # noqa: B007 (the count is read after the loop)
            params = m_step(params, stats, frozen)
            stats, ll = estep(params)
            bar.update(1)
            bar.set_postfix(loglik=f"{ll:.6g}")
            if monitor.record(ll, params):
                break
    return monitor.result(n_iter)
