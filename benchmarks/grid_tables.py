"""Markdown tables (for docs/benchmarks.md) from the JSON lines of the grid scripts.

    python benchmarks/kalman_grid.py > kalman.jsonl   # and hmm_grid.py, smc_grid.py
    python benchmarks/grid_tables.py kalman.jsonl hmm.jsonl smc.jsonl

Benches measured on the same cases become one table (one row per case, for each
bench: our time, the peer's, the speed-up); a speed-up below its target is
marked **bold** with a trailing ``!``; skipped or capped cases are listed with their
reason; each file's run metadata (commit, load, peak) heads its tables.
"""

from __future__ import annotations

import json
import sys

GROUPS = [
    ("Kalman, one sequence (vs dynamax)", ("kalman_grid_filter", "kalman_grid_smoother", "kalman_grid_em")),
    (
        "Kalman, batches (vs dynamax vmap)",
        ("kalman_grid_batch_filter", "kalman_grid_batch_smoother", "kalman_grid_batch_em"),
    ),
    ("HMM, one sequence", ("hmm_grid_smooth", "hmm_grid_baum_welch")),
    ("HMM, ragged batches", ("hmm_grid_batch_smooth", "hmm_grid_batch_baum_welch")),
    ("Bootstrap filter (vs particles)", ("smc_grid_bootstrap",)),
    ("PaRIS (vs particles, per particle-step)", ("smc_grid_paris",)),
    (
        "Fleets of SV sequences, one call (vs particles one sequence after another; ours on one thread)",
        ("smc_grid_fleet", "smc_grid_fleet_paris"),
    ),
]
FLEET = ("smc_grid_fleet", "smc_grid_fleet_paris")
SHORT = {
    "kalman_grid_filter": "filter",
    "kalman_grid_smoother": "smoother",
    "kalman_grid_em": "EM",
    "kalman_grid_batch_filter": "filter",
    "kalman_grid_batch_smoother": "smoother",
    "kalman_grid_batch_em": "EM",
    "hmm_grid_smooth": "smooth",
    "hmm_grid_baum_welch": "Baum-Welch (vs hmmlearn)",
    "hmm_grid_batch_smooth": "smooth",
    "hmm_grid_batch_baum_welch": "Baum-Welch (vs hmmlearn)",
    "smc_grid_bootstrap": "bootstrap",
    "smc_grid_paris": "PaRIS",
    "smc_grid_fleet": "bootstrap",
    "smc_grid_fleet_paris": "PaRIS",
}


def ms(v) -> str:
    if v is None:
        return ""
    v = 1000 * v
    return f"{v:.3g}" if v < 1000 else f"{v:.0f}"


def speedup(r) -> str:
    x = r.get("speedup")
    if x is None:
        return ""
    s = f"{x:.3g}x" if x < 1000 else f"{x:.0f}x"
    return s if r.get("meets", True) else f"**{s}!**"


def cells(bench: str, r: dict | None) -> list[str]:
    if bench in ("hmm_grid_smooth", "hmm_grid_batch_smooth"):
        if r is None:
            return [""] * 5
        if "skipped" in r:
            return ["skipped", "", "", "", ""]
        return [
            ms(r["ours_s"]),
            ms(r.get("dynamax_s")),
            ms(r.get("hmmlearn_s")),
            "" if r.get("peer_s") is None else r["peer"].split()[0],
            speedup(r),
        ]
    if bench in FLEET:
        if r is None:
            return [""] * (5 if bench == "smc_grid_fleet" else 3)
        mine = [ms(r["ours_s"]), ms(r.get("ours_one_thread_s")), f"{r['threads_speedup']:.3g}x"]
        return mine + ([ms(r.get("peer_s")), speedup(r)] if bench == "smc_grid_fleet" else [])
    if r is None:
        return ["", "", ""]
    if "skipped" in r:
        return ["skipped", "", ""]
    return [ms(r["ours_s"]), ms(r.get("peer_s")), speedup(r)]


