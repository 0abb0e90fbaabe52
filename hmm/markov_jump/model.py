r"""The Markov jump process as a state-space model of the shared interface.

.. math::

    x(t) \sim \mathrm{MJP}(Q), \quad x(t_0) \sim \pi_0, \qquad
    y_t \mid x(t_t) \sim g(\cdot \mid x(t_t)) \quad (t = 0..T-1),

observed at strictly increasing, possibly irregular, times ``t_0 < ... < t_{T-1}``
(each sequence its own grid). At the observation times it is an HMM with
transition matrices :math:`e^{Q(t_t - t_{t-1})}`; exact inference uses
:mod:`hmm.forward_backward`, learning uses EM (:mod:`hmm.markov_jump.em`) or,
for rates that are functions of a few parameters, maximum likelihood
(:mod:`hmm.markov_jump.structured`). Example::

    import numpy as np
    from hmm.markov_jump import MarkovJumpProcess, NoisyLabels
    Q = np.array([[-1.0, 0.7, 0.3], [0.4, -0.9, 0.5], [0.2, 0.8, -1.0]])
    mjp = MarkovJumpProcess(Q, observation=NoisyLabels.uniform_replacement(3, 0.05))
    grids = [np.sort(np.random.default_rng(i).uniform(0, 10, 50)) for i in range(20)]
    states, y = mjp.sample(times=grids, rng=0)
    fit = MarkovJumpProcess(np.full((3, 3), 0.5) - 1.5 * np.eye(3),
                            observation=NoisyLabels.uniform_replacement(3, 0.1)).fit(y, times=grids)
    fit.params.Q                                   # close to Q

The compiled kernels (state code in ``x[0]``, transition density
``expm(Q dt_t)[i, j]`` precomputed per sequence by ``kernel_params(times=...)``)
let the particle methods of :mod:`smc` run on jump processes, with the exact
forward-backward here as their oracle.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hmm import inference as hmm_inference
from statespace._numerics.categorical import draw
from statespace.errors import DataError, ParameterError, ShapeError
from statespace.interface import AdditiveFunctional, FitResult, ModelKernels, StateSpaceModel
from statespace.persistence import SavedModel, register_loadable
from statespace.validation import (
    as_float_array,
    as_rng,
    as_sequences,
    check_fit_options,
    check_int,
    check_names,
    split_batch,
)

from . import inference
from .em import fit_em, update_rates
from .expectations import _bridge_path, check_path_length, conditional_statistics, transition_matrices
from .generator import MJPParams
from .kernels import _KERNELS, MJPKernelParams, _stats_initial, _stats_step
from .observations import GaussianLevels, NoisyLabels, as_time_grids, check_times, time_grids
from .simulation import simulate


class MJPFilterResult(NamedTuple):
    """Filtering output of one sequence.

    Attributes:
        log_likelihood: ``log p(y_{0:T-1})`` of the sequence.
        filtered_probs: ``(T, K)``, ``filtered_probs[t, k] = p(x(t_t) = k | y_{0:t})``.
    """

    log_likelihood: float
    filtered_probs: np.ndarray


class MJPSmoothResult(NamedTuple):
    """Smoothing output of one sequence.

    Attributes:
        log_likelihood: ``log p(y_{0:T-1})`` of the sequence.
        smoothed_probs: ``(T, K)``, ``p(x(t_t) = k | y_{0:T-1})`` at the observation times.
        query_probs: ``(n, K)`` marginals at the sequence's ``query_times``, or ``None``.
    """

    log_likelihood: float
    smoothed_probs: np.ndarray
    query_probs: np.ndarray | None


class MJPForecast(NamedTuple):
    """State probabilities of one sequence at future times.

    Attributes:
        times: ``(n,)`` the future times (at or after the last observation time).
        state_probs: ``(n, K)``, ``p(x(s) = k | y_{0:T-1}) = (\\alpha_{T-1} e^{Q (s - t_{T-1})})_k``
            with :math:`\\alpha_{T-1}` the filtered distribution at the last observation.
    """

    times: np.ndarray
    state_probs: np.ndarray


#: The names ``fit(frozen=...)`` accepts: the learnable fields of :class:`MJPParams`
#: (``emission`` for ``NoisyLabels``, ``means``/``stds`` for ``GaussianLevels``).
FROZEN_NAMES = ("Q", "initial", "emission", "means", "stds")


class MarkovJumpProcess(StateSpaceModel, SavedModel):
    """A continuous-time Markov chain observed at irregular times (see the module docstring).

    Args:
        Q: ``(K, K)`` generator (or give ``params``).
        initial: ``(K,)`` distribution at the first observation time (uniform by default).
        observation: ``ExactStates`` (default), ``NoisyLabels`` or ``GaussianLevels``.
        params: a ready ``MJPParams``.
    """

    def __init__(self, Q=None, initial=None, observation=None, params: MJPParams | None = None):
        if params is None:
            if Q is None:
                raise ShapeError("Q: give a generator matrix or params")
            params = MJPParams(Q, initial, observation)
        elif not isinstance(params, MJPParams):
            raise ShapeError(f"params: expected MJPParams, got {type(params).__name__}")
        self.params = params

    @property
    def n_states(self) -> int:
        """``K``, the number of states of the jump process (the size of the generator ``Q``)."""
        return self.params.n_states

    def __repr__(self) -> str:
        return f"MarkovJumpProcess(K={self.n_states}, observation={self.params.observation!r})"

    # --- data ------------------------------------------------------------------
    def _data(self, y, times):
        ys, single = as_sequences("y", y, obs_dim=1)
        grids = time_grids("times", times, [len(s) for s in ys])
        K = self.n_states
        for i, s in enumerate(ys):
            self.params.observation.check_data("y" if single else f"y[{i}]", s, K)
        return ys, grids, single

    def _loglik(self, ys):
        K = self.n_states
        return np.concatenate([self.params.observation.log_likelihoods(y, K) for y in ys])

    # --- compiled face -----------------------------------------------------------
    def kernels(self) -> ModelKernels:
        k = _KERNELS._replace(n_states=self.n_states)
        return k

    def kernel_params(self, inputs=None, times=None) -> MJPKernelParams:
        if times is None:
            raise ShapeError("times: a Markov jump process needs the observation times of the sequence")
        t = check_times("times", times)
        K = self.n_states
        Q = np.asarray(self.params.Q)
        P = np.empty((len(t), K, K))
        P[0] = np.eye(K)
        stat_index = np.zeros(len(t), dtype=np.int64)
        cond_stats = np.zeros((1, K, K, K + K * K))
        if len(t) > 1:
            table = inference.interval_table([t])
            P[1:] = transition_matrices(Q, table.lengths)[table.index]
            stat_index[1:] = table.index
            cond_stats = conditional_statistics(Q, table.lengths)
        with np.errstate(divide="ignore"):
            log_bound = np.log(P.reshape(len(t), -1).max(axis=1))
        kind, logB, means, stds = self.params.observation.kernel_fields(K)
        return MJPKernelParams(
            P,
            log_bound,
            np.asarray(self.params.initial, dtype=np.float64),
            int(kind),
            np.ascontiguousarray(logB),
            np.ascontiguousarray(np.exp(logB)),
            means.astype(np.float64),
            stds.astype(np.float64),
            stat_index,
            cond_stats,
        )

    # --- simulation ---------------------------------------------------------------
    def sample(self, T: int | None = None, rng=None, inputs=None, times=None, return_paths: bool = False):
        """Exact (Gillespie) paths observed at ``times`` (one grid, or a list of grids).

        Returns ``(states, y)`` with shapes ``(T, 1)`` (lists for several grids), plus
        the full paths ``(jump_times, path_states)`` when ``return_paths``.
        ``T`` alone means the unit grid ``0, 1, ..., T-1``; with ``times`` it must
        equal the length of every grid. ``times`` follows the rule of
        ``as_time_grids`` (a flat list of
        numbers is one grid). Over a gap too long for its path to be held
        (``simulate``) the states are still
        exact, but ``return_paths`` is an error.
        """
        if T is not None:
            T = check_int("T", T, minimum=1)
        if times is None:
            if T is None:
                raise ShapeError("times: give the observation times (or T for the grid 0..T-1)")
            grids, single = [np.arange(T, dtype=np.float64)], True
        else:
            grids, single = as_time_grids("times", times)
            for i, g in enumerate(grids):
                if T is not None and len(g) != T:
                    raise ShapeError(f"T: got T={T} but {'times' if single else f'times[{i}]'} has {len(g)} entries")
        rng = as_rng(rng)
        p = self.params
        Q, pi0 = np.asarray(p.Q), np.asarray(p.initial)
        states, ys, paths = [], [], []
        for i, g in enumerate(grids):
            x0 = draw(pi0, rng)
            s, path = simulate(Q, x0, g, rng, "times" if single else f"times[{i}]", with_path=return_paths)
            states.append(s.astype(np.float64)[:, None])
            ys.append(p.observation.sample(s, self.n_states, rng))
            paths.append(path)
        if single:
            return (states[0], ys[0], paths[0]) if return_paths else (states[0], ys[0])
        return (states, ys, paths) if return_paths else (states, ys)

    # --- exact inference ------------------------------------------------------------
    def _tables(self, grids):
        table = inference.interval_table(grids)
        P = transition_matrices(np.asarray(self.params.Q), table.lengths)
        return table, P

    def log_likelihood(self, y, inputs=None, times=None) -> float:
        """``log p(y)`` summed over sequences (``-inf`` when the data are impossible)."""
        ys, grids, _ = self._data(y, times)
        table, P = self._tables(grids)
        lls = inference.sequence_log_likelihoods(
            np.asarray(self.params.initial), P, table.index, table.offsets, self._loglik(ys)
        )
        return float(sum(lls.tolist()))  # in the sequences' order, as a sum over per-sequence calls is

    def filter(self, y, inputs=None, times=None) -> MJPFilterResult | list[MJPFilterResult]:
        """Filtered marginals at the observation times: one :class:`~hmm.markov_jump.MJPFilterResult`, a list for a list.

        Data of zero probability raise :class:`~statespace.errors.ImpossibleDataError`
        naming the sequence and step (so do every verb below that conditions on the data).
        """
        ys, grids, single = self._data(y, times)
        table, P = self._tables(grids)
        pi0, L = np.asarray(self.params.initial), self._loglik(ys)
        lls, filt = inference.filtered_marginals(pi0, P, table.index, table.offsets, L)
        inference.raise_if_impossible(lls, pi0, P, table, L, grids, single)
        out = [MJPFilterResult(float(ll), f) for ll, f in zip(lls, _split(filt, table.offsets))]
        return out[0] if single else out

    def smooth(self, y, inputs=None, times=None, query_times=None) -> MJPSmoothResult | list[MJPSmoothResult]:
        """Smoothed marginals at the observation times and, if given, at ``query_times``.

        ``query_times`` (one array per sequence, in the form of ``times``) may fall anywhere
        at or after the sequence's first observation time: between observations the
        marginal bridges the two-slice posterior of the interval, after the last one it
        is the last smoothed marginal moved forward by :math:`e^{Q (s - t_{T-1})}`
        (see ``_query``). Returns one :class:`~hmm.markov_jump.MJPSmoothResult`, a list for a list.
        """
        ys, grids, single = self._data(y, times)
        table, P = self._tables(grids)
        L = self._loglik(ys)
        pi0 = np.asarray(self.params.initial)
        lls, gamma, _ = inference.posterior_pass(pi0, P, table.index, table.offsets, L)
        inference.raise_if_impossible(lls, pi0, P, table, L, grids, single)
        smoothed = _split(gamma, table.offsets)
        queries = [None] * len(ys)
        if query_times is not None:
            qs, _ = split_batch("query_times", query_times)
            if len(qs) != len(ys):
                raise ShapeError(f"query_times: got {len(qs)} arrays for {len(ys)} sequences")
            for s, (q, g) in enumerate(zip(qs, grids)):
                a, b = table.offsets[s], table.offsets[s + 1]
                A = P[table.index[a - s : b - s - 1]] if b - a > 1 else np.eye(len(pi0))[None]
                name = "query_times" if single else f"query_times[{s}]"
                queries[s] = self._query(pi0, A, L[a:b], g, q, name)
        out = [MJPSmoothResult(float(ll), g, q) for ll, g, q in zip(lls, smoothed, queries)]
        return out[0] if single else out

    def forecast(self, y, future_times, inputs=None, times=None) -> MJPForecast | list[MJPForecast]:
        """State probabilities at ``future_times`` after each sequence's last observation.

        The filtered distribution at the last observation time :math:`t_{T-1}` moved
        forward by the generator, :math:`\\alpha_{T-1} e^{Q (s - t_{T-1})}` for every future
        time ``s``.

        Args:
            y, times: the data as in :meth:`filter`.
            future_times: ``(n,)`` times at or after the sequence's last observation time
                (a list of such arrays for a list of sequences).
            inputs: unused (the process takes no inputs).

        Returns:
            An :class:`~hmm.markov_jump.MJPForecast`; a list of them for a list.

        Raises:
            DataError: a future time is non-finite or precedes the last observation time.
            ImpossibleDataError: the data have zero probability under the model.
        """
        filtered = self.filter(y, times=times)
        single = isinstance(filtered, MJPFilterResult)
        filtered = [filtered] if single else filtered
        _, grids, _ = self._data(y, times)
        fs, _ = split_batch("future_times", future_times)
        if len(fs) != len(filtered):
            raise ShapeError(f"future_times: got {len(fs)} arrays for {len(filtered)} sequences")
        Q = np.asarray(self.params.Q)
        out = []
        for s, (f, g, res) in enumerate(zip(fs, grids, filtered)):
            name = "future_times" if single else f"future_times[{s}]"
            f = np.atleast_1d(as_float_array(name, f, (0, 1)))
            if not np.isfinite(f).all():
                i = int(np.argmax(~np.isfinite(f)))
                raise DataError(f"{name}: non-finite time at index {i}")
            if (f < g[-1]).any():
                i = int(np.argmax(f < g[-1]))
                raise DataError(f"{name}: time {f[i]} at index {i} precedes the last observation time {g[-1]}")
            probs = (
                res.filtered_probs[-1] @ transition_matrices(Q, f - g[-1]) if len(f) else np.zeros((0, self.n_states))
            )
            out.append(MJPForecast(f, probs / probs.sum(axis=-1, keepdims=True) if len(f) else probs))
        return out[0] if single else out

    def _query(self, pi0, A, L, grid, q, name):
        """Marginals at the times ``q`` of one sequence observed at ``grid`` (see :meth:`smooth`).

        Between ``t_i`` and ``t_{i+1}`` the marginal bridges the two-slice posterior:
        :math:`p(x(s)=k \\mid y) = \\sum_{ab} R_{ab}\\, P(s - t_i)_{ak} P(t_{i+1} - s)_{kb}` with
        :math:`R_{ab} = p(x_i=a, x_{i+1}=b \\mid y) / P(t_{i+1} - t_i)_{ab}`
        (``sequence_posteriors``); after the last
        observation it is :math:`\\gamma_{T-1} P(s - t_{T-1})`.
        """
        q = np.atleast_1d(as_float_array(name, q, (0, 1)))
        if not np.isfinite(q).all():
            raise DataError(f"{name}: non-finite query time")
        if (q < grid[0]).any():
            i = int(np.argmax(q < grid[0]))
            raise DataError(f"{name}: query time {q[i]} at index {i} precedes the first observation time {grid[0]}")
        _, gamma, R = inference.sequence_posteriors(pi0, A, L)  # the data are possible: smooth checked them
        Q = np.asarray(self.params.Q)
        out = np.empty((len(q), len(pi0)))
        pos = np.searchsorted(grid, q, side="right") - 1
        for n, (s, i) in enumerate(zip(q, pos)):
            if s == grid[i]:
                out[n] = gamma[i]
            elif i == len(grid) - 1:
                out[n] = gamma[i] @ transition_matrices(Q, np.array([s - grid[i]]))[0]
            else:
                P1, P2 = transition_matrices(Q, np.array([s - grid[i], grid[i + 1] - s]))
                out[n] = ((R[i] @ P2.T) * P1).sum(axis=0)
            out[n] /= out[n].sum()
        return out

    def most_likely_states(self, y, inputs=None, times=None):
        """Viterbi path at the observation times (int array, a list for several sequences)."""
        ys, grids, single = self._data(y, times)
        table, P = self._tables(grids)
        L = self._loglik(ys)
        pi0 = np.asarray(self.params.initial)
        lls = inference.sequence_log_likelihoods(pi0, P, table.index, table.offsets, L)
        inference.raise_if_impossible(lls, pi0, P, table, L, grids, single)
        paths = []
        for s in range(len(ys)):
            a, b = table.offsets[s], table.offsets[s + 1]
            A = P[table.index[a - s : b - s - 1]] if b - a > 1 else np.eye(len(pi0))[None]
            path, _ = hmm_inference.viterbi(pi0, A, L[a:b])
            paths.append(path)
        return paths[0] if single else paths

    def sample_posterior(self, y, n_samples: int = 1, rng=None, inputs=None, times=None, return_paths: bool = False):
        """Paths drawn exactly from ``p(x(t), t_0 <= t <= t_{T-1} | y)``.

        States at the observation times are drawn forward through the posterior
        chain, :math:`x_0 \\sim \\gamma_0` and :math:`p(x_t = b \\mid x_{t-1} = a, y)
        \\propto \\xi_t(a, b)`, from the exact, per-step normalised two-slice posteriors of
        ``sequence_posteriors`` (a path too light for
        float64 at one step that a later observation makes the only one is still
        drawn: backward sampling from the filtered probabilities would have lost it).
        With ``return_paths``, each interval is then filled by an endpoint-conditioned
        path (uniformization).

        Args:
            y, times: the data as in :meth:`filter`.
            n_samples: number of paths per sequence.
            rng: a ``numpy.random.Generator`` or a seed.
            inputs: unused (the process takes no inputs).
            return_paths: also return the continuous-time paths.

        Returns:
            ``(n_samples, T)`` int states at the observation times (a list for a list); with
            ``return_paths``, the pair ``(states, paths)`` per sequence, ``paths`` a list of
            ``n_samples`` pairs ``(jump_times, path_states)`` (``path_states[0]`` the state at
            ``t_0``, then the state after each jump).
        """
        n_samples = check_int("n_samples", n_samples, minimum=1, error=ShapeError)
        rng = as_rng(rng)
        ys, grids, single = self._data(y, times)
        table, P = self._tables(grids)
        L = self._loglik(ys)
        pi0 = np.asarray(self.params.initial)
        Q = np.asarray(self.params.Q)
        lls = inference.sequence_log_likelihoods(pi0, P, table.index, table.offsets, L)
        inference.raise_if_impossible(lls, pi0, P, table, L, grids, single)
        if return_paths:
            for s, g in enumerate(grids):
                gaps = np.diff(g)
                if gaps.size:
                    i = int(np.argmax(gaps))
                    name = "times" if single else f"times[{s}]"
                    check_path_length(f"{name}[{i + 1}] - {name}[{i}]", Q, float(gaps[i]))
        out = []
        for s, g in enumerate(grids):
            a, b = table.offsets[s], table.offsets[s + 1]
            A = P[table.index[a - s : b - s - 1]] if b - a > 1 else np.eye(len(pi0))[None]
            _, gamma, R = inference.sequence_posteriors(pi0, A, L[a:b])
            X = np.empty((n_samples, len(g)), dtype=np.int64)
            paths = []
            for n in range(n_samples):
                x = X[n]
                x[0] = draw(gamma[0], rng)
                for t in range(len(g) - 1):
                    w = R[t, x[t]] * A[t, x[t]]  # xi_t(x_t, .), the step's total being gamma_t(x_t)
                    x[t + 1] = draw(w / w.sum(), rng)
                if return_paths:
                    jts, jss = [], [np.array([x[0]])]
                    for t in range(len(g) - 1):
                        jt, js = _bridge_path(Q, int(x[t]), int(x[t + 1]), float(g[t + 1] - g[t]), rng)
                        jts.append(jt + g[t])
                        jss.append(js[1:])
                    paths.append((np.concatenate(jts) if jts else np.zeros(0), np.concatenate(jss)))
            out.append((X, paths) if return_paths else X)
        return out[0] if single else out

    # --- particle EM ----------------------------------------------------------------------
    def sufficient_statistics(self) -> AdditiveFunctional:
        """Complete-data sufficient statistics as an additive functional (for PaRIS / particle EM).

        Layout: ``[0:K]`` indicator of ``x_0``; ``[K:2K]`` expected dwell times and
        ``[2K:2K+K*K]`` expected jump counts of each interval given its end states
        (the conditional expectations of the E-step, tabulated per interval length
        by ``kernel_params``); then the observation model's statistics:
        ``e_{x_t} (x) onehot(y_t)`` (``K*M``) for labels, ``(1, y_t, y_t^2)`` per state
        (``3K``) for Gaussian levels, nothing for exact states.
        """
        K = self.n_states
        obs = self.params.observation
        extra = obs.emission.size if isinstance(obs, NoisyLabels) else 3 * K if isinstance(obs, GaussianLevels) else 0
        return AdditiveFunctional(_stats_initial, _stats_step, 2 * K + K * K + extra)

    def m_step(self, stats, n_sequences: int = 1, n_steps=None) -> MarkovJumpProcess:
        """The EM update from (estimated) expected ``sufficient_statistics`` summed over sequences."""
        K = self.n_states
        stats = np.asarray(stats, dtype=np.float64)
        dim = self.sufficient_statistics().dim
        if stats.shape != (dim,):
            raise ShapeError(f"stats: expected shape ({dim},) (see sufficient_statistics), got {stats.shape}")
        first = np.clip(stats[:K], 0.0, None)
        dwell = np.clip(stats[K : 2 * K], 0.0, None)
        jumps = np.clip(stats[2 * K : 2 * K + K * K].reshape(K, K), 0.0, None)
        rest = stats[2 * K + K * K :]
        Q = update_rates(np.asarray(self.params.Q), dwell, jumps)
        initial = first / first.sum() if first.sum() > 0 else np.asarray(self.params.initial)
        obs = self.params.observation.m_step_from_statistics(rest, K)
        return MarkovJumpProcess(params=MJPParams(Q, initial, obs))

    # --- learning ---------------------------------------------------------------------
    def fit(
        self,
        y,
        inputs=None,
        times=None,
        *,
        init: MJPParams | None = None,
        frozen=None,
        max_iter: int = 500,
        tol: float = 1e-9,
        progress: bool | None = True,
    ) -> FitResult:
        """EM for the generator, the initial distribution and the observation model; updates ``self.params``.

        Structural zeros of the starting ``Q`` stay zero.

        Args:
            y, times: the data as in :meth:`filter`.
            inputs: unused (the process takes no inputs).
            init: the starting :class:`MJPParams`; by default ``self.params`` (warm start).
            frozen: names of parameters EM keeps fixed, from ``FROZEN_NAMES``: ``"initial"``,
                ``"emission"`` (``NoisyLabels``), ``"means"`` and ``"stds"`` together
                (``GaussianLevels``). The observation model's own ``learn`` setting applies
                as well. EM always re-estimates ``"Q"`` (naming it is an error).
            max_iter, tol, progress: iteration limit, relative tolerance, progress bar.

        Returns:
            :class:`~statespace.interface.FitResult` whose ``params`` (an ``MJPParams``)
            become ``self.params``.

        Raises:
            ParameterError: ``init`` is not an ``MJPParams``; ``frozen`` names an unknown
                field, or a combination EM cannot keep fixed.
        """
        max_iter, tol = check_fit_options(max_iter, tol)
        ys, grids, _ = self._data(y, times)
        start = self.params if init is None else init
        if not isinstance(start, MJPParams):
            raise ParameterError(f"init: expected MJPParams, got {type(start).__name__}")
        frozen = check_names("frozen", frozen, FROZEN_NAMES)
        obs = start.observation
        if "Q" in frozen:
            raise ParameterError(
                "frozen: EM of a Markov jump process always re-estimates 'Q'; for rates given by a few "
                "parameters use fit_structured"
            )
        if {"means", "stds"} & frozen and isinstance(obs, GaussianLevels) and not {"means", "stds"} <= frozen:
            raise ParameterError("frozen: GaussianLevels keeps 'means' and 'stds' fixed together; freeze both")
        kept = obs
        if "emission" in frozen and isinstance(obs, NoisyLabels):
            kept = NoisyLabels(obs.emission, "none")
        if {"means", "stds"} <= frozen and isinstance(obs, GaussianLevels):
            kept = GaussianLevels(obs.means, obs.stds, False)
        if kept is not obs:
            start = MJPParams(start.Q, start.initial, kept)
        res = fit_em(
            start, ys, grids, max_iter=max_iter, tol=tol, learn_initial="initial" not in frozen, progress=progress
        )
        if kept is not obs:  # the observation model keeps its own learn setting
            fitted = res.params.observation
            fitted = (
                NoisyLabels(fitted.emission, obs.learn)
                if isinstance(obs, NoisyLabels)
                else GaussianLevels(fitted.means, fitted.stds, obs.learn)
            )
            res = res._replace(params=MJPParams(res.params.Q, res.params.initial, fitted))
        self.params = res.params
        return res

    def fit_structured(self, rate_fn, theta0, y, times, **kwargs):
        """Maximum likelihood for rates given as a JAX function of a few parameters (see ``structured``)."""
        from .structured import fit_structured

        return fit_structured(rate_fn, theta0, y, times, observation=self.params.observation, **kwargs)


def _split(arr, offsets):
    return [arr[offsets[s] : offsets[s + 1]] for s in range(len(offsets) - 1)]


register_loadable(MJPParams)
register_loadable(MarkovJumpProcess)
