"""Published cost cases reproduced within +-15 %, each shown beside its source.

Two kinds of case live in ``examples/economics``: ``line_items`` cases are built from the
source's own cost items, so our total is a prediction of the published one; ``total_only``
cases reproduce a published total with a breakdown of our own (a plausibility check only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from economics_helpers import EXAMPLES, build

from biopilot.economics import check_published, estimate, load_process, monte_carlo, sourced_share

CASES = sorted(p for p in EXAMPLES.glob("*.yaml") if "published:" in p.read_text("utf-8"))
LINE_ITEM_CASES = [p for p in CASES if check_published(load_process(p)).inputs == "line_items"]

#: Most a line-item case may rest on assumed inputs, as a share of its cost of one batch.
MAX_ASSUMED = 0.10


def test_at_least_four_published_cases_exist() -> None:
    assert len(CASES) >= 4


def test_at_least_two_cases_are_rebuilt_from_their_sources_line_items() -> None:
    assert {p.stem for p in LINE_ITEM_CASES} >= {"aav_stjude_2021", "msc_gmp_lechanteur2021"}


@pytest.mark.xfail(
    strict=True,
    reason="issue 7 asks for 4 cases built from source line items; 3 so far (AAV, MSC, serum "
    "eye drops): the CAR-T, mAb and plant-mAb cases reproduce a published total only",
)
def test_at_least_four_cases_are_rebuilt_from_their_sources_line_items() -> None:
    assert len(LINE_ITEM_CASES) >= 4


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_published_case_is_reproduced_within_15_percent(path: Path) -> None:
    check = check_published(load_process(path))
    row = f"{check.cite}: published {check.published:,.0f}, ours {check.ours:,.0f}"
    assert abs(check.deviation) <= 0.15, row
    assert check.source and check.cite


@pytest.mark.parametrize("path", LINE_ITEM_CASES, ids=[p.stem for p in LINE_ITEM_CASES])
def test_a_line_item_case_rests_on_sourced_inputs(path: Path) -> None:
    check = check_published(load_process(path))
    assert 1 - check.sourced_share <= MAX_ASSUMED, f"{check.cite}: {check.sourced_share:.0%}"


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_a_case_mostly_of_our_assumptions_does_not_claim_line_items(path: Path) -> None:
    check = check_published(load_process(path))
    # sourced / total can round a hair above 1 (float sums in another order)
    assert check.sourced_share == pytest.approx(min(max(check.sourced_share, 0.0), 1.0), abs=1e-12)
    if check.sourced_share < 1 - MAX_ASSUMED:
        assert check.inputs == "total_only", check.cite


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


def test_msc_case_adds_the_rows_of_its_source_table() -> None:
    # Lechanteur 2021 Table 6: 2633 EUR/bag x (28 % x 3.6 + 49 % x 1.9 + 11 % x 5.3 + 12 % x 1)
    est = estimate(load_process(EXAMPLES / "msc_gmp_lechanteur2021.yaml"))
    assert est.per_dose == pytest.approx(2633 * (0.28 * 3.6 + 0.49 * 1.9 + 0.11 * 5.3 + 0.12), 1e-4)


def test_sourced_share_counts_cost_items_by_their_source_tag() -> None:
    # small process: media 10,000; resin 1,000; labour 1,000 + 500; QC 5,000; facility 50,000
    data = build().model_dump()
    data["published"] = {"value": 1, "metric": "per_batch", "currency": "USD", "cite": "x",
                         "source": "x", "inputs": "line_items"}  # fmt: skip
    data["steps"][1]["materials"][0]["source"] = "assumed: resin price"
    data["qc"][0]["source"] = "assumed"
    model = build(**{k: data[k] for k in ("published", "steps", "qc")})
    total = estimate(model).per_batch
    assert sourced_share(model) == pytest.approx(1 - (1_000 + 5_000) / total)
    data["published"]["inputs"] = "total_only"
    data["facility"]["source"] = "vendor quote"
    model = build(**{k: data[k] for k in ("published", "steps", "qc", "facility")})
    assert sourced_share(model) == pytest.approx(50_000 / total)


def test_without_a_published_block_untagged_costs_count_as_assumed() -> None:
    assert sourced_share(build()) == 0.0
