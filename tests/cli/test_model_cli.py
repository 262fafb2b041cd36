"""`biopilot model`: train soft sensors from a campaign or a historian, show the file."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.monitor.campaign import ANALYTES, design_campaign, run_campaign
from biopilot.store import Historian

runner = CliRunner()


def _line_db(path: Path, n_batches: int) -> Path:
    """A historian holding twin batches: Raman spectra and daily at-line assays."""
    with Historian(path) as hist:
        hist.ensure_product("mAb-1")
        for i, (run, b) in enumerate(zip(*_batches(n_batches), strict=True)):
            hist.ensure_unit("Site", "USP", b.unit)
            start = b.start_utc + pd.Timedelta(days=20 * i)
            bid = hist.start_batch(f"B{i:02d}", b.unit, "mAb-1", None, start, {"seed": run.seed})
            assert b.raman is not None
            shift = start - b.start_utc
            hist.write_spectra(
                bid, b.unit, b.raman.time_utc + shift, b.raman.wavenumbers_cm1, b.raman.spectra
            )
            rows = b.samples()
            rows = rows[rows["tag"].isin(ANALYTES)].copy()
            rows["time_utc"] = rows["time_utc"] + shift
            hist.write_samples(bid, b.unit, rows)
    return path


def _batches(n: int) -> tuple[list, list]:
    runs = design_campaign(n, seed=31)
    return runs, run_campaign(runs)


def test_train_from_a_campaign_with_test_batches_then_show(tmp_path: Path) -> None:
    out = tmp_path / "ss.bpmodel"
    args = ["model", "train", "softsensor", "--campaign", "3", "--test", "1", "--every", "12"]
    result = runner.invoke(app, [*args, "--seed", "5", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    rows = {r["analyte"]: r for r in summary["analytes"]}
    assert set(rows) == set(ANALYTES)
    assert 0 < rows["glucose_g_per_l"]["rmsep"] < 1.5
    assert len(summary["batches"]) == 3 and len(summary["test_batches"]) == 1
    shown = runner.invoke(app, ["model", "show", str(out), "--json"])
    assert shown.exit_code == 0, shown.output
    header = json.loads(shown.stdout)
    assert header["metadata"]["source"] == {"campaign": 3, "seed": 5, "every": 12}
    table = runner.invoke(app, ["model", "show", str(out)])
    assert table.exit_code == 0 and "per analyte" in table.stdout


def test_train_from_a_historian_pairs_assays_with_spectra(tmp_path: Path) -> None:
    db = _line_db(tmp_path / "line.db", 3)
    out = tmp_path / "line.bpmodel"
    args = ["model", "train", "softsensor", "--from", str(db), "--out", str(out), "--json"]
    result = runner.invoke(app, [*args, "--preprocessing", "detrend", "--max-components", "4"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["batches"] == ["B00", "B01", "B02"]
    meta = json.loads(runner.invoke(app, ["model", "show", str(out), "--json"]).stdout)["metadata"]
    # 15 daily samples per batch; the day-0 one has no spectrum before it.
    assert meta["n_spectra"] == 3 * 14
    assert all(r["rmsecv"] > 0 for r in summary["analytes"])


def test_train_needs_one_source_and_show_refuses_a_foreign_file(tmp_path: Path) -> None:
    neither = runner.invoke(app, ["model", "train", "softsensor"])
    assert neither.exit_code == 2 and "--from" in " ".join(neither.stderr.split())
    junk = tmp_path / "junk.bpmodel"
    junk.write_text("hello")
    shown = runner.invoke(app, ["model", "show", str(junk)])
    assert shown.exit_code == 2 and "not a biopilot model file" in " ".join(shown.stderr.split())
    missing = runner.invoke(app, ["model", "train", "softsensor", "--from", str(tmp_path / "x.db")])
    assert missing.exit_code == 2 and "no historian" in " ".join(missing.stderr.split())
