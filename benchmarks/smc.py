"""Benchmark: bootstrap particle filter and PaRIS on a scalar linear-Gaussian model, against `particles` 0.4.

Model (both libraries; ours is written as a seven-kernel user model, like particles' `LinearGauss`,
and the library's general `LinearGaussianSSM` is timed too, as `ours_s_LinearGaussianSSM`): x_0 ~ N(0, sigma0^2), x_t = rho x_{t-1} + sigmaX eps_t, y_t = x_t + sigmaY eta_t
with rho = 0.9, sigmaX = 1, sigmaY = 0.2 (the defaults of `particles.kalman.LinearGauss`), sigma0 = sigmaX / sqrt(1 - rho^2); systematic resampling when
ESS < N/2; PaRIS with K = 2 backward draws smoothing (sum x_{t-1} x_t, sum x_t^2).

`particles` pins numpy<2, so it runs in its own virtual environment, created on first use under
$STATESPACE_BENCH_CACHE (default ~/.cache/statespace-bench) with a Python it supports. Its PaRIS is a
pure-Python loop, so it is timed on a shorter sequence and compared per particle-step.

    python benchmarks/smc.py            # all cases, one JSON line each (GUIDE section 3)
    python benchmarks/smc.py --no-peer  # our timings only

Warm timings are the best of several repeats after compilation, on one thread. Times are CPU
seconds of the process (`time.process_time`, both libraries single-threaded) because the shared
development machine is heavily loaded; wall-clock seconds are reported beside them (`*_wall_s`).
Cold start (interpreter start-up excluded: import + compilation + first run of N=1000, T=1000) is
measured in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

RHO, SIGMA_X, SIGMA_Y = 0.9, 1.0, 0.2
T = 1000
PEER_PARIS_T = 30
K = 2
PEER = "particles 0.4"
CACHE = Path(os.environ.get("STATESPACE_BENCH_CACHE", Path.home() / ".cache" / "statespace-bench"))
VENV = CACHE / "particles-0.4"

OURS = textwrap.dedent(
    f"""
    import json, math, sys, time
    from typing import NamedTuple
    t0, c0 = time.perf_counter(), time.process_time()
    import numba as nb
    import numpy as np
    import smc
    from statespace import AdditiveFunctional, ModelKernels, StateSpaceModel
    from statespace.linear_gaussian import LinearGaussianSSM

    RHO, SX, SY = {RHO}, {SIGMA_X}, {SIGMA_Y}
    S0 = SX / math.sqrt(1 - RHO**2)
    L2PI = math.log(2 * math.pi)

    # the scalar model written as a user model (seven small kernels), as particles' LinearGauss is
    class P(NamedTuple):
        rho: float
        sx: float
        sy: float
        s0: float
        cx: float  # log normalising constants, computed once rather than per particle
        cy: float
        c0: float

    @nb.njit(cache=True)
    def sample_initial(kp, rng, x):
        x[0] = kp.s0 * rng.standard_normal()

    @nb.njit(cache=True)
    def log_initial(kp, x):
        z = x[0] / kp.s0
        return kp.c0 - 0.5 * z * z

    @nb.njit(cache=True)
    def sample_transition(kp, t, xp, rng, x):
        x[0] = kp.rho * xp[0] + kp.sx * rng.standard_normal()

    @nb.njit(cache=True)
    def log_transition(kp, t, xp, x):
        z = (x[0] - kp.rho * xp[0]) / kp.sx
        return kp.cx - 0.5 * z * z

    @nb.njit(cache=True)
    def log_transition_bound(kp, t):
        return kp.cx

    @nb.njit(cache=True)
    def log_emission(kp, t, x, y):
        v = y[t, 0]
        if math.isnan(v):
            return 0.0
        z = (v - x[0]) / kp.sy
        return kp.cy - 0.5 * z * z

    @nb.njit(cache=True)
    def sample_emission(kp, t, x, y, rng, y_out):
        y_out[0] = x[0] + kp.sy * rng.standard_normal()

    KERNELS = ModelKernels(sample_initial, log_initial, sample_transition, log_transition, log_transition_bound,
                           log_emission, sample_emission, state_dim=1, obs_dim=1)

    class ScalarLG(StateSpaceModel):
        def kernels(self):
            return KERNELS

        def kernel_params(self, inputs=None, times=None):
            c = [-0.5 * L2PI - math.log(s) for s in (SX, SY, S0)]
            return P(RHO, SX, SY, S0, *c)

    @nb.njit(cache=True)
    def h0(kp, x, y, out):
        out[0] = 0.0
        out[1] = x[0] * x[0]

    @nb.njit(cache=True)
    def h(kp, t, xp, x, y, out):
        out[0] = xp[0] * x[0]
        out[1] = x[0] * x[0]

    fun = AdditiveFunctional(h0, h, 2)
    models = {{
        "scalar": ScalarLG(),
        "lgssm": LinearGaussianSSM(m0=[0.0], P0=[[S0**2]], F=[[RHO]], Q=[[SX**2]], H=[[1.0]], R=[[SY**2]]),
    }}
    _, y = models["scalar"].sample({T}, rng=0)

    def run(name, which, N, seed):
        if which == "filter":
            return smc.bootstrap_filter(models[name], y, N, rng=seed)
        return smc.paris_smoother(models[name], y, fun, N, n_backward={K}, rng=seed)

    if sys.argv[1] == "cold":
        run("scalar", sys.argv[2], 1000, 0)
        print(json.dumps({{"cold_s": time.process_time() - c0, "cold_wall_s": time.perf_counter() - t0}}))
    else:
        out = {{}}
        for name in models:
            for which, N in (("filter", 1000), ("filter", 10000), ("paris", 1000)):
                run(name, which, 100, 0)
                cpu, wall = [], []
                for r in range(5 if N <= 1000 else 3):
                    c, s = time.process_time(), time.perf_counter()
                    res = run(name, which, N, r + 1)
                    cpu.append(time.process_time() - c)
                    wall.append(time.perf_counter() - s)
                out[f"{{name}}_{{which}}_{{N}}"] = min(cpu)
                out[f"{{name}}_{{which}}_{{N}}_wall"] = min(wall)
                if which == "paris":
                    out[f"{{name}}_paris_fallback_rate"] = res.fallback_rate
        print(json.dumps(out))
    """
)

PEER_SCRIPT = textwrap.dedent(
    f"""
    import json, time
    import numpy as np
    import particles
    from particles import collectors, kalman
    from particles import state_space_models as ssms

    RHO, SX, SY = {RHO}, {SIGMA_X}, {SIGMA_Y}

    class LG(kalman.LinearGauss):
        def upper_bound_log_pt(self, t):
            return -0.5 * np.log(2 * np.pi * self.sigmaX**2)

        def add_func(self, t, xp, x):
            if xp is None:
                return np.stack([np.zeros_like(x), x**2], axis=-1)
            return np.stack([xp * x, np.broadcast_to(x**2, np.shape(xp * x))], axis=-1)

    model = LG(rho=RHO, sigmaX=SX, sigmaY=SY)
    _, y = model.simulate({T})

    def run(N, T, paris):
        fk = ssms.Bootstrap(ssm=model, data=y[:T])
        collect = [collectors.Paris(Nparis={K})] if paris else None
        alg = particles.SMC(fk=fk, N=N, resampling="systematic", ESSrmin=0.5, collect=collect)
        c, s = time.process_time(), time.perf_counter()
        alg.run()
        return time.process_time() - c, time.perf_counter() - s

    out = {{}}
    for key, N, T, paris, reps in (("filter_1000", 1000, {T}, False, 3), ("filter_10000", 10000, {T}, False, 3),
                                   ("paris_1000", 1000, {PEER_PARIS_T}, True, 1)):
        runs = [run(N, T, paris) for _ in range(reps)]
        out[key] = min(r[0] for r in runs)
        out[key + "_wall"] = min(r[1] for r in runs)
    print(json.dumps(out))
    """
)


def _python_candidates():
    # a Python for which numpy<2 wheels exist (3.9 - 3.12)
    yield os.environ.get("STATESPACE_PEER_PYTHON")
    for name in ("python3.12", "python3.11", "python3.10"):
        yield shutil.which(name)
    pyenv = shutil.which("pyenv")
    if pyenv:
        for v in ("3.12", "3.11", "3.10"):
            try:
                path = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=True).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                break
            for d in sorted(Path(path, "versions").glob(f"{v}.*"), reverse=True):
                yield str(d / "bin" / "python3")


def _works(python: str) -> bool:
    try:
        r = subprocess.run(
            [python, "-c", "import sys; assert (3, 9) <= sys.version_info[:2] <= (3, 12)"],
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def peer_python() -> str | None:
    """The venv's interpreter with particles 0.4 installed, creating it if needed; None when impossible."""
    py = VENV / "bin" / "python"
    if py.exists() and subprocess.run([py, "-c", "import particles"], capture_output=True).returncode == 0:
        return str(py)
    for cand in _python_candidates():
        if not cand or not _works(cand):
            continue
        try:
            subprocess.run([cand, "-m", "venv", "--clear", str(VENV)], check=True, capture_output=True)
            subprocess.run(
                [py, "-m", "pip", "install", "-q", "particles==0.4", "numpy<2"],
                check=True,
                capture_output=True,
                timeout=1800,
            )
            return str(py)
        except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            print(f"# could not build the particles venv with {cand}: {exc}", file=sys.stderr)
    return None


