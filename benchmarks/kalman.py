"""Kalman filter, RTS smoother and EM against dynamax (jitted, warm, float64) on CPU.

The model is the 4-d constant-velocity tracking model with 2-d position
measurements, T = 10,000. Prints one JSON line per case (GUIDE section 3):
``kalman_filter``, ``kalman_smoother``, ``kalman_em`` (50 EM iterations against
dynamax's ``fit_em``) and ``kalman_cold`` (a fresh process: import, first
filter and smoother call, with our kernels compiled and cached beforehand).

Run: ``python benchmarks/kalman.py`` (``--repeats N`` to change the best-of count).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

CASE = "d4_m2_T10000"
T = 10_000


def tracking_params():
    from statespace.linear_gaussian import LGSSMParams

    dt = 0.1
    F = np.eye(4)
    F[0, 2] = F[1, 3] = dt
    Q = np.kron(0.05 * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]), np.eye(2))
    return LGSSMParams(m0=np.zeros(4), P0=np.eye(4), F=F, Q=Q, H=np.eye(2, 4), R=0.5 * np.eye(2))


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def emit(bench, ours, peer, peer_s, **extra):
    line = {"bench": bench, "case": CASE, "ours_s": round(ours, 6), "peer": peer}
    if peer_s is not None:
        line.update(peer_s=round(peer_s, 6), speedup=round(peer_s / ours, 2))
    line.update(extra)
    print(json.dumps(line), flush=True)


_COLD_OURS = """
import time; t0 = time.perf_counter()
import numpy as np
import statespace
from statespace.linear_gaussian import kalman_filter, rts_smoother
y = np.load({path!r})
params = statespace.load_params({params!r})
kalman_filter(params, y); rts_smoother(params, y)
print(time.perf_counter() - t0)
"""

_COLD_PEER = """
import time; t0 = time.perf_counter()
import numpy as np
import jax; jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from dynamax.linear_gaussian_ssm import LinearGaussianSSM, lgssm_filter, lgssm_smoother
p = dict(np.load({params!r}))
model = LinearGaussianSSM(4, 2)
params, _ = model.initialize(initial_mean=jnp.array(p["m0"]), initial_covariance=jnp.array(p["P0"]),
    dynamics_weights=jnp.array(p["F"]), dynamics_covariance=jnp.array(p["Q"]),
    emission_weights=jnp.array(p["H"]), emission_covariance=jnp.array(p["R"]))
y = jnp.array(np.load({path!r}))
jax.block_until_ready(jax.jit(lgssm_filter)(params, y)); jax.block_until_ready(jax.jit(lgssm_smoother)(params, y))
print(time.perf_counter() - t0)
"""


def cold_start(tmpdir, y, params):
    from statespace import save_params

    ypath, ppath = f"{tmpdir}/y.npy", f"{tmpdir}/params.npz"
    np.save(ypath, y)
    save_params(ppath, params)

    def run(code):
        out = subprocess.run(
            [sys.executable, "-c", code.format(path=ypath, params=ppath)], capture_output=True, text=True
        )
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return float(out.stdout.strip().splitlines()[-1])

    run(_COLD_OURS)  # make sure the kernels are compiled and cached
    ours = min(run(_COLD_OURS) for _ in range(3))
    try:
        peer = min(run(_COLD_PEER) for _ in range(2))
    except RuntimeError:
        peer = None
    return ours, peer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--em-iters", type=int, default=50)
    args = parser.parse_args(argv)

    from statespace import LinearGaussianSSM
    from statespace.linear_gaussian import fit_em, kalman_filter, rts_smoother

    params = tracking_params()
    _, y = LinearGaussianSSM(params).sample(T, rng=0)
    kalman_filter(params, y), rts_smoother(params, y)  # compile / load from cache
    ours_f = best_of(lambda: kalman_filter(params, y), args.repeats)
    ours_s = best_of(lambda: rts_smoother(params, y), args.repeats)
    start = params.replace(Q=np.eye(4), R=np.eye(2))
    fit_em(start, y, max_iter=1, tol=0.0, progress=False)
    ours_em = best_of(lambda: fit_em(start, y, max_iter=args.em_iters, tol=0.0, progress=False), 2)

    try:
        import dynamax
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from dynamax.linear_gaussian_ssm import LinearGaussianSSM as DLGSSM
        from dynamax.linear_gaussian_ssm import lgssm_filter, lgssm_smoother

        peer = f"dynamax {dynamax.__version__}"
        dmodel = DLGSSM(4, 2)

        def dparams(p):
            return dmodel.initialize(
                initial_mean=jnp.array(p.m0),
                initial_covariance=jnp.array(p.P0),
                dynamics_weights=jnp.array(p.F),
                dynamics_covariance=jnp.array(p.Q),
                emission_weights=jnp.array(p.H),
                emission_covariance=jnp.array(p.R),
            )

        dp, props = dparams(params)
        yj = jnp.array(y)
        jf, js = jax.jit(lgssm_filter), jax.jit(lgssm_smoother)
        jax.block_until_ready(jf(dp, yj)), jax.block_until_ready(js(dp, yj))
        peer_f = best_of(lambda: jax.block_until_ready(jf(dp, yj)), args.repeats)
        peer_s = best_of(lambda: jax.block_until_ready(js(dp, yj)), args.repeats)
        dstart, dprops = dparams(start)
        dmodel.fit_em(dstart, dprops, yj, num_iters=2, verbose=False)  # compile the jitted E/M steps
        peer_em = best_of(
            lambda: jax.block_until_ready(dmodel.fit_em(dstart, dprops, yj, num_iters=args.em_iters, verbose=False)[1]),
            2,
        )
    except ImportError:
        peer, peer_f, peer_s, peer_em = "dynamax (not installed)", None, None, None

    emit("kalman_filter", ours_f, peer, peer_f)
    emit("kalman_smoother", ours_s, peer, peer_s)
    emit(
        "kalman_em",
        ours_em,
        peer,
        peer_em,
        iterations=args.em_iters,
        note="dynamax also learns dynamics/emission biases",
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cold, cold_peer = cold_start(tmp, y, params)
    emit("kalman_cold", cold, peer, cold_peer, what="fresh process: import, first filter + smoother call")


if __name__ == "__main__":
    main()
