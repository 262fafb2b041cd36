"""Published job-shop instances, written as biopilot sites, solve to their proven optima."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from biopilot.config import load_yaml
from biopilot.planning import Site, compile_site, solve

EXAMPLES = Path(__file__).parents[2] / "examples" / "planning"


@pytest.mark.parametrize(
    ("name", "optimum"),
    [
        ("ft06_jobshop.yaml", 55.0),  # Fisher & Thompson 1963; optimum per Jain & Meeran 1999
        ("la01_jobshop.yaml", 666.0),  # Lawrence 1984; optimum per Jain & Meeran 1999
    ],
)
def test_published_optimum_is_reached_and_proven(name: str, optimum: float) -> None:
    site = load_yaml(EXAMPLES / name, Site)
    sched = solve(site, 24, "makespan", time_limit_s=20, num_workers=2, method="monolithic")
    assert sched.status == "OPTIMAL"
    assert sched.objective_value == optimum
    assert sched.best_bound == optimum and sched.gap == 0.0
    assert max(b.end_h for b in sched.batches) == optimum


def test_ft06_solution_obeys_the_job_shop_rules() -> None:
    site = load_yaml(EXAMPLES / "ft06_jobshop.yaml", Site)
    sched = solve(site, 24, "makespan", time_limit_s=20, num_workers=2)
    inst = compile_site(site, 24)
    by_machine: dict[str, list[tuple[float, float]]] = {}
    for b in sched.batches:
        for prev, step in itertools.pairwise(b.steps):
            assert step.start_h >= prev.end_h  # the job's operations in their order
        for step in b.steps:
            assert step.suite is not None
            by_machine.setdefault(step.suite, []).append((step.start_h, step.end_h))
    for spans in by_machine.values():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert len(by_machine) == 6 and sum(len(v) for v in by_machine.values()) == 36
    assert inst.batches and len(sched.batches) == len(inst.batches)
