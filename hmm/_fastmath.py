"""The Numba ``fastmath`` flags of the HMM recursions (forward-backward, sequential and two-thread).

Re-association and contraction let LLVM vectorise the sums over states; ``nnan`` and
``ninf`` stay off because ``-inf`` log-likelihoods (impossible states) are legitimate
and NaN must never be assumed away.
"""

FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
