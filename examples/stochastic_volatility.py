"""Stochastic volatility: particle filtering and PaRIS smoothing of a user-defined model.

    x_0 ~ N(mu, sigma^2 / (1 - phi^2)),  x_t = mu + phi (x_{t-1} - mu) + sigma eps_t,  y_t = exp(x_t / 2) eta_t

The model (statespace/stochastic_volatility.py) is written against the shared interface only; the
bootstrap filter and PaRIS come for free. The script simulates returns with a gap of missing
observations, runs the filter (log-likelihood, ESS) and PaRIS with the "smoothed marginals"
functional (every E[x_t | y_{0:T-1}] and E[x_t^2 | y_{0:T-1}] in one online pass), checks PaRIS's
accept-reject backward sampling against the exact O(N^2) backward kernel on the additive functional
sum_t x_t^2, and plots filtered and smoothed volatility exp(x_t / 2) with 95% bands, plus the ESS.

    python examples/stochastic_volatility.py            # T = 500, N = 1000, writes sv_example.png
    python examples/stochastic_volatility.py --small    # a few seconds (what the test suite runs)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import smc
from smc.plotting import plot_ess, plot_state_bands
from statespace import StochasticVolatility


def run(T: int, N: int, seed: int = 0, out: str | None = "sv_example.png", verbose: bool = True) -> dict:
    model = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    x, y = model.sample(T, rng=seed)
    gap = slice(T // 2, T // 2 + max(1, T // 20))
    y[gap] = np.nan  # a gap: the filter predicts through it, the smoother bridges it

    t0 = time.perf_counter()
    filt = smc.bootstrap_filter(model, y, N, rng=seed + 1)
    t1 = time.perf_counter()
    fun = smc.smoothed_marginals_functional(T, model.state_dim)
    smooth = smc.paris_smoother(model, y, fun, N, n_backward=2, rng=seed + 2)
    t2 = time.perf_counter()
    sm_mean, sm_var = smc.split_marginals(smooth.estimate, T, model.state_dim)
    # the same sum_t x_t^2 by the exact O(N^2) backward kernel: PaRIS's reference
    total_sq_paris = float(np.sum(sm_var[:, 0] + sm_mean[:, 0] ** 2))
    exact = smc.paris_smoother(model, y, fun, N, rng=seed + 3, backward="exact")
    ex_mean, ex_var = smc.split_marginals(exact.estimate, T, model.state_dim)
    total_sq_exact = float(np.sum(ex_var[:, 0] + ex_mean[:, 0] ** 2))

    filt_sd = np.sqrt(filt.filtered_covs[:, 0, 0])
    sm_sd = np.sqrt(sm_var[:, 0])
    summary = {
        "log_likelihood": filt.log_likelihood,
        "mean_ess_fraction": float(filt.ess.mean() / N),
        "resampling_rate": float(filt.resampled.mean()),
        "filter_rmse": float(np.sqrt(np.mean((filt.filtered_means[:, 0] - x[:, 0]) ** 2))),
        "smoother_rmse": float(np.sqrt(np.mean((sm_mean[:, 0] - x[:, 0]) ** 2))),
        "smoother_coverage_95": float(np.mean(np.abs(sm_mean[:, 0] - x[:, 0]) < 1.96 * sm_sd)),
        "sum_x2_paris": total_sq_paris,
        "sum_x2_exact_backward": total_sq_exact,
        "fallback_rate": smooth.fallback_rate,
        "filter_s": t1 - t0,
        "paris_s": t2 - t1,
    }
    if verbose:
        for k, v in summary.items():
            print(f"{k:>24s}: {v:.4g}")

    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
        vol = lambda v: np.exp(v / 2)  # noqa: E731 - monotone map from log-variance to volatility
        plot_state_bands(
            filt.filtered_means[:, 0], filt_sd, ax=axes[0], label="filtered", color="C0", truth=x[:, 0], transform=vol
        )
        axes[0].set_ylabel("volatility exp(x/2)")
        plot_state_bands(
            sm_mean[:, 0], sm_sd, ax=axes[1], label="smoothed (PaRIS)", color="C2", truth=x[:, 0], transform=vol
        )
        axes[1].set_ylabel("volatility exp(x/2)")
        for ax in axes[:2]:
            ax.axvspan(gap.start, gap.stop - 1, color="grey", alpha=0.15)
        plot_ess(filt, n_particles=N, ax=axes[2])
        axes[0].set_title(f"Stochastic volatility, T={T}, N={N} (shaded: missing observations)")
        fig.tight_layout()
        fig.savefig(out, dpi=110)
        plt.close(fig)
        if verbose:
            print(f"figure written to {out}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="T=100, N=200 (fast; used by the tests)")
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--N", type=int, default=1000)
    ap.add_argument("--out", default="sv_example.png")
    args = ap.parse_args()
    T, N = (100, 200) if args.small else (args.T, args.N)
    run(T, N, out=args.out)


if __name__ == "__main__":
    main()
