"""Data-driven starting points for EM.

A hard labelling of every time step is built, then one supervised M-step
turns it into parameters:

* ergodic chains: k-means (k-means++ seeding from ``rng``) on the observed rows;
* left-to-right chains: alternately k-means clusters renumbered by their mean
  relative position in the sequences (even restarts), and each sequence cut
  into ``K`` contiguous segments (odd restarts; equal lengths first, then random
  cut points). Segments alone are a poor start for autoregressive emissions:
  a segment straddling a level change looks like a random walk to the
  regression, and EM stays there;
* emissions whose object asks for it (``random_labels``, the categorical one): random labels.

Partial knowledge steers the labels: a label that ``pl`` rates below half the
best plausibility at that step is replaced by the most plausible state.
Transition counts get one pseudo-count per allowed move so no start has a
structural zero the model does not impose.
"""

from __future__ import annotations

import numpy as np


def _is_left_to_right(mask: np.ndarray) -> bool:
    return not np.tril(mask, -1).any()


def _segment_labels(T: int, K: int, rng: np.random.Generator, restart: int) -> np.ndarray:
    cuts = np.arange(1, K) / K if restart == 0 else np.sort(rng.uniform(size=K - 1))
    return np.searchsorted(np.round(cuts * T), np.arange(T), side="right")


def _kmeans(X: np.ndarray, K: int, rng: np.random.Generator, n_iter: int = 25) -> np.ndarray:
    n = len(X)
    centers = [X[rng.integers(n)]]
    d2 = np.full(n, np.inf)
    for _ in range(1, K):
        d2 = np.minimum(d2, ((X - centers[-1]) ** 2).sum(axis=1))  # distance to the closest centre so far
        tot = d2.sum()
        centers.append(X[rng.choice(n, p=d2 / tot)] if tot > 0 else X[rng.integers(n)])
    C = np.array(centers)
    for _ in range(n_iter):
        lab = _nearest(X, C)
        counts = np.bincount(lab, minlength=K)
        # the rows of each cluster summed in order, column by column (np.add.at's sums, several times faster)
        sums = np.stack([np.bincount(lab, weights=X[:, j], minlength=K) for j in range(X.shape[1])], axis=1)
        seen = counts > 0
        C[seen] = sums[seen] / counts[seen, None]
    return _nearest(X, C)


def _nearest(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of the closest centre of each row: ``|x|^2 - 2 x.c + |c|^2`` by one matrix product
    (the ``(n, K, d)`` difference array it replaces dominated EM's start on 20,000 rows)."""
    return np.argmin((C**2).sum(axis=1)[None] - 2.0 * (X @ C.T), axis=1)


def _labels(model, seqs, rng, restart) -> list[np.ndarray]:
    K = model.n_states
    if model.emission_model.random_labels:
        return [rng.integers(K, size=len(s)) for s in seqs]
    if _is_left_to_right(model.structure.mask) and restart % 2 == 1:
        return [_segment_labels(len(s), K, rng, restart // 2) for s in seqs]
    Y = np.vstack(seqs)
    mu = np.nanmean(Y, axis=0)
    mu = np.where(np.isnan(mu), 0.0, mu)
    sd = np.nanstd(Y, axis=0)
    sd = np.where(~(sd > 0), 1.0, sd)
    Z = np.where(np.isnan(Y), 0.0, (Y - mu) / sd)
    lab = _kmeans(Z, K, rng) if len(Z) >= K else rng.integers(K, size=len(Z))
    if _is_left_to_right(model.structure.mask):
        pos = np.concatenate([np.linspace(0.0, 1.0, len(s)) for s in seqs])
        mean_pos = np.array([pos[lab == k].mean() if (lab == k).any() else 2.0 for k in range(K)])
        rank = np.empty(K, np.int64)
        rank[np.argsort(mean_pos, kind="stable")] = np.arange(K)
        lab = rank[lab]
    return np.split(lab, np.cumsum([len(s) for s in seqs])[:-1])


def initial_params(model, seqs, inputs, log_pls, rng: np.random.Generator, restart: int, params_type):
    """A starting ``params_type(pi0, A, emission)`` for ``model``'s EM (see the module docstring).

    ``model`` supplies its transition structure and its emission object
    (``model.emission_model``: ``start``, ``zero_stats``, ``accumulate``, ``m_step``),
    ``params_type`` its parameter container (:class:`~hmm.model.HMMParams`), so this
    module depends on no model class.
    """
    K = model.n_states
    labels = _labels(model, seqs, rng, restart)
    gammas = []
    for lab, lp in zip(labels, log_pls):
        g = np.zeros((len(lab), K))
        g[np.arange(len(lab)), lab] = 1.0
        if lp is not None:
            pl = np.exp(lp)
            g = np.eye(K)[np.argmax(pl * (0.5 + g), axis=1)]
        gammas.append(g)
    pi_counts = np.ones(K) + sum(g[0] for g in gammas)
    trans = model.structure.mask.astype(float).copy()
    for g in gammas:
        trans += g[:-1].T @ g[1:]
    emission = model.emission_model
    old_e = emission.start(seqs)
    stats = emission.zero_stats()
    for y, u, g in zip(seqs, inputs, gammas):
        emission.accumulate(old_e, y, u, g, stats)
    if emission.start_pseudo_count:
        stats = stats + emission.start_pseudo_count
    e = emission.m_step(stats, old_e)
    return params_type(
        pi_counts / pi_counts.sum(), model.structure.m_step(trans, _uniform_rows(model.structure.mask)), e
    )


def _uniform_rows(mask: np.ndarray) -> np.ndarray:
    A0 = np.where(mask, 1.0, 0.0)
    return A0 / A0.sum(axis=1, keepdims=True)
