"""Fleets of sequences: each sequence on its own generator, the sequences on threads.

Oracles: each sequence filtered (smoothed, fitted) alone on the generator the documented rule
gives it, rebuilt here from NumPy alone (the same numbers, bit for bit); the same call on one
Numba thread (the same numbers on two); and, for the threads themselves, the identity of the
threads that ran the items.
"""

import threading

import numba as nb
import numpy as np
import pytest
from test_particle_filter import OPTIMAL, lg_model, rule_generators

from smc import paris_smoother, particle_filter
from smc.learning import particle_em
from smc.particle_filter import PARALLEL_MIN_PARTICLES, bootstrap_filter, guided_filter
from statespace import StochasticVolatility
from statespace._ragged import run_items
from statespace.errors import DegenerateWeightsError

TWO_THREADS = pytest.mark.skipif(nb.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")


def fleet(model, lengths, seed=0):
    return [model.sample(T, rng=seed + i)[1] for i, T in enumerate(lengths)]


def same(a, b):
    """Every array and number of two filter results equal, bit for bit."""
    for name, x in a._asdict().items():
        y = getattr(b, name)
        if x is None:
            assert y is None, name
        else:
            np.testing.assert_array_equal(x, y, err_msg=name)


def on_threads(n, call):
    before = nb.get_num_threads()
    nb.set_num_threads(n)
    try:
        return call()
    finally:
        nb.set_num_threads(before)


@pytest.mark.parametrize(
    "N, lengths, threaded",
    [
        (300, [40, 25, 60, 33, 12], True),  # 300 x 34 particle-steps per sequence: threads
        (50, [40, 25, 60], False),  # 50 x 42: too little work for threads
        (PARALLEL_MIN_PARTICLES, [15, 9], False),  # the particles share the threads
    ],
)
def test_a_fleet_equals_its_sequences_filtered_alone(N, lengths, threaded):
    model = StochasticVolatility()
    ys = fleet(model, lengths)
    ys[1][3:6] = np.nan  # missing values: the weights carry over
    out = bootstrap_filter(model, ys, N, rng=11, return_history=True)
    one = np.random.default_rng(11)  # unthreaded lists: one sequence after another on the caller's
    for r, y, g in zip(out, ys, rule_generators(11, len(ys)) if threaded else [one] * len(ys)):
        same(r, bootstrap_filter(model, y, N, rng=g, return_history=True))
    # a list of one sequence is that sequence, on the caller's generator itself
    same(bootstrap_filter(model, ys[:1], N, rng=4)[0], bootstrap_filter(model, ys[0], N, rng=4))


def test_a_guided_fleet_equals_its_sequences_filtered_alone():
    model = lg_model()
    ys = fleet(model, [30, 18, 44])
    out = guided_filter(model, ys, OPTIMAL, 400, rng=3)  # 400 x 31 particle-steps a sequence: threads
    for r, y, g in zip(out, ys, rule_generators(3, 3)):
        same(r, guided_filter(model, y, OPTIMAL, 400, rng=g))


@TWO_THREADS
def test_the_same_numbers_on_one_and_two_threads(monkeypatch):
    # every list on threads, however small its filters (the threshold only saves time)
    monkeypatch.setattr(particle_filter, "PARALLEL_MIN_SEQUENCE_WORK", 0)
    model = StochasticVolatility()
    ys = fleet(model, [50, 20, 70, 35, 41, 8])
    one = on_threads(1, lambda: bootstrap_filter(model, ys, 250, rng=5))
    two = on_threads(2, lambda: bootstrap_filter(model, ys, 250, rng=5))
    for a, b in zip(one, two):
        same(a, b)
    one = on_threads(1, lambda: paris_smoother(model, ys, n_particles=150, rng=6))
    two = on_threads(2, lambda: paris_smoother(model, ys, n_particles=150, rng=6))
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.estimates, b.estimates)
        assert a.log_likelihood == b.log_likelihood
    for smoother in ("paris", "ppg"):

        def fit():
            return particle_em(model, ys, n_iter=3, n_particles=40, smoother=smoother, rng=8, progress=False)

        one, two = on_threads(1, fit), on_threads(2, fit)
        np.testing.assert_array_equal(one.trace, two.trace)
        np.testing.assert_array_equal(one.log_likelihoods, two.log_likelihoods)


def test_a_fleets_paris_equals_its_sequences_smoothed_alone():
    model = StochasticVolatility()
    ys = fleet(model, [30, 45, 22])
    out = paris_smoother(model, ys, n_particles=120, rng=9)
    for r, y, g in zip(out, ys, rule_generators(9, 3)):
        alone = paris_smoother(model, y, n_particles=120, rng=g)
        np.testing.assert_array_equal(r.estimates, alone.estimates)
        assert r.log_likelihood == alone.log_likelihood


def test_the_first_degenerate_sequence_is_named():
    model = StochasticVolatility()
    ys = fleet(model, [20, 20, 20, 20])
    ys[1][7] = ys[3][2] = 1e200  # y^2 overflows: no particle explains the step
    with pytest.raises(DegenerateWeightsError, match="sequence 1") as err:
        bootstrap_filter(model, ys, 50, rng=0)
    assert err.value.t == 7


@TWO_THREADS
def test_run_items_runs_contiguous_parts_on_threads_and_keeps_the_order():
    seen = {}

    def fn(i):
        seen[i] = threading.get_ident()
        return i * i

    sizes = [5, 1, 7, 3, 3, 9, 2, 2]
    assert run_items(fn, sizes, n_threads=2) == [i * i for i in range(8)]
    idents = [seen[i] for i in range(8)]
    assert len(set(idents)) == 2 and idents == sorted(idents, key=idents.index)  # two runs, each contiguous
    cut = idents.index(idents[-1])
    assert abs(sum(sizes[:cut]) - sum(sizes[cut:])) <= max(sizes)  # of about equal total size
    seen.clear()
    assert run_items(fn, sizes, n_threads=1) == [i * i for i in range(8)]
    assert set(seen.values()) == {threading.get_ident()}
    assert run_items(fn, [], n_threads=2) == []
