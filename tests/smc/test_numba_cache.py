"""Numba's on-disk cache must not record user-defined kernel-parameter types.

A compiled function generic over the user's ``kp`` type, if cached, writes that NamedTuple type into
its on-disk index; a later process in which the defining module is not importable then fails with
``ModuleNotFoundError`` when Numba loads the index. Two fresh processes share one temporary
``NUMBA_CACHE_DIR``: the first filters with a model whose parameter type lives in a throwaway module,
the second (without that module on ``sys.path``) filters a library model and must succeed.
"""

import os
import subprocess
import sys
import textwrap

USER_MODULE = textwrap.dedent(
    """
    import math
    from typing import NamedTuple

    import numba as nb

    from statespace import ModelKernels, StateSpaceModel


    class ThrowawayParams(NamedTuple):
        rho: float
        sy: float


    @nb.njit
    def sample_initial(kp, rng, x):
        x[0] = rng.standard_normal()


    @nb.njit
    def log_initial(kp, x):
        return -0.5 * x[0] * x[0]


    @nb.njit
    def sample_transition(kp, t, xp, rng, x):
        x[0] = kp.rho * xp[0] + rng.standard_normal()


    @nb.njit
    def log_transition(kp, t, xp, x):
        z = x[0] - kp.rho * xp[0]
        return -0.5 * z * z


    @nb.njit
    def log_transition_bound(kp, t):
        return 0.0


    @nb.njit
    def log_emission(kp, t, x, y):
        v = y[t, 0]
        if math.isnan(v):
            return 0.0
        z = (v - x[0]) / kp.sy
        return -0.5 * z * z


    @nb.njit
    def sample_emission(kp, t, x, y, rng, y_out):
        y_out[0] = x[0] + kp.sy * rng.standard_normal()


    class ThrowawayModel(StateSpaceModel):
        def kernels(self):
            return ModelKernels(sample_initial, log_initial, sample_transition, log_transition,
                                log_transition_bound, log_emission, sample_emission, state_dim=1, obs_dim=1)

        def kernel_params(self, inputs=None, times=None):
            return ThrowawayParams(0.9, 0.5)
    """
)

FIRST = textwrap.dedent(
    """
    import numpy as np
    import smc
    from throwaway_user_model import ThrowawayModel

    y = np.random.default_rng(0).standard_normal(20)
    res = smc.bootstrap_filter(ThrowawayModel(), y, n_particles=50, rng=1)
    assert np.isfinite(res.log_likelihood)
    res = smc.paris_smoother(ThrowawayModel(), y, n_particles=50, rng=2,
                             functional=smc.smoothed_marginals_functional(20))
    assert np.all(np.isfinite(res.estimate))
    print("first ok")
    """
)

SECOND = textwrap.dedent(
    """
    import numpy as np
    import smc
    from statespace import StochasticVolatility

    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    _, y = sv.sample(20, rng=0)
    res = smc.bootstrap_filter(sv, y, n_particles=50, rng=1)
    assert np.isfinite(res.log_likelihood)
    res = smc.paris_smoother(sv, y, n_particles=50, rng=2, functional=smc.smoothed_marginals_functional(20))
    assert np.all(np.isfinite(res.estimate))
    print("second ok")
    """
)


def _run(code, cwd, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), PYTHONPATH="")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_cache_written_with_a_user_param_type_loads_without_its_module(tmp_path):
    user_dir = tmp_path / "user"
    other_dir = tmp_path / "other"
    user_dir.mkdir()
    other_dir.mkdir()
    (user_dir / "throwaway_user_model.py").write_text(USER_MODULE)
    cache = tmp_path / "numba_cache"

    first = _run(FIRST, user_dir, cache)
    assert first.returncode == 0, first.stderr[-3000:]
    assert any(cache.rglob("*.nbi")), "the first process wrote no Numba cache: the test would prove nothing"

    second = _run(SECOND, other_dir, cache)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "second ok" in second.stdout
