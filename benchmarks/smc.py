"""Benchmark: bootstrap particle filter and PaRIS on a scalar linear-Gaussian model, against `particles` 0.4.

Model (both libraries): x_0 ~ N(0, sigma0^2), x_t = rho x_{t-1} + sigmaX eps_t, y_t = x_t + sigmaY eta_t
with rho = 0.9, sigmaX = 1, sigmaY = 0.5, sigma0 = sigmaX / sqrt(1 - rho^2); systematic resampling when
ESS < N/2; PaRIS with K = 2 backward draws smoothing (sum x_{t-1} x_t, sum x_t^2).

`particles` pins numpy<2, so it runs in its own virtual environment, created on first use under
$STATESPACE_BENCH_CACHE (default ~/.cache/statespace-bench) with a Python it supports. Its PaRIS is a
pure-Python loop, so it is timed on a shorter sequence and compared per particle-step.

    python benchmarks/smc.py            # all cases, one JSON line each (GUIDE section 3)
    python benchmarks/smc.py --no-peer  # our timings only

Warm timings are the best of several repeats after compilation, on one thread; cold start
(import + compilation + first run) is measured in a fresh process.
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
import time
from pathlib import Path

RHO, SIGMA_X, SIGMA_Y = 0.9, 1.0, 0.5
T = 1000
PEER_PARIS_T = 50
K = 2
PEER = "particles 0.4"
CACHE = Path(os.environ.get("STATESPACE_BENCH_CACHE", Path.home() / ".cache" / "statespace-bench"))
VENV = CACHE / "particles-0.4"

OURS = textwrap.dedent(
    f"""
    import json, sys, time
    t0 = time.perf_counter()
    import numba as nb
    import numpy as np
    import smc
    from statespace import AdditiveFunctional
    from statespace.linear_gaussian import LinearGaussianSSM

    RHO, SX, SY = {RHO}, {SIGMA_X}, {SIGMA_Y}
    model = LinearGaussianSSM(m0=[0.0], P0=[[SX**2 / (1 - RHO**2)]], F=[[RHO]], Q=[[SX**2]], H=[[1.0]], R=[[SY**2]])

    @nb.njit
    def h0(kp, x, y, out):
        out[0] = 0.0
        out[1] = x[0] * x[0]

    @nb.njit
    def h(kp, t, xp, x, y, out):
        out[0] = xp[0] * x[0]
        out[1] = x[0] * x[0]

    fun = AdditiveFunctional(h0, h, 2)
    _, y = model.sample({T}, rng=0)

    def run(which, N, seed):
        if which == "filter":
            return smc.bootstrap_filter(model, y, N, rng=seed)
        return smc.paris_smoother(model, y, fun, N, n_backward={K}, rng=seed)

    if sys.argv[1] == "cold":
        which = sys.argv[2]
        run(which, 1000, 0)
        print(json.dumps({{"cold_s": time.perf_counter() - t0}}))
    else:
        out = {{}}
        for which, N in (("filter", 1000), ("filter", 10000), ("paris", 1000)):
            run(which, N, 0)
            times = []
            for r in range(5):
                s = time.perf_counter()
                res = run(which, N, r + 1)
                times.append(time.perf_counter() - s)
            out[f"{{which}}_{{N}}"] = min(times)
            if which == "paris":
                out["paris_fallback_rate"] = res.fallback_rate
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
        s = time.perf_counter()
        alg.run()
        return time.perf_counter() - s

    out = {{}}
    for N in (1000, 10000):
        out[f"filter_{{N}}"] = min(run(N, {T}, False) for _ in range(3))
    out["paris_1000"] = min(run(1000, {PEER_PARIS_T}, True) for _ in range(2))
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
        r = subprocess.run([python, "-c", "import sys; assert (3, 9) <= sys.version_info[:2] <= (3, 12)"],
                           capture_output=True, timeout=60)
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
            subprocess.run([py, "-m", "pip", "install", "-q", "particles==0.4", "numpy<2"], check=True,
                           capture_output=True, timeout=1800)
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
        cold = {w: _run_json([sys.executable, str(ours_py), "cold", w], env)["cold_s"] for w in ("filter", "paris")}
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

    def line(bench, case, ours_s, peer_s, **extra):
        rec = {"bench": bench, "case": case, "ours_s": round(ours_s, 6)}
        if peer is not None:
            rec.update(peer=PEER, peer_s=round(peer_s, 6), speedup=round(peer_s / ours_s, 1))
        rec.update(extra)
        print(json.dumps(rec))

    for N in (1000, 10000):
        key = f"filter_{N}"
        line("bootstrap_filter", f"N{N}_T{T}", ours[key], peer[key] if peer else None)
    steps = 1000 * (T - 1)
    ours_rate = ours["paris_1000"] / steps
    rec = {
        "bench": "paris",
        "case": f"N1000_T{T}_K{K}",
        "ours_s": round(ours["paris_1000"], 6),
        "ours_particle_steps_per_s": round(1.0 / ours_rate),
        "fallback_rate": round(ours["paris_fallback_rate"], 4),
    }
    if peer is not None:
        peer_rate = peer["paris_1000"] / (1000 * (PEER_PARIS_T - 1))
        rec.update(peer=PEER, peer_T=PEER_PARIS_T, peer_s=round(peer["paris_1000"], 6),
                   speedup=round(peer_rate / ours_rate, 1), speedup_basis="per particle-step")
    print(json.dumps(rec))
    print(json.dumps({"bench": "bootstrap_filter_cold", "case": f"N1000_T{T}", "ours_s": round(cold["filter"], 3)}))
    print(json.dumps({"bench": "paris_cold", "case": f"N1000_T{T}_K{K}", "ours_s": round(cold["paris"], 3)}))


if __name__ == "__main__":
    main()
