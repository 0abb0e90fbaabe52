"""Markdown tables (for docs/benchmarks.md) from the JSON lines of the grid scripts.

    python benchmarks/kalman_grid.py > kalman.jsonl   # and the others
    python benchmarks/grid_tables.py kalman.jsonl hmm.jsonl smc.jsonl

One table per ``bench``; a cell below its target is marked **miss**; skipped
cases are listed with their reason. The run metadata (commit, load) heads each file's tables.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

EXTRA = {
    "hmm_grid_smooth": ("dynamax_s", "speedup_dynamax", "hmmlearn_s", "speedup_hmmlearn"),
    "hmm_grid_batch_smooth": ("dynamax_s", "speedup_dynamax", "hmmlearn_s", "speedup_hmmlearn"),
    "kalman_grid_filter": ("ours_gflops", "peer_gflops"),
    "kalman_grid_smoother": ("ours_gflops", "peer_gflops"),
    "smc_grid_bootstrap": ("ours_cpu_s", "peer_cpu_s"),
    "smc_grid_paris": ("ours_particle_steps_per_s", "peer_T"),
}


def fmt(v) -> str:
    if isinstance(v, float):
        if v == 0 or 1e-3 <= abs(v) < 1e5:
            return f"{v:.4g}"
        return f"{v:.3g}"
    return "" if v is None else str(v)


def tables(lines: list[dict]) -> str:
    out, by_bench, skipped = [], defaultdict(list), []
    for rec in lines:
        b = rec.get("bench", "")
        if b.endswith("_meta"):
            out.append("Run: " + ", ".join(f"{k} {v}" for k, v in rec.items() if k != "bench") + "\n")
        elif "skipped" in rec or "skipped_peer" in rec:
            skipped.append(rec)
        elif b.endswith("_peak"):
            out.append("Peak: " + ", ".join(f"{k} {fmt(v)}" for k, v in rec.items() if k not in ("bench", "case")) + "\n")
        elif "case" in rec:
            by_bench[b].append(rec)
    for b, recs in by_bench.items():
        extra = EXTRA.get(b, ())
        head = ["case", "ours (s)", "peer", "peer (s)", "speed-up", "target", *extra]
        out.append(f"`{b}`\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r in recs:
            x = r.get("speedup")
            xs = "" if x is None else (f"{x:.3g}x" if r.get("meets", True) else f"**{x:.3g}x miss**")
            row = [r["case"], fmt(r.get("ours_s")), r.get("peer", ""), fmt(r.get("peer_s")), xs,
                   fmt(r.get("target")), *(fmt(r.get(k)) for k in extra)]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    if skipped:
        out.append("Skipped or capped:\n")
        out += [f"- `{r['bench']}` {r.get('case', '')}: {r.get('skipped') or r.get('skipped_peer')}" for r in skipped]
        out.append("")
    return "\n".join(out)


def main(paths):
    for p in paths:
        with open(p) as f:
            lines = [json.loads(s) for s in f if s.strip().startswith("{")]
        print(tables(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
