"""The one compile mechanism (statespace._compile): particle loops of a model are cached on disk.

Oracles: Numba's own cache statistics of the generated entry functions (a fresh process that
finds the cache warm loads and does not compile), the file name the mechanism derives from the
files a model's kernels live in, and, for correctness of the cached and uncached paths, the exact
Kalman log-likelihood of a linear-Gaussian model written as a user model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

from statespace import _compile

LIBRARY = Path(_compile.__file__).resolve().parents[1]

#: A linear-Gaussian AR(1) observed in noise, written as a user writes a model.
USER_MODEL = textwrap.dedent(
    """
    import math
    from typing import NamedTuple

    import numba as nb

    from statespace import ModelKernels, StateSpaceModel

    LOG_2PI = math.log(2 * math.pi)


    class AR1Params(NamedTuple):
        rho: float
        sy: float


    @nb.njit
    def sample_initial(kp, rng, x):
        x[0] = rng.standard_normal()


    @nb.njit
    def log_initial(kp, x):
        return -0.5 * (LOG_2PI + x[0] * x[0])


    @nb.njit
    def sample_transition(kp, t, xp, rng, x):
        x[0] = kp.rho * xp[0] + rng.standard_normal()


    @nb.njit
    def log_transition(kp, t, xp, x):
        z = x[0] - kp.rho * xp[0]
        return -0.5 * (LOG_2PI + z * z)


    @nb.njit
    def log_transition_bound(kp, t):
        return -0.5 * LOG_2PI


    @nb.njit
    def log_emission(kp, t, x, y):
        v = y[t, 0]
        if math.isnan(v):
            return 0.0
        z = (v - x[0]) / kp.sy
        return -0.5 * (LOG_2PI + z * z) - math.log(kp.sy)


    @nb.njit
    def sample_emission(kp, t, x, y, rng, y_out):
        y_out[0] = x[0] + kp.sy * rng.standard_normal()


    class AR1(StateSpaceModel):
        def kernels(self):
            return ModelKernels(sample_initial, log_initial, sample_transition, log_transition,
                                log_transition_bound, log_emission, sample_emission, state_dim=1, obs_dim=1)

        def kernel_params(self, inputs=None, times=None):
            return AR1Params(0.8, 0.7)
    """
)

#: Runs every particle entry point on the user model and on stochastic volatility, then prints
#: the log-likelihoods and Numba's cache statistics of each generated entry function.
RUN_ALL = textwrap.dedent(
    """
    import json
    import numpy as np
    import smc
    from statespace import StochasticVolatility, _compile
    from statespace.linear_gaussian import LGSSMParams, kalman_filter
    {model_import}

    y = np.random.default_rng(0).normal(size=(30, 1))
    out = {{}}
    marginals = smc.smoothed_marginals_functional(30)
    for name, model in (("user", AR1()), ("sv", StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3))):
        out[name + "_bootstrap"] = smc.bootstrap_filter(model, y, n_particles=2000, rng=1).log_likelihood
        out[name + "_paris"] = float(smc.paris_smoother(model, y, marginals, n_particles=50, rng=2).estimate[0])
        out[name + "_gibbs"] = float(smc.particle_gibbs(model, y, n_iter=3, n_particles=8, rng=3,
                                                         progress=False).smoothed_means[0, 0])
        out[name + "_ppg"] = float(smc.ppg_smoother(model, y, marginals, n_particles=8, n_iter=2, rng=4,
                                                    progress=False).estimate[0])
    params = LGSSMParams(m0=np.zeros(1), P0=np.eye(1), F=0.8 * np.eye(1), Q=np.eye(1), H=np.eye(1),
                         R=0.49 * np.eye(1))
    out["kalman"] = float(kalman_filter(params, y).log_likelihood)
    stats = []
    for entry in _compile._entries.values():
        module = entry.generated()
        if module is not None:
            s = module.entry.stats
            stats.append([module.__name__, sum(s.cache_hits.values()), sum(s.cache_misses.values()),
                          len(entry.template.signatures)])
    out["stats"] = stats
    print("RESULT" + json.dumps(out))
    """
)


def _run(code, cwd, cache_dir, library, extra_path=()):
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(cache_dir / "numba"),
        STATESPACE_CACHE_DIR=str(cache_dir / "statespace"),
        PYTHONPATH=os.pathsep.join([str(library), *map(str, extra_path)]),
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory):
    """The same work in three fresh processes: empty cache, warm cache, and the model in ``__main__``."""
    tmp = tmp_path_factory.mktemp("compile")
    # a snapshot of the library: an edit to it between the runs would rightly change every key
    for package in _compile.LIBRARY_PACKAGES:
        shutil.copytree(LIBRARY / package, tmp / "lib" / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "user").mkdir()
    (tmp / "user" / "ar1_user_model.py").write_text(USER_MODEL)
    code = RUN_ALL.format(model_import="from ar1_user_model import AR1")
    cold = _run(code, tmp / "user", tmp / "cache", tmp / "lib", [tmp / "user"])
    warm = _run(code, tmp / "user", tmp / "cache", tmp / "lib", [tmp / "user"])
    main = _run(USER_MODEL + RUN_ALL.format(model_import=""), tmp, tmp / "cache", tmp / "lib")
    return cold, warm, main, tmp


def test_a_fresh_process_with_a_warm_cache_loads_every_particle_loop_without_compiling(user_runs):
    cold, warm, _, _ = user_runs
    names = {s[0] for s in cold["stats"]}
    # filter, PaRIS, the conditional sweep and backward sampling, for both models
    assert len(names) >= 6, cold["stats"]
    assert all(s[1] == 0 and s[2] >= 1 for s in cold["stats"]), cold["stats"]
    assert {s[0] for s in warm["stats"]} == names
    # loaded from disk: one hit, no miss, and the generic template behind it never compiled
    assert all(s[1] >= 1 and s[2] == 0 and s[3] == 0 for s in warm["stats"]), warm["stats"]
    assert {k: v for k, v in warm.items() if k != "stats"} == {k: v for k, v in cold.items() if k != "stats"}


def test_a_model_defined_in_main_runs_uncached_with_the_same_results(user_runs):
    cold, _, main, tmp = user_runs
    # the same seeds give the same numbers whether the loop was generated and cached or not
    assert {k: v for k, v in main.items() if k != "stats"} == {k: v for k, v in cold.items() if k != "stats"}
    # nothing was generated for the __main__ model: only stochastic volatility's entries
    assert {s[0] for s in main["stats"]} < {s[0] for s in cold["stats"]}
    assert not any("__main__" in p.read_text() for p in (tmp / "cache" / "statespace").glob("*.py"))
    # and the estimate is right: the exact Kalman log-likelihood (N = 2000 on T = 30: sd well under 0.1)
    assert abs(main["user_bootstrap"] - main["kalman"]) < 0.3


def test_editing_a_kernel_module_renames_the_generated_module(tmp_path, monkeypatch):
    from smc import particle_filter as pf

    (tmp_path / "edited_user_model.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("STATESPACE_CACHE_DIR", str(tmp_path / "cache"))
    import edited_user_model

    kernels = edited_user_model.AR1().kernels()
    params = list(_compile.inspect.signature(pf.filter_loop.py_func).parameters)
    fixed = {"kernels": kernels, "proposal": pf.BOOTSTRAP, "fn": pf.NO_FUNCTION.fn}
    first = _compile._generate(pf.filter_loop, fixed, params)
    assert "from edited_user_model import sample_initial" in Path(first.__file__).read_text()
    assert _compile._generate(pf.filter_loop, fixed, params).__name__ == first.__name__
    path = tmp_path / "edited_user_model.py"
    path.write_text(path.read_text() + "\n# edited\n")
    second = _compile._generate(pf.filter_loop, fixed, params)
    assert second.__name__ != first.__name__
    assert [p.name for p in (tmp_path / "cache").glob("*.py")] == [second.__name__ + ".py"]  # the stale one is gone
    for name in (first.__name__, second.__name__, "edited_user_model"):
        sys.modules.pop(name, None)


def test_the_uncached_path_gives_the_same_filter(monkeypatch):
    """Where the bundle type cannot be registered (another Numba), the template runs directly."""
    import smc
    from statespace import StochasticVolatility

    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    y = np.random.default_rng(5).normal(size=(40, 1))
    cached = smc.bootstrap_filter(sv, y, n_particles=300, rng=7)
    monkeypatch.setattr(_compile, "BUNDLES_AVAILABLE", False)
    direct = smc.bootstrap_filter(sv, y, n_particles=300, rng=7)
    np.testing.assert_array_equal(cached.filtered_means, direct.filtered_means)
    assert cached.log_likelihood == direct.log_likelihood


def test_kernels_compiled_without_the_private_refcount_option_agree():
    """The fallback for a Numba without ``_nrt``: the linear-Gaussian kernels compiled plainly."""
    from statespace.linear_gaussian import LinearGaussianSSM
    from statespace.linear_gaussian import _particle_kernels as pk

    assert _compile.NO_REFCOUNT == {"_nrt": False}  # this Numba has it: the fast path is the tested one
    rng = np.random.default_rng(0)
    d, m = 3, 2
    A = rng.normal(size=(d, d))
    model = LinearGaussianSSM(
        F=0.5 * np.eye(d),
        Q=A @ A.T / d + np.eye(d),
        H=rng.normal(size=(m, d)),
        R=np.eye(m),
        m0=np.zeros(d),
        P0=np.eye(d),
    )
    kp = model.kernel_params()
    x_prev, x, y = rng.normal(size=d), rng.normal(size=d), rng.normal(size=(4, m))
    for name in ("log_initial", "log_transition", "log_emission"):
        fast = getattr(pk, name)
        plain = numba.njit(fast.py_func)
        args = {"log_initial": (kp, x), "log_transition": (kp, 1, x_prev, x), "log_emission": (kp, 2, x, y)}[name]
        assert fast(*args) == pytest.approx(plain(*args), rel=1e-14, abs=1e-14)
