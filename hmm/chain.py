r"""One base for every discrete-state chain: the inference verbs written once on one hook.

Every model of the HMM family is, for one observed sequence, a chain

.. math::

    z_0 \sim \pi, \qquad z_t \mid z_{t-1} = i \sim A_t(i, \cdot), \qquad
    \ell_t(k) = \log p(y_t \mid z_t = k, \text{history}) + \log pl_t(k),

and exact inference needs nothing else: the initial distribution :math:`\pi`, the
transition matrices (``(1, K, K)`` when time-invariant, ``(T-1, K, K)`` otherwise)
and the emission log-likelihood matrix :math:`\ell` ``(T, K)``. A subclass supplies
those three through one hook,

    ``_inference_args(params, data) -> iterable of (pi0, A, loglik)``, one per sequence,

(batch-wise, so a network can score many sequences in one call) and
:class:`DiscreteChainModel` writes the verbs once on top of the compiled kernels
of :mod:`hmm.forward_backward` and :mod:`hmm.inference`: ``log_likelihood``,
``filter``, ``smooth``, ``most_likely_states``, ``sample_posterior`` and ``forecast``.
The subclasses are :class:`hmm.HMM` (Gaussian, autoregressive and categorical
emissions), :class:`hmm.IOHMM` (transitions from a network over inputs) and
:class:`hmm.LearnedEmissionHMM` (emissions from a network over the history); the
RUL models of :mod:`hmm.rul` delegate to them.

Data of zero probability: ``log_likelihood`` returns ``-inf``; every verb that
conditions on the data raises :func:`hmm.forward_backward.impossible_data_error`
naming the sequence and the first impossible time step.

Example::

    import numpy as np
    from hmm import GaussianHMM
    rng = np.random.default_rng(0)
    y1, y2 = (np.concatenate([rng.normal(-1.0, 0.5, (50, 1)), rng.normal(2.0, 0.5, (T, 1))]) for T in (50, 30))
    model = GaussianHMM(n_states=2, obs_dim=1)
    model.fit([y1, y2], rng=0, progress=False)
    model.smooth(y1).smoothed_probs          # (T, 2)
    model.forecast([y1, y2], steps=5)        # one HMMForecast per sequence
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from statespace._ragged import Tiled, pack, views
from statespace.errors import ParameterError, ShapeError, StateSpaceError
from statespace.interface import StateSpaceModel
from statespace.persistence import SavedModel
from statespace.validation import as_inputs, as_rng, as_sequences, check_int, check_names

from .batch import batch_forward, batch_posteriors, batch_viterbi
from .forward_backward import forward, impossible_data_error, posteriors
from .inference import predicted, predicted_batch, sample_paths, viterbi
from .partial_knowledge import log_plausibilities


class HMMFilterResult(NamedTuple):
    """Forward pass of one sequence.

    Attributes:
        log_likelihood: ``log p(y_{0:T-1})`` (with ``pl``: of the data and the evidence).
        filtered_probs: ``(T, K)``, ``filtered_probs[t] = p(z_t | y_{0:t})``.
        predicted_probs: ``(T, K)``, ``predicted_probs[t] = p(z_t | y_{0:t-1})`` (``pi0`` at ``t = 0``).
    """

    log_likelihood: float
    filtered_probs: np.ndarray
    predicted_probs: np.ndarray


class HMMSmoothResult(NamedTuple):
    """Forward-backward pass of one sequence.

    Attributes:
        log_likelihood: ``log p(y_{0:T-1})`` (with ``pl``: of the data and the evidence).
        filtered_probs: ``(T, K)``, ``p(z_t | y_{0:t})``.
        smoothed_probs: ``(T, K)``, ``smoothed_probs[t] = p(z_t | y_{0:T-1})``.
        transition_counts: ``(K, K)``, ``transition_counts[i, j] = sum_t p(z_{t-1}=i, z_t=j | y)``.
    """

    log_likelihood: float
    filtered_probs: np.ndarray
    smoothed_probs: np.ndarray
    transition_counts: np.ndarray


class HMMForecast(NamedTuple):
    """Forecast ``h = 1..steps`` ahead of the end of a sequence.

    Attributes:
        state_probs: ``(steps, K)`` exact ``p(z_{T-1+h} | y)``.
        states: ``(n_samples, steps)`` sampled future states.
        observations: ``(n_samples, steps, d)`` sampled future observations.
        mean: ``(steps, d)`` Monte Carlo mean of the observations.
    """

    state_probs: np.ndarray
    states: np.ndarray
    observations: np.ndarray
    mean: np.ndarray


class ChainData(NamedTuple):
    """Validated data of one call: per-sequence lists (``dts``: the time increments of families that read them)."""

    seqs: list
    inputs: list
    log_pls: list
    single: bool
    dts: list | None = None

    def label(self, i: int, name: str = "y") -> str:
        """How the error messages name sequence ``i``: ``y`` for one sequence, ``y[i]`` in a list."""
        return name if self.single else f"{name}[{i}]"

    def items(self) -> list:
        """One picklable ``(y, u, log_pl, dt)`` tuple per sequence: the items of an E-step."""
        dts = [None] * len(self.seqs) if self.dts is None else self.dts
        return list(zip(self.seqs, self.inputs, self.log_pls, dts))

    @classmethod
    def from_items(cls, items) -> ChainData:
        """The data of a shard of :meth:`items` (a list: errors name ``y[i]`` within it)."""
        seqs, us, lps, dts = (list(c) for c in zip(*items)) if items else ([], [], [], [])
        return cls(seqs, us, lps, False, None if all(d is None for d in dts) else dts)

    def one(self, i: int) -> ChainData:
        """Sequence ``i`` alone (still labelled as in the whole call)."""
        return ChainData(
            [self.seqs[i]],
            [self.inputs[i]],
            [self.log_pls[i]],
            self.single,
            None if self.dts is None else [self.dts[i]],
        )


def sample_future_states(last_filtered, A_future, n_samples: int, rng) -> np.ndarray:
    """``(n_samples, steps)`` draws of ``z_T, ..., z_{T-1+steps}`` given ``p(z_{T-1} | y) = last_filtered``
    and the transition matrices ``A_future[h]`` from ``z_{T-1+h}`` to ``z_{T+h}``."""
    steps, K = A_future.shape[0], len(last_filtered)
    out = np.empty((n_samples, steps), np.int64)
    cdf = np.cumsum(last_filtered)
    z = np.minimum(np.searchsorted(cdf, rng.random(n_samples) * cdf[-1], side="right"), K - 1)
    for h in range(steps):
        cdf = np.cumsum(A_future[h][z], axis=1)
        u = rng.random(n_samples)[:, None] * cdf[:, -1:]
        z = np.minimum((cdf <= u).sum(axis=1), K - 1)
        out[:, h] = z
    return out


class DiscreteChainModel(StateSpaceModel, SavedModel):
    """Base of the discrete-state chains (see the module docstring).

    Subclasses set ``n_states``, ``input_dim``, ``_obs_dim`` and ``params`` (a
    NamedTuple whose fields are the names ``fit(frozen=...)`` accepts), and implement
    ``_inference_args``, ``check_params`` and ``_sample_future``.
    """

    n_states: int
    input_dim: int = 0
    _obs_dim: int = 1
    params = None
    #: Whether the M-step reads each sequence's per-step two-slice marginals (:func:`hmm.em.chain_posteriors`).
    _two_slice = False
    #: Most rows in all of a list of sequences that validation returns as one block (a Tiled list, which
    #: ``_batch_runs`` slices without copies); 0: the family keeps the user's arrays (it does not pack them).
    _PACKED_ROWS = 0

    # ------------------------------------------------------------------ hooks
    def _inference_args(self, params, data: ChainData):
        """``(pi0 (K,), A (S, K, K), loglik (T, K))`` for each sequence of ``data``, in order.

        ``loglik`` includes the log-plausibilities of partial knowledge and is a fresh
        array the caller may overwrite.
        """
        raise NotImplementedError

    def _batch_runs(self, params, data: ChainData):
        """``(pi0, A (1, K, K), loglik (N, K), offsets)`` for runs of consecutive sequences of ``data``, in
        order (the ragged-batch layout of :mod:`hmm.batch`), for a family whose sequences all share one
        time-invariant chain and that computes its log-likelihoods batch by batch (``hmm.model.HMM``);
        ``None`` (this default) otherwise."""
        return None

    def _sample_future(
        self, params, data: ChainData, i: int, last_filtered, steps: int, future_inputs, n_samples: int, rng
    ):
        """``(A_future (steps, K, K), states (n_samples, steps), observations (n_samples, steps, d))``
        after the end of sequence ``i``, from ``p(z_{T-1} | y) = last_filtered``."""
        raise NotImplementedError

    def _check_data(self, name: str, y: np.ndarray) -> None:
        """Family-specific checks of one sequence (e.g. categorical symbols)."""

    def _passes_check(self, block: np.ndarray) -> bool:
        """Whether the concatenated sequences pass :meth:`_check_data` (one call for a whole batch)."""
        try:
            self._check_data("y", block)
        except StateSpaceError:
            return False
        return True

    def _prepare(self, y, inputs=None, pl=None) -> ChainData:
        # a list: one block, checked once, when the family runs it in batches of that size
        seqs, single = as_sequences("y", y, self._obs_dim, packed=self._PACKED_ROWS > 0, packed_rows=self._PACKED_ROWS)
        if not (type(seqs) is Tiled and self._passes_check(seqs.block)):
            for i, s in enumerate(seqs):  # names the sequence that fails
                self._check_data("y" if single else f"y[{i}]", s)
        lengths = [len(s) for s in seqs]
        us = as_inputs("inputs", inputs, lengths, self.input_dim, single)
        return ChainData(seqs, us, log_plausibilities(pl, lengths, self.n_states, single), single)

    # ------------------------------------------------------------------ parameters
    @property
    def obs_dim(self) -> int:
        """``d``, the dimension of an observation."""
        return self._obs_dim

    def _require_params(self):
        if self.params is None:
            raise ParameterError("params: the model has no parameters yet; pass params=... or call fit first")
        return self.params

    def _frozen(self, frozen) -> frozenset:
        """``frozen`` checked against the parameter container's field names (``None``: nothing frozen)."""
        return check_names("frozen", frozen, self._parameter_names())

    def _parameter_names(self) -> tuple:
        raise NotImplementedError

    def _start(self, init):
        """The first parameters of ``fit``: ``init``, else the current ``params`` (warm start), else ``None``."""
        if init is not None:
            return self.check_params(init)
        return self.params

    @classmethod
    def initialize(cls, y, *args, inputs=None, pl=None, rng=None, **kwargs):
        """A model ``cls(*args, **kwargs)`` whose ``params`` are the data-driven start ``fit`` uses
        when it has none (``_initial_params``)."""
        model = cls(*args, **kwargs)
        model.params = model._initial_params(model._prepare(y, inputs, pl), as_rng(rng))
        return model

    # ------------------------------------------------------------------ the verbs
    def _each(self, data: ChainData, params=None):
        """``(i, pi0, A, loglik)`` for every sequence of ``data``."""
        p = self._require_params() if params is None else params
        for i, (pi0, A, ll) in enumerate(self._inference_args(p, data)):
            yield i, pi0, A, ll

    def _filtered(self, data: ChainData, params=None, args=None):
        """``(i, pi0, A, loglik, log_likelihood, filtered)`` for every sequence (of ``args`` when the
        inference arguments are already at hand); impossible data raise."""
        for i, pi0, A, ll in self._each(data, params) if args is None else args:
            lik, filt, _ = forward(pi0, A, ll)
            if not lik > -np.inf:
                self._raise_impossible(data, i)
            yield i, pi0, A, ll, lik, filt

    def _raise_impossible(self, data: ChainData, i: int) -> None:
        """Raise the library's error for sequence ``i`` of ``data`` (its log-likelihood is ``-inf``)."""
        pi0, A, ll = next(iter(self._inference_args(self._require_params(), data.one(i))))
        raise impossible_data_error(data.label(i), pi0, A, ll)

    @staticmethod
    def _one_or_list(data: ChainData, out: list):
        return out[0] if data.single else out

    def log_likelihood(self, y, inputs=None, pl=None, **kw) -> float:
        """``log p(y, pl)`` summed over sequences (``pl`` omitted: the marginal log-likelihood).

        ``-inf`` when some sequence has zero probability under the model; the verbs
        that condition on the data (``filter``, ``smooth``, ...) raise
        :class:`~statespace.errors.ImpossibleDataError` there instead.
        """
        data = self._prepare(y, inputs, pl, **kw)
        runs, args = self._runs(data)
        if runs is None:
            return float(sum(forward(pi0, A, ll)[0] for _, pi0, A, ll in args))
        # a fleet's forward passes in one compiled call per run (in lanes), summed in sequence order
        return float(sum(sum(batch_forward(*run).log_likelihoods.tolist()) for run in runs))

    def _runs(self, data: ChainData):
        """``(runs, None)`` when ``data`` is a list of several sequences sharing one time-invariant chain:
        ``runs`` as :meth:`_batch_runs` gives them (or, for a family without it, every sequence's
        log-likelihoods packed into one run); else ``(None, args)``, ``args`` the per-sequence
        ``(i, pi0, A, loglik)`` of :meth:`_each`, computed once."""
        if not data.single and len(data.seqs) > 1:
            runs = self._batch_runs(self._require_params(), data)
            if runs is not None:
                return runs, None
        args = list(self._each(data))
        if len(args) < 2:
            return None, args
        _, pi0, A, _ = args[0]
        shared = A.shape[0] == 1 and all(
            a.shape[0] == 1 and (p is pi0 or np.array_equal(p, pi0)) and (a is A or np.array_equal(a, A))
            for _, p, a, _ in args[1:]
        )
        return ([(pi0, A, *pack([ll for _, _, _, ll in args]))], None) if shared else (None, args)

    def _check_batch(self, data: ChainData, lls, first: int) -> None:
        """Raise for the first sequence of a run (starting at ``first``) with zero probability."""
        for i, lik in enumerate(lls):
            if not lik > -np.inf:
                self._raise_impossible(data, first + i)

    def filter(self, y, inputs=None, pl=None, **kw):
        """Filtered and one-step predicted state probabilities (:class:`HMMFilterResult`, a list for a list).

        A list of sequences sharing one time-invariant chain is filtered in one
        compiled call per run of sequences (``hmm.batch.batch_forward``).
        """
        data = self._prepare(y, inputs, pl, **kw)
        runs, args = self._runs(data)
        if runs is None:
            out = [
                HMMFilterResult(float(lik), filt, predicted(pi0, A, filt))
                for _, pi0, A, _, lik, filt in self._filtered(data, args=args)
            ]
            return self._one_or_list(data, out)
        out = []
        for pi0, A, ll, offsets in runs:
            res = batch_forward(pi0, A, ll, offsets)
            self._check_batch(data, res.log_likelihoods, len(out))
            columns = (
                res.log_likelihoods.tolist(),
                views(res.filtered, offsets),
                views(predicted_batch(pi0, A, res.filtered, offsets), offsets),
            )
            out.extend(map(partial(tuple.__new__, HMMFilterResult), zip(*columns)))
        return out

    def smooth(self, y, inputs=None, pl=None, **kw):
        """Smoothed state probabilities and expected transition counts (:class:`HMMSmoothResult`).

        A list of sequences sharing one time-invariant chain is smoothed in one
        compiled call per run of sequences (``hmm.batch.batch_posteriors``), with
        the same numbers as one sequence at a time.
        """
        data = self._prepare(y, inputs, pl, **kw)
        runs, args = self._runs(data)
        if runs is None:
            out = []
            for i, pi0, A, ll in args:
                lik, filt, smo, counts = posteriors(pi0, A, ll, overwrite=True)
                if not lik > -np.inf:
                    self._raise_impossible(data, i)
                out.append(HMMSmoothResult(float(lik), filt, smo, counts))
            return self._one_or_list(data, out)
        out = []
        for pi0, A, ll, offsets in runs:
            res = batch_posteriors(pi0, A, ll, offsets, overwrite=True)
            self._check_batch(data, res.log_likelihoods, len(out))
            # the results in bulk: a fleet's thousands of them cost more than its smoothing
            columns = (
                res.log_likelihoods.tolist(),
                views(res.filtered, res.offsets),
                views(res.smoothed, res.offsets),
                res.transition_counts,
            )
            out.extend(map(partial(tuple.__new__, HMMSmoothResult), zip(*columns)))
        return out

    def most_likely_states(self, y, inputs=None, pl=None, **kw):
        """Viterbi path(s): ``(T,)`` int arrays."""
        data = self._prepare(y, inputs, pl, **kw)
        runs, args = self._runs(data)
        out = []
        if runs is None:
            for i, pi0, A, ll in args:
                path, best = viterbi(pi0, A, ll)
                if not best > -np.inf:
                    self._raise_impossible(data, i)
                out.append(path)
            return self._one_or_list(data, out)
        for pi0, A, ll, offsets in runs:  # a fleet: one compiled call per run, paths as views of one array
            res = batch_viterbi(pi0, A, ll, offsets)
            self._check_batch(data, res.best, len(out))
            out.extend(views(res.paths, offsets))
        return out

    def sample_posterior(self, y, n_samples: int = 1, rng=None, inputs=None, pl=None, **kw):
        """Paths ``(n_samples, T)`` drawn from ``p(z | y, pl)`` (forward filtering, backward sampling)."""
        rng = as_rng(rng)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        data = self._prepare(y, inputs, pl, **kw)
        out = [sample_paths(pi0, A, ll, filt, n_samples, rng) for _, pi0, A, ll, _, filt in self._filtered(data)]
        return self._one_or_list(data, out)

    def forecast(self, y, steps: int, n_samples: int = 200, rng=None, inputs=None, future_inputs=None, pl=None, **kw):
        """State distribution (exact) and observation rollouts (sampled) ``steps`` ahead of each sequence.

        ``future_inputs``: the inputs of the ``steps`` future time steps, ``(steps, p)``
        per sequence (in the form of ``y``), needed when the model takes inputs.
        Returns an :class:`HMMForecast` (a list for a list of sequences).
        """
        p = self._require_params()
        rng = as_rng(rng)
        steps = check_int("steps", steps, minimum=1, error=ShapeError)
        n_samples = check_int("n_samples", n_samples, minimum=1)
        data = self._prepare(y, inputs, pl, **kw)
        futs = as_inputs("future_inputs", future_inputs, [steps] * len(data.seqs), self.input_dim, data.single)
        out = []
        for i, _, _, _, _, filt in self._filtered(data, p):
            A_future, states, obs = self._sample_future(p, data, i, filt[-1], steps, futs[i], n_samples, rng)
            probs = np.empty((steps, self.n_states))
            cur = filt[-1]
            for h in range(steps):
                cur = cur @ A_future[h]
                probs[h] = cur
            out.append(HMMForecast(probs, states, obs, obs.mean(axis=0)))
        return self._one_or_list(data, out)

    def __getstate__(self):
        """Picklable (for the Dask E-step): compiled network functions are rebuilt where needed."""
        state = dict(self.__dict__)
        state.pop("_fns", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if hasattr(self, "_functions"):
            self._fns = None

    def _copy(self):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new
