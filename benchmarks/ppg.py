"""Benchmark: PPG (Parisian particle Gibbs) against PaRIS, parallel chains, and SV learning wall time.

Cases (one JSON line each, GUIDE section 3):

* ``ppg_iteration``: one PPG iteration (conditional PaRIS pass + path draw, ``smc.ppg_step``)
  against one PaRIS pass of ``smc.paris_smoother`` at the same N and K = 2, on the
  stochastic-volatility model (T = 1000, its sufficient statistics as the functional);
  ``speedup = PaRIS time / PPG time`` (the target is >= 1/1.5).
* ``ppg_chains``: ``ppg_smoother`` with 1, 2, 4 chains in threads; ``speedup`` is the
  throughput gain over one chain (ideal: min(chains, cores)).
* ``ppg_particle_steps``: particle-steps per second of PPG (N x T per iteration).
* ``ppg_vs_paris_accuracy``: particle-steps each method needs to estimate the smoothed
  expected sufficient statistics sum_t x_t x_{t-1} and sum_t x_{t-1}^2 of a scalar
  linear-Gaussian model (T = 500, exact E-step as the truth) to a root-mean-square relative
  error below 2 %: PaRIS over N, PPG at N = 16, 32 over the number of iterations k (burn-in k/4).
* ``ppg_vs_paris_learning``: SAEM on a scalar linear-Gaussian model (T = 500) with PPG at
  N = 16 against PaRIS at N = 16 and N = 64: relative RMSE of (F, Q, R) to the exact MLE
  (Kalman EM) and the particle-steps spent.
* ``sv_learning``: wall time and estimates of particle EM, score ascent and Markov score
  climbing (PPG / CSMC, N = 16) on SV with T = 2000.
* ``ppg_cold``: import + compilation + first PPG iteration in a fresh process.

    python benchmarks/ppg.py            # all cases
    python benchmarks/ppg.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

# benchmarks/smc.py would shadow the smc package: drop this script's folder from the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def best_of(fn, repeats):
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def emit(**kw):
    print(json.dumps({k: (round(v, 6) if isinstance(v, float) else v) for k, v in kw.items()}), flush=True)


def bench_iteration(quick):
    import smc
    from smc.ppg import ppg_step
    from statespace import StochasticVolatility

    sv = StochasticVolatility(-1.0, 0.95, 0.3)
    T = 1000
    _, y = sv.sample(T, rng=0)
    fun = sv.sufficient_statistics()
    k, kp = sv.kernels(), sv.kernel_params()
    rng = np.random.default_rng(1)
    for N in [64, 256] if quick else [64, 256, 1024]:
        ref = ppg_step(k, kp, y, None, fun, n_particles=N, rng=rng)[1]
        smc.paris_smoother(sv, y, fun, n_particles=N, n_backward=2, rng=rng)
        holder = {"ref": ref}

        def ppg():
            holder["ref"] = ppg_step(k, kp, y, holder["ref"], fun, n_particles=N, n_backward=2, rng=rng)[1]

        reps = 5 if N <= 256 else 3
        t_ppg = best_of(ppg, reps)
        t_paris = best_of(lambda: smc.paris_smoother(sv, y, fun, n_particles=N, n_backward=2, rng=rng), reps)
        t_uncond = best_of(lambda: ppg_step(k, kp, y, None, fun, n_particles=N, rng=rng), reps)
        emit(
            bench="ppg_iteration",
            case=f"sv_T{T}_N{N}_K2",
            ours_s=t_ppg,
            peer="PaRIS",
            peer_s=t_paris,
            speedup=t_paris / t_ppg,
            ours_unconditional_pass_s=t_uncond,
        )
        emit(bench="ppg_particle_steps", case=f"sv_T{T}_N{N}_K2", ours_s=t_ppg, particle_steps_per_s=N * T / t_ppg)


def bench_chains(quick):
    from smc import ppg_smoother
    from statespace import StochasticVolatility

    sv = StochasticVolatility(-1.0, 0.95, 0.3)
    _, y = sv.sample(1000, rng=0)
    N, iters = 256, (4 if quick else 10)
    ppg_smoother(sv, y, n_particles=N, n_iter=1, n_chains=2, rng=0, progress=False)
    t1 = best_of(lambda: ppg_smoother(sv, y, n_particles=N, n_iter=iters, rng=0, progress=False), 2)
    for c in (1, 2, 4):
        tc = best_of(lambda: ppg_smoother(sv, y, n_particles=N, n_iter=iters, n_chains=c, rng=0, progress=False), 2)
        emit(
            bench="ppg_chains",
            case=f"sv_T1000_N{N}_chains{c}",
            ours_s=tc,
            peer="1 chain",
            peer_s=t1,
            speedup=c * t1 / tc,
            cores=os.cpu_count(),
        )


def bench_accuracy(quick):
    from smc.ppg import ppg_smoother, ppg_step
    from statespace import LinearGaussianSSM
    from statespace.linear_gaussian.em import e_step
    from statespace.linear_gaussian.kernels import stats_layout

    lg = LinearGaussianSSM(m0=np.zeros(1), P0=np.eye(1), F=[[0.9]], Q=[[0.5]], H=[[1.0]], R=[[1.0]])
    T = 500
    _, y = lg.sample(T, rng=0)
    exact, _ = e_step(lg.params, [y], [None])
    fun = lg.sufficient_statistics()
    k, kp = lg.kernels(), lg.kernel_params()
    lay = stats_layout(1, 1, 0)
    keep = [lay.xxp, lay.xpxp]  # sum_t E[x_t x_{t-1} | y] and sum_t E[x_{t-1}^2 | y]
    reps = 10 if quick else 20
    target = 0.02

    def rel_rmse(ests):
        e = (np.asarray(ests)[:, keep] - exact[keep]) / np.abs(exact[keep])
        return float(np.sqrt(np.mean(e**2, axis=0)).max())

    rng = np.random.default_rng(2)
    paris = {}
    for N in [32, 128, 512] if quick else [32, 64, 128, 256, 512, 1024]:
        paris[N * T] = rel_rmse([ppg_step(k, kp, y, None, fun, n_particles=N, rng=rng)[0] for _ in range(reps)])
    ppg = {}
    for N, it in [(32, 4), (32, 16)] if quick else [(16, 4), (16, 8), (16, 16), (32, 4), (32, 8), (32, 16), (32, 32)]:
        ests = [
            ppg_smoother(
                lg, y, fun, n_particles=N, n_iter=it, burn_in=it // 4, rng=1000 * it + r, progress=False
            ).estimate
            for r in range(reps)
        ]
        ppg[N * T * (it + 1)] = min(rel_rmse(ests), ppg.get(N * T * (it + 1), np.inf))

    def needed(curve):
        ok = [s for s, err in sorted(curve.items()) if err <= target]
        return ok[0] if ok else None

    emit(
        bench="ppg_vs_paris_accuracy",
        case=f"lg1d_T{T}_relrmse{target}",
        ours_particle_steps=needed(ppg),
        peer="PaRIS",
        peer_particle_steps=needed(paris),
        ppg_curve={str(k): round(v, 5) for k, v in ppg.items()},
        paris_curve={str(k): round(v, 5) for k, v in paris.items()},
    )


def bench_learning_accuracy(quick):
    from smc.learning import particle_em
    from statespace import LinearGaussianSSM

    def lg(F, Q, R):
        return LinearGaussianSSM(
            m0=np.zeros(1), P0=np.eye(1), F=[[F]], Q=[[Q]], H=[[1.0]], R=[[R]], frozen=("m0", "P0", "H")
        )

    T = 500
    _, y = lg(0.8, 0.5, 1.0).sample(T, rng=0)
    exact = lg(0.5, 1.0, 2.0)
    exact.fit(y, max_iter=3000, tol=1e-12, progress=False)
    mle = np.array([exact.params.F[0, 0], exact.params.Q[0, 0], exact.params.R[0, 0]])
    reps, n_iter = (2, 100) if quick else (4, 200)
    for smoother, N in (("ppg", 16), ("paris", 16), ("paris", 64)):
        errs, steps = [], 0
        for r in range(reps):
            res = particle_em(
                lg(0.5, 1.0, 2.0), y, n_iter=n_iter, n_particles=N, smoother=smoother, rng=r, progress=False
            )
            p = res.params
            errs.append((np.array([p.F[0, 0], p.Q[0, 0], p.R[0, 0]]) - mle) / np.abs(mle))
            steps = int(res.particle_steps[-1])
        emit(
            bench="ppg_vs_paris_learning",
            case=f"lg1d_T{T}_saem{n_iter}_{smoother}_N{N}",
            particle_steps=steps,
            rel_rmse_to_mle=float(np.sqrt(np.mean(np.square(errs)))),
        )


def bench_learning(quick):
    from smc.learning import particle_em, score_ascent, score_climbing
    from statespace import StochasticVolatility

    truth = StochasticVolatility(-1.0, 0.95, 0.3)
    T = 1000 if quick else 2000
    _, y = truth.sample(T, rng=1)
    start = StochasticVolatility(-0.5, 0.8, 0.5)
    runs = {
        "particle_em_ppg": lambda yy, n: particle_em(start, yy, n_iter=n, n_particles=16, rng=2, progress=False),
        "particle_em_paris": lambda yy, n: particle_em(
            start, yy, n_iter=n, n_particles=16, smoother="paris", rng=2, progress=False
        ),
        "score_ascent_ppg": lambda yy, n: score_ascent(start, yy, n_iter=n, n_particles=16, rng=2, progress=False),
        "score_climbing_csmc": lambda yy, n: score_climbing(
            start, yy, n_iter=2 * n, n_particles=16, rng=2, progress=False
        ),
    }
    n_iter = 100 if quick else 250
    for name, fn in runs.items():
        fn(y[:50], 2)  # compile (score functional, JAX gradient) outside the timing
        t0 = time.perf_counter()
        res = fn(y, n_iter)
        dt = time.perf_counter() - t0
        p = res.params
        emit(
            bench="sv_learning",
            case=f"{name}_T{T}_N16_iter{res.n_iter}",
            ours_s=dt,
            particle_steps=int(res.particle_steps[-1]),
            particle_steps_per_s=float(res.particle_steps[-1] / dt),
            mu=p.mu,
            phi=p.phi,
            sigma=p.sigma,
        )


def bench_cold():
    code = (
        "import time; t0=time.perf_counter(); import smc; from statespace import StochasticVolatility; "
        "sv=StochasticVolatility(); x,y=sv.sample(100,rng=0); "
        "smc.ppg_smoother(sv,y,n_particles=32,n_iter=1,rng=0,progress=False); print(time.perf_counter()-t0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    emit(bench="ppg_cold", case="sv_T100_N32_first_iteration", ours_s=float(out.stdout.strip().splitlines()[-1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument(
        "--only", choices=["iteration", "chains", "accuracy", "learning_accuracy", "learning", "cold"], default=None
    )
    args = ap.parse_args()
    cases = {
        "cold": bench_cold,
        "iteration": lambda: bench_iteration(args.quick),
        "chains": lambda: bench_chains(args.quick),
        "accuracy": lambda: bench_accuracy(args.quick),
        "learning_accuracy": lambda: bench_learning_accuracy(args.quick),
        "learning": lambda: bench_learning(args.quick),
    }
    for name, fn in cases.items():
        if args.only in (None, name):
            fn()


if __name__ == "__main__":
    main()
