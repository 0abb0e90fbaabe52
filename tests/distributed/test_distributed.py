"""Scale-out on a real Dask LocalCluster (2 worker processes, started here; nothing mocked).

Oracle: the in-process run of the same routine. EM on shards must reproduce it to
round-off (same number of iterations, same log-likelihoods, same parameters) whatever
the shard count; batch inference and seeded jobs must give the same results in input
order; a worker process killed during a fit must not change the result; an impossible
sequence in one shard must raise the library error naming its index in the user's data.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("dask.distributed")

import statespace.distributed as ssd  # noqa: E402
from hmm import CategoricalHMM, GaussianHMM  # noqa: E402
from hmm.markov_jump import MarkovJumpProcess, NoisyLabels  # noqa: E402
from statespace.errors import ImpossibleDataError, ShapeError  # noqa: E402
from statespace.linear_gaussian import LinearGaussianSSM  # noqa: E402

RTOL = 1e-9


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _lgssm_data(n=40, T=60, seed=0):
    truth = LinearGaussianSSM(
        F=[[0.9, 0.1], [0.0, 0.7]],
        H=[[1.0, 0.0], [0.5, 1.0]],
        Q=0.2 * np.eye(2),
        R=0.5 * np.eye(2),
        m0=np.zeros(2),
        P0=np.eye(2),
    )
    rng = np.random.default_rng(seed)
    return truth, [truth.sample(int(rng.integers(T // 2, T)), rng=rng)[1] for _ in range(n)]


def _assert_same_fit(a, b):
    assert a.n_iter == b.n_iter and a.converged == b.converged
    np.testing.assert_allclose(a.log_likelihoods, b.log_likelihoods, rtol=RTOL)
    for x, y in zip(_leaves(a.params), _leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-7, atol=1e-10)


def _leaves(tree):
    if isinstance(tree, tuple):
        return [leaf for t in tree for leaf in _leaves(t)]
    if isinstance(tree, np.ndarray) or isinstance(tree, float):
        return [np.asarray(tree)]
    return []


def _lgssm_start():
    return LinearGaussianSSM(F=0.5 * np.eye(2), H=np.eye(2), Q=np.eye(2), R=np.eye(2), m0=np.zeros(2), P0=np.eye(2))


@pytest.mark.parametrize("n_shards", [None, 5])
def test_lgssm_em_on_shards_equals_in_process(client, n_shards):
    _, ys = _lgssm_data()
    serial = _lgssm_start().fit(ys, max_iter=12, tol=0, progress=False)
    with ssd.use(client, n_shards=n_shards):
        dist = _lgssm_start().fit(ys, max_iter=12, tol=0, progress=False)
    _assert_same_fit(serial, dist)


def _hmm_data(n=30, seed=1):
    rng = np.random.default_rng(seed)
    ys, pls = [], []
    for _ in range(n):
        T = int(rng.integers(40, 80))
        x = (np.cumsum(rng.random(T) < 0.1) % 2).astype(int)
        ys.append(
            np.column_stack([np.where(x == 0, -1.0, 1.5), np.where(x == 0, 0.5, -0.5)])
            + 0.6 * rng.standard_normal((T, 2))
        )
        pl = np.ones((T, 2))
        pl[: T // 4, 1 - x[0]] = 0.0  # the first quarter's state is known
        pls.append(pl)
    return ys, pls


@pytest.mark.parametrize("with_pl", [False, True])
def test_hmm_em_on_shards_equals_in_process(client, with_pl):
    ys, pls = _hmm_data()
    kw = dict(pl=pls if with_pl else None, max_iter=5, tol=0, progress=False, rng=0)
    serial = GaussianHMM(2, 2).fit(ys, **kw)
    with ssd.use(client, n_shards=3):
        dist = GaussianHMM(2, 2).fit(ys, **kw)
    _assert_same_fit(serial, dist)


@pytest.mark.parametrize("data_limit", [None, 0])  # None: the default 64 MB; 0: every data set counts as large
def test_hmm_restarts_equal_the_serial_fit(client, monkeypatch, data_limit):
    from statespace.distributed import estep

    if data_limit is not None:
        monkeypatch.setattr(estep, "TASK_DATA_BYTES", data_limit)
    ys, pls = _hmm_data()
    kw = dict(pl=pls, n_restarts=3, max_iter=6, tol=0, progress=False, rng=4)
    serial = GaussianHMM(2, 2).fit(ys, **kw)
    with ssd.use(client), distributed.get_task_stream(client) as tasks:
        dist = GaussianHMM(2, 2).fit(ys, **kw)
    keys = [t["key"] for t in tasks.data]
    whole_fits, hosts = sum(k.startswith("run-") for k in keys), sum(k.startswith("shard-host") for k in keys)
    if data_limit is None:  # small data: one task per restart, each fitting in process on its worker
        assert (whole_fits, hosts) == (3, 0)
    else:  # large data: the restarts in turn, every E-step on the shards' hosts (one per worker, for the whole fit)
        assert (whole_fits, hosts) == (0, 2)
    _assert_same_fit(serial, dist)


def _mjp_data(n=40, seed=2):
    rng = np.random.default_rng(seed)
    Q = np.array([[-1.0, 0.7, 0.3], [0.4, -0.9, 0.5], [0.2, 0.6, -0.8]])
    truth = MarkovJumpProcess(Q, [0.5, 0.3, 0.2], NoisyLabels.uniform_replacement(3, 0.1, learn="full"))
    grids = [np.sort(rng.choice(np.arange(0.0, 10.0, 0.25), size=15, replace=False)) for _ in range(n)]
    _, ys = truth.sample(times=grids, rng=rng)
    return ys, grids


def test_mjp_em_on_shards_equals_in_process(client):
    ys, grids = _mjp_data()
    start = MarkovJumpProcess(
        np.full((3, 3), 0.5) - 1.5 * np.eye(3), np.full(3, 1 / 3), NoisyLabels.uniform_replacement(3, 0.2, learn="full")
    )
    kw = dict(times=grids, max_iter=8, tol=0, progress=False)
    serial = MarkovJumpProcess(params=start.params).fit(ys, **kw)
    with ssd.use(client, n_shards=4):
        dist = MarkovJumpProcess(params=start.params).fit(ys, **kw)
    _assert_same_fit(serial, dist)


def _chain_with_network(kind):
    """A small IOHMM or LearnedEmissionHMM start and its data (several sequences, some with inputs)."""
    pytest.importorskip("jax")
    from hmm import IOHMM, LearnedEmissionHMM

    rng = np.random.default_rng(6)
    lengths = rng.integers(30, 60, 6)
    small = dict(hidden=4, state=4, rng=0)
    if kind == "IOHMM":
        us = [0.3 * np.cumsum(rng.standard_normal(T))[:, None] for T in lengths]
        ys = [(np.where(u[:, 0] > 0, 1.0, -1.0) + 0.8 * rng.standard_normal(len(u)))[:, None] for u in us]
        return IOHMM.initialize(ys, 2, 1, 1, inputs=us, **small), ys, {"inputs": us}
    ys = [
        (np.where(np.cumsum(rng.random(T) < 0.1) % 2, 1.5, -1.0) + 0.6 * rng.standard_normal(T))[:, None]
        for T in lengths
    ]
    return LearnedEmissionHMM.initialize(ys, 2, 1, n_layers=1, **small), ys, {}


@pytest.mark.parametrize("kind", ["IOHMM", "LearnedEmissionHMM"])
def test_generalised_em_with_networks_on_shards_equals_in_process(client, kind):
    start, ys, kw = _chain_with_network(kind)
    kw = dict(kw, max_iter=3, m_steps=2, tol=0, progress=False)
    serial_model, dist_model = copy.deepcopy(start), copy.deepcopy(start)
    serial = serial_model.fit(ys, **kw)
    with ssd.use(client, n_shards=3), distributed.get_task_stream(client) as tasks:
        dist = dist_model.fit(ys, **kw)
    assert sum(t["key"].startswith("shard-host") for t in tasks.data) == 2  # 3 shards hosted on the 2 workers
    _assert_same_fit(serial, dist)
    # the networks' weights are not in _assert_same_fit's leaves: compare the fitted models on the data
    llkw = {"inputs": kw["inputs"]} if "inputs" in kw else {}
    assert dist_model.log_likelihood(ys, **llkw) == pytest.approx(serial_model.log_likelihood(ys, **llkw), rel=1e-9)


def test_batch_inference_in_input_order(client):
    truth, ys = _lgssm_data(n=9)
    with ssd.use(client, n_shards=4):
        filt = ssd.map_sequences(truth.filter, ys)
        smooth = ssd.map_sequences(truth.smooth, ys)
        ll = ssd.map_sequences(truth.log_likelihood, ys)
    assert ll == pytest.approx(truth.log_likelihood(ys), rel=1e-12)
    for f, s, y in zip(filt, smooth, ys):
        ref_f, ref_s = truth.filter(y), truth.smooth(y)
        np.testing.assert_array_equal(f.filtered_means, ref_f.filtered_means)
        np.testing.assert_array_equal(s.smoothed_means, ref_s.smoothed_means)
    hmm_ys, _ = _hmm_data(n=7)
    model = GaussianHMM(2, 2)
    model.fit(hmm_ys, max_iter=3, progress=False, rng=0)
    with ssd.use(client):
        paths = ssd.map_sequences(model.most_likely_states, hmm_ys)
    for p, y in zip(paths, hmm_ys):
        np.testing.assert_array_equal(p, model.most_likely_states(y))


def test_batch_inference_over_a_dask_bag_stays_lazy_and_keeps_the_order(client):
    db = pytest.importorskip("dask.bag")
    ys, pls = _hmm_data(n=11)
    model = GaussianHMM(2, 2)
    model.fit(ys, max_iter=3, progress=False, rng=0)
    bag, pl_bag = db.from_sequence(ys, npartitions=4), db.from_sequence(pls, npartitions=4)
    with ssd.use(client):
        smooth = ssd.map_sequences(model.smooth, bag, pl=pl_bag)
        ll = ssd.map_sequences(model.log_likelihood, bag, pl=pl_bag)
    assert isinstance(smooth, db.Bag) and isinstance(ll, db.Bag)  # nothing computed yet
    got = smooth.compute()
    assert len(got) == len(ys)
    # to rounding: a partition of fewer than three sequences runs them one at a time, a longer list in
    # vector lanes (hmm.lane_forward_backward), whose sums inside a step go in another order
    for g, y, pl in zip(got, ys, pls):
        np.testing.assert_allclose(g.smoothed_probs, model.smooth(y, pl=pl).smoothed_probs, rtol=0, atol=1e-13)
    assert ll.sum().compute() == pytest.approx(model.log_likelihood(ys, pl=pls), rel=1e-12)
    with pytest.raises(ShapeError, match=r"pl: .*Bags with the same 4 partitions"):
        ssd.map_sequences(model.smooth, bag, pl=pls)
    with pytest.raises(ShapeError, match=r"pl: .*with 3 partitions"):
        ssd.map_sequences(model.smooth, bag, pl=db.from_sequence(pls, npartitions=3))


def test_rul_predict_over_shards_in_input_order(client):
    from hmm.rul import ARPHMMRUL

    rng = np.random.default_rng(4)
    train = [np.cumsum(rng.normal(-0.05, 0.3, (T, 2)), axis=0) for T in rng.integers(60, 90, 8)]
    model = ARPHMMRUL(n_states=6, lags=0, cap=40.0, covariance_type="diag", horizon=50, max_iter=3)
    model.fit(train, rng=0, progress=False)
    test = [s[: 30 + 5 * i] for i, s in enumerate(train)]
    ref = model.predict(test)
    with ssd.use(client, n_shards=3):
        dist = ssd.map_sequences(model.predict, test)
    # to rounding: a shard of fewer than three sequences filters them one at a time, a longer list in
    # vector lanes (hmm.lane_forward_backward), whose sums inside a step go in another order
    for f in ("rul", "q05", "q50", "q95", "mean", "state_probs"):
        np.testing.assert_allclose(getattr(dist, f), getattr(ref, f), rtol=1e-12, atol=1e-12, err_msg=f)
    assert len(dist.distributions) == len(test)
    for a, b in zip(dist.distributions, ref.distributions):
        np.testing.assert_allclose(a.pmf, b.pmf, rtol=1e-12, atol=1e-14)


def _weighted_sums(params, shard):
    """A toy additive E-step: ``(sum over the shard of w . y_i, number of items)``."""
    w = params[0] if isinstance(params, tuple) else params.w
    return (float(sum(w[: y.size] @ y.ravel() for (y,) in shard)), len(shard))


class _Weights:
    def __init__(self, w):
        self.w = w
        self.tag = lambda: None  # pickle refuses this object; Dask's cloudpickle does not


@pytest.mark.parametrize("size", [4, 60_000])  # 32 bytes travel inside the tasks, 480 kB are broadcast once
def test_estep_sends_small_and_large_parameters_alike(client, size):
    rng = np.random.default_rng(5)
    items = [(rng.standard_normal(int(rng.integers(1, 4))),) for _ in range(11)]
    for params in ((rng.standard_normal(size),), _Weights(rng.standard_normal(size))):
        serial = ssd.EStep(_weighted_sums, items)(params)
        with ssd.use(client, n_shards=3):
            est = ssd.EStep(_weighted_sums, items)
        assert est(params) == (pytest.approx(serial[0], rel=1e-12), 11)
        assert est.n_shards == 3
        est.close()


def _draw(job, seed):
    return job, np.random.default_rng(seed).standard_normal(3)


def test_seeded_jobs_equal_the_serial_run(client):
    serial = ssd.map_jobs(_draw, range(6), seed=11, seeded=True)
    with ssd.use(client):
        dist = ssd.map_jobs(_draw, range(6), seed=11, seeded=True)
    assert [j for j, _ in dist] == list(range(6))
    for (_, a), (_, b) in zip(serial, dist):
        np.testing.assert_array_equal(a, b)


def _compiled_threads(*_):
    import numba

    return numba.get_num_threads()


def _threads_statistic(params, shard):
    return (float(_compiled_threads()), len(shard))


def test_work_on_the_cluster_runs_its_compiled_loops_on_one_thread(client):
    # each worker process is started with Numba's default, one thread per core of the machine;
    # the library's tasks use one, as Dask's workers start with OMP_NUM_THREADS=1
    defaults = client.run(lambda: __import__("numba").config.NUMBA_NUM_THREADS)
    if max(defaults.values()) == 1:
        pytest.skip("one core: Numba's default is already one thread")
    items = [(np.zeros(3),)] * 6
    with ssd.use(client, n_shards=3):
        assert ssd.map_jobs(_compiled_threads, range(4)) == [1] * 4
        with ssd.EStep(_threads_statistic, items) as est:
            assert est(None) == (3.0, 6)  # one thread in each of the 3 shards
        ys = [np.zeros((4, 1))] * 5
        assert ssd.map_sequences(_compiled_threads_of_list, ys) == [1] * 5


def _compiled_threads_of_list(ys):
    return [_compiled_threads()] * len(ys)


def _xla_pool():
    """``PJRT_NPROC`` and the threads of XLA's intra-op pool (Linux names them tf_XLAEigen) after a JAX computation."""
    import jax.numpy as jnp

    float(jnp.ones(3).sum())
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
    return os.environ.get("PJRT_NPROC"), names.count("tf_XLAEigen")


