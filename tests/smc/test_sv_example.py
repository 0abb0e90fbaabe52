"""The stochastic volatility example runs end to end at a small size (so it never rots)."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stochastic_volatility.py"


def _load():
    spec = importlib.util.spec_from_file_location("sv_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sv_example_small(tmp_path):
    out = tmp_path / "sv.png"
    s = _load().run(T=100, N=200, seed=0, out=str(out), verbose=False)
    assert out.exists() and out.stat().st_size > 10_000
    assert np.isfinite(s["log_likelihood"])
    # smoothing uses the future: it tracks the true log-variance better than filtering
    assert s["smoother_rmse"] < s["filter_rmse"]
    assert s["smoother_coverage_95"] > 0.8
    # hybrid accept-reject PaRIS and the exact O(N^2) backward kernel agree on sum_t E[x_t^2 | y]
    assert abs(s["sum_x2_paris"] - s["sum_x2_exact_backward"]) < 0.03 * abs(s["sum_x2_exact_backward"])
