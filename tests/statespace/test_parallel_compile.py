"""Kernels compiled side by side in helper processes (``statespace._parallel_compile``).

A fleet's Kalman smoother runs four kernels (the sources' filter and RTS, the lock-step replay of
the filter and of the RTS means); a fit's E-step runs one, ``batch_loop``, whose large callees are
standalone (``statespace._standalone``): for a fleet a helper compiles the lock-step filter
``_lockstep_filter`` and the filter and smoother ``_filter_smooth`` while the calling process compiles
the statistics ``_stats``, the lock-step replay ``_lockstep_e_step`` and ``batch_loop``; for one
sequence the calling process compiles ``_rts`` and ``_stats`` and a helper ``_filter_smooth``, before ``batch_loop``. Fresh processes with empty caches smooth
one fleet and take an E-step of the fleet, then of one sequence; Numba's compile events list what
the calling process compiled itself:

* with a helper: the calling process compiles one of the smoother's kernels and loads the other
  three from the disk, where the helper put them, and likewise loads the helper's callees while it
  compiles the fleet's and the one sequence's E-step kernels; the moments and the E-steps'
  statistics equal, bit for bit, those of a process that compiled everything itself (the helper
  compiled the same source for the same signatures);
* with a helper that fails at once: the calling process compiles them all, and nothing is lost;
* with the cache then warm: no helper starts and nothing compiles.
"""

import sys

import numpy as np
import pytest
from fresh_process import run

from statespace import _parallel_compile as pc

#: the smoother's four kernels, the E-step's kernel, the lock-step replay and its filter (which a helper
#: compiles for a fleet's E-step), and the two callees compiled side by side for one sequence's E-step
KERNELS = (
    "batch_moments",
    "batch_rts",
    "replay_groups",
    "replay_rts_groups",
    "batch_loop",
    "_lockstep_e_step",
    "_lockstep_filter",
    "_filter_smooth",
    "_rts",
    "_stats",
)

#: the statistics' imputation of rows with missing values, which complete data never compile
IMPUTATION = "add_emission_stats"

CODE = """
import statespace.linear_gaussian.batch as batch
from statespace.linear_gaussian import LGSSMParams, batch_smoother
from statespace.linear_gaussian.batch import batch_e_step

batch.compile_together = spy
rng = np.random.default_rng(0)
lg = LGSSMParams(
    m0=np.zeros(2), P0=np.eye(2), F=np.array([[0.9, 0.2], [0.0, 0.8]]), Q=0.1 * np.eye(2),
    H=np.array([[1.0, 0.5]]), R=np.eye(1),
)
y = rng.standard_normal((12 * 40, 1))  # 12 sequences of 40 steps: one group replayed in lock-step
out = batch_smoother(lg, y, np.arange(0, 481, 40), n_threads=2)
res = out.sequences()  # each sequence's moments (the batch's arrays have unused rows)
arrays = {f: np.concatenate([np.ravel(getattr(r, f)) for r in res]) for f in res[0]._fields}
# a fit's E-step (one kernel), of the fleet (in lock-step), then of one sequence (which runs alone)
stats = batch_e_step(lg, y, np.arange(0, 481, 40), n_threads=2)
arrays.update({f"e_step_{i}": np.asarray(v, dtype=float).ravel() for i, v in enumerate(stats)})
one = batch_e_step(lg, y[:40], np.array([0, 40]), n_threads=2)
arrays.update({f"one_e_step_{i}": np.asarray(v, dtype=float).ravel() for i, v in enumerate(one)})
np.savez(sys.argv[2], **arrays)
print(json.dumps({"helpers": helpers, "compiled": [k for k in compiled if k in sys.argv[3].split(",")]}))
"""


