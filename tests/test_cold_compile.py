"""A first call on an empty cache compiles no array-assignment error path.

An array assignment ``dst[a:b] = src`` in a compiled kernel makes Numba compile its
shape-mismatch error path, which formats both shapes into a message: about 1.5 s per
array type of every first call on an empty cache. The kernels copy with
``statespace._numerics.copy.copy_into`` instead. A fresh process with empty caches runs
the HMM fit, the particle Gibbs sampler and the Kalman smoother of a fleet (its lock-step
replay of shared covariances) -- the entry points that had such assignments -- and lists, through Numba's compile events, every function that compiled that path.
"""

import os
import subprocess
import sys
import textwrap

CODE = textwrap.dedent(
    """
    import numpy as np
    from numba.core import event

    stack, culprits = [], []

    class Watch(event.Listener):
        def on_start(self, ev):
            d = ev.data.get("dispatcher")
            name = getattr(getattr(d, "py_func", None), "__qualname__", "?")
            if "raise_with_shape_context" in name:
                culprits.append(stack[-1] if stack else "?")
            stack.append(getattr(getattr(d, "py_func", None), "__module__", "?") + "." + name)

        def on_end(self, ev):
            stack.pop()

    event.register("numba:compile", Watch())

    import smc
    from hmm import GaussianHMM
    from statespace import StochasticVolatility
    from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM

    rng = np.random.default_rng(0)
    y = np.concatenate([rng.normal(m, 1.0, 60) for m in (-3.0, 0.0, 3.0)])
    GaussianHMM(3, 1).fit([y, y[:90]], max_iter=3, progress=False)
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    smc.particle_gibbs(sv, rng.standard_normal((30, 1)), n_iter=2, n_particles=16, rng=1, progress=False)
    lg = LGSSMParams(m0=np.zeros(2), P0=np.eye(2), F=0.9 * np.eye(2), Q=0.1 * np.eye(2), H=np.eye(1, 2), R=np.eye(1))
    LinearGaussianSSM(lg).smooth([rng.standard_normal((40, 1)) for _ in range(12)])  # lock-step groups
    print("compiled the error path:", sorted(set(culprits)))
    """
)


def test_first_fits_and_fleet_smoothing_compile_no_shape_mismatch_message(tmp_path):
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        STATESPACE_CACHE_DIR=str(tmp_path / "statespace"),
    )
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "compiled the error path: []" in out.stdout, out.stdout
