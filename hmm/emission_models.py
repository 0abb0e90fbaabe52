r"""Emission objects: everything a discrete chain needs from its emission density, behind one face.

An emission object knows one family of densities :math:`g_k(y_t \mid \cdot)` (its
parameters live in the containers of :mod:`hmm.emissions`) and answers the four
questions inference and EM ask of it:

* ``log_likelihood(e, y, u)`` - the ``(T, K)`` matrix :math:`\log g_k(y_t)` (NaN: missing);
* ``accumulate(e, y, u, gamma, stats)`` - adds one sequence's expected sufficient
  statistics, weighted by the smoothed marginals :math:`\gamma_t(k)`, to ``stats``;

(both also take a whole ragged batch in one call: the concatenated sequences and
``offsets``, as in :mod:`hmm.batch`, so that an E-step over thousands of sequences
is a few compiled calls);
* ``m_step(stats, old, frozen)`` - the closed-form MAP update (fields named in
  ``frozen`` keep their ``old`` value);
* ``log_prior(e)`` - the log-prior the M-step maximises with the likelihood.

The chain code (:mod:`hmm.chain`, :mod:`hmm.model`, :mod:`hmm.em`) calls only these,
so a new emission family is a new class here, not a new branch there::

    import numpy as np
    from hmm import GaussianHMM
    from hmm.emission_models import GaussianEmission
    y, u = np.random.default_rng(0).normal(size=(100, 1)), np.zeros((100, 0))   # data, no inputs
    params = GaussianHMM.initialize(y, 2, 1, rng=0).params
    gamma = np.full((100, 2), 0.5)                          # smoothed state marginals
    g = GaussianEmission(n_states=2, obs_dim=1)
    ll = g.log_likelihood(params.emission, y, u)           # (T, 2)
    stats = g.accumulate(params.emission, y, u, gamma, g.zero_stats())
    new = g.m_step(stats, params.emission, frozen=("covs",))
"""

from __future__ import annotations

import numpy as np

from statespace.errors import ParameterError

from . import emission_updates as eu
from . import emissions as em_
from .batch import batch_gaussian_loglik, gaussian_loglik_kernels


class EmissionModel:
    """The face every emission family shows the chain code; subclasses implement each method.

    ``e`` is the family's parameter container, ``y`` one sequence ``(T, d)`` (NaN:
    missing), ``u`` its inputs ``(T, p)``, ``gamma`` its smoothed marginals ``(T, K)``.
    With ``offsets (S + 1,)``, ``y``, ``u`` and ``gamma`` are a ragged batch of ``S``
    sequences, concatenated (sequence ``i`` is rows ``offsets[i]:offsets[i + 1]``).
    """

    #: The parameter fields EM can keep fixed (``fit(frozen=...)``).
    fields: tuple = ()

    def check_params(self, e) -> None:
        """Raise :class:`~statespace.errors.ParameterError` unless ``e`` is this family's container at these sizes."""
        raise NotImplementedError

    def check_data(self, name: str, y: np.ndarray) -> None:
        """Raise :class:`~statespace.errors.DataError` naming ``name`` for observations outside the support."""
        raise NotImplementedError

    def log_likelihood(self, e, y, u, offsets=None, out=None) -> np.ndarray:
        """The ``(T, K)`` matrix :math:`\\log g_k(y_t)`; missing coordinates are marginalised (0 for an all-NaN row).
        Written into ``out`` (a C-contiguous ``(T, K)`` float64 array: an E-step's kept scratch) when given."""
        raise NotImplementedError

    def zero_stats(self):
        """Empty expected sufficient statistics (what :meth:`accumulate` adds to)."""
        raise NotImplementedError

    def accumulate(self, e, y, u, gamma, stats, offsets=None):
        """Add the expected sufficient statistics of one sequence (or of a batch), weighted by ``gamma``,
        to ``stats``; returns ``stats``."""
        raise NotImplementedError

    def flat_stats(self, stats) -> np.ndarray:
        """The statistics as one flat float64 vector (additive, so shards of sequences can be summed)."""
        raise NotImplementedError

    def stats_from_flat(self, v: np.ndarray):
        """The inverse of :meth:`flat_stats`."""
        raise NotImplementedError

    def m_step(self, stats, old, frozen=frozenset()):
        """The closed-form MAP update from summed statistics; fields named in ``frozen`` keep ``old``'s value."""
        raise NotImplementedError

    def log_prior(self, e) -> float:
        """The log-prior density of ``e`` that the M-step maximises together with the likelihood."""
        raise NotImplementedError

    def start(self, seqs):
        """Parameters to start the supervised first M-step of the data-driven initialisation from."""
        raise NotImplementedError

    def n_free_parameters(self) -> int:
        """The number of free emission parameters (for AIC/BIC)."""
        raise NotImplementedError

    def kernels(self, y, u, offsets) -> list:
        """The compiled kernels :meth:`log_likelihood` and :meth:`accumulate` run on this batch, largest
        first, each as ``(kernel, arguments of the types it is passed)``: what a first fit compiles side by
        side (``hmm.em.compile_e_step``). None by default: a family's kernels then compile at their calls."""
        return []


