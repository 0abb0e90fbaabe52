r"""Partial knowledge on the latent states (soft evidence).

Following Ramasso & Denoeux (IEEE TFS 2014) and the autoregressive version of
Juesas, Ramasso et al. (ARPHMM, PHME 2016), prior knowledge about the state at
time :math:`t` is a *plausibility* vector :math:`pl_t \in [0, 1]^K` (the contour
function of a belief function on the states). It multiplies the emission
likelihoods,

.. math::

    \tilde p(y_t \mid z_t = k) = pl_t(k)\, p(y_t \mid z_t = k),

in the forward and backward passes and therefore in EM. The quantity EM
maximises is the likelihood of the data together with the evidence,
:math:`\sum_{z} p(z) \prod_t pl_t(z_t)\, p(y_t \mid z_t, y_{<t})`.

* ``pl_t = (1, ..., 1)`` (vacuous): no knowledge, the plain HMM.
* ``pl_t = e_k`` (one-hot): the state is known, supervised learning.
* ``pl_t = (1, 1, 0, 0)``: "the state is 0 or 1" (e.g. early in an engine's life).
* a row of zeros contradicts every state and is an error.
"""

from __future__ import annotations

import numpy as np

from statespace.errors import DataError, ShapeError
from statespace.validation import as_float_array


def log_plausibilities(pl, lengths: list[int], n_states: int, single: bool) -> list[np.ndarray | None]:
    """Validated ``log(pl)`` per sequence (``None`` where no knowledge is given).

    ``pl`` follows the observations' form (the sequence rule of
    ``statespace.validation``): ``None``; for one sequence, one ``(T, K)``
    array (or a rectangular nested list); for a batch, a list or tuple with one
    ``(T_i, K)`` array or ``None`` per sequence.
    """
    if pl is None:
        return [None] * len(lengths)
    if single:
        seqs = [pl]
    elif isinstance(pl, (list, tuple)):
        seqs = list(pl)
    else:
        raise ShapeError(
            f"pl: the observations are a list of {len(lengths)} sequences, so pl must be a list with one "
            f"(T_i, {n_states}) array or None per sequence, got {type(pl).__name__}"
        )
    if len(seqs) != len(lengths):
        raise ShapeError(f"pl: got {len(seqs)} plausibility arrays for {len(lengths)} sequences")
    out = []
    for i, (p, T) in enumerate(zip(seqs, lengths)):
        label = "pl" if single else f"pl[{i}]"
        if p is None:
            out.append(None)
            continue
        arr = as_float_array(label, p, 2)
        if arr.shape != (T, n_states):
            raise ShapeError(f"{label}: expected shape ({T}, {n_states}) (time steps, states), got {arr.shape}")
        bad = ~np.isfinite(arr) | (arr < 0) | (arr > 1)
        if bad.any():
            t, k = np.argwhere(bad)[0]
            raise DataError(
                f"{label}: value {arr[t, k]:g} at time step {t}, state {k}; plausibilities must lie in [0, 1]"
            )
        zero = ~(arr > 0).any(axis=1)
        if zero.any():
            t = int(np.argmax(zero))
            where = f"sequence {i}, " if not single else ""
            raise DataError(
                f"{label}: row of zeros at {where}time step {t}: every state is ruled out; "
                "give each time step at least one plausible state (all ones = no knowledge)"
            )
        with np.errstate(divide="ignore"):
            out.append(np.log(arr))
    return out
