r"""The linear-Gaussian state-space model behind the shared interface.

.. math::

    x_0 \sim N(m_0, P_0), \quad
    x_t = F_t x_{t-1} + B u_t + w_t,\ w_t \sim N(0, Q_t), \quad
    y_t = H_t x_t + D u_t + v_t,\ v_t \sim N(0, R_t).

Exact inference (Kalman filter, RTS smoother, FFBS, forecasting) and EM, plus
the compiled per-particle kernels and sufficient statistics that :mod:`smc`
uses, all from one object::

    import numpy as np
    from statespace import LinearGaussianSSM

    dt = 0.1  # constant-velocity tracking in 2-D: state (px, py, vx, vy)
    F = np.eye(4); F[0, 2] = F[1, 3] = dt
    H = np.eye(2, 4)
    model = LinearGaussianSSM(m0=np.zeros(4), P0=np.eye(4), F=F, Q=0.01 * np.eye(4), H=H, R=0.25 * np.eye(2))
    x, y = model.sample(500, rng=0)
    smoothed = model.smooth(y)                 # SmootherResult
    fit = model.fit(y, frozen=("F", "H"))      # FitResult; model.params updated
"""

from __future__ import annotations

import numpy as np

from .._ragged import pack
from ..errors import ParameterError, ShapeError
from ..interface import AdditiveFunctional, FitResult, ModelKernels, Parametrization, StateSpaceModel
from ..persistence import SavedModel, register_loadable
from ..validation import as_float_array, as_rng, as_sequences, check_int
from . import kernels as _k
from . import learning as _learning
from .batch import batch_filter, batch_log_likelihood, batch_smoother
from .data import prepare
from .em import fit_em, m_step
from .forecast import ForecastResult, forecast
from .kalman import KalmanFilterResult, kalman_filter, kalman_log_likelihood
from .params import KernelParams, LGSSMParams, check_frozen, kernel_params
from .smoother import SmootherResult, rts_smoother, smooth_kernel_params
from .smoother import sample_posterior as _ffbs


