"""Plot helpers return figures and axes, never show, and validate their arguments."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from lgssm_dense import random_params  # noqa: E402

from statespace import LinearGaussianSSM  # noqa: E402
from statespace.errors import ShapeError  # noqa: E402
from statespace.plotting import plot_learning_curve, plot_states  # noqa: E402


def test_plot_states_draws_bands_around_means():
    model = LinearGaussianSSM(random_params(np.random.default_rng(0), d=2, m=2))
    x, y = model.sample(50, rng=0)
    res = model.smooth(y)
    fig, axes = plot_states(res, truth=x, level=0.9)
    assert len(axes) == 2
    band = axes[0].collections[0].get_paths()[0].vertices
    sd = np.sqrt(res.smoothed_covs[:, 0, 0])
    assert np.isclose(band[:, 1].max(), (res.smoothed_means[:, 0] + 1.6448536269514722 * sd).max())
    np.testing.assert_allclose(axes[1].lines[0].get_ydata(), res.smoothed_means[:, 1])
    fig2, axes2 = plot_states(model.filter(y), dims=[1])
    assert len(axes2) == 1 and "filtered" in axes2[0].lines[0].get_label()
    with pytest.raises(ShapeError, match="dims"):
        plot_states(res, dims=[2])
    with pytest.raises(ShapeError, match="level"):
        plot_states(res, level=1.0)
    with pytest.raises(ShapeError, match="result"):
        plot_states(object())
    matplotlib.pyplot.close("all")


def test_plot_learning_curve():
    fit = LinearGaussianSSM(random_params(np.random.default_rng(1), d=1, m=1))
    _, y = fit.sample(40, rng=1)
    res = fit.fit(y, max_iter=5, tol=0.0, progress=False)
    fig, ax = plot_learning_curve(res)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), res.log_likelihoods)
    with pytest.raises(ShapeError, match="fit"):
        plot_learning_curve(np.zeros((2, 2)))
    matplotlib.pyplot.close("all")
