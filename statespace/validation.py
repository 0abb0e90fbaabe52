"""Validation at the library boundary.

Kernels assume clean float64 arrays; everything a user hands us passes through
these helpers first, so that a bad call fails with a message naming the
argument and the offending index instead of producing NaN deep inside a loop.

The input rules, the same at every public entry point:

**Sequences** (:func:`as_sequences`). One sequence is a ``(T, d)`` array of
numbers, or ``(T,)`` when ``d == 1``; rows are time steps.

* a numpy array (or any object with ``__array__``: pandas, jax) is **one** sequence;
* a list or tuple of numbers is **one** sequence (``[0.5, 1.0, 1.5]`` is
  ``np.array([0.5, 1.0, 1.5])``), and so is a rectangular list of rows
  (``[[1, 2], [3, 4]]`` is a ``(2, 2)`` sequence): a list that is not a list of
  arrays is read exactly as ``np.asarray`` reads it;
* a list or tuple whose items are **all** arrays is a batch of sequences (their
  lengths may differ). Several sequences are never given as nested lists: wrap
  each one in ``np.asarray``;
* everything else is an error naming the argument: ``None``, a scalar, a
  string, a dict, an empty list, a list mixing arrays with numbers or lists, a
  ragged nested list, arrays of more than two dimensions, object, string,
  boolean or complex arrays (complex with a zero imaginary part is read as
  real), an empty sequence.

NaN means missing; inf is an error.

**Counts** (:func:`check_int`): numbers of states, symbols, time steps,
particles, iterations, samples, lags... are Python or numpy integers, or
floats with an integral value (``1e4`` particles); ``2.7``, NaN, inf, booleans
and strings are errors, never truncated.

**Real options** (:func:`check_real`): finite unless said otherwise, within
the stated bounds (``tol >= 0``, ``ess_threshold`` in ``[0, 1]``).

**Learning options** (:func:`check_fit_options`): every ``fit`` and every
iterative learning routine takes ``max_iter`` (or ``n_iter``) an integer
``>= 1`` and ``tol`` a finite real ``>= 0``.

**Parameters** (:func:`as_float_array`): numeric arrays; complex values with a
nonzero imaginary part are an error naming the parameter.

**Random numbers** (:func:`as_rng`): a ``numpy.random.Generator``, a
non-negative integer seed (or anything ``numpy.random.default_rng`` takes) or
``None``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._ragged import Tiled, offsets_of, pack
from .errors import DataError, ParameterError, ShapeError

_F64 = np.dtype(np.float64)

#: Relative tolerance used when checking symmetry and stochasticity.
RTOL = 1e-8

_SEQUENCE_RULE = (
    "expected one sequence (a numeric array of shape (T,) or (T, d), or a flat list of numbers) "
    "or a list/tuple of such arrays (one per sequence)"
)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, str):
        return f"the string {value[:20]!r}"
    return (
        f"{type(value).__name__} {value!r}"[:80] if value is not None and np.ndim(value) == 0 else type(value).__name__
    )


def _real_array(name: str, value, error) -> np.ndarray:
    """``value`` as a numeric numpy array (complex with a zero imaginary part made real)."""
    if value is None or isinstance(value, (str, bytes, dict, set)):
        raise error(f"{name}: expected a numeric array, got {_describe(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ShapeError(
            f"{name}: expected a numeric array, got a ragged or non-numeric {type(value).__name__}"
        ) from exc
    if arr.dtype.kind == "c":
        if np.any(arr.imag != 0):
            idx = tuple(int(i) for i in np.argwhere(arr.imag != 0)[0])
            raise error(f"{name}: complex value {arr[idx]} at index {idx}; expected real numbers")
        arr = arr.real
    if arr.dtype.kind in "USVMm":
        raise error(f"{name}: expected a numeric array, got {_describe(arr)}")
    return arr


def as_float_array(name: str, value, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` as a C-contiguous float64 array, checking its number of dimensions.

    ``None``, strings and ragged lists are errors; complex values must have a
    zero imaginary part (never silently dropped).
    """
    arr = _real_array(
        name, value, ShapeError if value is None or isinstance(value, (str, bytes, dict, set)) else ParameterError
    )
    try:
        arr = np.ascontiguousarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ShapeError(f"{name}: expected {' or '.join(map(str, allowed))}-D array, got shape {arr.shape}")
    return arr


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, error=ParameterError) -> int:
    """``value`` as a Python ``int``: an integer, or a float with an integral value.

    ``1e4`` is accepted (it is how people write ten thousand); ``2.7``, NaN,
    inf, booleans, strings and ``None`` raise ``error`` naming ``name``, never
    a silent truncation. ``minimum``/``maximum`` are inclusive bounds.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise error(f"{name}: expected an integer, got {_describe(value)}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        v = float(value)
        if not np.isfinite(v) or v != np.floor(v):
            raise error(f"{name}: expected an integer, got {value!r} (non-integral values are not rounded)")
        out = int(v)
    if minimum is not None and out < minimum:
        raise error(f"{name}: expected an integer >= {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise error(f"{name}: expected an integer <= {maximum}, got {out}")
    return out


def check_real(
    name: str,
    value,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    strict: bool = False,
    finite: bool = True,
    error=ParameterError,
) -> float:
    """``value`` as a Python ``float`` within ``[minimum, maximum]`` (open bounds when ``strict``).

    Booleans, strings, ``None``, complex numbers with a nonzero imaginary part
    and NaN are errors; inf too unless ``finite=False``.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        if value.imag != 0:
            raise error(f"{name}: complex value {value}; expected a real number")
        value = value.real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise error(f"{name}: expected a real number, got {_describe(value)}")
    v = float(value)
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise error(f"{name}: expected a finite real number, got {v}")
    lo_bad = minimum is not None and (v <= minimum if strict else v < minimum)
    hi_bad = maximum is not None and (v >= maximum if strict else v > maximum)
    if lo_bad or hi_bad:
        if maximum is None:
            want = f"{'>' if strict else '>='} {minimum}"
        elif minimum is None:
            want = f"{'<' if strict else '<='} {maximum}"
        else:
            want = f"in {'(' if strict else '['}{minimum}, {maximum}{')' if strict else ']'}"
        raise error(f"{name}: expected a value {want}, got {v}")
    return v


