"""Learn a stochastic volatility model by PPG-based particle learning and by Bayesian particle Gibbs.

    x_0 ~ N(mu, sigma^2 / (1 - phi^2)),  x_t = mu + phi (x_{t-1} - mu) + sigma eps_t,  y_t = exp(x_t / 2) eta_t

1. simulate T points from known parameters;
2. fit (mu, phi, sigma) by particle SAEM with PPG sufficient statistics, by score ascent
   (Fisher identity, PPG) and by Markov score climbing (conditional SMC, JAX gradients);
3. sample the posterior by Bayesian particle Gibbs (4 chains in parallel), summarise it with
   ArviZ (R-hat, ESS) and save trace, rank and learning-curve plots.

    python examples/learn_stochastic_volatility.py [--small] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="small sizes (a quick smoke run)")
    ap.add_argument("--out", default=None, help="directory for the plots (default: a temporary directory)")
    args = ap.parse_args(argv)

    import arviz as az
    import matplotlib.pyplot as plt

    from smc.learning import SVPrior, bayesian_particle_gibbs, particle_em, score_ascent, score_climbing
    from statespace import StochasticVolatility
    from statespace.diagnostics import learning_curve_plot, rank_plot, to_datatree, trace_plot

    T = 200 if args.small else 2000
    n_iter = 10 if args.small else 250
    n_gibbs = 60 if args.small else 2000
    out = args.out or tempfile.mkdtemp(prefix="sv_example_")
    os.makedirs(out, exist_ok=True)

    truth = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    _, y = truth.sample(T, rng=0)
    start = StochasticVolatility(mu=-0.5, phi=0.8, sigma=0.5)
    print(f"truth: {truth}")

    em = particle_em(start, y, n_iter=n_iter, n_particles=16, smoother="ppg", rng=1)
    sa = score_ascent(start, y, n_iter=n_iter, n_particles=16, smoother="ppg", rng=2)
    msc = score_climbing(start, y, n_iter=2 * n_iter, n_particles=16, kernel="csmc", rng=3)
    for name, res in (("particle SAEM (PPG)", em), ("score ascent (PPG)", sa), ("Markov score climbing", msc)):
        print(f"{name:24s} -> {res.model}   [{int(res.particle_steps[-1]):,} particle-steps]")

    post = bayesian_particle_gibbs(start, y, SVPrior(), n_iter=n_gibbs, n_particles=16, n_chains=4, rng=4)
    dt = to_datatree(post)
    summary = az.summary(dt)
    print(summary)

    fig, _ = learning_curve_plot(em, ["particle SAEM (PPG)"], truth={"mu": -1.0, "phi": 0.95, "sigma": 0.3})
    fig.savefig(os.path.join(out, "learning_curve.png"))
    plt.close(fig)
    for name, plot in (("trace", trace_plot), ("rank", rank_plot)):
        plot(dt).savefig(os.path.join(out, f"{name}.png"))
        plt.close("all")
    print(f"plots in {out}")
    return {"em": em, "score_ascent": sa, "score_climbing": msc, "posterior": post, "summary": summary, "out": out}


if __name__ == "__main__":
    main()
