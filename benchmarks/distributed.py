"""Scale-out benchmark: many-sequence EM as map-reduce on a Dask LocalCluster (issue 19).

    python benchmarks/distributed.py [--quick] [--scale 0.25] [--cmapss DIR [--cmapss-deep]]

Each timed case prints one JSON line.

* ``distributed_em``: EM iterations (fixed count, ``tol=0``, from the same start) of
  a 5-state 2-d Gaussian HMM on ``20,000`` sequences of ``T = 200`` and of a 2-d
  linear-Gaussian SSM on ``5,000`` sequences of ``T = 200``: in process, on a
  1-worker and on a 2-worker ``LocalCluster`` (one thread per worker process).
  Timed: one E-step over all the sequences (``EStep`` in process; on a cluster the
  shards and their hosts are placed first, then each call sends the parameters to
  every host, runs the shards where they live and sums their statistics on the
  client), best of
  ``ROUNDS`` calls taken in turn on the three sides (both clusters up at once), so
  that every side sees the same load from other jobs on the machine; the M-step is the same small closed form on the client either way.
  Reported: seconds per E-step, sequences per second, the 2-vs-1-worker speed-up
  and the 1-worker slowdown against in process, and the wall time of a whole
  2-iteration ``fit`` on each side (data validation and, on a cluster, sending the
  data to the workers included), whose log-likelihoods are checked equal to the
  in-process fit's to round-off.
* ``distributed_overhead``: seconds per E-step call on the 2-worker cluster for an
  E-step that does no work (``1, 2, 8, 64`` shards, held by one host per worker):
  the calls to the hosts, the round trip of the LGSSM problem's parameters and the
  client-side reduction, i.e. the per-iteration cost the engine adds whatever the model; and
  on an 8-worker cluster with ``1, 2, 4, 8`` shards (one host each), the cost
  each further worker adds to a round.
* ``distributed_cmapss`` (with ``--cmapss DIR``): wall time of ``examples/cmapss_rul.py``
  in process, with ``--workers 1`` and with ``--workers 2`` (each run starts its own
  cluster), for the example's ``--model arphmm`` defaults and for a smaller grid
  (:data:`CMAPSS_CASES`), and with ``--cmapss-deep`` for its default run (the deep
  candidates and their pool: about 20 minutes for the three runs on 2 cores), and whether
  the three ``predictions.csv`` are byte-identical. The three runs share the library's JAX
  compilation cache, which the in-process run (the first) fills and the cluster runs load
  from (``jax_cache: "warm"``; the very first run on a machine also compiles); with
  ``--cold-jax`` each run starts from an empty one (``jax_cache: "empty"``), as a first run does.

Every side runs with one compiled-code thread per process (``NUMBA_NUM_THREADS=1``,
``PJRT_NPROC=1`` for JAX's pools).
The machine's cores are shared with whatever else runs: the figures are what one
run measured, not a capability of the library.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# this file is named like the ``distributed`` package: keep its folder off the import path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != os.path.join(ROOT, "benchmarks")]

# one thread per worker process, and in process, so that workers are the only parallelism compared
for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "PJRT_NPROC"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

REPEATS = 2
ROUNDS = 5


def emit(**line) -> None:
    print(json.dumps(line), flush=True)


def hmm_problem(n, T, rng):
    from hmm import GaussianHMM
    from hmm.em import chain_e_step

    K = 5
    means = np.column_stack([np.linspace(-4, 4, K), np.cos(np.arange(K))])
    jumps = rng.random((n, T)) < 0.05
    x = (np.cumsum(jumps * rng.integers(1, K, (n, T)), axis=1) + rng.integers(0, K, (n, 1))) % K
    Y = means[x] + 0.8 * rng.standard_normal((n, T, 2))
    ys = list(Y)
    model = GaussianHMM(K, 2)
    model.fit(ys[: min(n, 200)], max_iter=2, progress=False, rng=0)
    start = model.params
    data = model._prepare(ys)
    estep = (chain_e_step, list(zip(data.seqs, data.inputs, data.log_pls)), (model.emission_model, start))
    return ys, lambda iters: GaussianHMM(K, 2).fit(ys, init=start, max_iter=iters, tol=0, progress=False), estep


def lgssm_problem(n, T, rng):
    from statespace.linear_gaussian import LinearGaussianSSM
    from statespace.linear_gaussian.data import prepare
    from statespace.linear_gaussian.em import shard_e_step

    truth = LinearGaussianSSM(
        F=[[0.9, 0.1], [-0.1, 0.9]], H=np.eye(2), Q=0.1 * np.eye(2), R=0.5 * np.eye(2), m0=np.zeros(2), P0=np.eye(2)
    )
    ys = [truth.sample(T, rng=rng)[1] for _ in range(n)]

    start = LinearGaussianSSM(F=0.5 * np.eye(2), H=np.eye(2), Q=np.eye(2), R=np.eye(2), m0=np.zeros(2), P0=np.eye(2))

    def fit(iters):
        return LinearGaussianSSM(start.params).fit(ys, max_iter=iters, tol=0, progress=False)

    seqs, us, _ = prepare(start.params, ys, None)
    return ys, fit, (shard_e_step, list(zip(seqs, us)), start.params)


def best_time(fn, repeats=REPEATS):
    fn()  # warm: compilation, workers' imports
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _noop(params, shard):
    return (0.0, np.zeros(4))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sequence counts")
    ap.add_argument("--cmapss", default=None, metavar="DIR", help="also time examples/cmapss_rul.py --workers 1 vs 2")
    ap.add_argument("--cmapss-deep", action="store_true", help="with --cmapss: also the example's default (deep) run")
    ap.add_argument("--cold-jax", action="store_true", help="with --cmapss: each run from an empty JAX cache")
    args = ap.parse_args(argv)
    from dask.distributed import Client, LocalCluster

    import statespace.distributed as ssd

    scale = 0.01 if args.quick else args.scale
    rng = np.random.default_rng(0)
    problems = {
        f"hmm_K5_d2_S{int(20000 * scale)}_T200": hmm_problem(int(20000 * scale), 200, rng),
        f"lgssm_d2_m2_S{int(5000 * scale)}_T200": lgssm_problem(int(5000 * scale), 200, rng),
    }
    timings = {case: {} for case in problems}
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as c1,
        Client(c1) as client1,
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as c2,
        Client(c2) as client2,
    ):
        backends = {"inprocess": None, "w1": client1, "w2": client2}

        def on(name):
            return ssd.use(backends[name]) if backends[name] is not None else contextlib.nullcontext()

        for case, (_, fit, (fn, items, params)) in problems.items():
            esteps = {}
            for name in backends:
                with on(name):
                    esteps[name] = ssd.EStep(fn, items)
                esteps[name](params)  # compiled, shards placed
            best = {name: np.inf for name in backends}
            for _ in range(ROUNDS):  # interleaved, so that every side sees the same load
                for name, estep in esteps.items():
                    with on(name):  # as inside a fit: the block also sets how the client sends messages
                        t = time.perf_counter()
                        estep(params)
                        best[name] = min(best[name], time.perf_counter() - t)
            for name, estep in esteps.items():
                estep.close()
                with on(name):
                    t = time.perf_counter()
                    res = fit(2)
                    timings[case][name] = (best[name], time.perf_counter() - t, res)
        noop_params = problems[f"lgssm_d2_m2_S{int(5000 * scale)}_T200"][2][2]  # a real model's parameters travel
        for n_shards in (1, 2, 8, 64):
            items = [(np.zeros((200, 2)),)] * 64
            with ssd.use(client2, n_shards=n_shards):
                est = ssd.EStep(_noop, items)
                est(noop_params)  # shards placed
                t, _ = best_time(lambda: [est(noop_params) for _ in range(20)], repeats=3)
            est.close()
            emit(bench="distributed_overhead", case=f"shards{n_shards}_workers2", per_iteration_s=round(t / 20, 5))
    # the per-worker cost of a round (one call per shard host), for docs/distributed.md's extrapolation
    with LocalCluster(n_workers=8, threads_per_worker=1, dashboard_address=None) as c8, Client(c8) as client8:
        for n_shards in (1, 2, 4, 8):
            with ssd.use(client8, n_shards=n_shards):
                est = ssd.EStep(_noop, [(np.zeros((200, 2)),)] * 64)
                est(noop_params)  # shards placed, one host per shard
                t, _ = best_time(lambda: [est(noop_params) for _ in range(20)], repeats=3)
            est.close()
            emit(bench="distributed_overhead", case=f"hosts{n_shards}_workers8", per_iteration_s=round(t / 20, 5))
    for case, (ys, _, _) in problems.items():
        t = timings[case]
        ref = t["inprocess"][2].log_likelihoods
        for k in ("w1", "w2"):
            np.testing.assert_allclose(t[k][2].log_likelihoods, ref, rtol=1e-9)
        per = {k: v[0] for k, v in t.items()}
        emit(
            bench="distributed_em",
            case=case,
            inprocess_estep_s=round(per["inprocess"], 4),
            workers1_estep_s=round(per["w1"], 4),
            workers2_estep_s=round(per["w2"], 4),
            workers2_seq_per_s=round(len(ys) / per["w2"]),
            speedup_2v1=round(per["w1"] / per["w2"], 2),
            slowdown_1w_vs_inprocess=round(per["w1"] / per["inprocess"] - 1.0, 3),
            fit2_wall_s={k: round(v[1], 2) for k, v in t.items()},
            same_loglik=True,
        )
    if args.cmapss:
        cmapss(args.cmapss, deep=args.cmapss_deep, cold_jax=args.cold_jax)


#: The example's runs: its ``--model arphmm`` defaults (2 candidates of K = 30 x 5 folds, every admissible
#: cut of each held-out engine) and, for continuity with earlier figures, a smaller grid of 3 cuts per engine.
CMAPSS_CASES = {
    "FD001_arphmm_every_cut": ["--model", "arphmm"],
    "FD001_grid4_folds5_cuts3": [
        "--grid",
        "5,1,120,phase_type;5,0,120,empirical;8,1,120,empirical;8,0,120,phase_type",
        "--folds",
        "5",
        "--cuts",
        "3",
    ],
}


#: The example's default run (``--model deep``): the classical and two S5-emission candidates, 5 folds each,
#: and the pool's three final fits.
CMAPSS_DEEP_CASE = {"FD001_deep_default": []}


def cmapss(data_dir, deep=False, cold_jax=False):
    for case, args in {**CMAPSS_CASES, **(CMAPSS_DEEP_CASE if deep else {})}.items():
        common = ["--data", data_dir, *args, "--no-progress", "--plots", "none"]
        out, wall = {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for n in (0, 1, 2):  # 0: in process, no cluster
                path = os.path.join(tmp, f"pred{n}.csv")
                env = dict(os.environ)
                if cold_jax:  # a directory of the user's choice, which the library leaves alone
                    env["JAX_COMPILATION_CACHE_DIR"] = os.path.join(tmp, f"jax{n}")
                t = time.perf_counter()
                subprocess.run(
                    [sys.executable, os.path.join(ROOT, "examples", "cmapss_rul.py"), *common, "--out", path]
                    + (["--workers", str(n)] if n else []),
                    check=True,
                    cwd=ROOT,
                    capture_output=True,
                    env=env,
                )
                wall[n] = time.perf_counter() - t
                out[n] = open(path, "rb").read()
        emit(
            bench="distributed_cmapss",
            case=case,
            jax_cache="empty" if cold_jax else "warm",
            in_process_s=round(wall[0], 1),
            workers1_s=round(wall[1], 1),
            workers2_s=round(wall[2], 1),
            speedup_2v1=round(wall[1] / wall[2], 2),
            speedup_2_vs_in_process=round(wall[0] / wall[2], 2),
            identical_predictions=out[0] == out[1] == out[2],
        )


if __name__ == "__main__":
    main()