def _run_json(cmd, env=None) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_thread_env() -> dict:
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-peer", action="store_true", help="skip particles")
    args = ap.parse_args()
    env = one_thread_env()
    with tempfile.TemporaryDirectory() as tmp:
        ours_py = Path(tmp, "ours.py")
        ours_py.write_text(OURS)
        cold = {w: _run_json([sys.executable, str(ours_py), "cold", w], env) for w in ("filter", "paris")}
        ours = _run_json([sys.executable, str(ours_py), "warm"], env)
        peer = None
        if not args.no_peer:
            py = peer_python()
            if py is None:
                print("# skipping particles 0.4: no Python 3.9-3.12 to build its numpy<2 venv", file=sys.stderr)
            else:
                peer_py = Path(tmp, "peer.py")
                peer_py.write_text(PEER_SCRIPT)
                peer = _run_json([py, str(peer_py)], env)

    for N in (1000, 10000):
        key = f"filter_{N}"
        rec = {"bench": "bootstrap_filter", "case": f"N{N}_T{T}", "ours_s": round(ours[f"scalar_{key}"], 6)}
        if peer is not None:
            rec.update(peer=PEER, peer_s=round(peer[key], 6), speedup=round(peer[key] / ours[f"scalar_{key}"], 1))
        rec.update(
            clock="cpu",
            ours_wall_s=round(ours[f"scalar_{key}_wall"], 6),
            ours_s_LinearGaussianSSM=round(ours[f"lgssm_{key}"], 6),
        )
        if peer is not None:
            rec.update(peer_wall_s=round(peer[key + "_wall"], 6))
        print(json.dumps(rec))
    steps = 1000 * (T - 1)
    ours_rate = ours["scalar_paris_1000"] / steps
    rec = {
        "bench": "paris",
        "case": f"N1000_T{T}_K{K}",
        "ours_s": round(ours["scalar_paris_1000"], 6),
        "ours_particle_steps_per_s": round(1.0 / ours_rate),
        "fallback_rate": round(ours["scalar_paris_fallback_rate"], 4),
        "ours_s_LinearGaussianSSM": round(ours["lgssm_paris_1000"], 6),
    }
    if peer is not None:
        peer_rate = peer["paris_1000"] / (1000 * (PEER_PARIS_T - 1))
        rec.update(
            peer=PEER,
            peer_T=PEER_PARIS_T,
            peer_s=round(peer["paris_1000"], 6),
            speedup=round(peer_rate / ours_rate, 1),
            speedup_basis="per particle-step",
        )
    rec.update(clock="cpu", ours_wall_s=round(ours["scalar_paris_1000_wall"], 6))
    print(json.dumps(rec))
    for bench, case, which in (
        ("bootstrap_filter_cold", f"N1000_T{T}", "filter"),
        ("paris_cold", f"N1000_T{T}_K{K}", "paris"),
    ):
        print(
            json.dumps(
                {
                    "bench": bench,
                    "case": case,
                    "ours_s": round(cold[which]["cold_s"], 3),
                    "clock": "cpu",
                    "ours_wall_s": round(cold[which]["cold_wall_s"], 3),
                }
            )
        )


if __name__ == "__main__":
    main()
