r"""What the deep-SSM components of :mod:`hmm` share: padded batches, standardisation, the GEM M-step.

*Generalised EM.* The E-step is exact (forward-backward). The M-step for the
network parameters :math:`\theta` takes optax steps on the negative expected
complete-data log-likelihood :math:`-Q(\theta)` and keeps the new :math:`\theta`
only if :math:`Q` did not decrease (otherwise the old one, with a halved
learning rate for the next M-step). Any :math:`\theta` with
:math:`Q(\theta) \ge Q(\theta_{old})` gives
:math:`\log p(y \mid \theta) \ge \log p(y \mid \theta_{old})` (Dempster, Laird &
Rubin 1977), so the log-likelihood never decreases, whatever the optimiser does.

*Padding.* Sequences of different lengths are padded at the end to a common
length and run as one batch: the layers are causal, so padding never leaks into
earlier steps, and padded steps get zero weight.

*Network chains.* :class:`NetworkChain` is the base of the chains one part of
which a :class:`~statespace.deep.SequenceModel` computes from the sequence (the
transitions of :class:`hmm.io_hmm.IOHMM`, the emissions of
:class:`hmm.learned_emission.LearnedEmissionHMM`): the architecture's arguments,
the network, the compiled face, persistence and the generalised-EM loop.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from statespace.errors import ParameterError
from statespace.interface import ModelKernels

from .chain import DiscreteChainModel


class Standardiser(NamedTuple):
    """Affine map ``z = (v - loc) / scale`` fitted on observed (non-NaN) values."""

    loc: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, arrays: list[np.ndarray], width: int) -> Standardiser:
        if width == 0:
            return cls(np.zeros(0), np.ones(0))
        stacked = np.concatenate(arrays, axis=0)
        loc = np.nan_to_num(np.nanmean(stacked, axis=0)) if np.isfinite(stacked).any() else np.zeros(width)
        scale = np.nan_to_num(np.nanstd(stacked, axis=0), nan=1.0)
        # a constant column (spread zero, or round-off of its mean) is left unscaled; the test is
        # relative, so data in any units are standardised alike (the deep HMMs' floors act on z)
        scale = np.where((scale > 0) & (scale > 1e-12 * np.abs(loc)), scale, 1.0)
        return cls(np.asarray(loc, float).reshape(width), np.asarray(scale, float).reshape(width))


def pad(arrays: list[np.ndarray], length: int, fill: float = 0.0) -> np.ndarray:
    """Stack ``(T_i, ...)`` arrays into ``(N, length, ...)``, filling the tail with ``fill``."""
    out = np.full((len(arrays), length, *arrays[0].shape[1:]), fill, dtype=np.float64)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return out


def padded_length(lengths: list[int]) -> int:
    """The longest length rounded up to a multiple of 64 (multiples of 1024 past 1024).

    Every distinct padded length compiles the network once more, so the shapes are
    coarse; but padded steps cost as much as real ones in every gradient step, and
    rounding up to a power of two made the M-step on the CMAPSS engines (363 steps
    with the failure row) work on 512 instead of 384 (the deep fit took 25% longer).
    """
    T = max(lengths)
    if T <= 1024:
        return max(64, -(-T // 64) * 64)
    return int(-(-T // 1024) * 1024)


def l2_penalty(net):
    """``sum theta^2 / 2`` over every leaf of the network parameters (jax-traceable)."""
    import jax

    return 0.5 * sum(jax.numpy.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(net))


def check_tree_finite(name: str, tree, path: str = ""):
    """Raise :class:`ParameterError` naming the first non-finite leaf of a dict/list tree of arrays."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            check_tree_finite(name, v, f"{path}[{k!r}]")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            check_tree_finite(name, v, f"{path}[{i}]")
    else:
        arr = np.asarray(tree)
        if not np.isfinite(arr).all():
            idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ParameterError(f"{name}{path}: non-finite value at index {idx}")


