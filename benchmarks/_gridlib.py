"""Shared plumbing of the benchmark grids (``*_grid.py``): timing, JSON lines, run metadata.

Every timed case prints one JSON line (GUIDE section 3). Ours and the peers are
timed *interleaved* in one process: rounds of ``block`` warm calls of each side
in turn, best of all rounds, so that both see the same load on a shared
machine. A round budget caps the number of rounds for slow cases.

Importing this module also drops the ``benchmarks/`` folder from ``sys.path``:
run as ``python benchmarks/<name>.py`` the script's folder comes first, and
``benchmarks/hmm.py`` would shadow the ``hmm`` package. And it sets OpenBLAS
to one thread (unless the caller chose): the peers' small per-sequence matrix
operations on a pool of two busy-waiting BLAS threads ran up to 100x slower on
the loaded 2-core machine (hmmlearn's 2-iteration fit of 20 short sequences: 0.08
to 4 s against a steady 0.007 s on one thread); ours does not use BLAS threads.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_meta(bench: str, **extra) -> dict:
    """Commit, dirty flag of the library's packages, load average and time: printed once per script."""

    def git(*args):
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = bool(git("status", "--porcelain", "--", "statespace", "hmm", "smc"))
    meta = {
        "bench": f"{bench}_meta",
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "library_dirty": dirty,
        "utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    meta.update(extra)
    return meta


_START = time.perf_counter()


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def done(bench: str) -> None:
    """The script's own wall and CPU time (all threads and children), for the grid's time budget."""
    t = os.times()
    emit(
        {
            "bench": f"{bench}_done",
            "wall_s": round(time.perf_counter() - _START, 1),
            "cpu_s": round(t.user + t.system + t.children_user + t.children_system, 1),
        }
    )


def interleaved(
    fns: dict,
    *,
    rounds: int = 5,
    block: int = 2,
    budget_s: float = 20.0,
    min_rounds: int = 2,
    slow_s: float = 3.0,
    nocompile: tuple = (),
    counts: dict | None = None,
) -> dict:
    """Best warm wall time of each callable in ``fns``, timed in alternating blocks.

    Each callable is called once untimed first (compilation, jit, caches), then
    once timed; a callable slower than ``slow_s`` keeps that one timing, and one
    named in ``nocompile`` (a peer with nothing to compile, e.g. hmmlearn) that
    takes over ``2 slow_s`` keeps its first call's timing, so that peers taking
    seconds do not eat the grid's budget. The others run in rounds of ``block`` calls each, as many as fit in
    ``budget_s`` (at least ``min_rounds``, at most ``rounds``). Returns
    ``{name: best seconds}``; ``counts`` (if given) receives the timed calls per name.
    """
    best = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()  # compile / jit
        first = time.perf_counter() - t0
        if name in nocompile and first > 2 * slow_s:
            best[name] = first
            continue
        t0 = time.perf_counter()
        fn()
        best[name] = time.perf_counter() - t0
    n_calls = dict.fromkeys(fns, 1)
    fast = [k for k in fns if best[k] <= slow_s]
    per_round = sum(best[k] for k in fast) * block
    n = int(max(min_rounds, min(rounds, budget_s // max(per_round, 1e-9)))) if fast else 0
    for _ in range(n):
        for name in fast:
            for _ in range(block):
                t0 = time.perf_counter()
                fns[name]()
                best[name] = min(best[name], time.perf_counter() - t0)
            n_calls[name] += block
    if counts is not None:
        counts.update(n_calls)
    return best


def sig(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits (times span microseconds to minutes)."""
    return float(f"{x:.{digits}g}")


def ratio_line(bench: str, case: str, ours: float, peer: str, peer_s: float, target: float | None, **extra) -> dict:
    line = {
        "bench": bench,
        "case": case,
        "ours_s": sig(ours),
        "peer": peer,
        "peer_s": sig(peer_s),
        "speedup": sig(peer_s / ours, 3),
    }
    if target is not None:
        line.update(target=target, meets=bool(peer_s / ours >= target))
    line.update(extra)
    return line


def version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as v

    try:
        return v(dist)
    except PackageNotFoundError:
        return None


def jax_x64():
    """jax with float64 enabled, or None when jax/dynamax are not installed."""
    if version("dynamax") is None:
        return None
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def fit_start_kw(fit, start) -> dict:
    """The keyword under which this version's ``fit`` takes starting parameters (``init`` in the contract)."""
    names = inspect.signature(fit).parameters
    for kw in ("init", "params", "init_params"):
        if kw in names:
            return {kw: start}
    raise TypeError("fit takes no starting parameters")
