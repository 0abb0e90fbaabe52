"""The stochastic-volatility learning example runs end to end at small size."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "learn_stochastic_volatility.py"


def test_example_runs_small(tmp_path):
    spec = importlib.util.spec_from_file_location("learn_sv_example", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--small", "--out", str(tmp_path)])
    for name in ("learning_curve.png", "trace.png", "rank.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert set(out["summary"].index) == {"mu", "phi", "sigma"}
    for key in ("em", "score_ascent", "score_climbing"):
        assert np.isfinite(out[key].trace).all()
