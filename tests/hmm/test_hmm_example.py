"""The partial-labels example runs at small size and shows what it claims."""

import importlib.util
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "arhmm_partial_labels.py"


def test_soft_labels_improve_state_recovery_on_held_out_machines():
    spec = importlib.util.spec_from_file_location("arhmm_partial_labels", EXAMPLE)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    out = ex.main(n_train=15, n_test=10, seed=1, n_restarts=2, progress=False)
    assert all(0.0 <= v <= 1.0 for v in out.values())
    assert out["accuracy_soft_labels"] > out["accuracy_no_labels"] + 0.03
    assert out["accuracy_true_model"] >= out["accuracy_soft_labels"] - 0.05