class _JaxVerb:
    """A batch verb whose model holds a JAX array: unpickling it starts JAX in the worker process."""

    def __init__(self):
        import jax.numpy as jnp

        self.w = jnp.ones(2)

    def __call__(self, ys):
        return [_xla_pool()] * len(ys)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2, reason="thread names of /proc; one core"
)
def test_work_on_the_cluster_sizes_jax_pools_to_the_worker_threads():
    # XLA's default is one pool thread per core of the machine; two one-thread workers training networks
    # on two cores then ran each fold 1.9x slower. Fresh worker processes, so that JAX starts in the task
    # checked (the batch verb's model is unpickled on the worker; the jobs run after a restart).
    pytest.importorskip("jax")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c, ssd.use(c, n_shards=2):
            batch = ssd.map_sequences(_JaxVerb(), [np.zeros((3, 1))] * 4)
            c.restart()
            jobs = ssd.map_jobs(lambda _: _xla_pool(), range(2))
    assert batch + jobs == [("1", 1)] * 6


def _pjrt_nproc(_):
    return os.environ.get("PJRT_NPROC")


def test_a_worker_thread_in_the_users_process_leaves_its_jax_alone(monkeypatch):
    # the user's process shares JAX's pools with the worker threads: its environment is left as it was
    monkeypatch.delenv("PJRT_NPROC", raising=False)
    monkeypatch.delenv("NPROC", raising=False)
    try:
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl:
            with distributed.Client(cl) as c, ssd.use(c):
                assert ssd.map_jobs(_pjrt_nproc, range(2)) == [None, None]
        assert "PJRT_NPROC" not in os.environ
    finally:
        os.environ.pop("PJRT_NPROC", None)


