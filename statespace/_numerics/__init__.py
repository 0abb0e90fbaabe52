"""Numerical kernels shared by every family (private).

Each module has one job and imports nothing from :mod:`hmm` or :mod:`smc`; those
packages import from here, so a kernel is written once:

* :mod:`.fastmath` -- the Numba ``fastmath`` flags of the compiled recursions.
"""
