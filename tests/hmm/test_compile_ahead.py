"""A first fit's kernels compiled side by side (``hmm.em.compile_e_step``).

Before an HMM's first fit in a process, ``compile_e_step`` lists the kernels its initialisation and
E-step will run, with arguments of the types they will be passed, and hands them to
``statespace._parallel_compile.compile_together``. What is checked:

* the argument types listed are those the real calls pass: after a fit of the same data, every
  signature listed is one its kernel compiled for (over emission kinds, lags, inputs, missing
  values, one sequence and fleets, and a Markov jump process's E-step), so a helper never
  compiles a signature nobody runs;
* in a fresh process with an empty cache, an autoregressive HMM's first fit compiles the
  emission's two large kernels in a helper (the calling process loads them from the disk) and
  gives, bit for bit, the fit of a process whose helper fails at once (and which compiles
  everything itself).
"""

import numpy as np
import pytest
from fresh_process import run

from hmm import ARHMM, HMM, GaussianHMM
from hmm.batch import batch_posteriors, exact_kernels, posteriors_kernels
from hmm.em import concatenated
from statespace import _parallel_compile as pc
from statespace._ragged import pack
from statespace.distributed import EStep


def _data(d, n, T, missing, seed=0):
    rng = np.random.default_rng(seed)
    ys = [rng.standard_normal((T, d)) + (i % 3) for i in range(n)]
    if missing:
        ys[0][3, 0] = np.nan
    return ys[0] if n == 1 else ys


