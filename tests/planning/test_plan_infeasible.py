"""An infeasible plan is explained: the conflicting due dates and closures are named."""

from __future__ import annotations

from typing import Any

import pytest

from biopilot.planning import Site, compile_site, flow_lower_bound, solve

START = "2026-01-05T00:00:00+00:00"


def _site(orders: list[tuple[str, str]], closures: list[dict[str, Any]] | None = None) -> Site:
    """One suite; one 10 h procedure per product; ``orders`` as (product, due)."""
    return Site.model_validate(
        {
            "name": "tight",
            "start": START,
            "suites": [{"name": "S1"}],
            "closures": closures or [],
            "products": [
                {
                    "name": name,
                    "procedures": [{"name": "make", "duration_h": 10}],
                    "orders": [{"id": f"{name}-1", "due": due}],
                }
                for name, due in orders
            ],
        }
    )


@pytest.mark.parametrize("method", ["monolithic", "rolling"])
def test_two_batches_due_together_name_both_due_dates(method: str) -> None:
    site = _site([("A", "2026-01-05T12:00:00+00:00"), ("B", "2026-01-05T12:00:00+00:00")])
    sched = solve(
        site,
        24,
        "makespan",
        hard_due=True,
        time_limit_s=5,
        num_workers=1,
        method=method,  # type: ignore[arg-type]
    )
    assert sched.status == "INFEASIBLE" and not sched.batches
    assert sorted(sched.conflicts) == [
        "conflict: due date of batch A-1",
        "conflict: due date of batch B-1",
    ]


def test_a_third_batch_with_slack_is_left_out_of_the_conflict() -> None:
    site = _site(
        [
            ("A", "2026-01-05T12:00:00+00:00"),
            ("B", "2026-01-05T12:00:00+00:00"),
            ("C", "2026-01-07T00:00:00+00:00"),
        ]
    )
    sched = solve(site, 24, "makespan", hard_due=True, time_limit_s=5, num_workers=1)
    assert sched.status == "INFEASIBLE"
    assert not any("C-1" in c for c in sched.conflicts)
    assert len(sched.conflicts) == 2


def test_closure_blocking_a_due_date_is_named() -> None:
    closure = {
        "suite": "S1",
        "start": "2026-01-05T05:00:00+00:00",
        "end": "2026-01-05T15:00:00+00:00",
        "reason": "HVAC repair",
    }
    site = _site([("A", "2026-01-05T20:00:00+00:00")], [closure])
    sched = solve(site, 24, "makespan", hard_due=True, time_limit_s=5, num_workers=1)
    assert sched.status == "INFEASIBLE"
    assert sorted(sched.conflicts) == [
        "conflict: closure of suite S1 (HVAC repair)",
        "conflict: due date of batch A-1",
    ]


def test_soft_due_dates_give_tardiness_instead() -> None:
    site = _site([("A", "2026-01-05T12:00:00+00:00"), ("B", "2026-01-05T12:00:00+00:00")])
    sched = solve(site, 24, "tardiness", time_limit_s=5, num_workers=1)
    assert sched.status == "OPTIMAL"
    assert sched.objective_value == 8.0  # the second batch ends at 20 h, due at 12 h
    assert sorted(b.tardiness_h for b in sched.batches) == [0.0, 8.0]


def test_queueing_bound_is_tight_when_batches_must_queue() -> None:
    # two 10 h batches released together on one suite: flows 10 h and 20 h, sum 30 h
    site = _site([("A", "2026-01-06T00:00:00+00:00"), ("B", "2026-01-06T00:00:00+00:00")])
    inst = compile_site(site, 24)
    assert sum(b.min_lead for b in inst.batches) == 20 * 60  # each alone: 10 h
    assert flow_lower_bound(inst) == 30 * 60
    sched = solve(site, 24, "tardiness", time_limit_s=5, num_workers=1)
    assert sum(b.delivered_h - b.release_h for b in sched.batches) == 30.0
