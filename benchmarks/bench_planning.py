"""Planning benchmarks: published job-shop optima, and a year of 10,000 CAR-T patients.

Run: ``nice .venv/bin/python benchmarks/bench_planning.py [--quick]`` (``--quick``: 4 weeks).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from _util import median_time, print_table
from biopilot.config import load_yaml
from biopilot.planning import (
    Schedule,
    Site,
    cart_network,
    check_schedule,
    compile_site,
    flow_lower_bound,
    simulate,
    solve,
    solve_instance,
)
from biopilot.planning.instance import MIN_PER_H

EXAMPLES = Path(__file__).parents[1] / "examples" / "planning"
# (file, published optimum makespan, source)
PUBLISHED = [
    ("ft06_jobshop.yaml", 55.0, "Fisher & Thompson 1963; Jain & Meeran 1999"),
    ("la01_jobshop.yaml", 666.0, "Lawrence 1984; Jain & Meeran 1999"),
]
SCALE_TARGET_S = 300.0
SCALE_TIME_LIMIT_S = 230.0  # CP-SAT budget; dispatch, model building and output come on top


def bench_published() -> list[dict[str, object]]:
    """Each published instance: its optimum beside ours, the bound, the median time."""
    rows = []
    for name, optimum, source in PUBLISHED:
        site = load_yaml(EXAMPLES / name, Site)
        out: dict[str, Schedule] = {}

        def run(site: Site = site, out: dict[str, Schedule] = out) -> None:
            out["s"] = solve(site, 24, "makespan", time_limit_s=60, num_workers=2)

        t = median_time(run, repeat=3)
        s = out["s"]
        rows.append(
            {
                "instance": f"{site.name} ({source})",
                "target: published optimum": optimum,
                "measured: ours": s.objective_value,
                "proven (bound)": s.best_bound,
                "status": s.status,
                "time s": t,
            }
        )
    return rows


def bench_scale(days: int = 365) -> list[dict[str, object]]:
    """10,000 patients a year over 20 suites: time, gaps, validity, Monte Carlo."""
    t0 = time.perf_counter()
    site = cart_network(patients_per_year=10_000, n_suites=20, days=days, seed=0)
    inst = compile_site(site, days * 24)
    limit = SCALE_TIME_LIMIT_S * days / 365
    s = solve_instance(inst, "tardiness", time_limit_s=limit, num_workers=2)
    wall = time.perf_counter() - t0
    broken = check_schedule(inst, s)
    v2v = np.array([b.delivered_h - b.release_h for b in s.batches])
    flow_lb = flow_lower_bound(inst) / MIN_PER_H
    alone = sum(b.min_lead for b in inst.batches) / MIN_PER_H
    sim = simulate(site, s, runs=200, seed=0)
    return [
        {
            "metric": "patient batches scheduled",
            "target": len(inst.batches),
            "measured": len(s.batches),
        },
        {
            "metric": "wall time s (build + solve + output)",
            "target": f"<= {SCALE_TARGET_S:g}",
            "measured": round(wall, 1),
        },
        {"metric": "rule violations (check_schedule)", "target": 0, "measured": len(broken)},
        {"metric": "total tardiness h (objective)", "target": "-", "measured": s.objective_value},
        {"metric": "tardiness lower bound h", "target": "-", "measured": s.best_bound},
        {"metric": "tardiness gap", "target": "reported", "measured": s.gap},
        {"metric": "mean vein-to-vein d", "target": "-", "measured": v2v.mean() / 24},
        {
            "metric": "  bound, each patient alone on its critical path d",
            "target": "-",
            "measured": alone / len(v2v) / 24,
        },
        {
            "metric": "  bound with suite/staff queueing (SRPT relaxation) d",
            "target": "-",
            "measured": flow_lb / len(v2v) / 24,
        },
        {
            "metric": "vein-to-vein (flow) gap",
            "target": "reported",
            "measured": (v2v.sum() - flow_lb) / v2v.sum(),
        },
        {
            "metric": "mean suite utilisation",
            "target": "-",
            "measured": float(np.mean(list(s.suite_utilisation.values()))),
        },
        {
            "metric": "product changeovers",
            "target": "-",
            "measured": sum(x.changeovers for x in s.suites),
        },
        {
            "metric": "MC (200 runs) on-time rate, 4 % failures",
            "target": "-",
            "measured": sim.on_time_rate,
        },
        {
            "metric": "MC vein-to-vein P50 / P95 d",
            "target": "-",
            "measured": f"{sim.vein_to_vein_p50_days:.2f} / {sim.vein_to_vein_p95_days:.2f}",
        },
    ]


def main() -> None:
    """Print both tables."""
    days = 28 if "--quick" in sys.argv else 365
    print("Published instances (objective: makespan), CP-SAT num_workers=2")
    print_table(bench_published())
    print(f"\nScale: 10,000 autologous patients/year, 20 suites, {days} days, rolling horizon")
    print(
        "Bounds: tardiness LB = sum_i w_i max(0, release_i + critical path_i + QC + ship - due_i);"
    )
    print("flow LB = max(sum_i (critical path_i + QC + ship), queueing bound): see")
    print("biopilot.planning.bounds (fast single machine, SRPT, over suites and staff).")
    print_table(bench_scale(days))


if __name__ == "__main__":
    main()
