"""Validation at the library boundary.

Kernels assume clean float64 arrays; everything a user hands us passes through
these helpers first, so that a bad call fails with a message naming the
argument and the offending index instead of producing NaN deep inside a loop.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError, ParameterError, ShapeError

#: Relative tolerance used when checking symmetry and stochasticity.
RTOL = 1e-8


def as_float_array(name: str, value, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a C-contiguous float64 array, checking its number of dimensions."""
    try:
        arr = np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ShapeError(f"{name}: expected {' or '.join(map(str, allowed))}-D array, got shape {arr.shape}")
    return arr


def check_finite(name: str, arr: np.ndarray) -> np.ndarray:
    """Raise if ``arr`` holds NaN or inf (parameters never may)."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(f"{name}: non-finite value {arr[idx]} at index {idx}")
    return arr


def check_shape(name: str, arr: np.ndarray, shape: tuple) -> np.ndarray:
    """Raise unless ``arr.shape == shape`` (``None`` entries match anything)."""
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"{name}: expected shape {want}, got {arr.shape}")
    return arr


def check_covariance(name: str, cov, dim: int | None = None, time_varying: bool = False) -> np.ndarray:
    """A symmetric positive-definite matrix (or a stack of them along axis 0 when ``time_varying``)."""
    cov = check_finite(name, as_float_array(name, cov, 3 if time_varying else 2))
    mats = cov if time_varying else cov[None]
    if mats.shape[1] != mats.shape[2] or (dim is not None and mats.shape[1] != dim):
        want = f"({dim}, {dim})" if dim is not None else "square"
        raise ShapeError(f"{name}: expected {want} matrices, got shape {cov.shape}")
    for t, m in enumerate(mats):
        where = f" at time index {t}" if time_varying else ""
        scale = max(1.0, float(np.max(np.abs(m))))
        if not np.allclose(m, m.T, rtol=RTOL, atol=RTOL * scale):
            i, j = np.unravel_index(np.argmax(np.abs(m - m.T)), m.shape)
            raise ParameterError(f"{name}: not symmetric{where}: entry ({i}, {j}) = {m[i, j]} but ({j}, {i}) = {m[j, i]}")
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            eig = np.linalg.eigvalsh(m).min()
            raise ParameterError(f"{name}: not positive definite{where} (smallest eigenvalue {eig:.3g})") from None
    return cov


def check_probability_vector(name: str, p, size: int | None = None) -> np.ndarray:
    """Non-negative entries summing to one."""
    p = check_finite(name, as_float_array(name, p, 1))
    if size is not None:
        check_shape(name, p, (size,))
    if (p < 0).any():
        i = int(np.argmax(p < 0))
        raise ParameterError(f"{name}: negative probability {p[i]} at index {i}")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ParameterError(f"{name}: entries sum to {p.sum():.12g}, expected 1")
    return p


def check_stochastic_matrix(name: str, mat, size: int | None = None) -> np.ndarray:
    """Rows of non-negative entries summing to one; a leading time axis is allowed (3-D).

    Rectangular matrices (emission probabilities) pass; give ``size`` to require square ones.
    """
    mat = check_finite(name, as_float_array(name, mat, (2, 3)))
    if size is not None and mat.shape[-2:] != (size, size):
        raise ShapeError(f"{name}: expected ({size}, {size}) matrices, got shape {mat.shape}")
    if (mat < 0).any():
        idx = tuple(int(i) for i in np.argwhere(mat < 0)[0])
        raise ParameterError(f"{name}: negative probability {mat[idx]} at index {idx}")
    sums = mat.sum(axis=-1)
    bad = np.abs(sums - 1.0) > 1e-6
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ParameterError(f"{name}: row {idx} sums to {sums[idx]:.12g}, expected 1")
    return mat


def as_sequences(name: str, y, obs_dim: int | None = None) -> tuple[list[np.ndarray], bool]:
    """Observations as a list of ``(T_i, obs_dim)`` float64 arrays.

    Accepts one sequence (``(T,)`` when ``obs_dim == 1``, or ``(T, obs_dim)``) or a
    list/tuple of them. NaN means missing and is kept; inf is an error. Returns the
    list and whether a single sequence was given (so results can be unwrapped).
    """
    single = not isinstance(y, (list, tuple))
    seqs = [y] if single else list(y)
    if not seqs:
        raise ShapeError(f"{name}: expected at least one sequence, got an empty list")
    out = []
    for i, s in enumerate(seqs):
        label = name if single else f"{name}[{i}]"
        arr = as_float_array(label, s, (1, 2))
        if arr.ndim == 1:
            arr = arr[:, None]
        if obs_dim is not None and arr.shape[1] != obs_dim:
            raise ShapeError(f"{label}: expected {obs_dim} columns (observation dimension), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ShapeError(f"{label}: sequence has no time steps")
        if np.isinf(arr).any():
            t, j = np.argwhere(np.isinf(arr))[0]
            raise DataError(f"{label}: infinite value at time step {t}, coordinate {j} (use NaN for missing)")
        out.append(np.ascontiguousarray(arr))
    return out, single


def as_inputs(name: str, u, lengths: list[int], input_dim: int, single: bool) -> list[np.ndarray]:
    """Inputs aligned with observation sequences: a list of ``(T_i, input_dim)`` arrays.

    ``None`` gives zero-width arrays when the model takes no inputs. Inputs must be finite.
    """
    if u is None:
        if input_dim > 0:
            raise ShapeError(f"{name}: the model takes {input_dim}-dimensional inputs but none were given")
        return [np.zeros((T, 0)) for T in lengths]
    seqs = [u] if single else list(u)
    if len(seqs) != len(lengths):
        raise ShapeError(f"{name}: got {len(seqs)} input sequences for {len(lengths)} observation sequences")
    out = []
    for i, (s, T) in enumerate(zip(seqs, lengths)):
        label = name if single else f"{name}[{i}]"
        arr = as_float_array(label, s, (1, 2))
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.shape != (T, input_dim):
            raise ShapeError(f"{label}: expected shape ({T}, {input_dim}) to match the observations, got {arr.shape}")
        if not np.isfinite(arr).all():
            t, j = np.argwhere(~np.isfinite(arr))[0]
            raise DataError(f"{label}: non-finite input at time step {t}, coordinate {j}")
        out.append(arr)
    return out


def as_rng(rng) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, a seed or ``None``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
