"""CMAPSS RUL benchmark: ARPHMM EM over the FD001 training engines, prediction of the test engines.

    python benchmarks/cmapss_rul.py [--data DIR]

Prints one JSON line per case. The EM peer is hmmlearn's GaussianHMM (tied
covariance, the same left-to-right transition mask, no partial knowledge: the
same E-step and M-step work per iteration); both run a fixed number of
iterations. The empirical readout is timed separately (its fit: filter every
training engine and build the RUL tables; its prediction). Cold start: a fresh
process that imports the library, fits a tiny model and predicts (our Numba
kernels cached on disk beforehand).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# benchmarks/ holds scripts named like our packages (hmm.py): keep them from shadowing the packages
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
DEFAULT_DATA = os.environ.get("CMAPSS_DIR", os.path.join(HERE, "..", "..", "shared", "data", "cmapss"))


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--n-states", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()

    from hmm.rul import ARPHMMRUL
    from statespace.datasets.cmapss import SensorFeatures, load_cmapss

    data = load_cmapss(args.data, "FD001")
    tr, te = data.train, data.test
    feats = SensorFeatures(baseline_cycles=20)
    t_feat = best_of(lambda: feats.fit_transform(tr.split(tr.sensors), tr.split(tr.settings)), 3)
    x = feats.transform(tr.split(tr.sensors), tr.split(tr.settings))
    xt = feats.transform(te.split(te.sensors), te.split(te.settings))
    print(
        json.dumps({"bench": "cmapss_features", "case": "FD001_train_100_engines", "ours_s": round(t_feat, 4)}),
        flush=True,
    )

    K, iters = args.n_states, args.iters
    model = ARPHMMRUL(n_states=K, lags=0, cap=130.0, max_iter=iters, tol=0.0)
    model.fit(x[:5], rng=0, progress=False)  # compile
    t_fit = best_of(lambda: model.fit(x, rng=0, progress=False), 2)
    peer, peer_s = None, None
    try:
        import hmmlearn
        from hmmlearn.hmm import GaussianHMM

        mask = np.eye(K) + np.eye(K, k=1)
        mask[-1, -1] = 1.0
        X = np.vstack(x)
        lengths = [len(s) for s in x]

        def run_peer():
            h = GaussianHMM(K, covariance_type="tied", n_iter=iters, tol=0.0, init_params="mc", params="stmc")
            h.startprob_ = np.eye(K)[0]
            h.transmat_ = mask / mask.sum(1, keepdims=True)
            h.fit(X, lengths)

        peer, peer_s = f"hmmlearn {hmmlearn.__version__}", best_of(run_peer, 2)
    except ImportError:
        pass
    row = {"bench": "cmapss_arphmm_em", "case": f"FD001_K{K}_d{x[0].shape[1]}_{iters}iter", "ours_s": round(t_fit, 3)}
    if peer:
        row.update(peer=peer, peer_s=round(peer_s, 3), speedup=round(peer_s / t_fit, 2))
    print(json.dumps(row), flush=True)

    model.predict(xt[:2])
    t_pred = best_of(lambda: model.predict(xt), 3)
    print(
        json.dumps({"bench": "cmapss_predict", "case": f"FD001_test_100_engines_K{K}", "ours_s": round(t_pred, 4)}),
        flush=True,
    )

    # the empirical readout: fitting it (filter every training engine, build the tables) and predicting with it
    emp = ARPHMMRUL(n_states=K, lags=0, cap=130.0, max_iter=1, readout="empirical", age_bandwidth=10.0, horizon=150)
    emp.fit(x, rng=0, progress=False, init=model.hmm.params)
    t_ro = best_of(lambda: emp.readout_model.fit(emp.filter(x)), 2)
    print(
        json.dumps({"bench": "cmapss_readout_fit", "case": f"FD001_train_100_engines_K{K}", "ours_s": round(t_ro, 4)}),
        flush=True,
    )
    t_pred = best_of(lambda: emp.predict(xt), 3)
    print(
        json.dumps(
            {"bench": "cmapss_predict_empirical", "case": f"FD001_test_100_engines_K{K}", "ours_s": round(t_pred, 4)}
        ),
        flush=True,
    )

    code = (
        "import time; t=time.perf_counter()\n"
        "import numpy as np\n"
        "from hmm.rul import ARPHMMRUL\n"
        "rng=np.random.default_rng(0)\n"
        "x=[np.cumsum(rng.normal(-0.05,1,(n,2)),0) for n in (60,80,70)]\n"
        "m=ARPHMMRUL(n_states=5,lags=1,cap=40.0,max_iter=3); m.fit(x,rng=0,progress=False); m.predict(x)\n"
        "print(time.perf_counter()-t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(
        json.dumps(
            {
                "bench": "cmapss_rul_cold",
                "case": "import_fit_predict_tiny",
                "ours_s": round(float(out.stdout.split()[-1]), 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
