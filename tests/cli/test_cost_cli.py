"""`biopilot cost`: estimate with uncertainty, published cases, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from biopilot.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "economics"
CART = EXAMPLES / "cart_academic_ran2020.yaml"
runner = CliRunner()


def test_estimate_json_has_percentiles_sobol_and_the_published_figure() -> None:
    args = ["cost", "estimate", str(CART), "--mc", "2000", "--sobol-n", "128", "--seed", "4"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    p = out["monte_carlo"]["metrics"]["per_patient"]
    assert p["p5"] < p["p50"] < p["p95"]
    assert out["monte_carlo"]["draws"] == 2000
    assert out["sobol"]["evaluations"] == 128 * (len(out["tornado"]) + 2)
    assert abs(out["published"]["deviation"]) <= 0.15
    assert out["estimate"]["currency"] == "EUR 2020"


def test_estimate_table_prints_per_batch_per_dose_and_top_sobol(tmp_path: Path) -> None:
    html = tmp_path / "cart.html"
    args = ["cost", "estimate", str(CART), "--mc", "1000", "--sobol-n", "64", "--html", str(html)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in ("per_batch", "per_dose", "P95", "Top Sobol", "Ran et al. 2020"):
        assert text in result.stdout
    assert html.is_file()


def test_bad_file_fails_with_the_field_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(CART.read_text("utf-8").replace("unit_price: 12000", "unit_price: -1"))
    result = runner.invoke(app, ["cost", "estimate", str(bad)])
    assert result.exit_code == 2
    assert "steps.1.materials.0.unit_price" in result.stderr


def test_from_batch_needs_a_database() -> None:
    result = runner.invoke(app, ["cost", "estimate", str(CART), "--from-batch", "B1"])
    assert result.exit_code == 2
    assert "--db" in result.stderr


def test_published_lists_every_case_beside_its_source() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    result = runner.invoke(app, ["cost", "published", *files, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) >= 4
    assert all(abs(r["deviation"]) <= 0.15 and r["source"] for r in rows)


def test_schedule_sets_batches_occupancy_and_failures(tmp_path: Path) -> None:
    steps = [{"procedure": "expand", "suite": "CGT-1", "start_h": 0.0, "end_h": 100.0}]
    batches = [
        {"id": f"c{i}", "product": "CAR-T", "release_h": 0.0, "steps": steps, "end_h": 100.0,
         "qc_release_h": 120.0, "delivered_h": 120.0}
        for i in range(4)
    ]  # fmt: skip
    schedule = {
        "site": "s", "origin": "2026-01-01T00:00:00Z", "horizon_h": 876.0,
        "objective": "tardiness", "status": "OPTIMAL", "batches": batches,
        "batches_per_product": {"CAR-T": 4}, "expected_failures": {"CAR-T": 0.2},
    }  # fmt: skip
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(schedule), encoding="utf-8")
    args = ["cost", "estimate", str(CART), "--schedule", str(path), "--product", "CAR-T"]
    result = runner.invoke(app, [*args, "--mc", "200", "--sobol-n", "0", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["schedule"]["batches_per_year"] == 40.0  # 4 batches in a tenth of a year
    assert out["schedule"]["failure_rate"] == 0.05
    assert out["published"] is None  # a new case, not the published one
    missing = runner.invoke(app, [*args[:-1], "CAR-X"])
    assert missing.exit_code == 2 and "CAR-X" in missing.stderr
