"""Validation of observations and inputs against a parameter set (the library boundary)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..validation import as_inputs, as_sequences
from .params import LGSSMParams, check_sequence_length


def prepare(params: LGSSMParams, y, inputs=None, name: str = "y") -> tuple[list[np.ndarray], list, bool]:
    """Observations as a list of ``(T_i, m)`` arrays and matching inputs (``None`` entries without inputs).

    A list of sequences comes back as a :class:`~statespace._ragged.Tiled` list (one block, checked
    once), which the batch functions take without a copy.

    Raises a :class:`~statespace.errors.StateSpaceError` naming the argument for wrong
    shapes, inf in the data, inputs of the wrong length, or time-varying parameters
    whose length differs from a sequence's.
    """
    seqs, single = as_sequences(name, y, params.obs_dim, packed=True)
    lengths = [len(s) for s in seqs]
    if params.input_dim == 0:
        if inputs is not None:
            raise ShapeError("inputs: the model has no input matrices (B and D have 0 columns) but inputs were given")
        us = [None] * len(seqs)
    else:
        us = as_inputs("inputs", inputs, lengths, params.input_dim, single)
    if params.n_steps is not None:
        for i, T in enumerate(lengths):
            check_sequence_length(params, T, name if single else f"{name}[{i}]")
    return seqs, us, single
