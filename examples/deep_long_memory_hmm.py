"""A regime-switching series with a 100-step memory: deep-SSM emissions against a plain ARHMM.

Data: a sticky two-state chain ``z_t`` and

    y_t = mu_{z_t} + phi_{z_t} * mean(y_{t-100:t-1}) + sigma_{z_t} * eps_t,

so each regime's level depends on the average of the last 100 observations, which
a lag-``L`` ARHMM cannot see for small ``L``. The :class:`hmm.learned_emission.LearnedEmissionHMM`
(an LRU stack reads the whole history) is fitted by generalised EM and compared with
ARHMMs (lags 1 and 5) by held-out log-likelihood per step; the true model's value is the ceiling.

Run ``python examples/deep_long_memory_hmm.py`` (about a few minutes on a CPU) or
``--n-train 4 --length 300 --max-iter 3`` for a quick check.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

MU = np.array([1.0, -1.0])
PHI = np.array([0.8, -0.8])
SIGMA = np.array([0.4, 0.4])
A = np.array([[0.98, 0.02], [0.02, 0.98]])
MEMORY = 100


def simulate(T: int, rng) -> tuple[np.ndarray, np.ndarray, float]:
    """``(states, y (T, 1), true log-likelihood)`` of one sequence."""
    z = np.empty(T, int)
    y = np.empty(T)
    for t in range(T):
        z[t] = rng.integers(2) if t == 0 else rng.choice(2, p=A[z[t - 1]])
        m = y[max(0, t - MEMORY) : t].mean() if t else 0.0
        y[t] = MU[z[t]] + PHI[z[t]] * m + SIGMA[z[t]] * rng.standard_normal()
    return z, y[:, None], true_log_likelihood(y)


def true_log_likelihood(y: np.ndarray) -> float:
    """Exact ``log p(y)`` under the generating model (forward algorithm)."""
    from hmm.forward_backward import forward

    T = len(y)
    ll = np.empty((T, 2))
    for t in range(T):
        m = y[max(0, t - MEMORY) : t].mean() if t else 0.0
        r = (y[t] - MU - PHI * m) / SIGMA
        ll[t] = -0.5 * math.log(2 * math.pi) - np.log(SIGMA) - 0.5 * r * r
    return float(forward(np.full(2, 0.5), A[None], ll)[0])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=8)
    ap.add_argument("--n-test", type=int, default=4)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--layer", default="lru")
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--state", type=int, default=8)
    ap.add_argument("--n-layers", type=int, default=1)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--m-steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from hmm import ARHMM
    from hmm.learned_emission import LearnedEmissionHMM

    rng = np.random.default_rng(args.seed)
    train = [simulate(args.length, rng) for _ in range(args.n_train)]
    test = [simulate(args.length, rng) for _ in range(args.n_test)]
    y_train = [d[1] for d in train]
    y_test = [d[1] for d in test]
    n_test = args.n_test * args.length
    out = {"true_model": sum(d[2] for d in test) / n_test}
    for lags in (1, 5):
        ar = ARHMM(2, 1, lags=lags)
        ar.fit(y_train, n_restarts=3, rng=args.seed, progress=False)
        out[f"arhmm_lag{lags}"] = ar.log_likelihood(y_test) / n_test
    # slow, nearly real modes: the memory we want is a smooth 100-step average
    options = (("r_min", 0.9), ("max_phase", 0.3)) if args.layer == "lru" else ()
    deep = LearnedEmissionHMM(
        2, 1, layer=args.layer, hidden=args.hidden, state=args.state, n_layers=args.n_layers, init_options=options
    )
    res = deep.fit(
        y_train,
        max_iter=args.max_iter,
        m_steps=args.m_steps,
        weight_decay=args.weight_decay,
        rng=args.seed,
        progress=False,
    )
    out[f"deep_{args.layer}"] = deep.log_likelihood(y_test) / n_test
    out["deep_train_loglik_history"] = [round(float(v), 3) for v in res.log_likelihoods]
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))
    return out


if __name__ == "__main__":
    main()