def test_impossible_sequence_in_one_shard_names_its_global_index(client):
    rng = np.random.default_rng(3)
    ys = [rng.integers(0, 2, (20, 1)).astype(float) for _ in range(8)]
    ys[6][5, 0] = 2.0  # a symbol the fitted start gives zero probability
    model = CategoricalHMM(2, 3)
    model.fit([y for i, y in enumerate(ys) if i != 6], max_iter=2, progress=False, rng=0)
    with pytest.raises(ImpossibleDataError, match=r"y\[6\]") as serial:
        model.fit(ys, max_iter=2, progress=False)
    for n_shards in (None, 4, 8):
        with ssd.use(client, n_shards=n_shards), pytest.raises(ImpossibleDataError, match=r"y\[6\]") as dist:
            model.fit(ys, init=model.params, max_iter=2, progress=False)
        assert str(dist.value) == str(serial.value)


def test_worker_killed_mid_fit_does_not_change_the_result(client):
    _, ys = _lgssm_data(n=300, T=120, seed=5)
    kw = dict(max_iter=150, tol=0, progress=False)
    serial = _lgssm_start().fit(ys, **kw)
    out, alive_at_kill = {}, []

    def run():
        with ssd.use(client):
            out["res"] = _lgssm_start().fit(ys, **kw)

    before = client.run(os.getpid)
    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while not any(str(k).startswith("estep-shard") for k in client.who_has()) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the fit has placed its shards on the workers
    time.sleep(0.2)
    alive_at_kill.append(thread.is_alive())
    os.kill(next(iter(before.values())), signal.SIGKILL)
    thread.join(300)
    assert alive_at_kill == [True], "the fit ended before the worker was killed: make it longer"
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(before.values())  # the nanny restarted the killed worker
    _assert_same_fit(serial, out["res"])


