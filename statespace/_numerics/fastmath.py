"""The Numba ``fastmath`` flags of the compiled recursions (forward-backward, Kalman, emissions).

``reassoc`` and ``contract`` let LLVM vectorise sums (over states, over coordinates)
and fuse multiply-adds; ``arcp`` turns division by a loop-invariant into a
multiplication; ``nsz`` ignores the sign of zero. All change results by rounding only.
``nnan`` and ``ninf`` stay off: ``-inf`` log-likelihoods (impossible states) are
legitimate, and NaN (missing data, or an error to report) must never be assumed away.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}  # a set: Numba rejects a frozenset
