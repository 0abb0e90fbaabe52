"""Fleet benchmark: the Kalman batch E-step and log-likelihoods over fleets of equal and ragged lengths (ours only).

    python benchmarks/kalman_fleets.py [--quick]

Fleets: ``d in {2, 4, 8}`` (``m = 2, 3, 3``) x ``(B, T)`` in ``{100, 2000} x {100, 1000}``
and ``{2500, 5000} x 200``, each with equal lengths and with lengths uniform in
``[0.8 T, 1.2 T]`` (``_ragged``); and the equal-length fleets of ``{100, 2000} x {100, 1000}``
again with ``p = 2`` inputs (``_p2``: ``B``, ``D`` standard normal over ``sqrt(p)``, inputs
standard normal), which move the means and not the covariances. One JSON line (``kalman_fleets_e_step``,
``kalman_fleets_log_likelihoods``) per fleet and thread count (``_1t``, ``_2t``):
the seconds of ``batch_e_step`` / ``batch_log_likelihood``, best of 8 warm calls. The sums do not depend on the threads; what moves these
figures is how much of the fleet shares its covariances and replays in lock-step
(``statespace.linear_gaussian.batch``), which ragged lengths make harder. The
peer-relative batch cells are in ``kalman_grid.py``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from kalman_grid import g, problem  # kalman_grid imports _gridlib first (sys.path, BLAS threads)


def best(fn, n: int) -> float:
    fn()
    out = np.inf
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny subset (smoke test)")
    ap.add_argument("--only", default="", help="only the fleets whose name contains this (e.g. _p2)")
    args = ap.parse_args(argv)
    from statespace._ragged import pack
    from statespace.linear_gaussian.batch import batch_e_step, batch_log_likelihood

    g.emit(g.run_meta("kalman_fleets"))
    dims = [(2, 2)] if args.quick else [(2, 2), (4, 3), (8, 3)]
    shapes = (
        [(20, 30)] if args.quick else [(100, 100), (2000, 100), (100, 1000), (2000, 1000), (5000, 200), (2500, 200)]
    )
    calls = 2 if args.quick else 8
    fleets = [(B, T, ragged, 0) for B, T in shapes for ragged in (False, True)]
    fleets += [(B, T, False, 2) for B, T in shapes if T in (30, 100, 1000)]
    for d, m in dims:
        for B, T, ragged, p_in in fleets:
            name = f"d{d}_m{m}_B{B}_T{T}{'_ragged' if ragged else ''}{f'_p{p_in}' if p_in else ''}"
            if args.only not in name:
                continue
            rng = np.random.default_rng(7)
            model = problem(d, m)
            u = None
            if p_in:
                model = model.__class__(
                    model.params.replace(
                        B=rng.standard_normal((d, p_in)) / np.sqrt(p_in),
                        D=rng.standard_normal((m, p_in)) / np.sqrt(p_in),
                    )
                )
                us = [rng.standard_normal((T, p_in)) for _ in range(B)]
                ys = [model.sample(T, rng=rng, inputs=v)[1] for v in us]
                u = np.concatenate(us)
            else:
                ys = [model.sample(int(T * rng.uniform(0.8, 1.2)) if ragged else T, rng=rng)[1] for _ in range(B)]
            y, offsets = pack(ys)
            for bench, fn in (
                ("kalman_fleets_e_step", batch_e_step),
                ("kalman_fleets_log_likelihoods", batch_log_likelihood),
            ):
                for threads in (1, 2):
                    t = best(lambda: fn(model.params, y, offsets, u, n_threads=threads), calls)
                    g.emit({"bench": bench, "case": f"{name}_{threads}t", "ours_s": g.sig(t)})
    g.done("kalman_fleets")


if __name__ == "__main__":
    main()
