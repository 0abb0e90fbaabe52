"""Numerical kernels shared by every family (private).

Each module has one job and imports nothing from :mod:`hmm` or :mod:`smc`; those
packages import from here, so a kernel is written once:

* :mod:`.exp` -- the exponential of a non-positive argument (scalar, and an IR emitter for vectors);
* :mod:`.linalg` -- Cholesky factors (definite and semi-definite) and triangular solves on a leading block;
* :mod:`.gaussian` -- the Gaussian log-density of the observed coordinates of a vector with NaN (missing) entries;
* :mod:`.weights` -- normalising log-weights (log normalising constant, effective sample size);
* :mod:`.categorical` -- one draw from probabilities, unnormalised weights or logits;
* :mod:`.fastmath` -- the Numba ``fastmath`` flags of the compiled recursions.
"""