CASES = {
    "ar1_one_sequence": (lambda: ARHMM(3, 2), 2, 1, 300, False, None),
    "ar2_fleet_missing": (lambda: ARHMM(3, 2, lags=2), 2, 20, 80, True, None),
    "full_one_sequence_missing": (lambda: GaussianHMM(3, 2), 2, 1, 300, True, None),
    "diag_fleet": (lambda: GaussianHMM(4, 3, covariance_type="diag"), 3, 25, 60, False, None),
    "tied_inputs": (lambda: GaussianHMM(2, 2, covariance_type="tied", input_dim=1), 2, 3, 90, False, 1),
    "one_dimensional": (lambda: GaussianHMM(3, 1), 1, 1, 200, False, None),
    "categorical": (lambda: HMM(3, 1, "categorical", n_symbols=4), 1, 4, 50, False, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_listed_signatures_are_those_a_fit_compiles(case, monkeypatch):
    monkeypatch.setenv(pc.ENV, "0")  # nothing compiled ahead: the kernels' signatures are those the calls compiled
    make, d, n, T, missing, p = CASES[case]
    model = make()
    ys = _data(d, n, T, missing)
    if case == "categorical":
        ys = [np.floor(np.abs(y[:, :1])) % 4 for y in ys]
    inputs = None if p is None else [np.random.default_rng(1).standard_normal((T, p)) for _ in range(n)]
    model.fit(ys, inputs=inputs, max_iter=2, progress=False, rng=0)
    data = model._prepare(ys, inputs, None)
    with EStep(lambda *a: None, list(zip(data.seqs, data.inputs, data.log_pls))) as estep:
        y, u, _, offsets = concatenated(estep.items, model.n_states)
    K = model.n_states
    calls = posteriors_kernels(np.full(K, 1.0 / K), np.full((K, K), 1.0 / K), offsets) + model.emission_model.kernels(
        y, u, offsets
    )
    names = [f.py_func.__name__ for f, _ in calls]
    assert names, "every fit runs a compiled forward-backward"
    for kernel, args in calls:
        sig = pc._signature(kernel, args)
        assert sig in kernel.overloads, (kernel.py_func.__name__, sig, list(kernel.overloads))
    if isinstance(model, ARHMM) or missing:
        assert "ar_accumulate_batch" in names
    if case not in ("one_dimensional", "categorical"):
        assert "_gaussian_kernel" in names


@pytest.mark.parametrize("S", [1, 12])
def test_the_kernels_for_later_are_those_the_paths_the_data_decide_compile(S, monkeypatch):
    """``exact_kernels``: the one-sequence kernel behind a fleet's lanes (a sequence too long for them)
    and the exact log-space pass (weights that underflow where the chain forbids dropping terms)."""
    monkeypatch.setenv(pc.ENV, "0")
    rng = np.random.default_rng(5)
    K = 3
    pi0, A = np.full(K, 1.0 / K), np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.0, 0.5, 0.5]])
    seqs = [rng.normal(size=(30, K)) for _ in range(S)]
    for s in seqs[::2]:
        s[0, 1:] -= 3000.0  # a first step the lanes cannot carry with this chain: the exact pass
    if S > 1:
        seqs.append(rng.normal(size=(70_000 // K, K)))  # too long for the lanes: the one-sequence kernel
    y, offsets = pack(seqs)
    with np.errstate(divide="ignore"):
        batch_posteriors(pi0, A, y, offsets, n_threads=1)
    calls = exact_kernels(pi0, A, offsets)
    names = [f.py_func.__name__ for f, _ in calls]
    assert names == (["_posteriors_kernel", "_exact_kernel"] if S > 1 else ["_exact_kernel"])
    for kernel, args in calls:
        assert pc._signature(kernel, args) in kernel.overloads, (kernel.py_func.__name__, list(kernel.overloads))


def test_the_markov_jump_e_step_lists_the_signatures_it_compiles(monkeypatch):
    from hmm.markov_jump import MarkovJumpProcess
    from hmm.markov_jump.em import e_step_kernels
    from hmm.markov_jump.inference import interval_table

    monkeypatch.setenv(pc.ENV, "0")
    rng = np.random.default_rng(2)
    grids = [np.sort(rng.uniform(0, 30, 25)) for _ in range(3)]
    truth = MarkovJumpProcess(np.array([[-1.0, 0.6, 0.4], [0.3, -0.5, 0.2], [0.5, 0.5, -1.0]]))
    _, ys = truth.sample(rng=1, times=grids)
    model = MarkovJumpProcess(np.array([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5], [0.5, 0.5, -1.0]]))
    model.fit(ys, times=grids, max_iter=2, progress=False)
    p = model.params
    Q = np.asarray(p.Q)
    calls = e_step_kernels(
        Q, np.asarray(p.initial), interval_table(grids), p.observation.log_likelihoods(np.concatenate(ys), 3)
    )
    assert [f.py_func.__name__ for f, _ in calls] == ["posterior_pass", "transition_matrices", "van_loan_integrals"]
    for kernel, args in calls:
        assert pc._signature(kernel, args) in kernel.overloads, kernel.py_func.__name__


CODE = """
import hmm.em as em
from hmm import ARHMM

em.compile_together = spy
y = np.random.default_rng(0).standard_normal((300, 2))
res = ARHMM(3, 2).fit(y, max_iter=3, progress=False, rng=0)
p = res.params
np.savez(sys.argv[2], lls=res.log_likelihoods, A=p.A, pi0=p.pi0, W=p.emission.weights, covs=p.emission.covs)
print(json.dumps({"helpers": helpers, "compiled": compiled}))
"""


def _run(mode, cache, out):
    return run(CODE, mode, cache, out), np.load(out)


def test_a_first_fit_compiles_the_emission_kernels_in_a_helper_with_the_same_result(tmp_path):
    report, arrays = _run("helper", tmp_path / "cold", tmp_path / "cold.npz")
    failing, alone = _run("failing", tmp_path / "own", tmp_path / "failing.npz")
    assert report["helpers"] == [1] and failing["helpers"] == [1]
    big = {"ar_accumulate_batch", "_gaussian_kernel"}
    assert big <= set(failing["compiled"])  # the process whose helper failed compiled them itself
    assert not big & set(report["compiled"])  # loaded from the disk, where the helper put them
    assert "_posteriors_kernel" in report["compiled"]  # the calling process's own share
    assert sorted(arrays.files) == sorted(alone.files)
    for key in arrays.files:
        np.testing.assert_array_equal(arrays[key], alone[key])


FLEET = """
import hmm.em as em
from hmm import GaussianHMM

em.compile_together = spy
rng = np.random.default_rng(1)
ys = [rng.standard_normal((60, 2)) + (i % 3) for i in range(16)]
ys.append(rng.standard_normal((25_000, 2)))  # too long for the vector lanes: the one-sequence kernel
res = GaussianHMM(3, 2).fit(ys, max_iter=2, progress=False, rng=0)
p = res.params
np.savez(sys.argv[2], lls=res.log_likelihoods, A=p.A, pi0=p.pi0, W=p.emission.weights, covs=p.emission.covs)
print(json.dumps({"helpers": helpers, "compiled": compiled}))
"""


def test_a_fleets_one_sequence_kernel_comes_from_the_helper_that_compiled_it_for_later(tmp_path):
    """A fleet whose long sequence the lanes cannot carry: the first fit's helper compiles the
    one-sequence kernel after its share (the fit does not wait for it at the start), and the fit's
    first call of it waits for the helper and loads it from the disk; the results equal, bit for
    bit, those of a process that compiled everything itself."""
    report = run(FLEET, "helper", tmp_path / "cold", tmp_path / "cold.npz")
    failing = run(FLEET, "failing", tmp_path / "own", tmp_path / "failing.npz")
    assert report["helpers"] == [1] and failing["helpers"] == [1]
    assert "_posteriors_kernel" in failing["compiled"]
    assert "_posteriors_kernel" not in report["compiled"]
    arrays, alone = np.load(tmp_path / "cold.npz"), np.load(tmp_path / "failing.npz")
    for key in arrays.files:
        np.testing.assert_array_equal(arrays[key], alone[key])


EXIT = """
from hmm.batch import exact_kernels, posteriors_kernels

offsets = np.arange(0, 16 * 60 + 1, 60)
pi0, A = np.full(3, 1 / 3), np.full((3, 3), 1 / 3)
n = pc.compile_together(posteriors_kernels(pi0, A, offsets), 2, later=exact_kernels(pi0, A, offsets))
(helper, _), = {id(h): (h, 0) for h, _ in pc._LATER.values()}.values()
print(json.dumps({"helpers": n, "pid": helper.proc.pid, "running": helper.proc.poll() is None}))
"""


def test_a_helper_still_compiling_for_later_stops_with_the_process(tmp_path):
    import os
    import time

    report = run(EXIT, "helper", tmp_path / "cache")
    assert report["helpers"] == 1 and report["running"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(report["pid"], 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError("the helper outlived its process")
