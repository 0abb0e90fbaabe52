"""Markov jump processes: one EM iteration and the log-likelihood, K = 6, 300 paths x 100 observations.

No Python library fits a hidden Markov jump process at irregular times, so the
peer is a straightforward scipy implementation written here: per interval,
``scipy.linalg.expm(Q dt)``, a numpy scaled forward-backward per path, and the
E-step of Hobolth & Jensen (2011) as one Van Loan block exponential per
interval with the two-slice weights ``xi / P``. Ours groups intervals by length,
runs one compiled pass over all sequences and needs one block exponential per
*distinct* length. Cases: a regular grid (100 evenly spaced times in [0, 1], as
in the flashing-ratchet benchmark: one distinct length) and irregular grids
(uniform random times: every length distinct). Observations are noisy labels
(5% uniform replacement), the general E-step.

Prints one JSON line per case (GUIDE section 3); cold start = the first call in
a fresh process with Numba's on-disk cache filled (a first-ever run also compiles).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

# Run as ``python benchmarks/mjp.py``, the script's folder comes first on sys.path,
# and benchmarks/hmm.py would shadow the hmm package: drop that folder.
_HERE = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != _HERE]

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

K, N_PATHS, N_OBS = 6, 300, 100
PEER = f"scipy {scipy.__version__} straightforward (expm per interval)"


def problem(irregular: bool, seed: int = 0):
    from hmm.markov_jump import MarkovJumpProcess, NoisyLabels, flashing_ratchet_rates, generator_from_rates

    Q = generator_from_rates(flashing_ratchet_rates(np.array([1.0, 1.0, 1.0])))
    model = MarkovJumpProcess(Q, None, NoisyLabels.uniform_replacement(K, 0.05))
    rng = np.random.default_rng(seed)
    if irregular:
        grids = [np.sort(rng.uniform(0.0, 1.0, N_OBS)) for _ in range(N_PATHS)]
    else:
        grids = [np.linspace(0.0, 1.0, N_OBS)] * N_PATHS
    _, ys = model.sample(times=grids, rng=rng)
    return model, ys, grids


def scipy_forward_backward(Q, pi0, B, y, grid):
    e = B[:, y[:, 0].astype(int)].T
    Ps = [scipy.linalg.expm(Q * d) for d in np.diff(grid)]
    T = len(grid)
    alpha = np.empty((T, K))
    c = np.empty(T)
    a = pi0 * e[0]
    c[0] = a.sum()
    alpha[0] = a / c[0]
    for t in range(1, T):
        a = (alpha[t - 1] @ Ps[t - 1]) * e[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta = np.ones((T, K))
    for t in range(T - 1, 0, -1):
        beta[t - 1] = Ps[t - 1] @ (e[t] * beta[t]) / c[t]
    return np.log(c).sum(), alpha, beta, c, e, Ps


def scipy_log_likelihood(Q, pi0, B, ys, grids):
    return sum(scipy_forward_backward(Q, pi0, B, y, g)[0] for y, g in zip(ys, grids))


def scipy_em_iteration(Q, pi0, B, ys, grids):
    dwell, jumps, ll = np.zeros(K), np.zeros((K, K)), 0.0
    off = Q - np.diag(np.diag(Q))
    big = np.zeros((2 * K, 2 * K))
    for y, g in zip(ys, grids):
        l, alpha, beta, c, e, Ps = scipy_forward_backward(Q, pi0, B, y, g)
        ll += l
        for t in range(1, len(g)):
            # xi / P without dividing by P: alpha_{t-1}(a) e_t(b) beta_t(b) / c_t
            W = np.outer(alpha[t - 1], e[t] * beta[t] / c[t])
            d = g[t] - g[t - 1]
            big[:K, :K] = Q.T * d
            big[K:, K:] = Q.T * d
            big[:K, K:] = W * d
            M = scipy.linalg.expm(big)[:K, K:]
            dwell += np.diag(M)
            jumps += off * M
    newQ = jumps / dwell[:, None]
    np.fill_diagonal(newQ, 0.0)
    np.fill_diagonal(newQ, -newQ.sum(axis=1))
    return ll, newQ


def ours_em_iteration(model, ys, grids):
    """One EM iteration as ``MarkovJumpProcess.fit`` runs it: the E-step's additive statistics, then the M-step."""
    from hmm.markov_jump.em import m_step, shard_e_step

    stats = shard_e_step(model.params, list(zip(ys, grids)))
    return stats.log_likelihood, m_step(model.params, stats)


def best_of(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def cold(what: str, irregular: bool) -> None:
    """Time the first ``what`` ("em" or "ll") call in this fresh process."""
    model, ys, grids = problem(irregular)
    t = time.perf_counter()
    if what == "em":
        ours_em_iteration(model, ys, grids)
    else:
        model.log_likelihood(ys, times=grids)
    print(time.perf_counter() - t)


def cold_run(what: str, irregular: bool) -> float:
    out = subprocess.run(
        [sys.executable, str(_HERE / "mjp.py"), "--cold", what, "irregular" if irregular else "regular"],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main():
    if len(sys.argv) > 3 and sys.argv[1] == "--cold":
        return cold(sys.argv[2], sys.argv[3] == "irregular")
    # One throwaway process fills Numba's on-disk cache, so "cold" below is what a
    # user sees on every run after the first (import, cache load, first dispatch).
    cold_run("em", False)
    for irregular in (False, True):
        case = f"K{K}_{N_PATHS}x{N_OBS}_{'irregular' if irregular else 'regular'}"
        cold_em, cold_ll = cold_run("em", irregular), cold_run("ll", irregular)
        model, ys, grids = problem(irregular)
        Q, pi0 = np.asarray(model.params.Q), np.asarray(model.params.initial)
        B = np.asarray(model.params.observation.emission)
        ll_ours, new = ours_em_iteration(model, ys, grids)
        ll_peer, newQ = scipy_em_iteration(Q, pi0, B, ys, grids)
        # same answer before timing
        assert abs(ll_ours - ll_peer) < 1e-8 * abs(ll_peer), (ll_ours, ll_peer)
        assert np.allclose(new.Q, newQ, rtol=1e-7, atol=1e-10)
        ours = best_of(lambda: ours_em_iteration(model, ys, grids), 5)
        peer = best_of(lambda: scipy_em_iteration(Q, pi0, B, ys, grids), 1)
        rows = [
            {
                "bench": "mjp_em_iteration",
                "case": case,
                "ours_s": ours,
                "peer": PEER,
                "peer_s": peer,
                "speedup": peer / ours,
            },
            {"bench": "mjp_em_iteration_cold", "case": case, "ours_s": cold_em},
        ]
        ours = best_of(lambda: model.log_likelihood(ys, times=grids), 5)
        peer = best_of(lambda: scipy_log_likelihood(Q, pi0, B, ys, grids), 2)
        rows += [
            {
                "bench": "mjp_log_likelihood",
                "case": case,
                "ours_s": ours,
                "peer": PEER,
                "peer_s": peer,
                "speedup": peer / ours,
            },
            {"bench": "mjp_log_likelihood_cold", "case": case, "ours_s": cold_ll},
        ]
        for r in rows:
            print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)


if __name__ == "__main__":
    main()