def _run(mode: str, cache, out) -> dict:
    return run(CODE, mode, cache, out, ",".join(KERNELS + (IMPUTATION,)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parallel_compile")
    shared = tmp / "shared_cache"
    return {
        "failing": (_run("failing", tmp / "own_cache", tmp / "failing.npz"), np.load(tmp / "failing.npz")),
        "cold": (_run("helper", shared, tmp / "cold.npz"), np.load(tmp / "cold.npz")),
        "warm": (_run("helper", shared, tmp / "warm.npz"), np.load(tmp / "warm.npz")),
    }


def _same(a, b, rtol=0.0):
    assert sorted(a.files) == sorted(b.files)
    for key in a.files:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=0.0)


def test_a_helper_compiles_all_but_one_kernel_and_the_results_are_the_same_bits(runs):
    report, arrays = runs["cold"]
    assert report["helpers"] == [1, 1, 1]
    assert report["compiled"] == [
        "replay_groups",  # the smoother's largest kernel (a helper compiled the other three) and
        "_lockstep_filter",  # its callee, the lock-step filter (the smoother's signature)
        "_stats",  # the fleet's E-step: the statistics, the lock-step replay (its filter loaded from the
        "_lockstep_e_step",  # disk, where a helper put it) and the kernel, which loads the filter and
        "batch_loop",  # smoother the helper compiled next
        "_rts",  # one sequence's E-step: the smoother's pass and the statistics here, the filter and
        "_stats",  # smoother in a helper (which loads that pass from the disk),
        "batch_loop",  # then the kernel, which loads the filter and smoother from the disk
    ]
    _same(arrays, runs["failing"][1])


def test_a_failing_helper_leaves_every_kernel_to_the_calling_process(runs):
    report, _ = runs["failing"]
    assert report["helpers"] == [1, 1, 1]
    # the E-step's kernel, filter-and-smoother and statistics twice: the lone path's, the fleet's; the
    # lock-step filter twice: the smoother's replay's, the E-step's; the smoother's pass twice: the
    # fleet smoother's (which the fleet's E-step shares), the lone path's
    twice = ["batch_loop", "_filter_smooth", "_stats", "_lockstep_filter", "_rts"]
    # and never the imputation: the data are complete, and _stats is compiled without it
    assert sorted(report["compiled"]) == sorted(KERNELS + tuple(twice))


def test_a_warm_cache_starts_no_helper_and_compiles_nothing(runs):
    report, arrays = runs["warm"]
    assert report == {"helpers": [0, 0, 0], "compiled": []}
    # every bit: the E-step's statistics are summed by _stats and _lockstep_e_step, whose machine code
    # batch_loop calls (statespace._standalone). Linked into batch_loop, their copy loaded from the disk
    # summed one statistic in another order than the copy compiled in the process (one ulp).
    _same(arrays, runs["cold"][1])


class _Kernel:
    def __init__(self, name):
        self.name = name


def test_shares_keep_each_kernel_whole_and_leave_the_callers_kernels_to_it():
    a, b, c, d = map(_Kernel, "abcd")
    remote = [(b, 1), (a, 2), (c, 1), (b, 2), (d, 1)]
    shares = pc._shares([(a, 1)], remote, 2)
    assert [[(k.name, s) for k, s in share] for share in shares] == [[("b", 1), ("b", 2), ("d", 1)], [("c", 1)]]
    # a signature of the caller's kernel stays with the caller (compiled after its first)
    assert all(k is not a for share in shares for k, _ in share)
    # the caller's share may hold several kernels: none of them goes to a helper
    shares = pc._shares([(a, 1), (c, 1)], remote, 1)
    assert [[(k.name, s) for k, s in share] for share in shares] == [[("b", 1), ("b", 2), ("d", 1)]]


def test_one_thread_the_switch_off_or_no_python_to_start_compiles_nothing_ahead(monkeypatch):
    class Looked(BaseException):  # not an Exception: compile_together's fallback does not catch it
        pass

    class Untouchable:
        def __iter__(self):
            raise Looked

    calls = Untouchable()
    assert pc.compile_together(calls, 1) == 0
    with monkeypatch.context() as m:
        m.setenv(pc.ENV, "0")
        assert pc.compile_together(calls, 4) == 0
    with monkeypatch.context() as m:
        m.setattr(sys, "executable", "/usr/local/bin/uwsgi")  # an embedding server: no helper to start
        assert pc.compile_together(calls, 4) == 0
    with pytest.raises(Looked):
        pc.compile_together(calls, 4)  # the guard itself: with none of the above, the calls are read


def test_first_use_is_a_kernel_that_has_compiled_nothing_in_this_process():
    import numba

    @numba.njit
    def twice(x):
        return 2 * x

    @numba.njit
    def thrice(x):
        return 3 * x

    assert pc.first_use(twice, thrice)
    twice(1.0)
    assert pc.first_use(twice, thrice)  # thrice still has nothing
    thrice(1.0)
    assert not pc.first_use(twice, thrice)
    assert not pc.first_use(twice.py_func)  # not a Numba kernel (NUMBA_DISABLE_JIT): nothing to compile


def test_without_numbas_cache_interface_nothing_is_compiled_ahead(monkeypatch):
    # _load_from_disk uses the dispatcher's cache object (no public API): where that interface is
    # gone, compile_together starts nothing and leaves each kernel to compile at its call
    from statespace._numerics.copy import copy_into

    def gone(dispatcher, sig):
        raise AttributeError("'Dispatcher' object has no attribute '_cache'")

    monkeypatch.setattr(pc, "_load_from_disk", gone)
    started = []
    monkeypatch.setattr(pc, "_start", lambda share: started.append(share))
    a, b = np.zeros(3, dtype=np.int8), np.zeros((2, 2), dtype=np.int8)
    before = dict(copy_into.overloads)
    assert pc.compile_together([(copy_into, (a, a)), (copy_into, (b, b))], 4) == 0
    assert started == [] and dict(copy_into.overloads) == before


def test_a_caller_waits_for_the_kernels_a_helper_reports_and_stops_one_past_the_timeout(monkeypatch):
    """``_Helper`` counts the bytes a helper writes (one per kernel finished); ``wait_for_helper`` waits
    for the count at which a kernel compiled for later is on the disk, once."""
    import subprocess
    import time

    script = "import sys, time\nfor _ in range(3):\n    time.sleep(0.3); sys.stdout.write('+'); sys.stdout.flush()\ntime.sleep(60)"  # fmt: skip
    helper = pc._Helper(subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE))
    kernel = _Kernel("k")
    monkeypatch.setitem(pc._LATER, id(kernel), (helper, 2))
    start = time.monotonic()
    pc.wait_for_helper(_Kernel("other"))  # not compiled for later: no wait
    assert helper.finished == 0 and id(kernel) in pc._LATER
    pc.wait_for_helper(kernel)
    assert helper.finished >= 2 and time.monotonic() - start >= 0.6 and id(kernel) not in pc._LATER
    assert helper.proc.poll() is None  # the helper goes on with the rest
    helper.wait(4, timeout=1.0)  # it never finishes a fourth: stopped
    assert helper.proc.poll() is not None and helper.finished == 3