_ABSENT = object()


def check_fit_options(max_iter, tol=_ABSENT, *, max_iter_name: str = "max_iter", tol_name: str = "tol"):
    """The learning options every ``fit`` shares: ``max_iter`` an integer ``>= 1``, ``tol`` finite ``>= 0``.

    Returns ``(max_iter, tol)`` as ``(int, float)``. Routines without a
    tolerance (a fixed number of iterations ``n_iter``) leave ``tol`` out and
    get ``None`` back; ``None`` given for either option is an error.
    """
    max_iter = check_int(max_iter_name, max_iter, minimum=1)
    tol = None if tol is _ABSENT else check_real(tol_name, tol, minimum=0.0)
    return max_iter, tol


def check_choice(name: str, value, choices) -> str:
    """``value`` must be one of ``choices`` (names of schemes, kinds, layers...)."""
    if not isinstance(value, str) or value not in choices:
        raise ParameterError(f"{name}: unknown kind {value!r}; expected one of {tuple(choices)}")
    return value


def check_names(name: str, value, allowed, error=ParameterError) -> frozenset[str]:
    """A set of names (``frozen=("F", "H")``) drawn from ``allowed``.

    ``None`` is the empty set and one string is one name; anything else must be
    an iterable of strings. Unknown names are an error listing the allowed ones.
    """
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, (bytes, dict)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise error(f"{name}: expected a name or a list of names from {sorted(allowed)}, got {_describe(value)}")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise error(f"{name}: expected names (strings) from {sorted(allowed)}, got {bad[0]!r}")
    names = frozenset(value)
    unknown = names - set(allowed)
    if unknown:
        raise error(f"{name}: unknown parameter name(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
    return names


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
            raise ParameterError(
                f"{name}: not symmetric{where}: entry ({i}, {j}) = {m[i, j]} but ({j}, {i}) = {m[j, i]}"
            )
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


def _is_array(item) -> bool:
    """Whether a list item counts as one sequence of a batch: an array (numpy or array-like) of dimension >= 1."""
    if type(item) is np.ndarray:  # the common case first: a fleet may hold many thousands of items
        return item.ndim >= 1
    if isinstance(item, (list, tuple, str, bytes, dict, np.generic)) or item is None:
        return False
    if isinstance(item, np.ndarray):
        return item.ndim >= 1
    return hasattr(item, "__array__") and np.ndim(item) >= 1


def split_batch(name: str, y) -> tuple[list, bool]:
    """Apply the sequence rule of the module docstring: ``(items, single)``.

    ``items`` is ``[y]`` for one sequence, or the list of arrays of a batch;
    the items are not converted (inputs and times follow the observations' form).
    """
    if isinstance(y, (list, tuple)):
        if len(y) == 0:
            raise ShapeError(f"{name}: got an empty {type(y).__name__}; {_SEQUENCE_RULE}")
        arrays = [_is_array(s) for s in y]
        if all(arrays):
            return list(y), False
        if any(arrays):
            i = arrays.index(False) if arrays[0] else arrays.index(True)
            raise ShapeError(
                f"{name}: a {type(y).__name__} mixing arrays with other items (item {i} is {_describe(y[i])}); {_SEQUENCE_RULE}"
            )
    return [y], True


def _sequence_array(label: str, s, obs_dim: int | None, allow_nan: bool) -> np.ndarray:
    """One sequence as a C-contiguous ``(T, d)`` float64 array (see the module docstring)."""
    if (
        s is None
        or isinstance(s, (str, bytes, dict, set))
        or (not isinstance(s, (list, tuple)) and np.ndim(s) == 0 and not hasattr(s, "__len__"))
    ):
        raise ShapeError(f"{label}: got {_describe(s)}; {_SEQUENCE_RULE}")
    try:
        arr = np.asarray(s)
    except (TypeError, ValueError) as exc:
        raise ShapeError(
            f"{label}: a ragged nested {type(s).__name__} is neither one sequence nor a list of arrays; {_SEQUENCE_RULE}"
        ) from exc
    if arr.dtype.kind == "c":
        bad = arr.imag != 0
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{label}: complex value {arr[idx]} at index {idx}; observations must be real")
        arr = arr.real
    if arr.dtype.kind not in "iuf":
        raise DataError(
            f"{label}: got {_describe(arr)}; expected real numbers (convert with np.asarray(..., dtype=float))"
        )
    if arr.ndim not in (1, 2):
        raise ShapeError(f"{label}: got {_describe(arr)}; {_SEQUENCE_RULE}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if obs_dim is not None and arr.shape[1] != obs_dim:
        hint = (
            "; a nested list is one sequence whose rows are time steps: give several sequences as a list of arrays"
            if isinstance(s, (list, tuple)) and arr.ndim == 2
            else ""
        )
        raise ShapeError(f"{label}: expected {obs_dim} columns (observation dimension), got shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ShapeError(f"{label}: sequence has no time steps")
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        what = "infinite value" if allow_nan else "non-finite value"
        hint = " (use NaN for missing)" if allow_nan else ""
        raise DataError(f"{label}: {what} at time step {t}, coordinate {j}{hint}")
    return arr


def as_sequences(
    name: str,
    y,
    obs_dim: int | None = None,
    *,
    allow_nan: bool = True,
    packed: bool = False,
    packed_rows: int | None = None,
) -> tuple[list[np.ndarray], bool]:
    """Observations as a list of ``(T_i, obs_dim)`` float64 arrays, by the sequence rule of this module.

    One sequence (an array; a flat list of numbers; a rectangular list of rows)
    or a list/tuple of arrays (a batch, lengths may differ); anything else is a
    :class:`~statespace.errors.ShapeError` or :class:`~statespace.errors.DataError`
    naming ``name`` (and the item, ``name[i]``). NaN means missing and is kept
    (an error when ``allow_nan=False``, e.g. for observation times); inf is an
    error. Returns the list and whether a single sequence was given (so
    results can be unwrapped).

    With ``packed``, a batch comes back as a :class:`~statespace._ragged.Tiled` list: views
    of one concatenated block, which :func:`~statespace._ragged.pack` then returns without a
    copy, checked for inf in one pass over the block (a fleet of thousands of short
    sequences then costs one check, not one per sequence). For the callers that pack the
    batch anyway (the exact-inference families); the others keep the user's arrays.
    ``packed_rows``: pack only batches of at most that many rows in all (a caller that runs a
    large batch in parts of reused memory keeps the user's arrays beyond it: one large block
    is fresh memory, every page of which the system must map at the first write).
    """
    items, single = split_batch(name, y)
    if not single:
        if packed:
            tiled = _packed_batch(items, obs_dim, allow_nan, packed_rows)
            if tiled is not None:
                return tiled, single
        if _plain_items(items, obs_dim):
            with np.errstate(over="ignore", invalid="ignore"):  # once for the batch: a sum may overflow
                if not any(_has_non_finite(s, allow_nan) for s in items):
                    return items, single
    out = [_sequence_array(name if single else f"{name}[{i}]", s, obs_dim, allow_nan) for i, s in enumerate(items)]
    if (
        packed
        and not single
        and len({s.shape[1] for s in out}) == 1  # one block needs one width (given when obs_dim is)
        and (packed_rows is None or sum(map(len, out)) <= packed_rows)
    ):
        return _tiled(*pack(out), allow_nan), single
    return out, single


def _plain_items(items: list, obs_dim: int | None) -> bool:
    """Whether every item already has the form :func:`_sequence_array` returns (a non-empty C-contiguous
    ``(T, obs_dim)`` float64 array). ``False`` sends the items through the per-item checks, which
    convert them or word the error."""
    width = obs_dim if obs_dim is not None else getattr(items[0], "shape", (0, 0))[-1]
    for s in items:
        if not (
            type(s) is np.ndarray
            and s.dtype == np.float64
            and s.ndim == 2
            and s.shape[1] == width
            and s.shape[0] > 0
            and s.flags.c_contiguous
        ):
            return False
    return True


def _packed_batch(items: list, obs_dim: int | None, allow_nan: bool, packed_rows):
    """A batch of real arrays as a :class:`~statespace._ragged.Tiled` list over one float64 block, checked
    in bulk: one set of (type, dtype, ndim) for the items, the concatenation for their widths (and
    the conversion of integers or other floats), one pass over the block for inf. All 2-D, or all
    1-D where one column is expected (a scalar series each, the usual form of ``m = 1`` data: the
    block's rows). ``None`` when anything is off (the other checks then convert the items or name
    the sequence and the step), or when the items hold more than ``packed_rows`` rows in all."""
    kinds = {(type(s), s.dtype, s.ndim) for s in items}
    plain = kinds == {(np.ndarray, _F64, 2)}
    if not plain:
        ndims = {n for _, _, n in kinds}
        if (
            {t for t, _, _ in kinds} != {np.ndarray}
            or any(dt.kind not in "iuf" for _, dt, _ in kinds)
            or not (ndims == {2} or (ndims == {1} and obs_dim in (None, 1)))
        ):
            return None
    if packed_rows is not None and sum(map(len, items)) > packed_rows:
        return None
    try:
        if plain:
            block, offsets = pack(items)
        else:  # converted in the concatenation: one pass, not one array per sequence
            block = np.concatenate(items, axis=0, dtype=np.float64)
            block = block[:, None] if block.ndim == 1 else block
            offsets = offsets_of([len(s) for s in items])
    except ValueError:  # different widths
        return None
    width = block.shape[1] if obs_dim is None else obs_dim
    if block.shape[1] != width or not (offsets[1:] > offsets[:-1]).all():  # an empty sequence
        return None
    return _tiled(block, offsets, allow_nan)


def _tiled(block: np.ndarray, offsets: np.ndarray, allow_nan: bool):
    """``Tiled(block, offsets)``, or ``None`` when the block holds inf (or NaN, unless ``allow_nan``).
    A finite sum rules out both at once and marks the batch complete."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(block.sum())):
            return Tiled(block, offsets, complete=True)
        if (np.isinf(block) if allow_nan else ~np.isfinite(block)).any():
            return None
    return Tiled(block, offsets, complete=False)


def has_non_finite(a: np.ndarray, allow_nan: bool = True) -> bool:
    """Whether float array ``a`` holds inf (or, unless ``allow_nan``, NaN): one pass, no temporary.

    A finite sum rules both out without the ``a.shape`` boolean temporary of ``np.isinf(a).any()``
    (a fresh mapping per call in a Dask worker, whose nanny turns off the allocator's reuse of large
    blocks); a sum that is not finite (NaN present, or an overflow) is checked element by element.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _has_non_finite(a, allow_nan)


def _has_non_finite(a: np.ndarray, allow_nan: bool) -> bool:
    return not math.isfinite(float(a.sum())) and bool((np.isinf(a) if allow_nan else ~np.isfinite(a)).any())


def as_inputs(name: str, u, lengths: list[int], input_dim: int, single: bool) -> list[np.ndarray]:
    """Inputs aligned with observation sequences: a list of ``(T_i, input_dim)`` arrays.

    Inputs follow the sequence rule of :func:`as_sequences` and must be finite.
    ``None`` gives zero-width arrays when the model takes no inputs.
    """
    if u is None:
        if input_dim > 0:
            raise ShapeError(f"{name}: the model takes {input_dim}-dimensional inputs but none were given")
        # views of one empty block: packing them for a batch call is then free
        return Tiled(np.zeros((sum(lengths), 0)), offsets_of(lengths))
    items, u_single = split_batch(name, u)
    if u_single != single:
        raise ShapeError(
            f"{name}: the observations are {'one sequence' if single else f'a list of {len(lengths)} sequences'} "
            f"but the inputs are {'one sequence' if u_single else f'a list of {len(items)}'}; give inputs in the same form"
        )
    if len(items) != len(lengths):
        raise ShapeError(f"{name}: got {len(items)} input sequences for {len(lengths)} observation sequences")
    if not single and lengths:
        # a fleet's inputs checked in bulk, as the observations are: one block, one pass for non-finite
        # numbers (anything off goes through the per-item checks below, which word the error)
        tiled = _packed_batch(items, input_dim, False, None)
        if tiled is not None and np.array_equal(np.diff(tiled.offsets), lengths):
            return tiled
    out = []
    for i, (s, T) in enumerate(zip(items, lengths)):
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


def as_rng(rng, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, a seed or ``None``.

    A seed is a non-negative integer (an integral float is accepted), a
    sequence of them, a ``SeedSequence`` or a bit generator; anything else
    (``2.5``, a string, a boolean) is a :class:`~statespace.errors.ParameterError`.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_, str, bytes)):
        raise ParameterError(
            f"{name}: expected a numpy.random.Generator, a non-negative integer seed or None, got {_describe(rng)}"
        )
    if isinstance(rng, (float, np.floating)):
        rng = check_int(name, rng, minimum=0)
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{name}: expected a numpy.random.Generator, a non-negative integer seed or None, got {_describe(rng)}"
        ) from exc
