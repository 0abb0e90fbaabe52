r"""Parameters of the linear-Gaussian state-space model.

.. math::

    x_0 \sim N(m_0, P_0), \qquad
    x_t = F_t x_{t-1} + B u_t + w_t, \quad w_t \sim N(0, Q_t) \quad (t \ge 1),

    y_t = H_t x_t + D u_t + v_t, \quad v_t \sim N(0, R_t) \quad (t \ge 0).

``F, Q`` (``d x d``), ``H`` (``m x d``) and ``R`` (``m x m``) are either one
matrix (time-invariant) or a stack with a leading time axis of length ``T``
(time-varying; ``F[0]`` and ``Q[0]`` are never used since ``x_0`` has no
transition). ``B`` (``d x p``) and ``D`` (``m x p``) map known inputs
``u_t`` of dimension ``p``; ``p = 0`` (the default) means no inputs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._scratch import scratch
from ..errors import ParameterError, ShapeError
from ..validation import as_float_array, check_covariance, check_finite, check_names, check_shape

#: Parameter names in the order of the container.
FIELDS = ("m0", "P0", "F", "B", "Q", "H", "D", "R")


class _LGSSMParamsBase(NamedTuple):
    m0: np.ndarray
    P0: np.ndarray
    F: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    H: np.ndarray
    D: np.ndarray
    R: np.ndarray


class LGSSMParams(_LGSSMParamsBase):
    """Validated, immutable parameters of a linear-Gaussian SSM (see the module docstring).

    Attributes:
        m0: ``(d,)`` initial mean.
        P0: ``(d, d)`` initial covariance (symmetric positive definite).
        F: ``(d, d)`` or ``(T, d, d)`` transition matrices.
        B: ``(d, p)`` input-to-state matrix (``p = 0`` without inputs; ``None`` allowed).
        Q: ``(d, d)`` or ``(T, d, d)`` transition noise covariances.
        H: ``(m, d)`` or ``(T, m, d)`` observation matrices.
        D: ``(m, p)`` input-to-observation matrix (``None`` allowed).
        R: ``(m, m)`` or ``(T, m, m)`` observation noise covariances.

    Arrays are stored read-only, so a parameter set can be shared safely.
    """

    __slots__ = ()

    def __new__(cls, m0, P0, F, B=None, Q=None, H=None, D=None, R=None):
        for name, v in (("Q", Q), ("H", H), ("R", R)):
            if v is None:
                raise ShapeError(f"{name}: required")
        m0 = check_finite("m0", as_float_array("m0", m0, 1))
        d = m0.shape[0]
        if d == 0:
            raise ShapeError("m0: expected a state dimension of at least 1, got shape (0,)")
        P0 = check_covariance("P0", P0, d)
        F = check_finite("F", as_float_array("F", F, (2, 3)))
        check_shape("F", F, (None,) * (F.ndim - 2) + (d, d))
        Q = as_float_array("Q", Q, (2, 3))
        Q = check_covariance("Q", Q, d, time_varying=Q.ndim == 3)
        H = check_finite("H", as_float_array("H", H, (2, 3)))
        if H.shape[-1] != d:
            raise ShapeError(f"H: expected {d} columns (state dimension), got shape {H.shape}")
        m = H.shape[-2]
        if m == 0:
            raise ShapeError(f"H: expected an observation dimension of at least 1, got shape {H.shape}")
        R = as_float_array("R", R, (2, 3))
        R = check_covariance("R", R, m, time_varying=R.ndim == 3)
        p = _input_dim(B, D)
        B = np.zeros((d, p)) if B is None else check_finite("B", as_float_array("B", B, 2))
        D = np.zeros((m, p)) if D is None else check_finite("D", as_float_array("D", D, 2))
        check_shape("B", B, (d, p))
        check_shape("D", D, (m, p))
        lengths = {name: a.shape[0] for name, a in (("F", F), ("Q", Q), ("H", H), ("R", R)) if a.ndim == 3}
        if len(set(lengths.values())) > 1:
            raise ShapeError(f"time-varying parameters must share one length T, got {lengths}")
        for name, a in lengths.items():
            if a == 0:
                raise ShapeError(f"{name}: time-varying stack with no time steps")
        arrays = []
        for a in (m0, P0, F, B, Q, H, D, R):
            a = np.array(a, dtype=np.float64, order="C")
            a.setflags(write=False)
            arrays.append(a)
        return super().__new__(cls, *arrays)

    @property
    def state_dim(self) -> int:
        """``d``, the dimension of the latent state (the length of ``m0``)."""
        return self.m0.shape[0]

    @property
    def obs_dim(self) -> int:
        """``m``, the dimension of an observation (the rows of ``H``)."""
        return self.H.shape[-2]

    @property
    def input_dim(self) -> int:
        """``p``, the dimension of the known inputs ``u_t`` (the columns of ``B``); 0 without inputs."""
        return self.B.shape[1]

    @property
    def time_varying(self) -> tuple[str, ...]:
        """Names of the parameters given with a leading time axis."""
        return tuple(n for n in ("F", "Q", "H", "R") if getattr(self, n).ndim == 3)

    @property
    def n_steps(self) -> int | None:
        """Length of the time axis of time-varying parameters, or ``None``."""
        for n in self.time_varying:
            return getattr(self, n).shape[0]
        return None

    def replace(self, **changes) -> LGSSMParams:
        """A new validated container with some fields changed."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise ShapeError(f"unknown parameter name(s) {sorted(unknown)}; expected some of {FIELDS}")
        return LGSSMParams(**{**self._asdict(), **changes})

    def replace_built(self, **changes) -> LGSSMParams:
        """:meth:`replace` for arrays the library built to pass its checks (the M-step's: matrices of the
        fields' shapes, covariances symmetric with eigenvalues floored above 0): only finiteness, shapes and
        the covariances' Cholesky factorisation are checked, and anything else goes through
        :meth:`replace`'s validation, which words the error.
        An EM iteration on a short sequence would otherwise spend much of its time re-validating."""
        fields = self._asdict()
        for name, v in changes.items():
            a = np.array(v, dtype=np.float64, order="C")
            if name not in fields or a.shape != fields[name].shape or not np.isfinite(a).all():
                return self.replace(**changes)
            if name in ("P0", "Q", "R") and not _has_cholesky(a):
                return self.replace(**changes)
            a.setflags(write=False)
            fields[name] = a
        return _LGSSMParamsBase.__new__(LGSSMParams, *(fields[n] for n in FIELDS))


