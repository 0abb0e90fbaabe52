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
* categorical emissions: random labels.

Partial knowledge steers the labels: a label that ``pl`` rates below half the
best plausibility at that step is replaced by the most plausible state.
Transition counts get one pseudo-count per allowed move so no start has a
structural zero the model does not impose.
"""

from __future__ import annotations

import numpy as np

from . import emissions as em_


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
        sums = np.zeros_like(C)
        np.add.at(sums, lab, X)
        seen = counts > 0
        C[seen] = sums[seen] / counts[seen, None]
    return _nearest(X, C)


def _nearest(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of the closest centre of each row: ``|x|^2 - 2 x.c + |c|^2`` by one matrix product
    (the ``(n, K, d)`` difference array it replaces dominated EM's start on 20,000 rows)."""
    return np.argmin((C**2).sum(axis=1)[None] - 2.0 * (X @ C.T), axis=1)


def _labels(model, seqs, rng, restart) -> list[np.ndarray]:
    K = model.n_states
    if model.emission_kind == "categorical":
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


def _default_gaussian(model, seqs) -> em_.GaussianEmissionParams:
    K, d, q = model.n_states, model._obs_dim, model._q()
    Y = np.vstack(seqs)
    mu = np.nanmean(Y, axis=0)
    mu = np.where(np.isnan(mu), 0.0, mu)
    var = np.nanvar(Y, axis=0)
    var = np.where(~(var > 0), 1.0, var)
    W = np.zeros((K, q, d))
    W[:, 0] = mu
    cov = np.broadcast_to(np.diag(var), (K, d, d)).copy()
    return em_.GaussianEmissionParams(W, cov, np.tile(mu, (K, 1)), cov.copy(), model.lags, model.input_dim)


def initial_params(model, seqs, inputs, log_pls, rng: np.random.Generator, restart: int, params_type):
    """A starting ``params_type(pi0, A, emission)`` for ``model``'s EM (see the module docstring).

    ``model`` supplies the EM pieces (``_zero_stats``, ``_accumulate``, ``_flat_stats``,
    ``_m_step_params``) and ``params_type`` its parameter container
    (:class:`~hmm.model.HMMParams`), so this module depends on no model class.
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
    if model.emission_kind == "categorical":
        old_e = em_.CategoricalEmissionParams(np.full((K, model.n_symbols), 1.0 / model.n_symbols))
    else:
        old_e = _default_gaussian(model, seqs)
    A0 = np.where(model.structure.mask, 1.0, 0.0)
    A0 /= A0.sum(axis=1, keepdims=True)
    old = params_type(np.full(K, 1.0 / K), A0, old_e)
    stats = model._zero_stats()
    for y, u, g in zip(seqs, inputs, gammas):
        model._accumulate(old, y, u, g, stats)
    if model.emission_kind == "categorical":
        stats = stats + 1.0
    flat = np.concatenate([pi_counts, trans.ravel(), model._flat_stats(stats)])
    return model._m_step_params(flat, old)
