r"""One draw from a categorical distribution, given probabilities or log-probabilities.

:func:`draw` returns :math:`k` with probability :math:`p_k / \text{total}` by inverting the
cumulative sum at one uniform, :math:`k = \min\{k : U \cdot \text{total} < \sum_{j \le k} p_j\}`,
in :math:`O(K)` with no allocation (for many draws from one distribution, sort the uniforms:
``smc.resampling``). When round-off leaves the cumulative sum short of ``U * total``, it
returns the last index with positive probability, never one of probability zero.
:func:`draw_from_logits` normalises log-probabilities first (:func:`.weights.normalise`,
exact for any range of logits) and returns -1 when every logit is ``-inf`` (or one is NaN or
``+inf``), which the caller turns into an error.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .weights import normalise


@nb.njit(cache=True)
def draw(p, rng, total=1.0):
    """An index ``k`` drawn with probability ``p[k] / total`` (``p`` non-negative, ``total`` its sum)."""
    u = rng.random() * total
    c = 0.0
    K = p.shape[0]
    for k in range(K):
        c += p[k]
        if u < c:
            return k
    for k in range(K - 1, -1, -1):  # round-off: the last state with positive mass
        if p[k] > 0:
            return k
    return K - 1


@nb.njit(cache=True)
def draw_from_logits(logits, w, rng):
    """An index drawn with probability proportional to ``exp(logits)`` (``w``: workspace of the same
    length, left holding the normalised probabilities); -1 when the logits are degenerate."""
    lse, _ = normalise(logits, w)
    if not lse > -np.inf:
        return -1
    return draw(w, rng)
