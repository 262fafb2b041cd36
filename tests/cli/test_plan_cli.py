"""`biopilot plan solve|simulate` as a new user would run them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from biopilot.cli.main import app

EXAMPLES = Path(__file__).parents[2] / "examples" / "planning"
runner = CliRunner()


def test_solve_json_reaches_the_published_optimum() -> None:
    res = runner.invoke(
        app,
        [
            "plan",
            "solve",
            str(EXAMPLES / "ft06_jobshop.yaml"),
            "--horizon",
            "1d",
            "--objective",
            "makespan",
            "--time-limit",
            "10",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["status"] == "OPTIMAL" and out["objective_value"] == 55.0 and out["gap"] == 0.0
    assert len(out["batches"]) == 6


def test_solve_writes_an_offline_gantt(tmp_path: Path) -> None:
    html = tmp_path / "gantt.html"
    res = runner.invoke(
        app,
        [
            "plan",
            "solve",
            str(EXAMPLES / "demo_site.yaml"),
            "--horizon",
            "28d",
            "--time-limit",
            "5",
            "--gantt",
            str(html),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Suites" in res.stdout and "OPTIMAL" in res.stdout
    text = html.read_text()
    assert "CAR-T-19-PT-001" in text and "cdn.plot.ly" not in text.split("<body>")[0]
    assert len(text) > 1_000_000  # plotly.js embedded: opens offline


def test_simulate_json_reports_vein_to_vein_and_on_time_rate() -> None:
    res = runner.invoke(
        app,
        [
            "plan",
            "simulate",
            str(EXAMPLES / "demo_site.yaml"),
            "--horizon",
            "28d",
            "--runs",
            "200",
            "--seed",
            "3",
            "--time-limit",
            "5",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["runs"] == 200 and 0.5 < out["on_time_rate"] <= 1.0
    assert out["vein_to_vein_p50_days"] <= out["vein_to_vein_p95_days"]


def test_bad_horizon_is_refused_with_the_expected_form() -> None:
    site = str(EXAMPLES / "demo_site.yaml")
    res = runner.invoke(app, ["plan", "solve", site, "--horizon", "4 weeks"])
    assert res.exit_code == 2
    assert "--horizon" in res.output and "e.g. 28d" in res.output


def test_bad_site_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "site.yaml"
    text = (EXAMPLES / "demo_site.yaml").read_text().replace("duration_h: 96", "duration_h: -96")
    bad.write_text(text)
    res = runner.invoke(app, ["plan", "solve", str(bad)])
    assert res.exit_code == 2
    assert "duration_h" in res.output and "greater than or equal to 0" in res.output


def test_infeasible_plan_exits_non_zero_and_names_conflicts(tmp_path: Path) -> None:
    site = tmp_path / "tight.yaml"
    site.write_text(
        "name: tight\nstart: 2026-01-05T00:00:00Z\nsuites: [{name: S1}]\nproducts:\n"
        + "".join(
            f"  - name: {p}\n    procedures: [{{name: make, duration_h: 10}}]\n"
            f"    orders: [{{id: {p}-1, due: 2026-01-05T12:00:00Z}}]\n"
            for p in ("A", "B")
        )
    )
    res = runner.invoke(app, ["plan", "solve", str(site), "--horizon", "1d", "--hard-due"])
    assert res.exit_code == 1
    assert "conflict: due date of batch A-1" in res.stdout
    assert "conflict: due date of batch B-1" in res.stdout
