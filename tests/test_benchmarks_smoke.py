"""The benchmark grids run end to end (``--quick``: tiny sizes) so that they never rot.

Each script runs in a fresh process, as a user runs it. Peers are optional: a
missing dynamax/hmmlearn is skipped by the script itself, and particles is used
only if its virtual environment was already built (``--no-venv-build``), since
building it needs the package index. Where a peer ran, the scripts' own
agreement checks (largest difference of the filtered/smoothed outputs to the
peer's) must be at round-off: a benchmark that compares different problems
would time nothing meaningful.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "kalman_grid.py": ["--quick"],
    "kalman_fleets.py": ["--quick"],
    "hmm_grid.py": ["--quick"],
    "smc_grid.py": ["--quick", "--no-venv-build"],
}


def run_script(name: str, args: list[str]) -> list[dict]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(s) for s in out.stdout.splitlines() if s.strip()]
    assert lines, "the script printed no JSON line"
    return lines


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_grid_script_quick(name):
    lines = run_script(name, SCRIPTS[name])
    meta = [rec for rec in lines if rec["bench"].endswith("_meta")]
    assert len(meta) == 1 and meta[0]["commit"]
    cases = [rec for rec in lines if "case" in rec and "ours_s" in rec]
    assert cases, "no timed case"
    for rec in cases:
        assert rec["ours_s"] > 0, rec
        if "peer_s" in rec:
            assert rec["peer_s"] > 0, rec
            if "speedup_basis" not in rec:  # PaRIS compares per particle-step, on different lengths
                assert rec["speedup"] == pytest.approx(rec["peer_s"] / rec["ours_s"], rel=0.01), rec
        for key, value in rec.items():
            if key.startswith("max_abs_diff"):
                assert value < 1e-6, (key, rec)
    for rec in lines:
        if "skipped" in rec:
            assert rec["skipped"], rec  # a skipped case says why


@pytest.mark.slow  # the whole script: about 10 s, four fresh processes
def test_mjp_benchmark_runs_and_agrees_with_its_scipy_baseline():
    # mjp.py is small enough to run whole; before timing it asserts that our EM iteration
    # and log-likelihood equal the scipy baseline's (it had rotted once, on a changed M-step)
    lines = run_script("mjp.py", [])
    timed = [rec for rec in lines if "peer_s" in rec]
    assert {rec["bench"] for rec in timed} == {"mjp_em_iteration", "mjp_log_likelihood"} and len(timed) == 4
    for rec in timed:
        assert rec["ours_s"] > 0 and rec["speedup"] == pytest.approx(rec["peer_s"] / rec["ours_s"], rel=1e-3)