def to_numpy_tree(tree):
    """A dict/list tree of jax arrays as float64 numpy arrays (portable, picklable-free)."""
    if isinstance(tree, dict):
        return {k: to_numpy_tree(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [to_numpy_tree(v) for v in tree]
    return np.asarray(tree, dtype=np.float64)


class NetworkMStep:
    """The network half of a generalised M-step: Adam on ``-q_fn(net, *data)``, accepted only if ``q`` rises.

    ``q_fn(net, *data)`` is the expected complete-data log-likelihood (jax-traceable);
    the data (posterior weights, padded sequences) are arguments, so the update is
    compiled once per fit, not once per EM iteration. The optimiser state carries over
    between EM iterations; a rejected M-step resets it and halves the learning rate.
    """

    def __init__(self, q_fn, learning_rate: float):
        if not learning_rate > 0:
            raise ParameterError(f"learning_rate: expected a positive number, got {learning_rate}")
        self.optimizer, self.q, self._update = _compiled_m_step(q_fn)
        self.learning_rate = float(learning_rate)
        self.opt_state = None

    def _fresh_state(self, net):
        state = self.optimizer.init(net)
        state.hyperparams["learning_rate"] = self.learning_rate
        return state

    def update(self, net, data: tuple, n_steps: int) -> dict:
        """The M-step on a NumPy tree of network parameters (as stored in a params container): the new tree."""
        import jax

        new, *_ = self(jax.tree_util.tree_map(jax.numpy.asarray, net), data, n_steps)
        return to_numpy_tree(new)

    def __call__(self, net, data: tuple, n_steps: int, tol: float = 1e-7):
        """``(net, q_old, q_new, accepted)`` after up to ``n_steps`` Adam steps."""
        if int(n_steps) < 1:
            raise ParameterError(f"m_steps: expected a positive number of gradient steps, got {n_steps}")
        if self.opt_state is None:
            self.opt_state = self._fresh_state(net)
        q_old = float(self.q(net, *data))
        new, state, prev = net, self.opt_state, None
        for _ in range(int(n_steps)):
            new, state, q = self._update(new, state, *data)
            q = float(q)
            if prev is not None and abs(q - prev) <= tol * (abs(prev) + 1.0):
                break
            prev = q
        q_new = float(self.q(new, *data))
        if not q_new >= q_old:
            self.learning_rate /= 2.0
            self.opt_state = self._fresh_state(net)
            return net, q_old, q_old, False
        self.opt_state = state
        return new, q_old, q_new, True


@lru_cache(maxsize=32)
def _compiled_m_step(q_fn):
    """``(optimizer, jit q, jit Adam update)`` for ``q_fn``, shared by every M-step on it.

    The learning rate lives in the optimiser state (``inject_hyperparams``), so one
    compiled update serves every fit with the same ``q_fn`` (e.g. the folds of a
    cross-validation): JAX compiles once per process, not once per fit.
    """
    import jax
    import optax

    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=1.0)

    def update(net, opt_state, *data):
        neg_q, grads = jax.value_and_grad(lambda p: -q_fn(p, *data))(net)
        updates, opt_state = optimizer.update(grads, opt_state, net)
        return optax.apply_updates(net, updates), opt_state, -neg_q

    return optimizer, jax.jit(q_fn), jax.jit(update)


class NetworkChain(DiscreteChainModel):
    """A discrete chain with a :class:`~statespace.deep.SequenceModel` inside (see the module docstring).

    Subclasses call :meth:`_set_architecture` first in ``__init__``, build their
    network with :meth:`_sequence_model`, start ``_persist_state`` with
    :meth:`_architecture` and end ``fit`` with :meth:`_run_gem`.
    """

    def _set_architecture(
        self, n_states, obs_dim, input_dim, min_input_dim: int, layer, hidden, state, n_layers, init_options
    ) -> None:
        """Check and set the sizes of the chain and the network's constructor arguments."""
        from statespace.deep.block import LAYERS
        from statespace.validation import check_choice, check_int

        self.n_states = check_int("n_states", n_states, minimum=1)
        self._obs_dim = check_int("obs_dim", obs_dim, minimum=1)
        self.input_dim = check_int("input_dim", input_dim, minimum=min_input_dim)
        self.layer = check_choice("layer", layer, tuple(LAYERS))
        self.hidden, self.state = check_int("hidden", hidden, minimum=1), check_int("state", state, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.init_options = tuple(init_options)
        self._fns = None

    def _gem_options(self, frozen, max_iter, tol, m_steps, learning_rate, weight_decay) -> tuple:
        """The generalised-EM settings of ``fit`` checked: ``(frozen, max_iter, tol, m_steps, learning_rate, weight_decay)``."""
        from statespace.validation import check_fit_options, check_int, check_real

        frozen = self._frozen(frozen)
        max_iter, tol = check_fit_options(max_iter, tol)
        return (
            frozen,
            max_iter,
            tol,
            check_int("m_steps", m_steps, minimum=0),
            check_real("learning_rate", learning_rate, 0.0, strict=True),
            check_real("weight_decay", weight_decay, 0.0),
        )

    def _sequence_model(self, n_inputs: int, n_outputs: int):
        """The :class:`~statespace.deep.SequenceModel` of this architecture from ``n_inputs`` to ``n_outputs`` per step."""
        from statespace.deep import SequenceModel

        return SequenceModel(
            self.layer, n_inputs, n_outputs, self.hidden, self.state, self.n_layers, init_options=self.init_options
        )

    def _architecture(self) -> dict:
        """The constructor arguments set by :meth:`_set_architecture` (the start of ``_persist_state``)."""
        names = ("n_states", "obs_dim", "input_dim", "layer", "hidden", "state", "n_layers", "init_options")
        return {name: getattr(self, name) for name in names}

    def kernels(self) -> ModelKernels:
        from .deep_kernels import chain_kernels

        return chain_kernels(self._obs_dim, self.n_states)

    def _e_step(self, params, estep):
        """Log-likelihood, counts and each sequence's posteriors at ``params`` (:func:`hmm.em.chain_posteriors`)."""
        return estep((self, params))

    def _run_gem(self, params, estep, m_step, penalty, n_obs: float, weight_decay: float, max_iter, tol, progress):
        """Generalised EM from ``params`` (:func:`hmm.em.fit_em`); sets and returns the fit.

        The objective is the log-likelihood plus the network's log-prior
        ``-n_obs * weight_decay * penalty(net)``.
        """
        from .em import fit_em

        e_step = self._e_step
        res = fit_em(
            [params],
            lambda q: e_step(q, estep),
            m_step,
            lambda q: -n_obs * weight_decay * float(penalty(q.net)),
            int(max_iter),
            float(tol),
            f"generalised EM ({type(self).__name__})",
            "generalised EM",
            progress,
        )
        self.params = res.params
        return res


def plausibilities(log_pls: list) -> list | None:
    """The partial-knowledge plausibilities ``pl`` given as ``log pl`` per sequence (``None`` when there are none),
    for a classical chain fitted to start a network chain."""
    return None if all(lp is None for lp in log_pls) else [None if lp is None else np.exp(lp) for lp in log_pls]
