"""Covariate-driven regime switching: an IO-HMM with deep-SSM transitions against a homogeneous HMM.

Data: a slowly varying covariate ``u_t`` (AR(1), phi = 0.98) and a two-state chain whose
switching probabilities depend on the covariate's 20-step exponential moving average
``s_t``: from either state the chain moves to state 1 with probability
``sigmoid(6 s_t / sd(u))`` per step and to state 0 otherwise, damped by stickiness:

    p(z_t = j | z_{t-1} = i, u_{0:t}) = 0.5 [i == j] + 0.5 * (p1_t if j == 1 else 1 - p1_t),

with overlapping emissions ``y_t ~ N(+-1, 1)``. The :class:`hmm.io_hmm.IOHMM` (an LRU
reads ``u``) is compared with a homogeneous :class:`hmm.GaussianHMM` by held-out
log-likelihood per step; the true model's value is the ceiling.

Run ``python examples/deep_io_hmm.py`` or ``--n-train 3 --length 300 --max-iter 3`` for a quick check.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

MEANS = np.array([-1.0, 1.0])
SD = 1.0


def true_transitions(u: np.ndarray) -> np.ndarray:
    """``A_t`` for ``t = 0..T-1`` ``(T, 2, 2)`` (``A_0`` unused)."""
    s = np.empty(len(u))
    acc = 0.0
    for t, v in enumerate(u):
        acc = 0.95 * acc + 0.05 * v
        s[t] = acc
    p1 = 1.0 / (1.0 + np.exp(-6.0 * s / np.std(u)))
    move = np.stack([1 - p1, p1], axis=-1)  # (T, 2)
    return 0.5 * np.eye(2)[None] + 0.5 * move[:, None, :]


def simulate(T: int, rng):
    """``(states, y (T, 1), u (T, 1), true log-likelihood)``."""
    u = np.empty(T)
    u[0] = rng.standard_normal()
    for t in range(1, T):
        u[t] = 0.98 * u[t - 1] + math.sqrt(1 - 0.98**2) * rng.standard_normal()
    A = true_transitions(u)
    z = np.empty(T, int)
    z[0] = rng.integers(2)
    for t in range(1, T):
        z[t] = rng.choice(2, p=A[t, z[t - 1]])
    y = MEANS[z] + SD * rng.standard_normal(T)
    from hmm.forward_backward import forward

    ll = -0.5 * math.log(2 * math.pi) - math.log(SD) - 0.5 * ((y[:, None] - MEANS) / SD) ** 2
    true_ll = float(forward(np.full(2, 0.5), np.ascontiguousarray(A[1:]), ll)[0])
    return z, y[:, None], u[:, None], true_ll


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=10)
    ap.add_argument("--n-test", type=int, default=4)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--layer", default="lru")
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--m-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from hmm import GaussianHMM
    from hmm.io_hmm import IOHMM

    rng = np.random.default_rng(args.seed)
    train = [simulate(args.length, rng) for _ in range(args.n_train)]
    test = [simulate(args.length, rng) for _ in range(args.n_test)]
    n_test = args.n_test * args.length
    out = {"true_model": sum(d[3] for d in test) / n_test}
    hmm = GaussianHMM(2, 1)
    hmm.fit([d[1] for d in train], n_restarts=3, rng=args.seed, progress=False)
    out["gaussian_hmm"] = hmm.log_likelihood([d[1] for d in test]) / n_test
    io = IOHMM(
        2, 1, 1, layer=args.layer, hidden=4, state=4, init_options=(("r_min", 0.8),) if args.layer == "lru" else ()
    )
    res = io.fit(
        [d[1] for d in train],
        inputs=[d[2] for d in train],
        max_iter=args.max_iter,
        m_steps=args.m_steps,
        weight_decay=args.weight_decay,
        rng=args.seed,
        progress=False,
    )
    out[f"io_hmm_{args.layer}"] = io.log_likelihood([d[1] for d in test], inputs=[d[2] for d in test]) / n_test
    out["io_hmm_train_loglik_history"] = [round(float(v), 3) for v in res.log_likelihoods]
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))
    return out


if __name__ == "__main__":
    main()
