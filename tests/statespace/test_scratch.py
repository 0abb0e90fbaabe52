"""Scratch kept across E-steps (statespace._scratch): same memory for the same key inside a
workspace, fresh outside; and a kept block holding anything (here NaN from a previous use)
gives the same E-step as fresh memory, so no kernel reads scratch it did not write."""

from __future__ import annotations

import numpy as np

from statespace._scratch import Workspace, kept, one_block, scratch
from statespace.distributed import EStep
from statespace.linear_gaussian import LinearGaussianSSM
from statespace.linear_gaussian.batch import batch_e_step
from statespace.linear_gaussian.em import shard_e_step


def test_scratch_is_kept_per_key_inside_a_workspace_and_fresh_outside():
    ws = Workspace()
    with kept(ws):
        a = scratch("k", 100)
        assert np.shares_memory(scratch("k", 100), a)
        assert np.shares_memory(scratch("k", 50), a)  # smaller: the same block
        assert not np.shares_memory(scratch("other", 100), a)
        b = scratch("k", 200)  # larger: a new block, kept from now on
        assert b.shape == (200,) and not np.shares_memory(b, a)
        assert np.shares_memory(scratch("k", 150), b)
    assert not np.shares_memory(scratch("k", 100), b)  # outside: fresh
    ws.clear()
    with kept(ws):
        assert not np.shares_memory(scratch("k", 100), b)


def test_one_block_gives_disjoint_contiguous_views_of_one_allocation():
    """Every requested shape, C-contiguous and writeable, in one allocation; writing each array
    with its own value leaves every other intact (no two overlap), empty shapes included."""
    shapes = [(7, 3), (0, 3), (2, 3, 3), (5,), (0, 3, 3), (4, 3, 3)]
    arrays = one_block(*shapes)
    assert [a.shape for a in arrays] == shapes
    base = arrays[0].base
    for i, a in enumerate(arrays):
        assert a.dtype == np.float64 and a.flags.c_contiguous and a.flags.writeable
        assert a.base is base
        a[...] = i
    for i, a in enumerate(arrays):
        assert (a == i).all()
    assert base.size == sum(int(np.prod(s)) for s in shapes)


def _problem(rng, S, T, d=3, m=2):
    truth = LinearGaussianSSM(
        F=0.8 * np.eye(d) + 0.05 * rng.standard_normal((d, d)),
        H=rng.standard_normal((m, d)),
        Q=0.2 * np.eye(d),
        R=0.5 * np.eye(m),
        m0=np.zeros(d),
        P0=np.eye(d),
    )
    ys = [truth.sample(int(t), rng=rng)[1] for t in rng.integers(T // 2, T, S)]
    ys[1][3] = np.nan  # a missing row: its own covariance recursion
    return truth.params, ys


def test_a_kept_block_holding_garbage_gives_the_fresh_e_step():
    rng = np.random.default_rng(4)
    params, ys = _problem(rng, S=30, T=700)  # long enough for the dimension-specialised loops too
    y = np.concatenate(ys)
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in ys])])
    fresh = batch_e_step(params, y, offsets)
    ws = Workspace()
    with kept(ws):
        batch_e_step(params, y, offsets)
        for a in ws._arrays.values():
            a[:] = np.nan  # what another sequence left there, at worst
        again = batch_e_step(params, y, offsets)
    assert ws._arrays, "the E-step did not use the workspace"
    np.testing.assert_array_equal(again[0], fresh[0])
    assert again[1] == fresh[1]


def test_estep_keeps_its_scratch_between_calls_and_releases_it_on_close():
    rng = np.random.default_rng(5)
    params, ys = _problem(rng, S=5, T=60)
    items = [(y, np.zeros((len(y), 0))) for y in ys]
    est = EStep(shard_e_step, items)
    first = est(params)
    kept_blocks = [a.__array_interface__["data"][0] for a in est._workspace._arrays.values()]
    second = est(params)
    assert kept_blocks and kept_blocks == [a.__array_interface__["data"][0] for a in est._workspace._arrays.values()]
    np.testing.assert_array_equal(first[0], second[0])
    est.close()
    assert not est._workspace._arrays
