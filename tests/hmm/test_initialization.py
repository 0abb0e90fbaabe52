"""EM's k-means start against a plain Lloyd iteration written with the full difference array."""

import numpy as np
import pytest

from hmm.initialization import _kmeans


def _plain_kmeans(X, K, rng, n_iter=25):
    """k-means++ seeding then Lloyd steps, every distance from the explicit (n, K, d) differences."""
    n = len(X)
    centers = [X[rng.integers(n)]]
    for _ in range(1, K):
        d2 = np.min([((X - c) ** 2).sum(axis=1) for c in centers], axis=0)
        centers.append(X[rng.choice(n, p=d2 / d2.sum())])
    C = np.array(centers)
    for _ in range(n_iter):
        lab = np.argmin(((X[:, None, :] - C[None]) ** 2).sum(axis=2), axis=1)
        for k in range(K):
            if (lab == k).any():
                C[k] = X[lab == k].mean(axis=0)
    return np.argmin(((X[:, None, :] - C[None]) ** 2).sum(axis=2), axis=1)


@pytest.mark.parametrize("K, seed", [(3, 0), (8, 1), (20, 2)])
def test_kmeans_labels_match_plain_lloyd(K, seed):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(K, 5))
    X = centres[rng.integers(K, size=3000)] + rng.normal(size=(3000, 5))
    np.testing.assert_array_equal(
        _kmeans(X, K, np.random.default_rng(seed)), _plain_kmeans(X, K, np.random.default_rng(seed))
    )