def test_a_callers_kernel_waits_for_the_callees_a_helper_compiles_and_no_longer(monkeypatch):
    """``needs``: before compiling a kernel of its own share whose callee is in a helper's, the process waits
    until the helper has finished that callee (the count at its last signature), so that typing the
    caller loads the callee from the disk instead of compiling a second copy; other kernels wait for nothing."""
    events = []

    class Kernel(_Kernel):
        def compile(self, sig):
            events.append(("compile", self.name, sig))

    class Helper:
        def wait(self, n, timeout=None):
            events.append(("wait", n))

    a, b, c, d, e = map(Kernel, "abcde")
    monkeypatch.setattr(pc, "_pending", lambda calls: list(calls))
    monkeypatch.setattr(pc, "_start", lambda share, now: Helper())
    monkeypatch.setattr(pc, "_runs_python", lambda: True)
    calls = [(a, 1), (b, 1), (c, 1), (d, 1), (d, 2), (e, 1)]
    assert pc.compile_together(calls, 2, here=2, needs={b: (d, a), a: ()}) == 1
    # the helper's share is c, d (two signatures), e: b waits until the helper has finished three (d's
    # last signature), not e; a callee in this process's own share (a) is no wait
    assert events == [
        ("compile", "a", 1),
        ("wait", 3),
        ("compile", "b", 1),
        ("wait", 4),  # the whole share, then its kernels loaded from the disk
        ("compile", "c", 1),
        ("compile", "d", 1),
        ("compile", "d", 2),
        ("compile", "e", 1),
    ]
