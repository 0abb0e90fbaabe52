"""Cross-validated RUL on CMAPSS: the ARPHMM with an S5 emission against the classical ARPHMM.

    python benchmarks/cmapss_deep.py [--data DIR] [--subset FD001] [--folds 5] [--cuts 1|all] [--seed 0]
                                     [--models classical,classical_diag,deep] [--max-engines N]

Every model sees the same folds and cuts (``hmm.rul.cross_validate`` draws them
from the seed before fitting anything; ``--cuts all``: every admissible cut, each
engine weighing one) and the same features
(``SensorFeatures(baseline_cycles=20)``). Prints one JSON line per model:
RMSE, PHM08 score per engine and per 100 engines, raw 90% interval coverage and
width, wall and CPU time of the whole cross-validation (CPU time, all threads, is the
fairer figure on a shared machine).

* ``classical``: the RUL example's selected ARPHMM (K=30, Gaussian, full covariances, jumps of 2).
* ``classical_diag``: the same with diagonal covariances (the deep model's starting point).
* ``deep``: :class:`hmm.rul.DeepARPHMMRUL` (S5 over the sensor history, shared-shift emission).
* ``classical_empirical``, ``deep_empirical``: the same models with the example's empirical
  state-and-age RUL readout (``readout="empirical"``, ``age_bandwidth=10``, ``point_cap=130``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/hmm.py would shadow the hmm package when this script runs from its folder
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

from hmm.rul import ARPHMMRUL, DeepARPHMMRUL, RULPipeline, cross_validate  # noqa: E402
from statespace.datasets.cmapss import SensorFeatures, load_cmapss  # noqa: E402
from statespace.prognostics import per_engine_means  # noqa: E402

HORIZON = 150
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "cmapss")


#: width of the life-fraction labels of every model (``--softness``)
SOFTNESS = {"value": 0.5}
#: the example's empirical readout: age kernel 10 cycles, point cap 130
EMPIRICAL = dict(readout="empirical", age_bandwidth=10.0, point_cap=130.0)


def deep_model(**overrides) -> DeepARPHMMRUL:
    """The configuration measured in docs/deep_layers.md (what ``--model deep`` should build)."""
    options = dict(
        n_states=30,
        cap=125.0,
        softness=SOFTNESS["value"],
        horizon=HORIZON,
        max_jump=2,
        hidden=16,
        state=8,
        n_layers=1,
        max_iter=8,
        m_steps=20,
        learning_rate=3e-3,
        weight_decay=1e-3,
    )
    options.update(overrides)
    return DeepARPHMMRUL(**options)


def classical_model(**overrides) -> ARPHMMRUL:
    """The RUL example's ARPHMM: Gaussian emissions, full covariances, jumps of two stages."""
    options = dict(
        n_states=30,
        lags=0,
        cap=125.0,
        softness=SOFTNESS["value"],
        covariance_type="full",
        horizon=HORIZON,
        max_jump=2,
        max_iter=15,
    )
    options.update(overrides)
    return ARPHMMRUL(**options)


def _pipeline(model):
    return RULPipeline(SensorFeatures(baseline_cycles=20), model)


FACTORIES = {
    "classical": lambda: _pipeline(classical_model()),
    "classical_diag": lambda: _pipeline(classical_model(covariance_type="diag")),
    "deep": lambda: _pipeline(deep_model()),
    "classical_empirical": lambda: _pipeline(classical_model(**EMPIRICAL)),
    "deep_empirical": lambda: _pipeline(deep_model(**EMPIRICAL)),
}


def run(
    models,
    data_dir: str,
    subset: str = "FD001",
    folds: int = 5,
    cuts: int | str = 1,
    seed: int = 0,
    max_engines: int | None = None,
    progress: bool = False,
):
    data = load_cmapss(data_dir, subset)
    tr = data.train
    sens, sets = tr.split(tr.sensors), tr.split(tr.settings)
    if max_engines:
        sens, sets = sens[:max_engines], sets[:max_engines]
    out = []
    for name in models:
        t0, c0 = time.perf_counter(), time.process_time()
        cv = cross_validate(
            FACTORIES[name], sens, sets, n_folds=folds, n_cuts=cuts, max_rul=HORIZON, rng=seed, progress=progress
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        r = cv.report
        case = f"{subset}_{name}_f{folds}_c{cuts}_s{seed}_soft{SOFTNESS['value']:g}"
        row = {
            "bench": "cmapss_cv",
            "case": case,
            "model": name,
            "n_cuts": r["n"],
            "rmse": round(r["rmse"], 3),
            "mae": round(r["mae"], 3),
            "score_per_engine": round(r["score_per_engine"], 3),
            "score_per_100": round(100 * r["score_per_engine"], 1),
            "coverage90": round(r["coverage"], 3),
            "mean_width": round(r["mean_width"], 1),
            "wall_s": round(wall, 1),
            "cpu_s": round(cpu, 1),
        }
        print(json.dumps(row), flush=True)
        out.append((row, cv))
        paired(out, just_added=name)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--subset", default="FD001")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--cuts",
        type=lambda text: text if text == "all" else int(text),
        default=1,
        help="random cuts per held-out engine, or 'all'",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="classical,classical_diag,deep")
    ap.add_argument("--max-engines", type=int, default=None)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument(
        "--softness", type=float, default=0.5, help="width of the life-fraction labels (the example's readout uses 0.1)"
    )
    args = ap.parse_args(argv)
    SOFTNESS["value"] = args.softness
    run(
        args.models.split(","),
        args.data,
        args.subset,
        args.folds,
        args.cuts,
        args.seed,
        args.max_engines,
        args.progress,
    )


def paired(results, just_added: str):
    """Deep minus classical on the same cuts: mean difference of absolute and squared errors, with SEs."""
    by_name = {row["model"]: cv for row, cv in results}
    for deep, classical in (
        ("deep", "classical"),
        ("deep_empirical", "classical_empirical"),
        ("deep", "classical_diag"),
    ):
        if just_added in (deep, classical) and deep in by_name and classical in by_name:
            a, b = by_name[deep], by_name[classical]
            ea, eb = a.prediction.rul - a.true_rul, b.prediction.rul - b.true_rul
            # one mean per engine: an engine's cuts are strongly dependent
            d_abs, d_sq = per_engine_means(np.abs(ea) - np.abs(eb), a.cuts), per_engine_means(ea**2 - eb**2, a.cuts)
            se = lambda v: float(np.std(v, ddof=1) / np.sqrt(len(v)))  # noqa: E731
            print(
                json.dumps(
                    {
                        "bench": "cmapss_cv_paired",
                        "case": f"{deep}_minus_{classical}",
                        "n_cuts": len(ea),
                        "n_engines": len(d_abs),
                        "mean_abs_err_diff": round(float(d_abs.mean()), 3),
                        "se_abs": round(se(d_abs), 3),
                        "mean_sq_err_diff": round(float(d_sq.mean()), 1),
                        "se_sq": round(se(d_sq), 1),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
