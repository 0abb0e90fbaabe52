"""hmm: discrete latent states (HMM, autoregressive HMM with partial knowledge) and Markov jump processes."""

from . import forward_backward
