"""Quickstart: track a target moving in the plane with a linear-Gaussian state-space model.

The state is position and velocity, ``x_t = (px, py, vx, vy)``, with a
constant-velocity transition and noisy position measurements:

    x_t = F x_{t-1} + w_t,  w_t ~ N(0, Q)      F = [[I, dt I], [0, I]]
    y_t = H x_t + v_t,      v_t ~ N(0, R)      H = [I, 0]

We simulate a track, drop 10% of the measurements, run the Kalman filter and
the RTS smoother, then pretend we do not know the noise levels and learn
``Q``, ``R`` (and the initial state) by EM with the physics (``F``, ``H``) frozen.
Run it with::

    python examples/quickstart.py            # T = 2000, saves quickstart.png
    python examples/quickstart.py --small    # a few seconds (used by the tests)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from statespace import LinearGaussianSSM, load_model, save_model
from statespace.plotting import plot_learning_curve, plot_states


def tracking_model(dt: float = 0.1, q: float = 0.05, r: float = 0.5) -> LinearGaussianSSM:
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    # white-noise acceleration: the discretised covariance of a constant-velocity model
    Q1 = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    Q = np.kron(Q1, np.eye(2))
    return LinearGaussianSSM(m0=np.zeros(4), P0=np.eye(4), F=F, Q=Q, H=np.eye(2, 4), R=r * np.eye(2))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="short series and few EM iterations (for tests)")
    parser.add_argument("--out", type=Path, default=Path("."), help="directory for quickstart.png and the fitted model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    T, n_iter = (300, 30) if args.small else (2000, 200)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    truth = tracking_model()
    x, y = truth.sample(T, rng=rng)
    y[rng.random(T) < 0.1] = np.nan  # lost measurements: whole rows missing

    t0 = time.perf_counter()
    filtered = truth.filter(y)
    smoothed = truth.smooth(y)
    print(f"T={T}: filter + smoother in {time.perf_counter() - t0:.3f} s, log-likelihood {smoothed.log_likelihood:.2f}")
    rmse_f = np.sqrt(np.mean((filtered.filtered_means[:, :2] - x[:, :2]) ** 2))
    rmse_s = np.sqrt(np.mean((smoothed.smoothed_means[:, :2] - x[:, :2]) ** 2))
    print(f"position RMSE: filtered {rmse_f:.3f}, smoothed {rmse_s:.3f} (measurement noise sd {np.sqrt(0.5):.3f})")

    # Learn the noise levels from a wrong guess, keeping the known physics fixed.
    model = LinearGaussianSSM(truth.params.replace(Q=np.eye(4), R=np.eye(2)), frozen=("F", "H"))
    fit = model.fit(y, max_iter=n_iter, tol=1e-9)
    print(
        f"EM: {fit.n_iter} iterations, converged={fit.converged}, "
        f"log-likelihood {fit.log_likelihoods[0]:.2f} -> {fit.log_likelihoods[-1]:.2f}"
    )
    np.set_printoptions(precision=3, suppress=False)
    print("velocity noise variances: true", np.diag(truth.params.Q)[2:], "estimated", np.diag(model.params.Q)[2:])
    print("measurement noise R: true\n", truth.params.R, "\nestimated\n", model.params.R)

    saved = save_model(args.out / "quickstart_model.npz", model)
    assert np.array_equal(load_model(saved).params.R, model.params.R)
    forecast = model.forecast(y, steps=10)
    print(f"10-step position forecast sd: {np.sqrt(forecast.obs_covs[-1].diagonal())}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 7))
    grid = fig.add_gridspec(4, 2)
    state_axes = [fig.add_subplot(grid[i, 0]) for i in range(4)]
    plot_states(model.smooth(y), truth=x, axes=state_axes, labels=["px", "py", "vx", "vy"])
    plot_learning_curve(fit, ax=fig.add_subplot(grid[:2, 1]))
    track = fig.add_subplot(grid[2:, 1])
    track.plot(y[:, 0], y[:, 1], ".", ms=2, alpha=0.4, label="measurements")
    track.plot(x[:, 0], x[:, 1], "k-", lw=0.8, label="true track")
    track.plot(smoothed.smoothed_means[:, 0], smoothed.smoothed_means[:, 1], lw=1.2, label="smoothed")
    track.legend(fontsize="small")
    fig.tight_layout()
    png = args.out / "quickstart.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    print(f"saved {png} and {saved}")
    return {"truth": truth, "model": model, "fit": fit, "rmse_filtered": rmse_f, "rmse_smoothed": rmse_s, "png": png}


if __name__ == "__main__":
    main()