def test_dask_is_not_imported_without_use():
    code = (
        "import sys, numpy as np; from statespace.linear_gaussian import LinearGaussianSSM;"
        "m = LinearGaussianSSM(F=[[0.9]], H=[[1.0]], Q=[[1.0]], R=[[1.0]], m0=[0.0], P0=[[1.0]]);"
        "m.fit([m.sample(20, rng=i)[1] for i in range(3)], max_iter=2, progress=False);"
        "import hmm, smc; assert 'dask' not in sys.modules and 'distributed' not in sys.modules, 'dask imported'"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    )


@pytest.mark.slow  # each worker process compiles the conditional-SMC kernels (minutes on 2 loaded cores)
def test_mcmc_chains_as_tasks_equal_the_serial_run(client):
    from smc.csmc import particle_gibbs
    from smc.learning.bayesian_gibbs import bayesian_particle_gibbs
    from smc.ppg import ppg_smoother

    model = LinearGaussianSSM(F=[[0.8]], H=[[1.0]], Q=[[0.5]], R=[[1.0]], m0=[0.0], P0=[[1.0]])
    _, y = model.sample(25, rng=4)
    runs = {
        "pg": lambda: particle_gibbs(model, y, n_iter=6, n_particles=8, n_chains=3, rng=7, progress=False).trajectories,
        "ppg": lambda: ppg_smoother(model, y, n_particles=8, n_iter=4, n_chains=3, rng=7, progress=False).estimates,
        "bpg": lambda: np.stack(
            list(
                bayesian_particle_gibbs(
                    model, y, None, n_iter=4, n_particles=8, n_chains=3, rng=7, progress=False
                ).samples.values()
            )
        ),
    }
    for name, run in runs.items():
        serial = run()
        with ssd.use(client):
            dist = run()
        np.testing.assert_array_equal(serial, dist, err_msg=name)


