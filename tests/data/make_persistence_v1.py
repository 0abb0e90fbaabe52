"""Write the legacy-format fixtures ``persistence_v1_*.npz`` read by ``tests/statespace/test_persistence.py``.

These are files of the formats the library wrote before the single persistence
mechanism (format version 2): ``statespace-params`` version 1 (``save_model``),
the unversioned ``HMM.save`` file and ``statespace-rul`` version 1
(``hmm.rul_io.save_rul``). The writers are gone, so the script runs against the
library as of commit 076da93::

    git archive 076da93 | tar -x -C /tmp/v1
    PYTHONPATH=/tmp/v1 python tests/data/make_persistence_v1.py

The models are built by :func:`legacy_models` (plain literals, no fitting except
the RUL pipeline, whose predictions on fixed engines are stored beside it), so
the migration test rebuilds the same models with today's constructors and
compares them with what the loader reads.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def legacy_models():
    """``{name: model}`` built from literals; importable by the test with today's library."""
    from hmm import ARHMM, CategoricalHMM
    from hmm.markov_jump import MarkovJumpProcess, NoisyLabels
    from statespace import LinearGaussianSSM, StochasticVolatility

    lg = LinearGaussianSSM(
        m0=[0.5, -1.0],
        P0=[[2.0, 0.3], [0.3, 1.0]],
        F=[[0.9, 0.1], [0.0, 0.8]],
        B=[[0.2], [0.0]],
        Q=[[0.1, 0.02], [0.02, 0.2]],
        H=[[1.0, 0.5]],
        D=[[0.3]],
        R=[[0.25]],
        frozen=("F", "H"),
    )
    ar = ARHMM(
        3,
        obs_dim=2,
        lags=1,
        transitions="left-to-right",
        covariance_type="diag",
        prior=__import__("hmm").emissions.EmissionPrior(reg_covar=1e-4, cov_dof=1.0, ridge=0.5, pseudo_count=0.1),
    )
    from hmm.emissions import GaussianEmissionParams
    from hmm.model import HMMParams

    W = np.arange(3 * 3 * 2, dtype=float).reshape(3, 3, 2) / 20.0
    covs = np.stack([np.diag([0.5 + k, 1.0 + 0.1 * k]) for k in range(3)])
    A = np.array([[0.8, 0.2, 0.0], [0.0, 0.7, 0.3], [0.0, 0.0, 1.0]])
    ar.params = ar.check_params(HMMParams([0.6, 0.4, 0.0], A, GaussianEmissionParams(W, covs, lags=1)))
    cat = CategoricalHMM(2, 3, transitions="ergodic", absorbing=False)
    from hmm.emissions import CategoricalEmissionParams

    cat.params = cat.check_params(
        HMMParams([0.3, 0.7], [[0.9, 0.1], [0.2, 0.8]], CategoricalEmissionParams([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    )
    mjp = MarkovJumpProcess(
        [[-1.0, 0.6, 0.4], [0.3, -0.5, 0.2], [0.5, 0.5, -1.0]],
        initial=[0.2, 0.3, 0.5],
        observation=NoisyLabels.uniform_replacement(3, 0.1),
    )
    sv = StochasticVolatility(mu=-0.7, phi=0.93, sigma=0.25)
    return {"lgssm": lg, "arhmm": ar, "categorical": cat, "mjp": mjp, "sv": sv}


def rul_engines():
    """Small synthetic run-to-failure engines (sensors, settings) and test cuts, from a fixed seed."""
    rng = np.random.default_rng(0)
    sens, sets = [], []
    for T in rng.integers(45, 70, 8):
        wear = np.linspace(0.0, 1.0, T) ** 2
        x = np.column_stack([wear, -wear, np.zeros(T)]) + 0.05 * rng.standard_normal((T, 3))
        x[:, 2] = 1.0
        sens.append(x)
        sets.append(0.01 * rng.standard_normal((T, 3)))
    return sens[:6], sets[:6], [s[: len(s) // 2] for s in sens[6:]], [s[: len(s) // 2] for s in sets[6:]]


def main():
    from hmm.rul_io import save_rul

    from hmm.rul import ARPHMMRUL, RULPipeline
    from statespace import save_model
    from statespace.prognostics import SensorFeatures

    models = legacy_models()
    for name in ("lgssm", "mjp", "sv"):
        save_model(HERE / f"persistence_v1_{name}.npz", models[name])
    for name in ("arhmm", "categorical"):
        models[name].save(HERE / f"persistence_v1_{name}.npz")  # HMM.save: its own unversioned file
    sens, sets, tsens, tsets = rul_engines()
    pipe = RULPipeline(
        SensorFeatures(baseline_cycles=5, health_cap=40.0),
        ARPHMMRUL(
            n_states=5,
            lags=0,
            cap=40.0,
            softness=0.3,
            covariance_type="diag",
            horizon=60,
            max_iter=3,
            readout="empirical",
            age_bandwidth=8.0,
        ),
    )
    pipe.fit(sens, sets, rng=0, progress=False)
    pred = pipe.predict(tsens, tsets)
    pipe.model.calibrate(pred.distributions, np.array([10, 20]), rng=0)
    save_rul(HERE / "persistence_v1_rul.npz", pipe)
    pred = pipe.predict(tsens, tsets)
    np.savez(
        HERE / "persistence_v1_rul_predictions.npz",
        rul=pred.rul,
        q05=pred.q05,
        q50=pred.q50,
        q95=pred.q95,
        mean=pred.mean,
        state_probs=pred.state_probs,
    )


if __name__ == "__main__":
    main()
