"""Cold start: time from a fresh interpreter to the first result of each main entry point.

A user who restarts a notebook kernel pays the import and the compilation (or the
loading of cached machine code) before the first result. Each case runs in a fresh
subprocess and measures, inside it, the time from before ``import`` to the first
result, on a small problem (so that the time is the start-up, not the work):

* ``kalman_filter``, ``kalman_smoother``: linear-Gaussian model, d = 4, m = 2, T = 200;
* ``hmm_fit`` (5 EM iterations), ``hmm_smooth``: Gaussian HMM, K = 3, 1-d, T = 300;
* ``arhmm_fit`` (5 EM iterations): first-order autoregressive HMM, K = 3, 2-d, T = 300;
* ``kalman_fit`` (5 EM iterations): the linear-Gaussian model above, one sequence;
* ``mjp_fit`` (5 EM iterations): a 3-state Markov jump process observed on 5 irregular grids of 40 times;
* ``hmm_fit_fleet``, ``arhmm_fit_fleet``, ``kalman_filter_fleet``, ``kalman_smoother_fleet``,
  ``kalman_fit_fleet`` (5 EM iterations): the same verbs on a list of sequences (20 of
  T = 100, 2-d, for the HMMs; 50 of T = 100 for the linear-Gaussian model), which reach the
  batch kernels (and the HMM's vector lanes) instead of the one-sequence ones;
* ``bootstrap_filter``, ``paris``, ``particle_gibbs``, ``ppg``: stochastic volatility
  (a model written like a user's), T = 200; ``bootstrap_filter_blocks``: the same filter with
  10,000 particles, drawn in blocks and moved in parallel (a compiled loop of its own);
  ``bootstrap_filter_fleet``: 20 sequences of T = 100 with 500 particles, on threads (the
  loop's first compilation happens in a pool thread);
* ``deep_hmm_fit`` (3 generalised-EM iterations of 10 Adam steps): an HMM with S5 emissions
  (K = 3, 2-d, one layer of width 8), 10 sequences of T = 100: JAX's programs, which JAX's
  own persistent cache keeps in the library's cache directory (``statespace._compile.use_jax_cache``).

The time is the calling process's wall time. With an empty cache the Kalman fleet cases
start a helper process that compiles some of their kernels beside it
(``statespace._parallel_compile``): its CPU time is not counted, its wait is.

Two cache states, both in temporary directories (``NUMBA_CACHE_DIR`` and
``STATESPACE_CACHE_DIR``, under which the library keeps JAX's cache too) so that the
user's own caches are neither used nor touched: ``cache: "empty"`` (everything compiles)
and ``cache: "warm"`` (a previous process ran the same case; best of ``--repeats``).
One JSON line per case and state (GUIDE section 3)::

    {"bench": "bootstrap_filter_cold", "case": "sv_T200_N500", "cache": "warm", "ours_s": 0.71, ...}

Run: ``python benchmarks/cold_start.py`` (``--only paris`` for one entry point).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """
import time; _t0 = time.perf_counter()
import numpy as np
"""

_SV = """
import smc
from statespace import StochasticVolatility
sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
y = np.random.default_rng(0).standard_normal((200, 1))
"""

_LG = """
from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM, kalman_filter, rts_smoother
F = np.eye(4); F[0, 2] = F[1, 3] = 0.1
params = LGSSMParams(m0=np.zeros(4), P0=np.eye(4), F=F, Q=0.05 * np.eye(4), H=np.eye(2, 4), R=0.5 * np.eye(2))
y = np.random.default_rng(0).standard_normal((200, 2))
"""

_HMM = """
from hmm import GaussianEmissionParams, GaussianHMM, HMMParams
rng = np.random.default_rng(0)
y = np.concatenate([rng.normal(m, 1.0, 100) for m in (-3.0, 0.0, 3.0)])
A = np.full((3, 3), 0.05) + 0.85 * np.eye(3)
hmm_params = HMMParams(np.full(3, 1 / 3), A, GaussianEmissionParams.from_ar(np.array([[-3.0], [0.0], [3.0]]), np.ones((3, 1, 1))))
"""

_HMM_FLEET = """
from hmm import ARHMM, GaussianHMM
rng = np.random.default_rng(0)
ys = [rng.standard_normal((100, 2)) + (i % 3) for i in range(20)]
"""

_AR = """
from hmm import ARHMM
y = np.random.default_rng(0).standard_normal((300, 2))
"""

_MJP = """
from hmm.markov_jump import MarkovJumpProcess
rng = np.random.default_rng(0)
grids = [np.sort(rng.uniform(0.0, 50.0, 40)) for _ in range(5)]
_, ys = MarkovJumpProcess(np.array([[-1.0, 0.6, 0.4], [0.3, -0.5, 0.2], [0.5, 0.5, -1.0]])).sample(rng=1, times=grids)
start = np.array([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5], [0.5, 0.5, -1.0]])
"""

_LG_FLEET = """
from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM
F = np.eye(4); F[0, 2] = F[1, 3] = 0.1
params = LGSSMParams(m0=np.zeros(4), P0=np.eye(4), F=F, Q=0.05 * np.eye(4), H=np.eye(2, 4), R=0.5 * np.eye(2))
rng = np.random.default_rng(0)
ys = [rng.standard_normal((100, 2)) for _ in range(50)]
"""

_DEEP = """
from hmm import LearnedEmissionHMM
rng = np.random.default_rng(0)
ys = [np.cumsum(rng.standard_normal((100, 2)), axis=0) for _ in range(10)]
"""

#: entry point -> (case name, setup code, the first call)
CASES = {
    "kalman_filter": ("d4_m2_T200", _LG, "kalman_filter(params, y)"),
    "kalman_filter_fleet": ("d4_m2_B50_T100", _LG_FLEET, "LinearGaussianSSM(params).filter(ys)"),
    "kalman_smoother": ("d4_m2_T200", _LG, "rts_smoother(params, y)"),
    "kalman_smoother_fleet": ("d4_m2_B50_T100", _LG_FLEET, "LinearGaussianSSM(params).smooth(ys)"),
    "kalman_fit_fleet": (
        "d4_m2_B50_T100_iter5",
        _LG_FLEET,
        "LinearGaussianSSM(params).fit(ys, max_iter=5, progress=False)",
    ),
    "kalman_fit": ("d4_m2_T200_iter5", _LG, "LinearGaussianSSM(params).fit(y, max_iter=5, progress=False)"),
    "hmm_fit": ("K3_1d_T300", _HMM, "GaussianHMM(3, 1).fit(y, max_iter=5, progress=False)"),
    "arhmm_fit": ("K3_2d_T300", _AR, "ARHMM(3, 2).fit(y, max_iter=5, progress=False, rng=0)"),
    "hmm_smooth": ("K3_1d_T300", _HMM, "GaussianHMM(3, 1, params=hmm_params).smooth(y)"),
    "hmm_fit_fleet": ("K3_2d_B20_T100", _HMM_FLEET, "GaussianHMM(3, 2).fit(ys, max_iter=5, progress=False, rng=0)"),
    "arhmm_fit_fleet": ("K3_2d_B20_T100", _HMM_FLEET, "ARHMM(3, 2).fit(ys, max_iter=5, progress=False, rng=0)"),
    "mjp_fit": ("K3_S5_T40_iter5", _MJP, "MarkovJumpProcess(start).fit(ys, times=grids, max_iter=5, progress=False)"),
    "bootstrap_filter": ("sv_T200_N500", _SV, "smc.bootstrap_filter(sv, y, n_particles=500, rng=1)"),
    # the particles in blocks, moved in parallel (smc.particle_filter.particle_streams): a loop of its own
    "bootstrap_filter_blocks": ("sv_T200_N10000", _SV, "smc.bootstrap_filter(sv, y, n_particles=10_000, rng=1)"),
    "paris": ("sv_T200_N500", _SV, "smc.paris_smoother(sv, y, n_particles=500, rng=1)"),
    "bootstrap_filter_fleet": (
        "sv_B20_T100_N500",
        _SV + "ys = [y[i : i + 100] for i in range(20)]\n",
        "smc.bootstrap_filter(sv, ys, n_particles=500, rng=1)",
    ),
    "particle_gibbs": (
        "sv_T200_N64_iter20",
        _SV,
        "smc.particle_gibbs(sv, y, n_iter=20, n_particles=64, rng=1, progress=False)",
    ),
    "ppg": ("sv_T200_N32_iter5", _SV, "smc.ppg_smoother(sv, y, n_particles=32, n_iter=5, rng=1, progress=False)"),
    "deep_hmm_fit": (
        "s5_K3_2d_B10_T100_iter3",
        _DEEP,
        "LearnedEmissionHMM(3, 2, layer='s5', hidden=8, state=8, n_layers=1)"
        ".fit(ys, max_iter=3, m_steps=10, rng=0, progress=False)",
    ),
}


def script(entry: str) -> str:
    _, setup, call = CASES[entry]
    return _PRELUDE + setup + call + "\nprint(time.perf_counter() - _t0)\n"


def run_once(entry: str, cache_dir: str) -> float:
    # the user's own JAX cache directory, if set, would be used instead of the temporary one
    user = ("JAX_COMPILATION_CACHE_DIR", "STATESPACE_JAX_CACHE_DIR")
    env = dict(
        {k: v for k, v in os.environ.items() if k not in user},
        NUMBA_CACHE_DIR=os.path.join(cache_dir, "numba"),
        STATESPACE_CACHE_DIR=os.path.join(cache_dir, "statespace"),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, "-c", script(entry)], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{entry}: the subprocess failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="best-of count for the warm cache")
    parser.add_argument("--only", nargs="*", choices=sorted(CASES), help="entry points to run (default: all)")
    args = parser.parse_args(argv)
    for entry in args.only or CASES:
        with tempfile.TemporaryDirectory(prefix="statespace-cold-") as cache_dir:
            empty = run_once(entry, cache_dir)
            warm = min(run_once(entry, cache_dir) for _ in range(args.repeats))
        for state, seconds in (("empty", empty), ("warm", warm)):
            print(
                json.dumps(
                    {
                        "bench": f"{entry}_cold",
                        "case": CASES[entry][0],
                        "cache": state,
                        "ours_s": round(seconds, 3),
                        "peer": None,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
