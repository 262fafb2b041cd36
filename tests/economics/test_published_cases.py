"""Published cost cases reproduced within +-15 %, each shown beside its source."""

from __future__ import annotations

from pathlib import Path

import pytest
from economics_helpers import EXAMPLES

from biopilot.economics import check_published, load_process, monte_carlo

CASES = sorted(p for p in EXAMPLES.glob("*.yaml") if "published:" in p.read_text("utf-8"))


def test_at_least_four_published_cases_exist() -> None:
    assert len(CASES) >= 4


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_published_case_is_reproduced_within_15_percent(path: Path) -> None:
    check = check_published(load_process(path))
    row = f"{check.cite}: published {check.published:,.0f}, ours {check.ours:,.0f}"
    assert abs(check.deviation) <= 0.15, row
    assert check.source and check.cite


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_published_figure_lies_inside_our_monte_carlo_p5_p95(path: Path) -> None:
    model = load_process(path)
    check = check_published(model)
    p = monte_carlo(model, 10_000, seed=11).metrics[check.metric]
    assert p.p5 <= check.published * 1.15 and check.published * 0.85 <= p.p95


def test_the_cases_table_names_every_source() -> None:
    table = [check_published(load_process(p)) for p in CASES]
    cites = {c.cite for c in table}
    assert len(cites) == len(table)  # one distinct source per case
    assert {c.metric for c in table} >= {"per_gram", "per_dose", "per_patient"}
