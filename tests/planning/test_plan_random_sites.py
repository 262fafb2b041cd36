"""Random small sites: both solve methods return schedules that break no rule."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biopilot.planning import (
    Site,
    check_schedule,
    compile_site,
    flow_lower_bound,
    solve_instance,
)


@st.composite
def sites(draw: st.DrawFn) -> Site:
    """1-3 suites, 1-3 products of 1-3 chained procedures, changeovers, a closure, shifts."""
    n_suites = draw(st.integers(1, 3))
    suites = [f"S{k}" for k in range(n_suites)]
    products: list[dict[str, Any]] = []
    for p in range(draw(st.integers(1, 3))):
        steps = []
        for k in range(draw(st.integers(1, 3))):
            step: dict[str, Any] = {
                "name": f"p{k}",
                "duration_h": draw(st.integers(1, 10)),
                "suites": draw(st.lists(st.sampled_from(suites), min_size=1, unique=True)),
                "after": [f"p{k - 1}"] if k else [],
            }
            if draw(st.booleans()):
                step["staff"] = {"tech": 1}
            steps.append(step)
        release = draw(st.integers(0, 20))
        products.append(
            {
                "name": f"P{p}",
                "cleaning_h": draw(st.integers(0, 2)),
                "procedures": steps,
                "orders": [
                    {
                        "id": f"O{p}",
                        "batches": draw(st.integers(1, 2)),
                        "release": f"2026-01-05T{release:02d}:00:00Z",
                        "due": "2026-01-09T00:00:00Z",
                    }
                ],
            }
        )
    names = [p["name"] for p in products]
    return Site.model_validate(
        {
            "name": "random",
            "start": "2026-01-05T00:00:00Z",
            "suites": [{"name": s} for s in suites],
            "staff": [{"role": "tech", "headcount": 1, "shifts": [{"start_hour": 6, "hours": 14}]}],
            "closures": [
                {"suite": "S0", "start": "2026-01-05T10:00:00Z", "end": "2026-01-05T14:00:00Z"}
            ],
            "products": products,
            "changeovers": [
                {"from_product": a, "to_product": b, "hours": draw(st.integers(0, 4))}
                for a in names
                for b in names
                if a != b
            ],
        }
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(site=sites(), objective=st.sampled_from(["tardiness", "makespan"]))
def test_every_batch_is_scheduled_without_breaking_a_rule(site: Site, objective: str) -> None:
    inst = compile_site(site, 24)
    for method in ("monolithic", "rolling"):
        sched = solve_instance(
            inst,
            objective,
            time_limit_s=1,
            num_workers=1,
            method=method,
            window_h=6,  # type: ignore[arg-type]
        )
        assert sched.feasible and not sched.unscheduled
        assert check_schedule(inst, sched) == []
        assert sched.objective_value is not None and sched.best_bound is not None
        assert sched.objective_value >= sched.best_bound - 1e-9
        flow_h = sum(b.delivered_h - b.release_h for b in sched.batches)
        assert flow_lower_bound(inst) / 60 <= flow_h + 1e-6
