r"""The discrete flashing ratchet: our estimates against FIM-MJP's published ones.

Six states: 0-2 with the potential on, 3-5 with it off (Roldan & Parrondo 2010,
as used by FIM-MJP, Berghaus et al., NeurIPS 2024):

    q_ij = exp(-V (j - i) / 2)   i != j in {0, 1, 2}
    q_ij = b                     i != j in {3, 4, 5}
    q_{i,i+3} = q_{i+3,i} = r    i in {0, 1, 2},     all other rates 0,

true (V, r, b) = (1, 1, 1). Each data set is 300 paths started from the
stationary distribution and observed at 100 evenly spaced times in [0, 1]; FIM's
zero-shot estimate averaged over 50 such data sets is (1.130, 0.982, 1.044).

We fit (a) the free generator with the 18 ratchet rates by EM (the 12 other
entries are structural zeros and stay zero), then derive (V, r, b):

* r = mean of the six switching rates q_{i,i+3}, q_{i+3,i};
* b = mean of the six rates within {3, 4, 5};
* V = least-squares slope of log q_ij = -V (j - i) / 2 over the six rates within
  {0, 1, 2}: V = -2 sum (j - i) log q_ij / sum (j - i)^2 (sum (j - i)^2 = 12),

which are the natural moment/least-squares projections of the 18 free rates
onto the 3-parameter family (each is exact when the rates follow the model);
and (b) the structured 3-parameter model by maximum likelihood with standard
errors. Then again with 5% of the labels replaced by uniformly random states,
fitted with the hidden-MJP EM and a learned replacement rate (the structured MLE
then uses the noise model fitted by EM).

Run ``python examples/flashing_ratchet.py`` (full size, a few minutes on two
cores) or ``--small`` (what the test suite runs).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hmm.markov_jump import (
    MarkovJumpProcess,
    MJPParams,
    NoisyLabels,
    fit_structured,
    flashing_ratchet_rates,
    stationary_distribution,
)

FIM = np.array([1.130, 0.982, 1.044])
TRUE = np.array([1.0, 1.0, 1.0])
NAMES = ("V", "r", "b")


def ratchet_generator(V: float, r: float, b: float) -> np.ndarray:
    R = np.asarray(flashing_ratchet_rates(np.array([V, r, b])), dtype=np.float64)
    np.fill_diagonal(R, 0.0)
    return R - np.diag(R.sum(axis=1))


def derive_vrb(Q: np.ndarray) -> np.ndarray:
    """(V, r, b) from a free 6-state generator (see the module docstring)."""
    num = den = 0.0
    for i in range(3):
        for j in range(3):
            if i != j:
                num += (j - i) * np.log(Q[i, j])
                den += (j - i) ** 2
    V = -2.0 * num / den
    r = np.mean([Q[i, i + 3] for i in range(3)] + [Q[i + 3, i] for i in range(3)])
    b = np.mean([Q[i, j] for i in range(3, 6) for j in range(3, 6) if i != j])
    return np.array([V, r, b])


def run(n_datasets: int, n_paths: int, n_times: int = 100, noise: float = 0.0, seed: int = 0, progress=False):
    Q_true = ratchet_generator(*TRUE)
    pi = stationary_distribution(Q_true)
    observation = NoisyLabels.uniform_replacement(6, noise) if noise > 0 else None
    truth = MarkovJumpProcess(Q_true, pi, observation)
    grid = np.linspace(0.0, 1.0, n_times)
    # EM starts from the ratchet's sparsity pattern with every allowed rate 0.5.
    start_Q = ratchet_generator(0.0, 0.5, 0.5)
    start_obs = NoisyLabels.uniform_replacement(6, 0.10, learn="symmetric") if noise > 0 else None
    start = MJPParams(start_Q, np.full(6, 1 / 6), start_obs)
    rng = np.random.default_rng(seed)
    em_est, mle_est, mle_se, eps_est, iters = [], [], [], [], []
    for _ in range(n_datasets):
        grids = [grid] * n_paths
        _, y = truth.sample(times=grids, rng=rng)
        fit = MarkovJumpProcess(params=start).fit(y, times=grids, progress=progress)
        em_est.append(derive_vrb(np.asarray(fit.params.Q)))
        iters.append(fit.n_iter)
        obs = fit.params.observation
        if noise > 0:
            eps_est.append(obs.replacement_rate)
        res = fit_structured(
            flashing_ratchet_rates,
            np.array([0.5, 0.5, 0.5]),
            y,
            grids,
            observation=obs,
            bounds=[(-10.0, 10.0), (1e-6, None), (1e-6, None)],
        )
        mle_est.append(res.theta)
        mle_se.append(res.std_errors)
    out = {
        "em": np.array(em_est),
        "mle": np.array(mle_est),
        "mle_se": np.array(mle_se),
        "em_iters": np.array(iters),
    }
    if noise > 0:
        out["eps"] = np.array(eps_est)
    return out


def summarise(label: str, est: np.ndarray) -> dict:
    mean, sd = est.mean(axis=0), est.std(axis=0, ddof=1) if len(est) > 1 else np.zeros(3)
    rmse = np.sqrt(((est - TRUE) ** 2).mean(axis=0))
    row = "  ".join(f"{n}={m:.3f}+-{s:.3f}" for n, m, s in zip(NAMES, mean, sd))
    closer = np.abs(mean - TRUE) < np.abs(FIM - TRUE)
    print(f"{label:<28s} {row}   |bias| < FIM's: {closer.tolist()}   rmse={np.round(rmse, 3).tolist()}")
    return {"mean": mean.tolist(), "sd": sd.tolist(), "rmse": rmse.tolist(), "closer_than_fim": closer.tolist()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", type=int, default=50)
    ap.add_argument("--paths", type=int, default=300)
    ap.add_argument("--small", action="store_true", help="3 data sets of 60 paths (a quick check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = ap.parse_args(argv)
    if args.small:
        args.datasets, args.paths = 3, 60
    print(
        f"flashing ratchet: {args.datasets} data sets x {args.paths} paths x 100 times in [0, 1]; truth (V, r, b) = (1, 1, 1)"
    )
    print(f"{'FIM-MJP (published)':<28s} " + "  ".join(f"{n}={v:.3f}" for n, v in zip(NAMES, FIM)))
    summary = {"datasets": args.datasets, "paths": args.paths}
    t0 = time.perf_counter()
    clean = run(args.datasets, args.paths, seed=args.seed)
    summary["clean_em"] = summarise("EM, free 18 rates", clean["em"])
    summary["clean_mle"] = summarise("MLE, structured (V, r, b)", clean["mle"])
    print(
        f"{'':<28s} mean MLE standard error: {np.round(clean['mle_se'].mean(axis=0), 3).tolist()}; "
        f"mean EM iterations {clean['em_iters'].mean():.0f}"
    )
    noisy = run(args.datasets, args.paths, noise=0.05, seed=args.seed + 1)
    print("with 5% of labels replaced by uniformly random states:")
    summary["noisy_em"] = summarise("hidden-MJP EM, free rates", noisy["em"])
    summary["noisy_mle"] = summarise("MLE, structured, EM noise", noisy["mle"])
    ratio = np.array(summary["noisy_em"]["rmse"]) / np.array(summary["clean_em"]["rmse"])
    print(
        f"{'':<28s} learned replacement rate {noisy['eps'].mean():.4f}+-{noisy['eps'].std():.4f} (true 0.05); "
        f"noisy/clean EM rmse = {np.round(ratio, 2).tolist()} (target <= 2)"
    )
    summary["noisy_over_clean_rmse"] = ratio.tolist()
    summary["eps_mean"] = float(noisy["eps"].mean())
    summary["seconds"] = time.perf_counter() - t0
    print(f"total time {summary['seconds']:.1f} s")
    if args.json:
        print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