def header(bench: str) -> list[str]:
    name = SHORT.get(bench, bench)
    if bench in ("hmm_grid_smooth", "hmm_grid_batch_smooth"):
        return [f"{name}: ours ms", "dynamax ms", "hmmlearn ms", "faster peer", "x faster peer"]
    if bench in FLEET:
        mine = [f"{name}: ours ms", "one thread ms", "x threads"]
        return mine + (["peer ms", "x"] if bench == "smc_grid_fleet" else [])
    return [f"{name}: ours ms", "peer ms", "x"]


def tables(lines: list[dict]) -> str:
    out = []
    for rec in lines:
        b = rec.get("bench", "")
        if b.endswith("_meta"):
            out.append("Run: " + ", ".join(f"{k} {v}" for k, v in rec.items() if k != "bench") + ".\n")
        elif b.endswith("_done"):
            out.append(f"Script time: {rec['wall_s']:.0f} s wall, {rec['cpu_s']:.0f} s CPU.\n")
        elif b.endswith("_peak"):
            out.append(
                "Peak (numpy matmul): "
                + ", ".join(
                    f"{k} {v if not isinstance(v, float) else round(v, 1)}"
                    for k, v in rec.items()
                    if k not in ("bench", "case")
                )
                + ".\n"
            )
    by = {
        (r["bench"], r["case"]): r
        for r in lines
        if "case" in r and not r["bench"].endswith(("_meta", "_peak", "_done"))
    }
    notes = {}  # reason -> the cases it applies to
    for title, benches in GROUPS:
        cases = list(dict.fromkeys(c for (b, c) in by if b in benches))
        if not cases:
            continue
        head = ["case"] + [h for b in benches for h in header(b)]
        out += [f"{title}:\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in cases:
            row = [c]
            for b in benches:
                r = by.get((b, c))
                row += cells(b, r)
                if r is not None and ("skipped" in r or any(k in r for k in ("hmmlearn", "dynamax"))):
                    why = r.get("skipped") or r.get("hmmlearn") or r.get("dynamax")
                    notes.setdefault(why, []).append(f"`{b}` {c}")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    for rec in lines:
        if "skipped_peer" in rec:
            notes.setdefault(rec["skipped_peer"], []).append(f"`{rec['bench']}`")
    if notes:

        def listed(where):
            where = list(dict.fromkeys(where))
            return ", ".join(where[:3]) + (f" and {len(where) - 3} more" if len(where) > 3 else "")

        out += ["Skipped or capped:\n", *(f"- {listed(where)}: {why}" for why, where in notes.items()), ""]
    return "\n".join(out)


def summary(lines: list[dict]) -> str:
    """Per bench: how many cells meet their target, the range of speed-ups, and the misses."""
    out = []
    for b in dict.fromkeys(r["bench"] for r in lines if "meets" in r):
        recs = [r for r in lines if r.get("bench") == b and "meets" in r]
        xs = [r["speedup"] for r in recs]
        miss = sorted((r for r in recs if not r["meets"]), key=lambda r: r["speedup"] / r["target"])
        text = f"- `{b}`: target met in {sum(r['meets'] for r in recs)} of {len(recs)} cells, {min(xs):.3g}x to {max(xs):.3g}x"
        if miss:
            shown = ", ".join(f"{r['case']} {r['speedup']:.3g}x" for r in miss[:3])
            text += f"; furthest below: {shown}"
        out.append(text)
    return "\n".join(out)


def flops_table(lines: list[dict]) -> str:
    """GFLOP/s of both sides wherever a line carries them (the Kalman cases), largest state dimension first."""
    recs = [r for r in lines if "ours_gflops" in r and "peer_gflops" in r]
    if not recs:
        return ""
    out = ["| bench | case | ours GFLOP/s | peer GFLOP/s |", "|---|---|---|---|"]
    top = max(int(r["case"].split("_")[0][1:]) for r in recs)
    for r in recs:
        if r["case"].startswith(f"d{top}_"):
            out.append(f"| `{r['bench']}` | {r['case']} | {r['ours_gflops']:.3g} | {r['peer_gflops']:.3g} |")
    return "\n".join(out) + "\n"


def main(paths):
    for p in paths:
        with open(p) as f:
            lines = [json.loads(s) for s in f if s.strip().startswith("{")]
        print(tables(lines))
        print(flops_table(lines))
        print("Targets:\n")
        print(summary(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
