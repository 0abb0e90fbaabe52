"""The quickstart example runs end to end at a small size (so it never rots)."""

import importlib.util
from pathlib import Path

import numpy as np

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart.py"


def test_quickstart_runs_and_learns(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("quickstart_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(["--small", "--out", str(tmp_path)])
    assert out["png"].exists() and out["png"].stat().st_size > 10_000
    assert (tmp_path / "quickstart_model.npz").exists()
    lls = out["fit"].log_likelihoods
    assert (np.diff(lls) >= -1e-9 * abs(lls[0])).all() and lls[-1] > lls[0]
    # smoothing beats filtering, and both beat the raw measurement noise (sd 0.707)
    assert out["rmse_smoothed"] < out["rmse_filtered"] < 0.707
    assert "EM:" in capsys.readouterr().out