def _has_cholesky(a: np.ndarray) -> bool:
    """Whether the kernels' Cholesky factorisation of the covariance ``a`` succeeds."""
    try:
        np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        return False
    return True


def _input_dim(B, D) -> int:
    dims = {}
    for name, v in (("B", B), ("D", D)):
        if v is not None:
            a = as_float_array(name, v, 2)
            dims[name] = a.shape[1]
    if len(set(dims.values())) > 1:
        raise ShapeError(f"B and D: expected the same number of columns (input dimension), got {dims}")
    return next(iter(dims.values()), 0)


def check_frozen(frozen) -> frozenset[str]:
    """Validate names of parameters that learning must keep fixed."""
    return check_names("frozen", frozen, FIELDS, error=ParameterError)


def check_sequence_length(params: LGSSMParams, T: int, label: str) -> None:
    """Time-varying parameters must cover every time step of a sequence."""
    n = params.n_steps
    if n is not None and n != T:
        raise ShapeError(
            f"{label}: sequence has {T} time steps but time-varying parameters {params.time_varying} have {n}"
        )


def check_not_time_varying(params: LGSSMParams, names, why: str) -> None:
    for n in names:
        if getattr(params, n).ndim == 3:
            raise ShapeError(f"{n}: time-varying, which {why}; freeze it (frozen=[..., {n!r}])")


class KernelParams(NamedTuple):
    """What the compiled kernels take for one sequence: every matrix as a stack.

    Time-invariant matrices are stacks of length 1; inputs are folded in as
    ``bu[t] = B u_t`` and ``du[t] = D u_t`` (length 1 and zero without inputs).
    Cholesky factors and log-determinants are precomputed once per sequence;
    ``u`` keeps the raw inputs (``(1, 0)`` without inputs) for the sufficient statistics.

    The ``white_*`` fields let the per-particle densities run without allocating:
    with ``L`` the Cholesky factor of ``Q_t``, ``L^{-1}(x_t - F_t x_{t-1} - B u_t)
    = white_Q x_t - white_F x_{t-1} - white_bu``, and likewise for the emission
    (``white_R``, ``white_H``, ``white_du``) and the initial law (``white_P0``).
    """

    m0: np.ndarray
    P0: np.ndarray
    chol_P0: np.ndarray
    F: np.ndarray
    Q: np.ndarray
    chol_Q: np.ndarray
    logdet_Q: np.ndarray
    H: np.ndarray
    R: np.ndarray
    chol_R: np.ndarray
    logdet_R: np.ndarray
    bu: np.ndarray
    du: np.ndarray
    u: np.ndarray
    white_P0: np.ndarray
    white_Q: np.ndarray
    white_F: np.ndarray
    white_bu: np.ndarray
    white_R: np.ndarray
    white_H: np.ndarray
    white_du: np.ndarray