CMAPSS = os.environ.get(
    "CMAPSS_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cmapss"))
)


@pytest.mark.skipif(not os.path.isfile(os.path.join(CMAPSS, "train_FD001.txt")), reason="CMAPSS FD001 not available")
def test_a_pools_members_fit_as_jobs_with_the_serial_result(client):
    from hmm.rul import ARPHMMRUL, RULEnsemble, RULPipeline
    from statespace.datasets import load_cmapss
    from statespace.datasets.cmapss import SensorFeatures

    data = load_cmapss(CMAPSS)
    sens, sets = data.train.split(data.train.sensors)[:10], data.train.split(data.train.settings)[:10]
    test = data.test.split(data.test.sensors)[:4], data.test.split(data.test.settings)[:4]

    def pool():
        return RULEnsemble(
            [
                RULPipeline(SensorFeatures(baseline_cycles=10), ARPHMMRUL(n_states=k, lags=0, cap=120.0, max_iter=3))
                for k in (4, 5)
            ]
        )

    serial, dist = pool(), pool()
    serial_fits = serial.fit(sens, sets, rng=np.random.default_rng(2), progress=False)
    unfitted = list(dist.members)
    with ssd.use(client):
        dist_fits = dist.fit(sens, sets, rng=np.random.default_rng(2), progress=False)
    for d, s in zip(dist_fits, serial_fits):
        np.testing.assert_array_equal(d.log_likelihoods, s.log_likelihoods)
    assert all(a is not b for a, b in zip(dist.members, unfitted))  # the fitted copies sent back
    a, b = serial.predict(*test), dist.predict(*test)
    np.testing.assert_array_equal(a.rul, b.rul)
    np.testing.assert_array_equal(a.q95, b.q95)


