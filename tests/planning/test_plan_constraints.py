"""Schedules obey suites allowed, precedence, no overlap, cleaning, changeovers, due dates."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from biopilot.config import load_yaml
from biopilot.planning import Schedule, Site, cart_network, check_schedule, compile_site, solve
from biopilot.planning.model import Placement
from biopilot.planning.solve import solve_instance

EXAMPLES = Path(__file__).parents[2] / "examples" / "planning"


def _violations(site: Site, sched: Schedule) -> list[str]:
    """Rules checked from the schedule's own fields and the site, independently of the solver."""
    out = []
    setup = {(c.from_product, c.to_product): c.hours for c in site.changeovers}
    by_suite: dict[str, list[tuple[float, float, str, str]]] = {}
    for b in sched.batches:
        prod = site.product(b.product)
        ends = {s.procedure: s.end_h for s in b.steps}
        for s in b.steps:
            proc = prod.procedure(s.procedure)
            if s.start_h < b.release_h - 1e-9:
                out.append(f"{b.id} starts before release")
            if abs(s.end_h - s.start_h - proc.duration_h) > 1e-6:
                out.append(f"{b.id}/{s.procedure} has the wrong duration")
            if any(s.start_h < ends[a] - 1e-9 for a in proc.after):
                out.append(f"{b.id}/{s.procedure} breaks precedence")
            if proc.in_suite != (s.suite is not None) or (
                s.suite is not None and s.suite not in site.eligible_suites(proc)
            ):
                out.append(f"{b.id}/{s.procedure} in a suite not allowed")
            if s.suite is not None:
                by_suite.setdefault(s.suite, []).append((s.start_h, s.end_h, b.product, b.id))
        assert b.end_h == max(s.end_h for s in b.steps)
        assert b.qc_release_h == pytest.approx(b.end_h + prod.qc_release_h)
        if b.due_h is not None:
            assert b.lateness_h == pytest.approx(b.delivered_h - b.due_h)
            assert b.tardiness_h == pytest.approx(max(0.0, b.delivered_h - b.due_h))
    for suite, spans in by_suite.items():
        spans.sort()
        for (_, e1, p1, b1), (s2, _, p2, b2) in itertools.pairwise(spans):
            need = e1 + site.product(p1).cleaning_h + (setup.get((p1, p2), 0.0) if p1 != p2 else 0)
            if s2 < need - 1e-9:
                out.append(f"{suite}: {b2} starts {need - s2:g} h too early after {b1}")
    return out


@pytest.mark.parametrize("objective", ["tardiness", "makespan", "throughput"])
def test_demo_site_schedule_obeys_every_rule(objective: str) -> None:
    site = load_yaml(EXAMPLES / "demo_site.yaml", Site)
    sched = solve(site, 28 * 24, objective, time_limit_s=5, num_workers=2)  # type: ignore[arg-type]
    assert sched.feasible
    assert _violations(site, sched) == []
    assert sched.objective_value is not None and sched.best_bound is not None
    if objective == "throughput":
        assert sched.objective_value <= sched.best_bound + 1e-9
    else:
        assert sched.objective_value >= sched.best_bound - 1e-9
    assert sum(sched.batches_per_product.values()) == len(sched.batches)
    assert all(0.0 <= u <= 1.0 for u in sched.suite_utilisation.values())


def test_tardiness_is_zero_when_every_due_date_can_be_met() -> None:
    site = load_yaml(EXAMPLES / "demo_site.yaml", Site)
    sched = solve(site, 28 * 24, "tardiness", time_limit_s=5, num_workers=2)
    assert sched.objective_value == 0.0 and sched.gap == 0.0
    assert all(b.lateness_h is not None and b.lateness_h <= 0 for b in sched.batches)


def test_changeover_is_inserted_when_products_share_a_suite() -> None:
    site = load_yaml(EXAMPLES / "demo_site.yaml", Site)
    sched = solve(site, 28 * 24, "makespan", time_limit_s=5, num_workers=2)
    # mAb and AAV share DSP-1 and FILL-1: their product changeovers are counted and kept
    shared = [s for s in sched.suites if s.suite in ("DSP-1", "FILL-1")]
    assert sum(s.changeovers for s in shared) >= 2
    assert sched.changeover_hours["DSP-1"] >= 24 + 2 * 8 + 24
    assert _violations(site, sched) == []


def test_rolling_horizon_small_network_schedules_every_batch_validly() -> None:
    site = cart_network(patients_per_year=600, n_suites=3, days=21, seed=3)
    inst = compile_site(site, 21 * 24)
    sched = solve_instance(
        inst, "tardiness", time_limit_s=6, num_workers=2, method="rolling", window_h=72
    )
    assert sched.feasible and not sched.unscheduled
    assert len(sched.batches) == len(inst.batches) > 20
    assert _violations(site, sched) == []
    assert check_schedule(inst, sched) == []  # staff and incubator capacity too
    assert sum(s.changeovers for s in sched.suites) >= 1  # both products shared the suites
    assert sched.best_bound == 0.0 and sched.objective_value is not None


def test_checker_catches_an_overlap() -> None:
    site = load_yaml(EXAMPLES / "ft06_jobshop.yaml", Site)
    inst = compile_site(site, 24)
    sched = solve_instance(inst, "makespan", time_limit_s=5, num_workers=2)
    placements = {}
    for bi, b in enumerate(sched.batches):
        for oi, step in zip(inst.batches[bi].ops, b.steps, strict=True):
            suite = inst.suites.index(step.suite or "")
            placements[oi] = Placement(suite, round(step.start_h * 60))
    assert check_schedule(inst, placements) == []
    first = inst.batches[0].ops[0]
    other = next(o for o in inst.batches[1].ops if inst.ops[o].suites == inst.ops[first].suites)
    placements[first] = Placement(placements[other].suite, placements[other].start)
    broken = check_schedule(inst, placements)
    assert any("starts before the previous operation" in v for v in broken)
