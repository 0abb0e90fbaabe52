"""Grid benchmark: bootstrap particle filter and PaRIS against `particles` 0.4, on a linear-Gaussian and a nonlinear model.

Models (the same parameters on both sides):

* ``lg``: scalar linear-Gaussian, ``x_t = 0.9 x_{t-1} + N(0, 1)``, ``y_t = x_t + N(0, 0.2^2)``,
  ``x_0`` from the stationary law. Ours: the library's ``LinearGaussianSSM``;
  particles: ``kalman.LinearGauss``.
* ``sv``: stochastic volatility, ``x_t = mu + phi (x_{t-1} - mu) + sigma N(0, 1)``,
  ``y_t = exp(x_t / 2) N(0, 1)``, mu = -1, phi = 0.95, sigma = 0.3. Ours:
  ``statespace.StochasticVolatility``; particles: ``state_space_models.StochVol``.

Cases (one JSON line each):

* ``smc_grid_bootstrap``: ``N in {10^3, 10^4, 10^5}`` particles, T = 1,000,
  systematic resampling when ESS < N/2 (``smc.bootstrap_filter`` against
  ``particles.SMC(fk=Bootstrap(...))``). Targets: 10x at N = 10^3, 3x at N = 10^5.
* ``smc_grid_paris``: PaRIS with K = 2 backward draws smoothing the additive
  functional ``(sum x_{t-1} x_t, sum x_t^2)``, N = 10^3, T = 1,000 for ours; the
  peer's PaRIS is a pure-Python loop, timed once on ``PEER_PARIS_T`` steps (30 for
  LG, 8 for SV, where its rejection sampler makes a step cost about 2.5 s) and
  compared per particle-step (seconds / (N (T - 1))). Target: 1000x.
* ``smc_grid_fleet``: fleets of ``B`` SV sequences of ``T`` steps (``FLEET_CELLS``) in one call
  (ours: the sequences on Numba's threads, each on its own generator) against particles
  filtering them one after another; the line also has ours on one thread. The bootstrap targets.
* ``smc_grid_fleet_paris``: PaRIS over the same fleets, ours on two threads against ours on one.

particles pins numpy<2, so it runs in its own virtual environment (built by
``benchmarks/smc.py``'s ``peer_python``, under $STATESPACE_BENCH_CACHE) as a
persistent worker process; ours runs in this process, and the two alternate run
by run, so both see the same machine load. Times are wall-clock seconds (best of
the rounds); CPU seconds of each side are in the line too (ours may use both
cores at large N, particles uses one).

Run: ``python benchmarks/smc_grid.py`` (``--quick``: tiny subset; ``--no-peer``: ours only;
``--no-venv-build``: use particles only if its venv is already built).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import _gridlib as g  # first: fixes sys.path and BLAS threads
import numba as nb
import numpy as np

RHO, SIGMA_X, SIGMA_Y = 0.9, 1.0, 0.2
SV_MU, SV_PHI, SV_SIGMA = -1.0, 0.95, 0.3
T = 1000
PEER_PARIS_T = {"lg": 30, "sv": 8}  # particles' PaRIS takes about 0.4 s (LG) and 2.5 s (SV) per step at N = 1000
K_BACKWARD = 2
#: Fleets ``(B sequences, T steps, N particles)`` of stochastic volatility (``smc_grid_fleet``).
FLEET_CELLS = [(1000, 20, 100), (1000, 100, 200), (200, 200, 1000), (20, 1000, 4000)]
FLEET_PARIS_MAX_STEPS = 20_000_000  # particle-steps of the fleets PaRIS also runs on

WORKER = textwrap.dedent(
    f"""
    import json, sys, time
    import numpy as np
    import particles
    from particles import collectors, kalman
    from particles import state_space_models as ssms

    def add_func(self, t, xp, x):
        if xp is None:
            return np.stack([np.zeros_like(x), x**2], axis=-1)
        return np.stack([xp * x, np.broadcast_to(x**2, np.shape(xp * x))], axis=-1)

    class LG(kalman.LinearGauss):
        def upper_bound_log_pt(self, t):
            return -0.5 * np.log(2 * np.pi * self.sigmaX**2)
        add_func = add_func

    class SV(ssms.StochVol):
        def upper_bound_log_pt(self, t):
            return -0.5 * np.log(2 * np.pi * self.sigma**2)
        add_func = add_func

    models = {{"lg": LG(rho={RHO}, sigmaX={SIGMA_X}, sigmaY={SIGMA_Y}),
              "sv": SV(mu={SV_MU}, rho={SV_PHI}, sigma={SV_SIGMA})}}
    data = {{}}
    for line in sys.stdin:
        req = json.loads(line)
        key = req["ypath"]
        if key not in data:
            data[key] = np.load(key)
        # one sequence (T, 1), or a fleet (B, T, 1) filtered one sequence after another
        ys = data[key][None, : req["T"]] if data[key].ndim == 2 else data[key][:, : req["T"]]
        np.random.seed(req["seed"])
        collect = [collectors.Paris(Nparis={K_BACKWARD})] if req["algo"] == "paris" else None
        c, s = time.process_time(), time.perf_counter()
        for y in ys:
            fk = ssms.Bootstrap(ssm=models[req["model"]], data=y)
            particles.SMC(fk=fk, N=req["N"], resampling="systematic", ESSrmin=0.5, collect=collect).run()
        print(json.dumps({{"wall": time.perf_counter() - s, "cpu": time.process_time() - c}}), flush=True)
    """
)


class Peer:
    """particles 0.4 in its own venv, as a worker answering one run per request line."""

    def __init__(self, python: str, tmp: Path):
        script = tmp / "particles_worker.py"
        script.write_text(WORKER)
        self.proc = subprocess.Popen([python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out = subprocess.run(
            [python, "-c", "from importlib.metadata import version; print(version('particles'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        self.name = f"particles {out.stdout.strip() or '0.4'}"

    def run(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the particles worker died (see its stderr above)")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def peer_python(build: bool) -> str | None:
    """The particles venv's interpreter (``benchmarks/smc.py`` builds it); None when absent or impossible."""
    spec = importlib.util.spec_from_file_location("_bench_smc", g.HERE / "smc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    py = mod.VENV / "bin" / "python"
    if not build:
        ok = (
            py.exists()
            and subprocess.run([py, "-c", "import particles"], capture_output=True, check=False).returncode == 0
        )
        return str(py) if ok else None
    return mod.peer_python()


@nb.njit(cache=True)
def h0(kp, x, y, out):
    out[0] = 0.0
    out[1] = x[0] * x[0]


@nb.njit(cache=True)
def h(kp, t, xp, x, y, out):
    out[0] = xp[0] * x[0]
    out[1] = x[0] * x[0]


def our_models():
    from statespace import AdditiveFunctional, LinearGaussianSSM, StochasticVolatility

    s0 = SIGMA_X / math.sqrt(1 - RHO**2)
    models = {
        "lg": LinearGaussianSSM(m0=[0.0], P0=[[s0**2]], F=[[RHO]], Q=[[SIGMA_X**2]], H=[[1.0]], R=[[SIGMA_Y**2]]),
        "sv": StochasticVolatility(mu=SV_MU, phi=SV_PHI, sigma=SV_SIGMA),
    }
    return models, AdditiveFunctional(h0, h, 2)


def best_alternating(ours, peer_req, peer, rounds, peer_rounds=None):
    """Best (wall, cpu) of ours and of the peer, alternating one run each per round (after an untimed warm-up)."""
    ours()
    if peer is not None:  # nothing to compile: a short run warms its imports and caches
        peer.run(**{**peer_req, "T": min(2, peer_req["T"])})
    bo, bp = (math.inf, math.inf), (math.inf, math.inf)
    for r in range(rounds):
        c, s = time.process_time(), time.perf_counter()
        ours(r)
        bo = min(bo, (time.perf_counter() - s, time.process_time() - c))
        if peer is not None and r < (rounds if peer_rounds is None else peer_rounds):
            out = peer.run(**{**peer_req, "seed": r + 1})
            bp = min(bp, (out["wall"], out["cpu"]))
    return bo, (bp if peer is not None else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny subset (smoke test)")
    ap.add_argument("--no-peer", action="store_true", help="ours only")
    ap.add_argument("--no-venv-build", action="store_true", help="use particles only if its venv is already built")
    args = ap.parse_args(argv)
    import smc

    steps = 50 if args.quick else T
    Ns = (100,) if args.quick else (1000, 10_000, 100_000)
    paris_N = 100 if args.quick else 1000
    models, fun = our_models()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        peer = None
        if not args.no_peer:
            py = peer_python(build=not args.no_venv_build)
            if py is None:
                g.emit(
                    {
                        "bench": "smc_grid",
                        "skipped_peer": "particles 0.4 venv unavailable (no Python 3.9-3.12 to "
                        "build its numpy<2 venv, or --no-venv-build and not built yet): ours only",
                    }
                )
            else:
                peer = Peer(py, tmp)
        g.emit(g.run_meta("smc_grid", peer=None if peer is None else peer.name))
        try:
            for name, model in models.items():
                _, y = model.sample(steps, rng=0)
                ypath = str(tmp / f"y_{name}.npy")
                np.save(ypath, np.asarray(y, dtype=np.float64).reshape(steps, -1))
                for N in Ns:
                    rounds = 2 if args.quick else {1000: 5, 10_000: 3}.get(N, 2)
                    (ow, oc), pb = best_alternating(
                        lambda r=0, N=N, model=model, y=y: smc.bootstrap_filter(model, y, N, rng=r),
                        {"model": name, "algo": "filter", "N": N, "T": steps, "seed": 0, "ypath": ypath},
                        peer,
                        rounds,
                    )
                    case = f"{name}_N{N}_T{steps}"
                    target = 10.0 if N <= 1000 else 3.0
                    line = {"bench": "smc_grid_bootstrap", "case": case, "ours_s": g.sig(ow)}
                    if pb is not None:
                        line = g.ratio_line(
                            "smc_grid_bootstrap",
                            case,
                            ow,
                            peer.name,
                            pb[0],
                            target,
                            clock="wall",
                            ours_cpu_s=g.sig(oc),
                            peer_cpu_s=g.sig(pb[1]),
                        )
                    g.emit(line)
                # PaRIS: per particle-step; the pure-Python peer is timed once, on a few steps
                peer_paris_T = 5 if args.quick else PEER_PARIS_T[name]
                (ow, oc), pb = best_alternating(
                    lambda r=0, model=model, y=y: smc.paris_smoother(
                        model, y, fun, paris_N, n_backward=K_BACKWARD, rng=r
                    ),
                    {"model": name, "algo": "paris", "N": paris_N, "T": peer_paris_T, "seed": 0, "ypath": ypath},
                    peer,
                    2 if args.quick else 3,
                    peer_rounds=1,
                )
                ours_rate = ow / (paris_N * (steps - 1))
                line = {
                    "bench": "smc_grid_paris",
                    "case": f"{name}_N{paris_N}_T{steps}_K{K_BACKWARD}",
                    "ours_s": g.sig(ow),
                    "ours_particle_steps_per_s": round(1 / ours_rate),
                }
                if pb is not None:
                    peer_rate = pb[0] / (paris_N * (peer_paris_T - 1))
                    line.update(
                        peer=peer.name,
                        peer_T=peer_paris_T,
                        peer_s=g.sig(pb[0]),
                        speedup=g.sig(peer_rate / ours_rate, 4),
                        speedup_basis="per particle-step",
                        target=1000.0,
                        meets=bool(peer_rate / ours_rate >= 1000.0),
                    )
                line.update(clock="wall", ours_cpu_s=g.sig(oc))
                g.emit(line)
            fleets(smc, models["sv"], fun, peer, tmp, args.quick)
        finally:
            if peer is not None:
                peer.close()
    g.done("smc_grid")


def wall_time(call) -> float:
    s = time.perf_counter()
    call()
    return time.perf_counter() - s


def on_threads(n, call):
    """``call()`` with Numba's thread count set to ``n``."""
    before = nb.get_num_threads()
    nb.set_num_threads(min(n, nb.config.NUMBA_NUM_THREADS))
    try:
        return call()
    finally:
        nb.set_num_threads(before)


def fleets(smc, model, fun, peer, tmp, quick):
    """A fleet of SV sequences in one call (sequences on Numba's threads) against particles filtering
    them one after another, and against ours on one thread (``ours_one_thread_s``)."""
    cells = [(20, 20, 100)] if quick else FLEET_CELLS
    for B, T_, N in cells:
        ys = [model.sample(T_, rng=i)[1] for i in range(B)]
        ypath = str(tmp / f"fleet_{B}_{T_}.npy")
        np.save(ypath, np.stack([np.asarray(y, dtype=np.float64).reshape(T_, 1) for y in ys]))
        rounds = 2 if quick else 3

        def ours(r=0, ys=ys, N=N):
            return smc.bootstrap_filter(model, ys, N, rng=r)

        (ow, oc), pb = best_alternating(
            ours,
            {"model": "sv", "algo": "filter", "N": N, "T": T_, "seed": 0, "ypath": ypath},
            peer,
            rounds,
            peer_rounds=1,
        )
        one = min(wall_time(lambda: on_threads(1, ours)) for _ in range(rounds))
        case = f"sv_B{B}_T{T_}_N{N}"
        line = {"bench": "smc_grid_fleet", "case": case, "ours_s": g.sig(ow)}
        if pb is not None:
            line = g.ratio_line(
                "smc_grid_fleet",
                case,
                ow,
                peer.name,
                pb[0],
                10.0 if N <= 1000 else 3.0,
                clock="wall",
                ours_cpu_s=g.sig(oc),
                peer_cpu_s=g.sig(pb[1]),
            )
        line.update(ours_one_thread_s=g.sig(one), threads_speedup=g.sig(one / ow, 3))
        g.emit(line)
        # PaRIS over the fleet: ours only (particles' PaRIS is pure Python), two threads against one;
        # about a microsecond per particle-step on SV, so only the smaller fleets
        if B * T_ * N > FLEET_PARIS_MAX_STEPS:
            continue
        (pw, pc), _ = best_alternating(
            lambda r=0, ys=ys, N=N: smc.paris_smoother(model, ys, fun, N, n_backward=K_BACKWARD, rng=r),
            None,
            None,
            rounds,
        )
        one = min(
            wall_time(
                lambda: on_threads(1, lambda: smc.paris_smoother(model, ys, fun, N, n_backward=K_BACKWARD, rng=0))
            )
            for _ in range(rounds)
        )
        g.emit(
            {
                "bench": "smc_grid_fleet_paris",
                "case": case,
                "ours_s": g.sig(pw),
                "ours_cpu_s": g.sig(pc),
                "ours_one_thread_s": g.sig(one),
                "threads_speedup": g.sig(one / pw, 3),
                "clock": "wall",
            }
        )


if __name__ == "__main__":
    main()
