"""Grid benchmark: Kalman filter, RTS smoother and EM against dynamax, over dimensions and batch shapes.

Problems: a random stable linear-Gaussian model per (d, m), seeded: ``F`` a random
orthogonal matrix times 0.95 (spectral radius 0.95), ``Q = 0.1 I``, ``H`` standard
normal entries over ``sqrt(d)``, ``R = 0.5 I``, ``m0 = 0``, ``P0 = I``.

* ``kalman_grid_filter`` / ``kalman_grid_smoother``: one sequence of ``T`` steps at
  every ``d in {2, 4, 8, 16}`` x ``m in {1, 3, 8}``. Ours: ``model.filter`` /
  ``model.smooth``; dynamax: ``lgssm_filter`` / ``lgssm_smoother`` under
  ``jax.jit`` with ``jax_enable_x64``. Each line carries the flop count per step
  of the textbook recursion (filter ``4d^3 + 4d^2 m + 4 d m^2 + m^3/3``; the
  smoother adds ``8 d^3 + d^3/3``) and the rate reached by both sides.
* ``kalman_grid_em``: ``EM_ITERS`` EM iterations from the same start (true
  ``F, H``, ``Q = R = I``) on the same sequence; ours ``model.fit``, dynamax
  ``fit_em`` (which also learns the dynamics/emission biases).
* ``kalman_grid_batch_filter`` / ``..._smoother``: ``B in {1, 100, 2000}``
  sequences of ``T in {100, 1000, 100000}`` steps at d = 4, m = 3. Ours: the list
  given to ``model.filter`` / ``model.smooth``; dynamax: ``jax.vmap`` over the
  stacked batch (lengths are equal, so no padding is needed). Cells with
  ``B * T`` above ``BATCH_CAP`` are printed as skipped (the smoothed covariances
  alone would take gigabytes on each side).
* ``kalman_grid_peak``: the machine's float64 peak estimated from a large numpy
  matrix product on 1 and 2 threads (OpenBLAS, with the machine's
  ``OPENBLAS_CORETYPE`` override removed for that measurement).

Targets (issue 17): filter, smoother and EM at least 10x dynamax for every d <= 8,
at least 3x at d = 16. Ours and dynamax are timed interleaved, best of several
warm rounds (``_gridlib.interleaved``).

Run: ``python benchmarks/kalman_grid.py`` (``--quick``: a tiny subset for smoke tests;
``--no-peer``: ours only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import _gridlib as g  # first: fixes sys.path and BLAS threads
import numpy as np

EM_ITERS = 5
BATCH_CAP = 2_000_000


def problem(d: int, m: int, seed: int = 0):
    from statespace import LinearGaussianSSM

    rng = np.random.default_rng(1000 * d + m + seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return LinearGaussianSSM(
        m0=np.zeros(d),
        P0=np.eye(d),
        F=0.95 * q,
        Q=0.1 * np.eye(d),
        H=rng.standard_normal((m, d)) / np.sqrt(d),
        R=0.5 * np.eye(m),
    )


def filter_flops(d: int, m: int) -> float:
    return 4 * d**3 + 4 * d**2 * m + 4 * d * m**2 + m**3 / 3


def smoother_flops(d: int, m: int) -> float:
    return filter_flops(d, m) + 8 * d**3 + d**3 / 3


def peak_flops(quick: bool) -> dict:
    """float64 GFLOP/s of an n x n numpy matmul on 1 and 2 threads, in a fresh process without the OpenBLAS override."""
    n = 600 if quick else 3000
    code = f"""
