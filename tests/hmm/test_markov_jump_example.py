"""The flashing-ratchet example runs end to end at a small size (the full run is recorded in docs)."""

import importlib.util
import pathlib

import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "flashing_ratchet.py"


def test_flashing_ratchet_example_small():
    spec = importlib.util.spec_from_file_location("flashing_ratchet", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--small"])
    for key in ("clean_em", "clean_mle", "noisy_em", "noisy_mle"):
        mean = np.array(summary[key]["mean"])
        assert np.all(np.isfinite(mean))
        # 3 data sets of 60 paths: each estimate is within 0.5 of the truth (sd ~0.15 at this size)
        assert np.all(np.abs(mean - 1.0) < 0.5), (key, mean)
    assert abs(summary["eps_mean"] - 0.05) < 0.03


def test_derived_parameters_are_exact_on_ratchet_generators():
    spec = importlib.util.spec_from_file_location("flashing_ratchet", EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for vrb in ([1.0, 1.0, 1.0], [0.3, 2.0, 0.7]):
        np.testing.assert_allclose(mod.derive_vrb(mod.ratchet_generator(*vrb)), vrb, rtol=1e-12)
