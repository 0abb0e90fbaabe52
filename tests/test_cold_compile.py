"""What a first call on an empty cache compiles: no array-assignment error path, and each of the
Kalman E-step's loops once for the paths the data take.

An array assignment ``dst[a:b] = src`` in a compiled kernel makes Numba compile its
shape-mismatch error path, which formats both shapes into a message: about 1.5 s per
array type of every first call on an empty cache. The kernels copy with
``statespace._numerics.copy.copy_into`` instead. A fresh process with empty caches runs
the HMM fit, a fleet's Viterbi paths, filter and forecast, a Markov jump process's fit and
filter, the particle Gibbs sampler and the Kalman smoother of a fleet (its lock-step replay of
shared covariances) -- the entry points that had such assignments -- and lists, through Numba's compile events, every function that compiled that path.

A fleet of short HMM sequences runs in vector lanes, which drop a step's negligible terms
themselves (an AR model's first step, far below the best state's): its first fit does not compile
the one-sequence forward-backward (5 s).

A literal argument (a mode constant, ``True``) gives Numba a signature per value, and an
``is None`` test inside an inlined function is not pruned: a first LGSSM fleet fit compiled four
copies of ``_stats`` and three of ``_filter``. The same process then fits the smoother's fleet
(equal lengths: the sharing and lock-step paths) and one sequence (the lone path), and counts
the compilations of each loop of ``statespace.linear_gaussian._fast`` after each.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

CODE = textwrap.dedent(
    """
    import json

    import numpy as np
    from numba.core import event

    stack, culprits, counts = [], [], {}

    class Watch(event.Listener):
        def on_start(self, ev):
            d = ev.data.get("dispatcher")
            name = getattr(getattr(d, "py_func", None), "__qualname__", "?")
            if "raise_with_shape_context" in name:
                culprits.append(stack[-1] if stack else "?")
            stack.append(getattr(getattr(d, "py_func", None), "__module__", "?") + "." + name)
            counts[stack[-1]] = counts.get(stack[-1], 0) + 1

        def on_end(self, ev):
            stack.pop()

    event.register("numba:compile", Watch())

    import smc
    from hmm import GaussianHMM
    from statespace import StochasticVolatility
    from statespace.linear_gaussian import LGSSMParams, LinearGaussianSSM

    from hmm import ARHMM

    rng = np.random.default_rng(0)
    ARHMM(3, 2).fit([rng.standard_normal((100, 2)) + (i % 3) for i in range(20)], max_iter=3, progress=False, rng=0)
    print("ARHMM fleet:", json.dumps({f: counts.get("hmm.batch." + f, 0) for f in ("_lane_split", "_posteriors_kernel")}))
    y = np.concatenate([rng.normal(m, 1.0, 60) for m in (-3.0, 0.0, 3.0)])
    fleet_hmm = GaussianHMM(3, 1)
    fleet_hmm.fit([y, y[:90]], max_iter=3, progress=False)
    fleet_hmm.most_likely_states([y, y[:90]])  # a fleet's Viterbi paths, one compiled call
    fleet_hmm.filter([y, y[:90]])  # a fleet's predicted probabilities, one compiled call
    fleet_hmm.forecast(y, 5, n_samples=3, rng=0)  # sampled rollouts
    from hmm.markov_jump import MarkovJumpProcess

    grids = [np.sort(rng.uniform(0.0, 30.0, 20)) for _ in range(2)]
    jump = MarkovJumpProcess(np.array([[-1.0, 1.0], [0.5, -0.5]]))
    _, observed = jump.sample(rng=1, times=grids)
    jump.fit(observed, times=grids, max_iter=2, progress=False)  # transition matrices, intervals' posteriors
    jump.filter(observed, times=grids)
    sv = StochasticVolatility(mu=-1.0, phi=0.95, sigma=0.3)
    smc.particle_gibbs(sv, rng.standard_normal((30, 1)), n_iter=2, n_particles=16, rng=1, progress=False)
    lg = LGSSMParams(m0=np.zeros(2), P0=np.eye(2), F=0.9 * np.eye(2), Q=0.1 * np.eye(2), H=np.eye(1, 2), R=np.eye(1))
    fleet = [rng.standard_normal((40, 1)) for _ in range(12)]  # 480 rows: the generic loops of _fast
    LinearGaussianSSM(lg).smooth(fleet)  # lock-step groups
    print("compiled the error path:", sorted(set(culprits)))

    loops = ("_filter", "_rts", "_stats", "_filter_smooth", "_lockstep_e_step")
    def kalman():
        return {f: counts.get("statespace.linear_gaussian._fast." + f, 0) for f in loops}
    LinearGaussianSSM(lg).fit(fleet, max_iter=2, progress=False)
    print("fleet fit:", json.dumps(kalman()))
    LinearGaussianSSM(lg).fit(rng.standard_normal((300, 1)), max_iter=2, progress=False)
    print("one-sequence fit:", json.dumps(kalman()))
    """
)


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    """The stdout of one fresh process with empty caches running :data:`CODE`."""
    tmp_path = tmp_path_factory.mktemp("cold")
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=str(tmp_path / "numba"),
        STATESPACE_CACHE_DIR=str(tmp_path / "statespace"),
        # every compilation in this one process, where the compile events count them
        # (tests/statespace/test_parallel_compile.py covers the helpers)
        STATESPACE_PARALLEL_COMPILE="0",
    )
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_first_fits_and_fleet_smoothing_compile_no_shape_mismatch_message(cold_run):
    assert "compiled the error path: []" in cold_run, cold_run


def _counts(stdout: str, label: str) -> dict:
    line = next(x for x in stdout.splitlines() if x.startswith(label))
    return json.loads(line[len(label) :])


def test_a_fleet_the_lanes_carry_never_compiles_the_one_sequence_kernel(cold_run):
    # the fleet's first steps lie thousands of nats below the best state's under the fitted initial
    # emissions: the lanes drop those terms themselves instead of sending the sequences alone
    assert _counts(cold_run, "ARHMM fleet:") == {"_lane_split": 1, "_posteriors_kernel": 0}


def test_kalman_e_step_compiles_each_loop_once_per_path_the_data_take(cold_run):
    # a fleet of equal lengths: the sharers' filter, RTS and statistics (the smoother's batch already
    # compiled the same _filter and _rts) and the lock-step replay, never the lone path
    assert _counts(cold_run, "fleet fit:") == {
        "_filter": 1,
        "_rts": 1,
        "_stats": 1,
        "_filter_smooth": 1,
        "_lockstep_e_step": 1,
    }
    # one sequence adds the lone path's copy of each (covariances at their fixed point left in place)
    assert _counts(cold_run, "one-sequence fit:") == {
        "_filter": 2,
        "_rts": 2,
        "_stats": 2,
        "_filter_smooth": 2,
        "_lockstep_e_step": 1,
    }