import json, time, numpy as np
from threadpoolctl import threadpool_limits, threadpool_info
a = np.random.default_rng(0).standard_normal(({n}, {n})); b = a.T.copy()
out = {{"kernel": [i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"]}}
for th in (1, 2):
    with threadpool_limits(th):
        a @ b
        best = min((lambda t0: (a @ b, time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(5))
    out[f"gflops_{{th}}"] = 2 * {n}**3 / best / 1e9
print(json.dumps(out))
"""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    }
    try:
        r = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True
        )
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, OSError, ValueError) as exc:
        return {"error": str(exc)[:200]}


class Dynamax:
    """dynamax's jitted Kalman filter/smoother/EM on a given model (None when dynamax is missing)."""

    def __init__(self, model):
        import jax
        import jax.numpy as jnp
        from dynamax.linear_gaussian_ssm import LinearGaussianSSM as DLGSSM
        from dynamax.linear_gaussian_ssm import lgssm_filter, lgssm_smoother

        self.jax, self.jnp = jax, jnp
        p = model.params
        self.dmodel = DLGSSM(p.state_dim, p.obs_dim)
        self.params, self.props = self._params(p)
        self.filter = jax.jit(lgssm_filter)
        self.smoother = jax.jit(lgssm_smoother)
        self.vfilter = jax.jit(jax.vmap(lgssm_filter, in_axes=(None, 0)))
        self.vsmoother = jax.jit(jax.vmap(lgssm_smoother, in_axes=(None, 0)))

    def _params(self, p):
        jnp = self.jnp
        return self.dmodel.initialize(
            initial_mean=jnp.array(p.m0),
            initial_covariance=jnp.array(p.P0),
            dynamics_weights=jnp.array(p.F),
            dynamics_covariance=jnp.array(p.Q),
            emission_weights=jnp.array(p.H),
            emission_covariance=jnp.array(p.R),
        )

    def run(self, fn, y):
        return lambda: self.jax.block_until_ready(fn(self.params, y))

    def em(self, start, y, iters):
        """``iters`` EM iterations as dynamax's ``fit_em`` runs them, jitted once.

        ``fit_em`` builds and jits its ``lax.scan`` of E/M steps anew on every
        call, so timing it would time compilation; this is the same scan over
        ``e_step``/``m_step``, compiled before timing.
        """
        from functools import partial

        from dynamax.utils.utils import ensure_array_has_batch_dim

        jax, dm = self.jax, self.dmodel
        sp, props = self._params(start)
        batch = ensure_array_has_batch_dim(y, dm.emission_shape)

        def em_step(carry, _):
            params, mss = carry
            stats, lls = jax.vmap(partial(dm.e_step, params))(batch, None)
            lp = dm.log_prior(params) + lls.sum()
            params, mss = dm.m_step(params, props, stats, mss)
            return (params, mss), lp

        run = jax.jit(lambda carry: jax.lax.scan(em_step, carry, xs=None, length=iters))
        carry = (sp, dm.initialize_m_step_state(sp, props))
        return lambda: jax.block_until_ready(run(carry)[1])


def dims_grid(args, peer, emit):
    peer_name = f"dynamax {g.version('dynamax')}"
    dims = [(3, 2)] if args.quick else [(d, m) for d in (2, 4, 8, 16) for m in (1, 3, 8)]
    T = 200 if args.quick else args.T
    for d, m in dims:
        model = problem(d, m)
        _, y = model.sample(T, rng=1)
        case = f"d{d}_m{m}_T{T}"
        target = 10.0 if d <= 8 else 3.0
        dyn = Dynamax(model) if peer else None
        yj = None if dyn is None else dyn.jnp.asarray(y)
        for bench, ours_fn, flops in (
            ("kalman_grid_filter", model.filter, filter_flops(d, m)),
            ("kalman_grid_smoother", model.smooth, smoother_flops(d, m)),
        ):
            fns = {"ours": lambda f=ours_fn, y=y: f(y)}
            if dyn is not None:
                fns["peer"] = dyn.run(dyn.filter if bench.endswith("filter") else dyn.smoother, yj)
            t = g.interleaved(fns, rounds=args.rounds, budget_s=args.budget)
            extra = {"flops_per_step": flops, "ours_gflops": round(flops * T / t["ours"] / 1e9, 3)}
            if dyn is None:
                emit({"bench": bench, "case": case, "ours_s": g.sig(t["ours"]), **extra, "peer": "skipped: --no-peer"})
            else:
                field = "filtered_means" if bench.endswith("filter") else "smoothed_means"
                theirs = (dyn.filter if bench.endswith("filter") else dyn.smoother)(dyn.params, yj)
                extra["max_abs_diff_means"] = float(
                    np.max(np.abs(getattr(ours_fn(y), field) - np.asarray(getattr(theirs, field))))
                )
                extra["peer_gflops"] = round(flops * T / t["peer"] / 1e9, 3)
                emit(g.ratio_line(bench, case, t["ours"], peer_name, t["peer"], target, **extra))
        em_case(args, "kalman_grid_em", case, model, y, dyn, yj, peer_name, target, emit)


def em_case(args, bench, case, model, y, dyn, yj, peer_name, target, emit):
    """EM from the same start on both sides (true F, H; unit Q, R), a fixed number of iterations."""
    d, m = model.params.state_dim, model.params.obs_dim
    start = model.params.replace(Q=np.eye(d), R=np.eye(m))
    fit_model = type(model)(start)
    ours_res = {}

    def ours_em():
        fit_model.params = start
        ours_res["r"] = fit_model.fit(
            y, max_iter=args.em_iters, tol=0.0, progress=False, **g.fit_start_kw(fit_model.fit, start)
        )

    fns = {"ours": ours_em}
    if dyn is not None:
        fns["peer"] = dyn.em(start, yj, args.em_iters)
    t = g.interleaved(fns, rounds=3, block=1, budget_s=args.budget)
    extra = {"iterations": args.em_iters, "ours_iterations_run": int(ours_res["r"].n_iter)}
    if dyn is None:
        emit({"bench": bench, "case": case, "ours_s": g.sig(t["ours"]), **extra})
    else:
        emit(
            g.ratio_line(
                bench,
                case,
                t["ours"],
                peer_name,
                t["peer"],
                target,
                **extra,
                note="dynamax: its fit_em scan jitted once (fit_em itself re-jits per call); it also learns the biases",
            )
        )


def batch_grid(args, peer, emit):
    peer_name = f"dynamax {g.version('dynamax')}" if peer else None
    d, m = 4, 3
    model = problem(d, m)
    dyn = Dynamax(model) if peer else None
    shapes = [(3, 50)] if args.quick else [(B, T) for B in (1, 100, 2000) for T in (100, 1000, 100_000)]
    rng = np.random.default_rng(7)
    for B, T in shapes:
        case = f"d{d}_m{m}_B{B}_T{T}"
        if B * T > BATCH_CAP:
            for bench in ("kalman_grid_batch_filter", "kalman_grid_batch_smoother", "kalman_grid_batch_em"):
                emit(
                    {
                        "bench": bench,
                        "case": case,
                        "skipped": f"B*T = {B * T:.0e} > cap {BATCH_CAP:.0e}: the filtered and "
                        f"smoothed covariances alone take {3 * B * T * d * d * 8 / 1e9:.1f} GB per side on a 24 GB machine "
                        "shared by both sides, and the whole grid must fit in 25 minutes",
                    }
                )
            continue
        ys = [model.sample(T, rng=rng)[1] for _ in range(B)]
        Y = None if dyn is None else dyn.jnp.asarray(np.stack(ys))
        for bench, ours_fn in (
            ("kalman_grid_batch_filter", model.filter),
            ("kalman_grid_batch_smoother", model.smooth),
        ):
            ours_arg = ys if B > 1 else ys[0]
            fns = {"ours": lambda f=ours_fn, a=ours_arg: f(a)}
            if dyn is not None:
                if B > 1:
                    fns["peer"] = dyn.run(dyn.vfilter if bench.endswith("filter") else dyn.vsmoother, Y)
                else:
                    fns["peer"] = dyn.run(dyn.filter if bench.endswith("filter") else dyn.smoother, Y[0])
            t = g.interleaved(fns, rounds=args.rounds, budget_s=args.budget)
            if dyn is None:
                emit({"bench": bench, "case": case, "ours_s": g.sig(t["ours"]), "peer": "skipped: --no-peer"})
            else:
                emit(
                    g.ratio_line(
                        bench,
                        case,
                        t["ours"],
                        peer_name,
                        t["peer"],
                        10.0,
                        peer_layout="vmap over the stacked batch" if B > 1 else "one sequence",
                    )
                )
        peer_y = None if dyn is None else (Y if B > 1 else Y[0])
        em_case(args, "kalman_grid_batch_em", case, model, ys if B > 1 else ys[0], dyn, peer_y, peer_name, 10.0, emit)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny subset (smoke test)")
    ap.add_argument("--no-peer", action="store_true", help="ours only")
    ap.add_argument("--T", type=int, default=10_000, help="length of the single-sequence cases")
    ap.add_argument("--em-iters", type=int, default=EM_ITERS)
    ap.add_argument("--rounds", type=int, default=5, help="most interleaved rounds per case")
    ap.add_argument("--budget", type=float, default=4.0, help="seconds of timed rounds per case (at least 2 rounds)")
    ap.add_argument("--only", choices=("dims", "batch"), help="one part of the grid")
    args = ap.parse_args(argv)
    if args.quick:
        args.em_iters, args.rounds, args.budget = 2, 2, 1.0
    peer = not args.no_peer and g.jax_x64() is not None
    g.emit(g.run_meta("kalman_grid", peer=f"dynamax {g.version('dynamax')}" if peer else None))
    g.emit({"bench": "kalman_grid_peak", "case": "numpy matmul float64, 1 and 2 threads", **peak_flops(args.quick)})
    if not peer and not args.no_peer:
        g.emit({"bench": "kalman_grid", "skipped_peer": "dynamax/jax not installed: ours only"})
    if args.only in (None, "dims"):
        dims_grid(args, peer, g.emit)
    if args.only in (None, "batch"):
        batch_grid(args, peer, g.emit)
    g.done("kalman_grid")


if __name__ == "__main__":
    main()
