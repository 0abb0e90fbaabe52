"""Shared plumbing of the benchmark grids (``*_grid.py``): timing, JSON lines, run metadata.

Every timed case prints one JSON line (GUIDE section 3). Ours and the peers are
timed *interleaved* in one process: rounds of ``block`` warm calls of each side
in turn, best of all rounds, so that both see the same load on a shared
machine. A round budget caps the number of rounds for slow cases.

Importing this module also drops the ``benchmarks/`` folder from ``sys.path``:
run as ``python benchmarks/<name>.py`` the script's folder comes first, and
``benchmarks/hmm.py`` would shadow the ``hmm`` package.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def run_meta(bench: str, **extra) -> dict:
    """Commit, dirty flag of the library's packages, load average and time: printed once per script."""

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = bool(git("status", "--porcelain", "--", "statespace", "hmm", "smc"))
    meta = {
        "bench": f"{bench}_meta",
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "library_dirty": dirty,
        "utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    meta.update(extra)
    return meta


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def interleaved(fns: dict, *, rounds: int = 5, block: int = 2, budget_s: float = 20.0, min_rounds: int = 2) -> dict:
    """Best warm wall time of each callable in ``fns``, timed in alternating blocks.

    Each callable is called once untimed first (compilation, jit, caches); the
    warm-up time sets how many rounds fit in ``budget_s`` (at least
    ``min_rounds``, at most ``rounds``). Returns ``{name: best seconds}``.
    """
    first = {}
    for name, fn in fns.items():
        fn()  # compile / jit
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    per_round = sum(first.values()) * block
    n = int(max(min_rounds, min(rounds, budget_s // max(per_round, 1e-9))))
    best = dict(first)
    for _ in range(n):
        for name, fn in fns.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def ratio_line(bench: str, case: str, ours: float, peer: str, peer_s: float, target: float | None, **extra) -> dict:
    line = {"bench": bench, "case": case, "ours_s": round(ours, 6), "peer": peer, "peer_s": round(peer_s, 6),
            "speedup": round(peer_s / ours, 2)}
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