@pytest.mark.slow  # two runs of the example, one of them starting its own LocalCluster
@pytest.mark.skipif(not os.path.isfile(os.path.join(CMAPSS, "train_FD001.txt")), reason="CMAPSS FD001 not available")
@pytest.mark.parametrize(
    "model",
    [
        ["--model", "arphmm", "--grid", "5,1,120,phase_type;5,0,120,empirical"],
        # the deep candidate's folds train S5 emission networks (JAX) on the workers
        ["--model", "deep", "--grid", "5,0,120,empirical;deep:6,0,120,empirical,0.1", "--deep-max-iter", "1"],
    ],
    ids=["classical", "deep"],
)
def test_cmapss_example_on_workers_writes_the_serial_predictions(tmp_path, model):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    common = [
        sys.executable,
        os.path.join(root, "examples", "cmapss_rul.py"),
        "--data",
        CMAPSS,
        "--max-engines",
        "12",
        *model,
        "--folds",
        "3",
        "--cuts",
        "2",
        "--max-iter",
        "3",
        "--no-progress",
        "--plots",
        "none",
    ]
    subprocess.run(common + ["--out", str(tmp_path / "serial.csv")], check=True, cwd=root, capture_output=True)
    subprocess.run(
        common + ["--out", str(tmp_path / "w2.csv"), "--workers", "2"], check=True, cwd=root, capture_output=True
    )
    assert (tmp_path / "serial.csv").read_bytes() == (tmp_path / "w2.csv").read_bytes()
