"""ArviZ DataTree conversion of chains and learning traces; rhat/ess/summary and plots run on them."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from _ppg_oracles import CROSS, ScalarLG

from smc.csmc import particle_gibbs
from smc.learning import particle_em
from smc.ppg import ppg_smoother
from statespace.diagnostics import learning_curve_plot, rank_plot, to_datatree, trace_plot
from statespace.errors import ShapeError

az = pytest.importorskip("arviz")
MODEL = ScalarLG(0.9, 0.5, 1.0)


@pytest.fixture(scope="module")
def y():
    return MODEL.sample(15, rng=0)[1]


def test_parameter_dict_groups_indexed_names_and_diagnostics_agree_with_numpy():
    g = np.random.default_rng(0)
    samples = {
        "mu": g.standard_normal((4, 200)),
        "F[0,0]": g.standard_normal((4, 200)) + 3,
        "F[0,1]": g.standard_normal((4, 200)),
    }
    dt = to_datatree(samples)
    post = dt["posterior"]
    assert dict(post.sizes) == {"chain": 4, "draw": 200, "F_dim_0": 1, "F_dim_1": 2}
    np.testing.assert_array_equal(post["F"].values[:, :, 0, 0], samples["F[0,0]"])
    summ = az.summary(dt)
    assert summ.loc["mu", "mean"] == pytest.approx(samples["mu"].mean(), abs=0.05)
    rhat = az.rhat(dt)
    assert abs(float(rhat["mu"]) - 1) < 0.05  # independent normal draws: no between-chain difference
    ess = az.ess(dt)
    assert 300 < float(ess["mu"]) < 1600  # 800 independent draws


def test_particle_gibbs_and_ppg_convert_with_named_coords(y):
    res = particle_gibbs(MODEL, y, n_iter=30, n_particles=6, n_chains=2, burn_in=10, rng=1, progress=False)
    dt = to_datatree(res, state_names=["level"])
    x = dt["posterior"]["x"]
    assert x.dims == ("chain", "draw", "time", "state") and list(x["state"].values) == ["level"]
    assert dt["sample_stats"]["log_likelihood_estimate"].shape == (2, 20)
    assert az.rhat(dt)["x"].shape == (15, 1)
    p = ppg_smoother(MODEL, y, CROSS, n_particles=6, n_iter=12, n_chains=2, rng=2, progress=False)
    dp = to_datatree(p)
    np.testing.assert_array_equal(dp["posterior"]["estimate"].values, p.estimates)


def test_learning_traces_and_plots(y):
    runs = [particle_em(ScalarLG(0.5, 1.0, 1.0), y, n_iter=5, n_particles=6, rng=s, progress=False) for s in (1, 2)]
    dt = to_datatree(runs)
    assert dict(dt["posterior"].sizes)["draw"] == 6
    assert dt["sample_stats"]["particle_steps"].values[0, -1] == runs[0].particle_steps[-1]
    fig, axes = learning_curve_plot(runs, ["a", "b"], truth={"F": 0.9}, x="particle_steps")
    assert len(axes) == 6
    trace_plot(dt, var_names=["F"])
    rank_plot(dt, var_names=["F"])
    with pytest.raises(ShapeError):
        to_datatree(object())