def _inverse_lower(L):
    """Inverses of a stack of lower-triangular factors (still lower-triangular)."""
    eye = np.broadcast_to(np.eye(L.shape[-1]), L.shape)
    return np.ascontiguousarray(np.tril(np.linalg.solve(L, eye)))


def _fold(u, W, name, key):
    """``u W^T`` as a C-contiguous ``(T, rows of W)`` array (see :func:`kernel_params`'s ``scratch_key``)."""
    shape = (u.shape[0], W.shape[0])
    out = np.empty(shape) if key is None else scratch((key, name), shape[0] * shape[1]).reshape(shape)
    return np.matmul(u, W.T, out=out)


def kernel_params(
    params: LGSSMParams, inputs: np.ndarray | None = None, *, whitened: bool = True, scratch_key=None
) -> KernelParams:
    """Stack the parameters and fold the inputs ``(T, p)`` in (see :class:`KernelParams`).

    ``whitened=False`` leaves the ``white_*`` fields empty (arrays of the same types, so no
    new compilation): the Kalman filter, smoother and E-step never read them, and an EM
    iteration on a short sequence would otherwise spend much of its time forming them.

    ``scratch_key``: ``bu`` and ``du`` are written into ``statespace._scratch.scratch`` arrays
    under that key, which a fit keeps across its E-steps (a batch's folded inputs are ``O(N d)``
    numbers, and fresh memory for them cost more page faults than the products); the result is then
    valid until the next call with the same key. ``None``: fresh arrays.
    """
    d, m = params.state_dim, params.obs_dim

    # Copies: the containers hold read-only arrays, which Numba types (and compiles) separately.
    def stack(a):
        return np.array(a if a.ndim == 3 else a[None], dtype=np.float64, order="C")

    Q, R = stack(params.Q), stack(params.R)
    chol_Q = np.linalg.cholesky(Q)
    chol_R = np.linalg.cholesky(R)
    if inputs is None or params.input_dim == 0:
        u, bu, du = np.zeros((1, 0)), np.zeros((1, d)), np.zeros((1, m))
    else:
        u = np.asarray(inputs, dtype=np.float64, order="C")
        if not u.flags.writeable:  # Numba compiles separately for read-only arrays
            u = u.copy()
        bu, du = _fold(u, params.B, "bu", scratch_key), _fold(u, params.D, "du", scratch_key)
    F, H = stack(params.F), stack(params.H)
    core = dict(
        m0=np.array(params.m0, order="C"),
        P0=np.array(params.P0, order="C"),
        chol_P0=np.linalg.cholesky(params.P0),
        F=F,
        Q=Q,
        chol_Q=chol_Q,
        logdet_Q=2.0 * np.log(np.diagonal(chol_Q, axis1=1, axis2=2)).sum(axis=1),
        H=H,
        R=R,
        chol_R=chol_R,
        logdet_R=2.0 * np.log(np.diagonal(chol_R, axis1=1, axis2=2)).sum(axis=1),
        bu=bu,
        du=du,
        u=u,
    )
    if not whitened:
        e2, e3 = np.empty((0, 0)), np.empty((0, 0, 0))
        return KernelParams(
            **core, white_P0=e2, white_Q=e3, white_F=e3, white_bu=e2, white_R=e3, white_H=e3, white_du=e2
        )
    white_Q, white_R = _inverse_lower(chol_Q), _inverse_lower(chol_R)
    white_P0 = _inverse_lower(core["chol_P0"])
    return KernelParams(
        **core,
        white_P0=white_P0,
        white_Q=white_Q,
        white_F=np.ascontiguousarray(white_Q @ F),
        white_bu=np.ascontiguousarray((white_Q @ bu[..., None])[..., 0]),
        white_R=white_R,
        white_H=np.ascontiguousarray(white_R @ H),
        white_du=np.ascontiguousarray((white_R @ du[..., None])[..., 0]),
    )