class GaussianEmission(EmissionModel):
    r"""Autoregressive Gaussian emission (:class:`~hmm.emissions.GaussianEmissionParams`; ``lags=0``: Gaussian).

    Args:
        n_states: ``K``.
        obs_dim: ``d``.
        lags: ``L`` (0: plain Gaussian).
        input_dim: ``p``.
        covariance_type: ``"full"``, ``"diag"`` or ``"tied"``.
        prior: an :class:`~hmm.emissions.EmissionPrior`.
    """

    #: The parameter fields EM can keep fixed (``fit(frozen=...)``).
    fields = ("weights", "covs", "init_means", "init_covs")

    def __init__(
        self,
        n_states: int,
        obs_dim: int,
        lags: int = 0,
        input_dim: int = 0,
        covariance_type: str = "full",
        prior: em_.EmissionPrior | None = None,
    ):
        self.n_states, self.obs_dim, self.lags, self.input_dim = n_states, obs_dim, lags, input_dim
        self.covariance_type = covariance_type
        self.prior = prior if prior is not None else em_.EmissionPrior()
        self.name = "ar" if lags else "gaussian"

    @property
    def n_regressors(self) -> int:
        """``q = 1 + L d + p``, the length of the regressor ``x_t = (1, y_{t-1}..y_{t-L}, u_t)``."""
        return 1 + self.lags * self.obs_dim + self.input_dim

    def check_params(self, e) -> None:
        want = (self.n_states, self.n_regressors, self.obs_dim)
        if not isinstance(e, em_.GaussianEmissionParams) or e.weights.shape != want or e.lags != self.lags:
            raise ParameterError(
                f"params.emission: expected GaussianEmissionParams with lags={self.lags} and weights {want}"
            )

    def check_data(self, name: str, y: np.ndarray) -> None:
        """Any real values (NaN missing) are in the support."""

    def log_likelihood(self, e, y, u, offsets=None, out=None) -> np.ndarray:
        """One compiled pass, on several threads when the work pays for them (``hmm.batch.batch_gaussian_loglik``)."""
        N = y.shape[0]
        if self._scalar:
            return em_.gaussian_loglik(e, y, u, out)  # the 1-D kernel: cheaper than a thread's start
        return batch_gaussian_loglik(e, y, u, np.array([0, N]) if offsets is None else offsets, out=out)

    @property
    def _scalar(self) -> bool:
        """1-D observations, no lags, no inputs: :meth:`log_likelihood` takes the small 1-D kernel."""
        return not self.lags and self.obs_dim == 1 and not self.input_dim

    def zero_stats(self):
        return eu.GaussianStats.zeros(self.n_states, self.n_regressors, self.obs_dim)

    def accumulate(self, e, y, u, gamma, stats, offsets=None):
        """Diagonal covariances: only the diagonal of ``S^yy`` is summed (what :meth:`m_step` reads)."""
        eu.gaussian_accumulate(e, y, u, gamma, stats, offsets, diagonal=self.covariance_type == "diag")
        return stats

    def flat_stats(self, stats) -> np.ndarray:
        return stats.flat()

    def stats_from_flat(self, v: np.ndarray):
        return eu.GaussianStats.from_flat(v, self.n_states, self.n_regressors, self.obs_dim)

    def m_step(self, stats, old, frozen=frozenset()):
        return eu.gaussian_m_step(stats, old, self.covariance_type, self.prior, frozen)

    def log_prior(self, e) -> float:
        return eu.gaussian_log_prior(e, self.covariance_type, self.prior, self.lags > 0)

    def start(self, seqs) -> em_.GaussianEmissionParams:
        """Every state at the data's mean and (diagonal) variance: the ``old`` of the first, supervised M-step."""
        K, d = self.n_states, self.obs_dim
        Y = np.vstack(seqs)
        mu = np.nanmean(Y, axis=0)
        mu = np.where(np.isnan(mu), 0.0, mu)
        var = np.nanvar(Y, axis=0)
        var = np.where(~(var > 0), 1.0, var)
        W = np.zeros((K, self.n_regressors, d))
        W[:, 0] = mu
        cov = np.broadcast_to(np.diag(var), (K, d, d)).copy()
        return em_.GaussianEmissionParams(W, cov, np.tile(mu, (K, 1)), cov.copy(), self.lags, self.input_dim)

    #: k-means on the observed rows gives the starting labels (see :mod:`hmm.initialization`).
    random_labels = False
    #: Pseudo-count added to every statistic of the supervised start.
    start_pseudo_count = 0.0

    def n_free_parameters(self) -> int:
        K, d = self.n_states, self.obs_dim
        cov = {"full": K * d * (d + 1) // 2, "diag": K * d, "tied": d * (d + 1) // 2}[self.covariance_type]
        n = K * self.n_regressors * d + cov
        if self.lags:
            n += K * d + (K * d if self.covariance_type == "diag" else K * d * (d + 1) // 2)
        return n

    def kernels(self, y, u, offsets) -> list:
        """The emission log-likelihoods' kernel, then the statistics' (the autoregressive rows' sums first),
        with parameters of this model's sizes (their values do not matter)."""
        K, d, q = self.n_states, self.obs_dim, self.n_regressors
        cov = np.broadcast_to(np.eye(d), (K, d, d))
        e = em_.GaussianEmissionParams(np.zeros((K, q, d)), cov, np.zeros((K, d)), cov, self.lags, self.input_dim)
        stats = eu.gaussian_accumulate_kernels(e, y, u, offsets, diagonal=self.covariance_type == "diag")
        if self._scalar:
            return stats  # the 1-D kernel of log_likelihood is small
        loglik = gaussian_loglik_kernels(e, y, u, offsets)
        return stats[:1] + loglik + stats[1:] if self.lags else loglik + stats


class CategoricalEmission(EmissionModel):
    """Categorical emission on ``n_symbols`` symbols (:class:`~hmm.emissions.CategoricalEmissionParams`)."""

    fields = ("probs",)
    name = "categorical"
    lags = 0
    random_labels = True
    start_pseudo_count = 1.0

    def __init__(self, n_states: int, n_symbols: int, prior: em_.EmissionPrior | None = None):
        self.n_states, self.n_symbols = n_states, n_symbols
        self.prior = prior if prior is not None else em_.EmissionPrior()

    def check_params(self, e) -> None:
        if not isinstance(e, em_.CategoricalEmissionParams) or e.probs.shape != (self.n_states, self.n_symbols):
            raise ParameterError(
                f"params.emission: expected CategoricalEmissionParams with probs ({self.n_states}, {self.n_symbols})"
            )

    def check_data(self, name: str, y: np.ndarray) -> None:
        em_.check_categorical_data(name, y, self.n_symbols)

    def log_likelihood(self, e, y, u, offsets=None, out=None) -> np.ndarray:
        with np.errstate(divide="ignore"):
            logB = np.log(e.probs)
        return em_.categorical_loglik(y, logB, np.empty((y.shape[0], self.n_states)) if out is None else out)

    def zero_stats(self) -> np.ndarray:
        return np.zeros((self.n_states, self.n_symbols))

    def accumulate(self, e, y, u, gamma, stats, offsets=None):
        eu.categorical_accumulate(y, gamma, stats)
        return stats

    def flat_stats(self, stats) -> np.ndarray:
        return stats.ravel()

    def stats_from_flat(self, v: np.ndarray) -> np.ndarray:
        return v.reshape(self.n_states, self.n_symbols)

    def m_step(self, stats, old, frozen=frozenset()):
        return old if "probs" in frozen else eu.categorical_m_step(stats, old, self.prior)

    def log_prior(self, e) -> float:
        return eu.categorical_log_prior(e, self.prior)

    def start(self, seqs) -> em_.CategoricalEmissionParams:
        return em_.CategoricalEmissionParams(np.full((self.n_states, self.n_symbols), 1.0 / self.n_symbols))

    def n_free_parameters(self) -> int:
        return self.n_states * (self.n_symbols - 1)
