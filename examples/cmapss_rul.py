"""Remaining useful life of CMAPSS turbofan engines with the ARPHMM.

    python examples/cmapss_rul.py --data DIR --subset FD001 --out predictions.csv [--truth RUL_FD001.txt] [--model arphmm]
        [--workers N | --scheduler tcp://host:8786]   # the CV folds and a pool's fits as Dask tasks (docs/distributed.md)

1. Cross-validation on the training engines (held-out engines cut as the test
   set is built; by default at every admissible cycle, each engine weighing
   one, so that the figures are expectations over the random cut rather than
   the luck of a few draws) for each candidate configuration, all on the
   same folds and cuts. ``--model deep`` (the default): the ARPHMM with the
   empirical state-and-age readout, the ARPHMM whose emission reads an S5
   encoding of the sensor history (:class:`hmm.rul.DeepARPHMMRUL`) with
   30 and with 40 states, and the equal-weight pool of those three
   (:mod:`hmm.rul.ensemble`: the mixture of their predictive distributions,
   formed cut by cut from their CV predictions, so it costs no extra fit).
   The pool is kept (``--select`` chooses otherwise): its two deep fits
   average out much of the luck of one network's training, which moves a
   single fit's CV figures more than the gaps between candidates. The
   spread of the figures of a test set with one cut per engine is simulated
   from its CV predictions.
   ``--model arphmm`` compares the classical candidates only (the phase-type
   RUL and the empirical readout) and keeps the best CV score (PHM08, ties
   by RMSE).
   Every candidate reads the same features: the informative sensors,
   normalised, minus each engine's baseline (the mean of its first cycles:
   degradation since the start), and a health channel (the health indicator of the sensor levels
   before baseline removal: how far the engine stands from failure, which
   the baseline removal hides; ``--no-health-channel`` drops it).
2. The cap c of its point forecast E[min(RUL, c)] is chosen from its CV
   predictions (``--point-cap auto``, the default): among the labels' cap
   and up to 25 cycles above it, the cap under which a simulated test set
   most often meets ``--target-rmse`` and ``--target-score``
   (:func:`statespace.prognostics.select_point_cap`). Its CV predictive
   distributions recalibrate the quantile levels (PIT recalibration), so
   that the 90% intervals cover about 90% of CV cuts.
3. The selected pipeline (a pool: every member) is refitted on all training engines and predicts every test
   engine: ``predictions.csv`` has columns ``unit,rul,rul_q05,rul_q50,rul_q95``.
   ``--save-model PATH`` keeps the fitted model (one portable ``.npz`` of
   :mod:`statespace.persistence`; ``hmm.rul.load_rul`` reads it back) for
   predictions without refitting.
4. Plots (PNG, next to the CSV unless ``--plots`` says otherwise): health
   indicator of training engines coloured by the most likely state, the state
   posterior of one test engine, predicted RULs with 90% intervals.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import csv
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import statespace.distributed as ssd
from hmm.rul import ARPHMMRUL, RULEnsemble, RULPipeline, combine_cv, cross_validate
from statespace.datasets.cmapss import SensorFeatures, load_cmapss, read_rul_file
from statespace.prognostics import (
    HealthIndicator,
    capped_means,
    per_engine_means,
    quantiles,
    rul_report,
    select_point_cap,
    simulated_test_sets,
)

#: Classical candidates compared by cross-validation (``--model arphmm``): (model, n_states, lags, cap, readout,
#: label softness).
DEFAULT_GRID = (("arphmm", 30, 0, 125.0, "phase_type", 0.5), ("arphmm", 30, 0, 125.0, "empirical", 0.1))
#: ``--model deep`` (the default): the classical configuration the classical CV selects (the phase-type readout
#: loses on both fold draws, RMSE 17.7 and 17.3 against 13.9 and 13.5 on FD001, and is not refitted here to save
#: its 40 s) and the S5-emission ARPHMM with the same readout and labels at two numbers of stages: two fits of
#: the network, which the pool averages.
DEEP_GRID = (DEFAULT_GRID[1], ("deep", 30, 0, 125.0, "empirical", 0.1), ("deep", 40, 0, 125.0, "empirical", 0.1))
#: Test engines are cut at most this many cycles before failure (FD001: below ~150).
HORIZON = 150
#: Age kernel (cycles) of the empirical readout.
AGE_BANDWIDTH = 10.0


def make_factory(
    model,
    n_states,
    lags,
    cap,
    baseline_cycles,
    max_iter,
    readout="phase_type",
    softness=0.5,
    deep_max_iter=8,
    health_channel=True,
    point_cap=None,
):
    """Pipelines of one configuration. ``max_iter`` is the classical EM's, ``deep_max_iter`` the deep
    model's generalised EM iterations (each trains the network: 8 cost as much as the classical fit).
    ``health_channel``: the features carry the health indicator of the sensor levels before baseline
    removal (``SensorFeatures(health_cap=cap)``), which tells how far an engine stands from failure.
    ``point_cap``: cap of the point forecast ``E[min(RUL, point_cap)]`` (default ``cap``)."""
    if model == "deep":
        if lags:
            raise ValueError(f"grid: the deep model reads the whole sensor history; expected lags 0, got {lags}")
        from hmm.rul import DeepARPHMMRUL

        def rul_model():
            return DeepARPHMMRUL(
                n_states=n_states,
                cap=cap,
                softness=softness,
                horizon=HORIZON,
                max_jump=2,
                readout=readout,
                age_bandwidth=AGE_BANDWIDTH,
                max_iter=deep_max_iter,
                point_cap=point_cap,
            )
    elif model == "arphmm":

        def rul_model():
            return ARPHMMRUL(
                n_states=n_states,
                lags=lags,
                cap=cap,
                softness=softness,
                covariance_type="full",
                horizon=HORIZON,
                max_jump=2,
                max_iter=max_iter,
                readout=readout,
                age_bandwidth=AGE_BANDWIDTH,
                point_cap=point_cap,
            )
    else:
        raise ValueError(f"model: expected 'arphmm' or 'deep', got {model!r}")

    def make():
        features = SensorFeatures(baseline_cycles=baseline_cycles, health_cap=cap if health_channel else None)
        return RULPipeline(features, rul_model())

    return make


def fmt(rep: dict) -> str:
    s = f"RMSE {rep['rmse']:.2f}  MAE {rep['mae']:.2f}  score {rep['score']:.1f} ({rep['score_per_engine']:.2f}/engine)"
    if "coverage" in rep:
        s += f"  90% coverage {rep['coverage']:.3f}  mean width {rep['mean_width']:.1f}"
    return s


def fold_cost(config) -> int:
    """A relative cost of one cross-validation fold of ``config``: the forward-backward passes
    cost K^2 per step and each lag adds an autoregressive term; a deep model's training
    outweighs any classical fit."""
    model, k, lags = config[:3]
    return k * k * (1 + lags) * (1000 if model == "deep" else 1)


def parse_grid(text: str | None, model: str = "arphmm"):
    """Configurations from ``[deep:]K,lags,cap[,readout[,softness]];...`` (default: :data:`DEFAULT_GRID`,
    or :data:`DEEP_GRID` for ``model="deep"``)."""
    if not text:
        return DEEP_GRID if model == "deep" else DEFAULT_GRID
    out = []
    for item in text.split(";"):
        kind, _, spec = item.strip().rpartition(":")
        k, l, c, *rest = spec.split(",")
        readout = rest[0].strip() if rest else "empirical"
        softness = float(rest[1]) if len(rest) > 1 else (0.1 if readout == "empirical" else 0.5)
        out.append((kind or "arphmm", int(k), int(l), float(c), readout, softness))
    return tuple(out)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="directory in NASA's layout (train_FD00x.txt, test_FD00x.txt)")
    ap.add_argument("--subset", default="FD001")
    ap.add_argument("--out", default="predictions.csv")
    ap.add_argument("--truth", default=None, help="RUL_FD00x.txt with the true test RULs (optional)")
    ap.add_argument(
        "--plots", default=None, help="directory for the PNG plots (default: next to --out; 'none' to skip)"
    )
    ap.add_argument(
        "--grid",
        default=None,
        help="candidate configs '[deep:]K,lags,cap[,readout[,softness]];...' with readout "
        f"phase_type or empirical (default: {DEFAULT_GRID} with --model arphmm, {DEEP_GRID} with --model deep)",
    )
    ap.add_argument(
        "--model",
        choices=("arphmm", "deep"),
        default="deep",
        help="'deep' (default): the classical ARPHMM, the S5-emission ARPHMM with 30 and 40 states and "
        "their pool, compared on the same CV cuts (about 6 min on 2 idle cores: the network trains on "
        "every fold); 'arphmm': the classical candidates only (about 10-20 s)",
    )
    ap.add_argument(
        "--select",
        choices=("best", "pool", "deep", "arphmm"),
        default=None,
        help="candidate to refit and predict with: the pool when there is one (default), the best CV "
        "score, or the best of one model kind. The pool is the default because its refit averages the "
        "networks' training luck: refitting one deep configuration from another random stream moved its "
        "CV RMSE by 0.6 cycles, more than the gaps between candidates, so a single fit's CV edge does "
        "not carry over to its refit",
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--cuts",
        type=cuts_arg,
        default="all",
        help="random cuts per held-out engine, or 'all' (default): "
        "every admissible cut, each engine weighing one, so the CV figures are expectations over the cut",
    )
    ap.add_argument(
        "--baseline-cycles",
        type=int,
        default=None,
        help="cycles averaged for each engine's baseline (default: as many as the shortest test engine has, "
        "31 on FD001)",
    )
    ap.add_argument(
        "--no-health-channel",
        action="store_true",
        help="features without the health indicator of the sensor levels before baseline removal",
    )
    ap.add_argument("--max-iter", type=int, default=15, help="EM iterations of the classical models")
    ap.add_argument("--deep-max-iter", type=int, default=8, help="generalised EM iterations of the deep model")
    ap.add_argument(
        "--max-engines", type=int, default=None, help="use only the first N training/test engines (quick runs)"
    )
    ap.add_argument(
        "--point-cap",
        type=point_cap_arg,
        default="auto",
        help="cap c of the point forecast E[min(RUL, c)]: a number, or 'auto' (default): chosen by CV among "
        "the model's cap and up to 25 cycles above it, to maximise the probability that one test set meets "
        "--target-rmse and --target-score",
    )
    ap.add_argument("--target-rmse", type=float, default=13.0, help="RMSE target of one test set (default 13: FD001's)")
    ap.add_argument(
        "--target-score",
        type=float,
        default=300.0,
        help="PHM08 score target of one test set of as many engines as the training set (default 300: FD001's)",
    )
    ap.add_argument("--no-calibration", action="store_true")
    ap.add_argument(
        "--save-model",
        default=None,
        metavar="PATH",
        help="write the fitted, recalibrated pipeline (or pool) to PATH (.npz; hmm.rul.load_rul reads it)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="run the cross-validation folds and a pool's member fits on a local Dask cluster of N single-threaded "
        "worker processes",
    )
    ap.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the cross-validation folds and a pool's member fits on the Dask cluster at ADDRESS (e.g. tcp://host:8786)",
    )
    args = ap.parse_args(argv)
    cluster = start_cluster(args)
    try:
        return run(args, cluster)
    finally:  # closed already unless run failed (closing twice is harmless)
        if cluster is not None:
            close_cluster(cluster).result()


def start_cluster(args):
    """The Dask client the CV folds and a pool's fits run on, as a future (``None`` without ``--workers`` or ``--scheduler``).

    A ``LocalCluster`` of ``--workers`` single-threaded processes starts in a background thread
    while the data are read and prepared. Its workers keep freed memory for reuse
    (``MALLOC_TRIM_THRESHOLD_`` unset; the nanny sets it to give memory back to the system at
    once, which makes every large temporary of the folds' fits a fresh mapping of faulted-in
    pages: docs/distributed.md).
    """
    if args.workers is None and args.scheduler is None:
        return None

    def connect():
        import dask
        from dask.distributed import Client, LocalCluster

        if args.scheduler is not None:
            return Client(args.scheduler), None
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
        return Client(cluster), cluster

    return ThreadPoolExecutor(1).submit(connect)


def close_cluster(cluster):
    """Close the client and the local cluster of :func:`start_cluster` in a background thread (a future)."""

    def close():
        client, local = cluster.result()
        client.close()
        if local is not None:
            local.close()

    return ThreadPoolExecutor(1).submit(close)


def run(args, cluster=None) -> dict:
    """The script (steps 1-4 of the module docstring); ``cluster``: :func:`start_cluster`'s future, whose
    client runs the CV folds (and a pool's member fits) and is closed, in the background, once they are done."""
    progress = not args.no_progress
    t0 = time.time()

    data = load_cmapss(args.data, args.subset)
    tr, te = data.train, data.test
    sens, sets = tr.split(tr.sensors), tr.split(tr.settings)
    tsens, tsets = te.split(te.sensors), te.split(te.settings)
    units = te.unit_ids
    if args.max_engines:
        sens, sets = sens[: args.max_engines], sets[: args.max_engines]
        tsens, tsets, units = tsens[: args.max_engines], tsets[: args.max_engines], units[: args.max_engines]
    print(f"{args.subset}: {len(sens)} training engines, {len(tsens)} test engines", flush=True)
    # The CV cuts leave as many cycles as the shortest test engine has (31 on FD001), and by default each
    # engine's baseline averages that many: the whole history every engine has when it is predicted. A
    # longer average is a less noisy offset (classical model, FD001, seed-0 folds: 10 / 20 / 31 cycles gave
    # CV RMSE 16.75 / 16.46 / 16.12).
    min_cycles = min(min(len(s) for s in tsens), min(len(s) for s in sens) - 1)
    if args.baseline_cycles is None:
        args.baseline_cycles = min_cycles
    print(
        f"CV cuts leave at least {min_cycles} cycles; baseline over each engine's first {args.baseline_cycles} cycles",
        flush=True,
    )

    # 1. model selection by truncation cross-validation
    results = []

    def factory_for(config, point_cap=None):
        """The pipeline factory of one ``(model, K, lags, cap, readout, softness)`` configuration."""
        model, k, lags, cap, readout, softness = config
        return make_factory(
            model,
            k,
            lags,
            cap,
            args.baseline_cycles,
            args.max_iter,
            readout,
            softness,
            args.deep_max_iter,
            not args.no_health_channel,
            point_cap,
        )

    def run_cv(config):
        # the same seed gives every configuration the same folds and cuts
        return cross_validate(
            factory_for(config),
            sens,
            sets,
            n_folds=args.folds,
            n_cuts=args.cuts,
            min_cycles=min_cycles,
            max_rul=HORIZON,
            rng=args.seed,
            progress=progress,
        )

    def run_cv_queued(config):
        import dask

        # the costliest folds first, so that the workers run out of work together
        with dask.annotate(priority=fold_cost(config)):
            return run_cv(config)

    configs = parse_grid(args.grid, args.model)
    with contextlib.nullcontext() if cluster is None else ssd.use(cluster.result()[0]):
        if cluster is None:
            cvs = map(run_cv, configs)
        else:  # every configuration's folds queued on the cluster at once (each fold is a task)
            pool = ThreadPoolExecutor(len(configs))
            ctx = contextvars.copy_context()  # the active cluster, for every worker thread
            cvs = pool.map(lambda c: ctx.copy().run(run_cv_queued, c), configs)
        for config, cv in zip(configs, cvs):
            model, k, lags, cap, readout, softness = config
            results.append((config, cv))
            print(
                f"CV  {model:6s} K={k:3d} lags={lags} cap={cap:5.0f} {readout:10s} softness={softness:4.2f}: "
                f"{fmt(cv.report)}   [{time.time() - t0:.0f}s]",
                flush=True,
            )
    if len({r[0][0] for r in results}) > 1:
        report_paired_errors(results)
        best = best_by_model(results)
        members = [r for r in results if r[0][0] == "deep"] + [best["arphmm"]]
        pool = combine_cv([m[1] for m in members], point_cap=members[0][0][3])  # the members' cap
        results.append((("pool",) + tuple(m[0] for m in members), pool))
        print(
            f"CV  pool of {len(members)} (every deep, the best classical), equal weights:   {fmt(pool.report)}",
            flush=True,
        )
    if args.select is None:
        args.select = "pool" if any(r[0][0] == "pool" for r in results) else "best"
    chosen = [r for r in results if args.select in ("best", r[0][0])]
    if not chosen:
        raise SystemExit(f"--select {args.select}: no such candidate (kinds: {sorted({r[0][0] for r in results})})")
    config, cv = min(chosen, key=lambda r: (r[1].report["score"], r[1].report["rmse"]))
    print(f"selected {describe(config)}", flush=True)
    label_cap = config[1][3] if config[0] == "pool" else config[3]
    point_cap, cv = choose_point_cap(cv, label_cap, args)
    report_test_set_spread(cv, args.seed)

    # 2-3. final fit, calibration, prediction
    def make_pipeline(c):
        return factory_for(c, point_cap)()

    if config[0] == "pool":  # the members fit as independent jobs: on the cluster when there is one
        pipe = RULEnsemble([make_pipeline(c) for c in config[1:]], point_cap=point_cap)
        with contextlib.nullcontext() if cluster is None else ssd.use(cluster.result()[0]):
            fits = pipe.fit(sens, sets, rng=args.seed, progress=progress)
        closing = None if cluster is None else close_cluster(cluster)
        calibrated, shown = pipe, pipe.members[0]  # plots of the first member's states
    else:  # one fit (a hundred engines: faster in process) while the cluster closes
        closing = None if cluster is None else close_cluster(cluster)
        pipe = make_pipeline(config)
        calibrated, shown = pipe.model, pipe
        fits = [pipe.fit(sens, sets, rng=args.seed, progress=progress)]
    for fit in fits:
        print(
            f"EM: {fit.n_iter} iterations, converged={fit.converged}, objective {fit.log_likelihoods[-1]:.1f}",
            flush=True,
        )
    if not args.no_calibration:
        calibrated.calibrate(cv.prediction.distributions, cv.true_rul, rng=args.seed, weights=cv.weights)
        # the CV figures after recalibration (levels learned on the same cuts: in-sample for the intervals)
        lv = np.interp([0.05, 0.95], *calibrated.pit_levels)
        lo, hi = quantiles(cv.prediction.distributions, lv).T
        rep = rul_report(cv.prediction.rul, cv.true_rul, lo, hi, cv.weights)
        print(f"CV after interval recalibration (levels {lv[0]:.3f}, {lv[1]:.3f}): {fmt(rep)}", flush=True)
    if args.save_model:
        print(f"saved the fitted model to {pipe.save(args.save_model)}", flush=True)
    pred = pipe.predict(tsens, tsets)
    with open(args.out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["unit", "rul", "rul_q05", "rul_q50", "rul_q95"])
        for row in zip(units, pred.rul, pred.q05, pred.q50, pred.q95):
            w.writerow([int(row[0])] + [f"{v:.2f}" for v in row[1:]])
    print(f"wrote {args.out} ({len(units)} engines)", flush=True)

    test_report = None
    if args.truth:
        truth = read_rul_file(args.truth, te.n_units)[: len(units)]
        test_report = rul_report(pred.rul, truth, pred.q05, pred.q95)
        print(f"TEST: {fmt(test_report)}")

    if args.plots != "none":
        out_dir = args.plots or (os.path.dirname(os.path.abspath(args.out)))
        save_plots(out_dir, shown, sens, sets, tsens, tsets, pred, truth if args.truth else None)
        print(f"plots in {out_dir}", flush=True)
    if closing is not None:
        closing.result()
    print(f"done in {time.time() - t0:.0f}s", flush=True)
    return {
        "cv": cv.report,
        "selected": config,
        "test": test_report,
        "prediction": pred,
        "min_cycles": min_cycles,
        "baseline_cycles": args.baseline_cycles,
        "point_cap": point_cap,
    }


def point_cap_arg(text: str):
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number or 'auto', got {text!r}")
    return value


def choose_point_cap(cv, label_cap, args):
    """The cap of the point forecast and the CV result with that forecast. ``auto``: among the labels'
    cap and up to 25 cycles above it (at most the test set's horizon), the one most likely to meet the
    targets on a test set of one cut per engine (:func:`statespace.prognostics.select_point_cap`). A
    higher cap lifts the forecasts of healthy engines, whose RUL may be well above the labels' cap, at
    the risk of late forecasts, which the score punishes hardest."""
    dists = cv.prediction.distributions
    if args.point_cap == "auto":
        caps = [c for c in label_cap + 5.0 * np.arange(6) if c <= HORIZON] or [label_cap]
        sel = select_point_cap(
            dists, cv.true_rul, cv.cuts, caps, max_rmse=args.target_rmse, max_score=args.target_score, rng=args.seed
        )
        print(
            f"point forecast E[min(RUL, c)]; P(one test set meets RMSE <= {args.target_rmse:g} and score <= "
            f"{args.target_score:g}) by c: "
            + ", ".join(
                f"{c:.0f}: {p:.2f} (RMSE {r:.2f}, score {s:.0f})"
                for c, p, r, s in zip(sel.caps, sel.p_targets, sel.rmse, sel.score)
            ),
            flush=True,
        )
        cap = sel.cap
    else:
        cap = float(args.point_cap)
    pred = cv.prediction._replace(rul=capped_means(dists, [cap])[:, 0])  # the quantiles do not depend on the cap
    cv = cv._replace(prediction=pred, report=rul_report(pred.rul, cv.true_rul, pred.q05, pred.q95, cv.weights))
    print(f"CV with point cap {cap:.0f}: {fmt(cv.report)}", flush=True)
    return cap, cv


def cuts_arg(text: str):
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of cuts or 'all', got {text!r}")
    return int(text)


def describe(config) -> str:
    if config[0] == "pool":
        return "pool (equal weights) of " + " and ".join(describe(c) for c in config[1:])
    model, k, lags, cap, readout, softness = config
    return f"{model} K={k} lags={lags} cap={cap:.0f} readout={readout} softness={softness}"


def best_by_model(results) -> dict:
    """The best (config, CV result) of each model kind, by CV score (ties by RMSE)."""
    best = {}
    for config, cv in results:
        key = (cv.report["score"], cv.report["rmse"])
        if config[0] not in best or key < (best[config[0]][1].report["score"], best[config[0]][1].report["rmse"]):
            best[config[0]] = (config, cv)
    return best


def report_paired_errors(results):
    """Best deep vs best classical configuration on the same cuts: mean absolute-error difference and its
    standard error over engines (an engine's cuts are strongly dependent, so each engine gives one mean)."""
    best = best_by_model(results)
    (_, deep), (_, classical) = best["deep"], best["arphmm"]
    if deep.cuts != classical.cuts:
        raise RuntimeError("cross-validation gave the two models different cuts; the paired comparison needs the same")
    d = np.abs(deep.prediction.rul - deep.true_rul) - np.abs(classical.prediction.rul - classical.true_rul)
    per_engine = per_engine_means(d, deep.cuts)
    print(
        f"paired |error| difference, deep - classical, over {per_engine.size} engines: {per_engine.mean():+.2f} +- "
        f"{per_engine.std(ddof=1) / np.sqrt(per_engine.size):.2f} cycles",
        flush=True,
    )


def report_test_set_spread(cv, seed):
    """What a test set of these engines, one cut each, may score: the 5-95% range over simulated draws."""
    sim = simulated_test_sets(cv.prediction.rul, cv.true_rul, cv.cuts, n_draws=4000, rng=seed)
    (r05, r50, r95), (s05, s50, s95) = (np.percentile(sim[k], [5, 50, 95]) for k in ("rmse", "score"))
    print(
        f"a test set of one cut per engine would give RMSE {r50:.2f} [90%: {r05:.2f}-{r95:.2f}], "
        f"score {s50:.0f} [90%: {s05:.0f}-{s95:.0f}]",
        flush=True,
    )


def save_plots(out_dir, pipe, sens, sets, tsens, tsets, pred, truth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from statespace.prognostics.plots import plot_health_indicator, plot_rul_predictions, plot_state_posterior

    os.makedirs(out_dir, exist_ok=True)
    x = pipe.transform(sens, sets)
    hi = HealthIndicator(cap=pipe.model.cap).fit(x)
    states = [np.argmax(p, axis=1) for p in pipe.model.smooth(x)]
    fig, _ = plot_health_indicator(hi.transform(x), states, n_states=pipe.model.n_states)
    fig.savefig(os.path.join(out_dir, "cmapss_health_indicator.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    xt = pipe.transform(tsens, tsets)
    longest = int(np.argmax([len(s) for s in xt]))
    fig, _ = plot_state_posterior(pipe.model.filter(xt[longest]), title=f"filtered states, test engine {longest + 1}")
    fig.savefig(os.path.join(out_dir, "cmapss_state_posterior.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)
    fig, _ = plot_rul_predictions(pred.rul, pred.q05, pred.q95, true=truth)
    fig.savefig(os.path.join(out_dir, "cmapss_rul_predictions.png"), dpi=120, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    main(sys.argv[1:])