@register_loadable
class LinearGaussianSSM(StateSpaceModel, SavedModel):
    """A linear-Gaussian SSM (see the module docstring).

    Args:
        params: an :class:`LGSSMParams`; or give its fields as keywords.
        frozen: names of parameters that :meth:`fit` and :meth:`m_step` keep fixed.
    """

    def __init__(self, params: LGSSMParams | None = None, *, frozen=(), **fields):
        if params is None:
            params = LGSSMParams(**fields)
        elif fields:
            raise ShapeError(f"give either params or the fields {sorted(fields)}, not both")
        elif not isinstance(params, LGSSMParams):
            raise ShapeError(f"params: expected LGSSMParams, got {type(params).__name__}")
        self.params = params
        self.frozen = check_frozen(frozen)

    def _persist_state(self) -> dict:
        return {"params": self.params, "frozen": tuple(sorted(self.frozen))}

    def __repr__(self) -> str:
        p = self.params
        tv = f", time_varying={p.time_varying}" if p.time_varying else ""
        fr = f", frozen={sorted(self.frozen)}" if self.frozen else ""
        return f"LinearGaussianSSM(state_dim={p.state_dim}, obs_dim={p.obs_dim}, input_dim={p.input_dim}{tv}{fr})"

    # --- the compiled face -------------------------------------------------
    def kernels(self) -> ModelKernels:
        # compiled for the model's dimensions, so that particle loops can inline them
        d, m = self.params.state_dim, self.params.obs_dim
        return ModelKernels(*_k.particle_kernels(d, m), state_dim=d, obs_dim=m)

    def kernel_params(self, inputs=None, times=None) -> KernelParams:
        """Kernel parameters for one sequence; ``inputs`` is ``(T, p)`` when the model has inputs."""
        p = self.params.input_dim
        if p == 0:
            if inputs is not None and np.asarray(inputs).size:
                raise ShapeError("inputs: the model takes no inputs (B and D have 0 columns)")
            return kernel_params(self.params, None)
        if inputs is None:
            raise ShapeError(f"inputs: the model takes {p}-dimensional inputs but none were given")
        u = as_float_array("inputs", inputs, (1, 2))
        u = u[:, None] if u.ndim == 1 else u
        if u.shape[1] != p:
            raise ShapeError(f"inputs: expected {p} columns, got shape {u.shape}")
        n = self.params.n_steps
        if n is not None and len(u) != n:
            raise ShapeError(f"inputs: expected {n} rows to match the time-varying parameters, got {len(u)}")
        return kernel_params(self.params, u)

    def sufficient_statistics(self) -> AdditiveFunctional:
        p = self.params
        return _k.sufficient_statistics(p.state_dim, p.obs_dim, p.input_dim)

    def m_step(self, stats: np.ndarray, n_sequences: int = 1, n_steps: int | None = None) -> LinearGaussianSSM:
        """The closed-form M-step (counts are read from ``stats``; the other arguments are not needed)."""
        return LinearGaussianSSM(m_step(self.params, stats, self.frozen), frozen=self.frozen)

    # --- learning hooks (smc.learning) ---------------------------------------
    def parametrization(self, inputs=None) -> Parametrization:
        """The unconstrained vector of the non-frozen fields among ``m0, P0, F, Q, H, R``.

        Entries of ``m0, F, H`` and log-Cholesky factors of ``P0, Q, R``; ``B, D`` and frozen
        fields are kept (built by ``statespace.linear_gaussian.learning.parametrization``).
        ``inputs`` is not used.
        """
        return _learning.parametrization(self)

    def gibbs_prior(self) -> _learning.LGPrior:
        """The default conjugate prior of Bayesian particle Gibbs: ``LGPrior()`` on ``F, Q, R``."""
        return _learning.LGPrior()

    # --- simulation ----------------------------------------------------------
    def sample(self, T: int, rng=None, inputs=None, times=None):
        T = check_int("T", T, minimum=1, error=ShapeError)
        n = self.params.n_steps
        if n is not None and T != n:
            raise ShapeError(f"T: the time-varying parameters cover {n} steps, got T={T}")
        return super().sample(T, rng=rng, inputs=inputs, times=times)

    # --- exact inference -------------------------------------------------------
    def _batch(self, y, inputs):
        """``((y, offsets, inputs), complete)`` concatenated for a list of sequences of a time-invariant
        model (``complete``: the validation found no NaN); else ``None``.

        Lists run as one ragged batch (:mod:`~statespace.linear_gaussian.batch`): one compiled call,
        covariances shared between sequences of one length and missing pattern.
        """
        if self.params.time_varying or not isinstance(y, (list, tuple)):
            return None
        seqs, us, single = prepare(self.params, y, inputs)
        if single:  # a flat list of numbers is one sequence
            return None
        Y, offsets = pack(seqs)  # the validation's block: no copy
        return (Y, offsets, (pack(us)[0] if self.params.input_dim else None)), seqs.complete is True

    def log_likelihood(self, y, inputs=None) -> float:
        """:math:`\\log p(y)`; summed over sequences for a list."""
        batch = self._batch(y, inputs)
        if batch is None:
            return kalman_log_likelihood(self.params, y, inputs)
        # summed in the sequences' order, as a sum over per-sequence calls is (NumPy's sum regroups the terms)
        return float(sum(batch_log_likelihood(self.params, *batch[0], complete=batch[1]).tolist()))

    def filter(self, y, inputs=None) -> KalmanFilterResult | list[KalmanFilterResult]:
        """Kalman filter: the Gaussian :math:`p(x_t \\mid y_{0:t})` and :math:`p(x_t \\mid y_{0:t-1})` of every step.

        Missing coordinates (NaN) are marginalised: the update uses the observed rows
        of ``H`` and the observed block of ``R``, and an all-missing row is a pure
        prediction step.

        Args:
            y: observations ``(T, m)`` (``(T,)`` when ``m == 1``) or a list of such arrays.
            inputs: ``(T, p)`` inputs aligned with ``y`` (a list for a list), required
                when the model has inputs.

        Returns:
            A :class:`~statespace.linear_gaussian.kalman.KalmanFilterResult` (``(T, d)`` means,
            ``(T, d, d)`` covariances, the log-likelihood); a list of them for a list. A list
            runs as one batch (:func:`~statespace.linear_gaussian.batch_filter`): its
            results are views of the batch's arrays, and sequences of one length and one
            missing pattern share one read-only array of covariances.

        Raises:
            ShapeError: ``y`` or ``inputs`` do not match the model's dimensions, or a
                sequence's length differs from that of time-varying parameters.
            ImpossibleDataError: an observation lies beyond float64's range of its
                predictive density (named by sequence and time step).
            DataError: inf in ``y`` or non-finite inputs; or the filter cannot be represented
                in float64 (overflowing moments over a long gap, a lost update, a
                non-positive-definite innovation covariance).
        """
        batch = self._batch(y, inputs)
        if batch is None:
            return kalman_filter(self.params, y, inputs)
        return batch_filter(self.params, *batch[0], complete=batch[1]).sequences()

    def smooth(self, y, inputs=None) -> SmootherResult | list[SmootherResult]:
        """Kalman filter then Rauch-Tung-Striebel smoother: the Gaussian :math:`p(x_t \\mid y_{0:T-1})`.

        Arguments and errors as in :meth:`filter`. Returns a
        :class:`~statespace.linear_gaussian.smoother.SmootherResult` (``(T, d)`` smoothed
        means, ``(T, d, d)`` covariances, the ``(T-1, d, d)`` lag-one cross-covariances
        that EM needs, and the filter's outputs); a list of them for a list.
        """
        batch = self._batch(y, inputs)
        if batch is None:
            return rts_smoother(self.params, y, inputs)
        return batch_smoother(self.params, *batch[0], complete=batch[1]).sequences()

    def sample_posterior(self, y, n_samples: int = 1, rng=None, inputs=None):
        """Trajectories drawn exactly from :math:`p(x_{0:T-1} \\mid y)` by forward filtering, backward sampling.

        Args:
            y: observations as in :meth:`filter`.
            n_samples: number of trajectories per sequence.
            rng: a ``numpy.random.Generator`` or a seed.
            inputs: inputs aligned with ``y`` as in :meth:`filter`.

        Returns:
            ``(n_samples, T, d)`` draws; a list of them (one per sequence) for a list.
        """
        n_samples = check_int("n_samples", n_samples, minimum=1, error=ShapeError)
        rng = as_rng(rng)
        seqs, us, single = prepare(self.params, y, inputs)
        out = [
            _ffbs(smooth_kernel_params(kernel_params(self.params, u, whitened=False), s), n_samples, rng)
            for s, u in zip(seqs, us)
        ]
        return out[0] if single else out

    def forecast(self, y, steps: int, inputs=None, future_inputs=None) -> ForecastResult | list[ForecastResult]:
        """Predictive moments of the states and observations ``1..steps`` steps past the end of each sequence.

        Filters the sequence, then iterates the prediction step without updates,
        ``m <- F m + B u``, ``P <- F P F^T + Q``, and maps each step to the observations
        (``H m + D u``, ``H P H^T + R``). Needs a time-invariant model.

        Args:
            y: observations as in :meth:`filter`.
            steps: the horizon ``k >= 1``.
            inputs: inputs aligned with ``y`` as in :meth:`filter`.
            future_inputs: ``(k, p)`` inputs over the horizon (a list for a list), required
                when the model has inputs.

        Returns:
            A :class:`~statespace.linear_gaussian.forecast.ForecastResult` (``(k, d)`` state
            means, ``(k, d, d)`` covariances, ``(k, m)`` and ``(k, m, m)`` for the
            observations); a list of them for a list.

        Raises:
            ShapeError: the model has time-varying ``F, Q, H`` or ``R``; or bad ``steps`` or
                ``future_inputs`` (missing, given to a model without inputs, wrong shape or
                number of sequences).
            DataError: the forecast exceeds float64's range before the horizon (the message
                says how many steps are representable), or the filter fails as in :meth:`filter`.
        """
        return forecast(self.params, y, steps, inputs, future_inputs)

    # --- learning --------------------------------------------------------------
    def fit(
        self,
        y,
        inputs=None,
        *,
        init: LGSSMParams | None = None,
        frozen=None,
        max_iter: int = 100,
        tol: float = 1e-6,
        progress=True,
    ) -> FitResult:
        """EM (Kalman smoother E-step, closed-form M-step) on one sequence or a list; updates ``self.params``.

        Args:
            y, inputs: data as in :meth:`filter`.
            init: starting :class:`LGSSMParams`; by default the current ``self.params`` (warm start).
            frozen: names of :class:`LGSSMParams` fields kept fixed (``"m0", "P0", "F", "B", "Q", "H",
                "D", "R"``); ``None`` uses the model's own ``frozen`` set.
            max_iter, tol, progress: as in ``statespace.linear_gaussian.em.fit_em``.

        Returns:
            :class:`~statespace.interface.FitResult`; its ``params`` become ``self.params``.

        Raises:
            ParameterError: ``init`` is not an ``LGSSMParams``, or ``frozen`` names an unknown field.
        """
        if init is not None and not isinstance(init, LGSSMParams):
            raise ParameterError(f"init: expected LGSSMParams, got {type(init).__name__}")
        start = self.params if init is None else init
        frozen = self.frozen if frozen is None else check_frozen(frozen)
        result = fit_em(start, y, inputs, frozen=frozen, max_iter=max_iter, tol=tol, progress=progress)
        self.params = result.params
        return result

    @classmethod
    def initialize(cls, y, state_dim: int, inputs=None, input_dim: int = 0, rng=None, frozen=()) -> LinearGaussianSSM:
        """A starting point for EM from data: principal components for ``H``, a damped ``F``.

        ``H`` holds the leading ``state_dim`` principal directions of the observed
        rows (random directions beyond the observation dimension), ``R`` the
        variance they leave, ``F = 0.9 I``, ``Q`` and ``P0`` scaled to the data.
        """
        d = check_int("state_dim", state_dim, minimum=1, error=ShapeError)
        rng = as_rng(rng)
        seqs, _ = as_sequences("y", y)
        Y = np.concatenate(seqs)
        m = Y.shape[1]
        mean = np.nanmean(Y, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        Yc = np.where(np.isnan(Y), 0.0, Y - mean)
        cov = Yc.T @ Yc / max(len(Yc) - 1, 1)
        # Floors relative to the data's variance, so that the start (and EM from it) follows the
        # data's units: initialize(c y) is initialize(y) with H -> c H, R -> c^2 R.
        scale = float(np.trace(cov)) / m
        scale = scale if scale > 0 else 1.0
        w, V = np.linalg.eigh(cov + 1e-9 * scale * np.eye(m))
        order = np.argsort(w)[::-1]
        w, V = w[order], V[:, order]
        k = min(d, m)
        H = np.zeros((m, d))
        H[:, :k] = V[:, :k] * np.sqrt(np.maximum(w[:k], 1e-9 * scale))
        if d > m:
            H[:, k:] = rng.normal(scale=0.1 * np.sqrt(w.mean()), size=(m, d - k))
        resid = max(float(w[k:].mean()) if k < m else 0.1 * float(w.mean()), 1e-6 * scale)
        p = check_int("input_dim", input_dim, minimum=0)
        if inputs is not None and not p:
            u0 = np.asarray(inputs[0] if isinstance(inputs, (list, tuple)) else inputs, dtype=float)
            p = 1 if u0.ndim == 1 else u0.shape[1]
        params = LGSSMParams(
            m0=np.zeros(d),
            P0=np.eye(d),
            F=0.9 * np.eye(d),
            Q=0.19 * np.eye(d),
            H=H,
            R=resid * np.eye(m),
            B=np.zeros((d, p)) if p else None,
            D=np.zeros((m, p)) if p else None,
        )
        return cls(params, frozen=frozen)


register_loadable(LGSSMParams)
