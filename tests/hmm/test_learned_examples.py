"""The deep-SSM examples at reduced size: the learned components beat their classical peers
on held-out data (fixed seeds), and the examples keep running."""

import importlib.util
import pathlib

import numpy as np
import pytest

pytest.importorskip("jax")
pytest.importorskip("optax")

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_deep_emission_beats_arhmm_on_long_memory_data():
    out = _load("deep_long_memory_hmm").main(
        ["--n-train", "6", "--n-test", "3", "--length", "800", "--max-iter", "6", "--m-steps", "50"]
    )
    assert np.all(np.diff(out["deep_train_loglik_history"]) >= -1e-6)
    assert out["deep_lru"] > out["arhmm_lag5"] > out["arhmm_lag1"]
    assert out["deep_lru"] < out["true_model"] + 0.05  # held-out: cannot beat the truth by more than noise


@pytest.mark.slow
def test_io_hmm_beats_homogeneous_hmm_on_covariate_driven_switching():
    out = _load("deep_io_hmm").main(
        ["--n-train", "6", "--n-test", "3", "--length", "800", "--max-iter", "6", "--m-steps", "50"]
    )
    assert np.all(np.diff(out["io_hmm_train_loglik_history"]) >= -1e-6)
    assert out["io_hmm_lru"] > out["gaussian_hmm"]
