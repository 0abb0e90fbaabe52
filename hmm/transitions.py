r"""Transition structures of a discrete chain and their EM update.

A structure says which moves are allowed and what prior the transition matrix
carries. With expected move counts :math:`N_{ij} = \sum_t \xi_t(i, j)` from the
E-step and Dirichlet pseudo-counts :math:`c_{ij} \ge 0` (a prior
:math:`p(A) \propto \prod_{ij} A_{ij}^{c_{ij}}`), the M-step is

.. math::

    A_{ij} = \frac{N_{ij} + c_{ij}}{\sum_{j'} (N_{ij'} + c_{ij'})} \quad \text{on allowed moves}, \qquad
    A_{ij} = 0 \text{ elsewhere}.

Structural zeros are kept exactly: a zero transition has zero posterior
probability, so :math:`N_{ij} = 0` there, and the pseudo-counts are restricted to
allowed moves. Shapes shipped:

* :func:`ergodic` - every move allowed (optionally with an absorbing last state);
* :func:`left_to_right` - state ``i`` moves to ``i .. i + max_jump``; the last
  state is absorbing (degradation models: healthy -> ... -> failed);
* :func:`banded` - moves from ``i`` to ``i - lower .. i + upper``;
* :func:`sticky` - any of the above with ``kappa`` extra pseudo-counts on the
  diagonal (the "sticky HMM" prior, which favours long state durations).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from statespace.errors import ParameterError, ShapeError
from statespace.validation import check_int, check_real, check_stochastic_matrix


class TransitionStructure(NamedTuple):
    """Allowed moves and Dirichlet pseudo-counts of a ``K``-state chain.

    Attributes:
        mask: ``(K, K)`` bool, ``mask[i, j]`` when the move ``i -> j`` is allowed.
        pseudo_counts: ``(K, K)`` non-negative Dirichlet pseudo-counts (zero off the mask).
        absorbing: whether the last state is absorbing (its row is fixed to ``e_{K-1}``).
    """

    mask: np.ndarray
    pseudo_counts: np.ndarray
    absorbing: bool

    @property
    def n_states(self) -> int:
        """``K``, the number of states of the chain (the size of ``mask``)."""
        return self.mask.shape[0]

    def check(self, name: str, A: np.ndarray) -> np.ndarray:
        """Validate a transition matrix ``(K, K)`` against this structure."""
        K = self.n_states
        A = check_stochastic_matrix(name, A, size=K)
        if A.ndim != 2:
            raise ShapeError(f"{name}: expected a ({K}, {K}) matrix, got shape {A.shape}")
        bad = (A > 0) & ~self.mask
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise ParameterError(
                f"{name}: entry ({i}, {j}) = {A[i, j]:.6g} but the move {i} -> {j} is a structural zero of this structure"
            )
        if self.absorbing and A[K - 1, K - 1] != 1.0:
            raise ParameterError(f"{name}: the last state {K - 1} is absorbing, expected A[{K - 1}, {K - 1}] = 1")
        return A

    def random_matrix(self, rng: np.random.Generator, stay: float = 0.0) -> np.ndarray:
        """A random matrix respecting the mask (Dirichlet rows, ``stay`` extra mass on the diagonal)."""
        K = self.n_states
        A = np.zeros((K, K))
        for i in range(K):
            allowed = np.flatnonzero(self.mask[i])
            w = rng.dirichlet(np.ones(len(allowed)))
            A[i, allowed] = w
            if self.mask[i, i] and len(allowed) > 1:
                A[i] *= 1.0 - stay
                A[i, i] += stay
        if self.absorbing:
            A[K - 1] = 0.0
            A[K - 1, K - 1] = 1.0
        return A

    def m_step(self, counts: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """The MAP update from expected move counts; rows without information keep ``previous``."""
        num = np.where(self.mask, counts + self.pseudo_counts, 0.0)
        tot = num.sum(axis=1, keepdims=True)
        A = np.where(tot > 0, num / np.where(tot > 0, tot, 1.0), previous)
        if self.absorbing:
            K = self.n_states
            A[K - 1] = 0.0
            A[K - 1, K - 1] = 1.0
        return A

    def log_prior(self, A: np.ndarray) -> float:
        """``sum c_ij log A_ij`` (the unnormalised Dirichlet log-density) on allowed moves."""
        c = self.pseudo_counts
        pos = c > 0
        if not pos.any():
            return 0.0
        with np.errstate(divide="ignore"):
            return float(np.sum(c[pos] * np.log(A[pos])))


def _structure(mask: np.ndarray, absorbing: bool) -> TransitionStructure:
    mask = np.asarray(mask, dtype=bool)
    if absorbing:
        mask = mask.copy()
        mask[-1] = False
        mask[-1, -1] = True
    return TransitionStructure(mask, np.zeros(mask.shape), bool(absorbing))


def _check_k(n_states) -> int:
    return check_int("n_states", n_states, minimum=1)


def ergodic(n_states: int, absorbing: bool = False) -> TransitionStructure:
    """Every move allowed; ``absorbing`` makes the last state a trap."""
    K = _check_k(n_states)
    return _structure(np.ones((K, K), bool), absorbing)


def banded(n_states: int, lower: int = 0, upper: int = 1, absorbing: bool = False) -> TransitionStructure:
    """Moves ``i -> j`` allowed for ``-lower <= j - i <= upper``."""
    K = _check_k(n_states)
    lower, upper = check_int("lower", lower, minimum=0), check_int("upper", upper, minimum=0)
    i, j = np.indices((K, K))
    return _structure((j - i >= -lower) & (j - i <= upper), absorbing)


def left_to_right(n_states: int, max_jump: int = 1) -> TransitionStructure:
    """State ``i`` stays or moves forward by at most ``max_jump``; the last state is absorbing."""
    return banded(n_states, 0, check_int("max_jump", max_jump, minimum=1), absorbing=True)


def sticky(structure: TransitionStructure, kappa: float = 0.0, alpha: float = 0.0) -> TransitionStructure:
    """Add Dirichlet pseudo-counts: ``alpha`` on every allowed move, ``kappa`` more on the diagonal."""
    kappa, alpha = check_real("kappa", kappa, 0.0), check_real("alpha", alpha, 0.0)
    K = structure.n_states
    c = structure.pseudo_counts + alpha * structure.mask + kappa * np.eye(K) * structure.mask
    return structure._replace(pseudo_counts=c)


def make_structure(spec, n_states: int, absorbing: bool = False, max_jump: int = 1) -> TransitionStructure:
    """A structure from a name (``"ergodic"``, ``"left-to-right"``) or a ready :class:`TransitionStructure`."""
    if not isinstance(absorbing, (bool, np.bool_)):
        raise ParameterError(f"absorbing: expected True or False, got {type(absorbing).__name__} {absorbing!r}"[:120])
    if not isinstance(spec, (str, TransitionStructure)):
        raise ParameterError(
            f"transitions: expected 'ergodic', 'left-to-right' or a TransitionStructure, got {type(spec).__name__}"
        )
    if isinstance(spec, TransitionStructure):
        if spec.n_states != n_states:
            raise ShapeError(f"transitions: structure has {spec.n_states} states, the model {n_states}")
        return spec
    if spec == "ergodic":
        return ergodic(n_states, absorbing)
    if spec in ("left-to-right", "left_to_right"):
        return left_to_right(n_states, max_jump)
    raise ParameterError(
        f"transitions: unknown structure {spec!r}; expected 'ergodic', 'left-to-right' or a TransitionStructure"
    )
