"""The simulate / batches / batch / report / run commands, as a user runs them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.store import Historian, read_export

runner = CliRunner()


@pytest.fixture(scope="module")
def line_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("line") / "line.db"
    res = runner.invoke(app, ["simulate", "--units", "2", "--days", "7", "--seed", "11",
                              "--db", str(db), "--fault", "BR-02/feed_pump_failure@4",
                              "--json"])
    assert res.exit_code == 0, res.output
    return db, json.loads(res.output)


def test_simulate_reports_key_figures_per_unit(line_db):
    _, out = line_db
    assert [b["batch"] for b in out["batches"]] == ["BR-01-S11", "BR-02-S12"]
    assert out["batches"][1]["faults"] == "feed_pump_failure@4"
    assert all(b["VCD max 1e6/mL"] > 1 for b in out["batches"])


def test_batches_list_and_show(line_db):
    db, _ = line_db
    res = runner.invoke(app, ["batches", "list", "--db", str(db), "--json"])
    assert res.exit_code == 0
    listed = json.loads(res.output)
    assert [b["code"] for b in listed] == ["BR-01-S11", "BR-02-S12"]
    assert all(b["status"] == "complete" and b["n_spectra"] > 600 for b in listed)
    res = runner.invoke(app, ["batch", "show", "BR-02-S12", "--db", str(db), "--json"])
    shown = json.loads(res.output)
    assert "titer_g_per_l" in shown["tags"]
    assert any(e["kind"] == "fault" for e in shown["events"])


def test_export_parquet_matches_the_store(line_db, tmp_path):
    db, _ = line_db
    f = tmp_path / "b1.parquet"
    res = runner.invoke(app, ["batch", "export", "1", "--parquet", str(f), "--db", str(db)])
    assert res.exit_code == 0, res.output
    exported = read_export(f)
    with Historian(db) as h:
        stored = h.read_samples(1)
    assert len(exported.samples) == len(stored)
    pd.testing.assert_series_equal(
        exported.samples["value"].reset_index(drop=True), stored["value"].reset_index(drop=True),
        check_names=False,
    )


def test_report_is_a_self_contained_page_with_every_panel(line_db, tmp_path):
    db, _ = line_db
    html = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "BR-01-S11", "2", "--html", str(html), "--db", str(db)])
    assert res.exit_code == 0, res.output
    page = html.read_text()
    for title in ("Viable cell density", "Glucose", "Lactate", "Titer", "Dissolved oxygen",
                  "Raman spectra"):
        assert title in page
    assert 'src="https://cdn' not in page and "Plotly.newPlot" in page  # inline: offline


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "foo@3"], "unknown fault 'foo'"),
        (["--fault", "do_probe_drift@20"], "after the harvest"),
        (["--fault", "BR-09/do_probe_drift@3"], "unknown unit 'BR-09'"),
        (["--days", "4"], "must be after temperature_shift_day"),
        (["--days", "0.5"], "--days must be between"),
        (["--units", "0"], "--units must be between"),
        (["--start", "yesterday"], "not an ISO date-time"),
    ],
)
def test_bad_options_name_the_problem_and_write_nothing(tmp_path, args, message):
    db = tmp_path / "x.db"
    res = runner.invoke(app, ["simulate", "--units", "1", "--db", str(db), *args])
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())
    assert not db.exists()


def test_bad_recipe_names_the_field(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\nseeding_density_cells_per_ml: -1\n")
    res = runner.invoke(app, ["simulate", "--recipe", str(recipe), "--db", str(tmp_path / "x.db")])
    assert res.exit_code == 2
    assert "seeding_density_cells_per_ml" in res.output
    recipe.write_text("name: [unclosed\n")
    res = runner.invoke(app, ["simulate", "--recipe", str(recipe), "--db", str(tmp_path / "x.db")])
    assert res.exit_code == 2 and "malformed YAML" in res.output


def test_simulating_the_same_batches_again_is_refused(line_db):
    db, _ = line_db
    res = runner.invoke(app, ["simulate", "--units", "2", "--days", "7", "--seed", "11",
                              "--db", str(db)])
    assert res.exit_code == 2 and "already in this historian" in " ".join(res.output.split())
    with Historian(db) as h:
        assert len(h.list_batches()) == 2


def test_read_commands_refuse_a_missing_historian(tmp_path):
    res = runner.invoke(app, ["batches", "list", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no historian" in res.output
    res = runner.invoke(app, ["batch", "show", "99", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2


def test_unknown_batch_is_named(line_db):
    db, _ = line_db
    res = runner.invoke(app, ["batch", "show", "BR-77-S1", "--db", str(db)])
    assert res.exit_code == 2 and "BR-77-S1" in res.output
