"""Tests of `biopilot mspc`: train from a historian, check a batch, list alarms, --json."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.store import Historian
from biopilot.twin import parse_fault, simulate_batch

runner = CliRunner()


@pytest.fixture(scope="module")
def line_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A historian with 5 good batches and one contaminated batch (code BAD)."""
    path = tmp_path_factory.mktemp("mspc") / "line.db"
    with Historian(path) as hist:
        hist.ensure_unit("Basel", "USP", "BR-01")
        hist.ensure_product("mAb-1")
        runs = [(f"G{s}", simulate_batch(seed=s, raman=False)) for s in range(300, 305)]
        runs.append(
            (
                "BAD",
                simulate_batch(seed=399, raman=False, faults=[parse_fault("contamination@6:10")]),
            )
        )
        for code, run in runs:
            online = run.samples()
            keep = online["tag"].isin(list(run.online.columns))
            online = online[keep & (online["time_utc"].dt.minute % 10 == 0)]  # 10-min data
            bid = hist.start_batch(code, "BR-01", "mAb-1", None, run.start_utc.to_pydatetime())
            hist.write_samples(bid, "BR-01", online)
            if code == "BAD":
                hist.write_events(
                    bid,
                    "BR-01",
                    [{"time_utc": run.start_utc, "kind": "fault", "message": "contamination"}],
                )
            hist.end_batch(bid, run.online.index[-1].to_pydatetime())
    return path


def _run(*args: str) -> dict | list:  # type: ignore[type-arg]
    res = runner.invoke(app, ["mspc", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_train_check_and_alarms_as_json(line_db: Path, tmp_path: Path) -> None:
    model = tmp_path / "m.json"
    trained = _run(
        "train", "--from", str(line_db), "--out", str(model), "--period-min", "60", "--json"
    )
    assert trained["batches"] == ["G300", "G301", "G302"]  # the faulty one is left out
    assert trained["calibration_batches"] == ["G303", "G304"]
    assert trained["t2_lim99"] > 0 and trained["spe_lim99"] > 0
    good = _run("check", "G301", "--model", str(model), "--db", str(line_db), "--json")
    assert {"t2", "spe", "t2_lim95", "t2_lim99", "spe_lim95", "spe_lim99"} <= set(good["points"][0])
    assert len(good["points"]) == 14 * 24 + 1
    bad = _run("check", "BAD", "--model", str(model), "--db", str(line_db), "--store", "--json")
    raised = [a for a in bad["alarms"] if a["transition"] == "raised"]
    assert raised and raised[0]["time_utc"] >= bad["points"][6 * 24]["time_utc"]
    # A contaminant's oxygen demand: off-gas rates up, O2 enrichment up, DO down.
    oxygen = {"our_mmol_per_l_h", "cer_mmol_per_l_h", "o2_fraction_pct", "do_pct"}
    assert raised[0]["top_variable"] in oxygen
    stored = _run("alarms", "--db", str(line_db), "--json")
    assert [r["transition"] for r in stored][: len(raised)] == ["raised"] * len(raised)
    assert {r["batch"] for r in stored} == {"BAD"}


def test_errors_are_clear_messages(line_db: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["mspc", "check", "B1", "--model", str(tmp_path / "x.json"), "--db", str(line_db)]
    )
    assert res.exit_code == 2 and "no such model file" in " ".join(res.output.split())
    res = runner.invoke(app, ["mspc", "alarms", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no such database" in " ".join(res.output.split())
    res = runner.invoke(app, ["mspc", "--help"])
    assert res.exit_code == 0 and "train" in res.output


def test_check_raises_and_stores_the_ph_probe_cross_check(tmp_path: Path) -> None:
    # Online pH every 10 min plus the daily at-line pH; the DRIFT batch's probe reads
    # +0.1 pH/day high from day 3, which the daily at-line sample shows.
    db = tmp_path / "ph.db"
    with Historian(db) as hist:
        hist.ensure_unit("Basel", "USP", "BR-01")
        hist.ensure_product("mAb-1")
        runs = [(f"G{s}", simulate_batch(seed=s, raman=False)) for s in range(310, 315)]
        drift = simulate_batch(seed=398, raman=False, faults=[parse_fault("ph_probe_drift@3:0.1")])
        for code, run in [*runs, ("DRIFT", drift)]:
            s = run.samples()
            online = s["tag"].isin(list(run.online.columns)) & (s["time_utc"].dt.minute % 10 == 0)
            bid = hist.start_batch(code, "BR-01", "mAb-1", None, run.start_utc.to_pydatetime())
            hist.write_samples(bid, "BR-01", s[online | (s["tag"] == "ph_offline")])
            if code == "DRIFT":
                hist.write_events(bid, "BR-01", [{"time_utc": run.start_utc, "kind": "fault",
                                                  "message": "pH probe drift"}])  # fmt: skip
            hist.end_batch(bid, run.online.index[-1].to_pydatetime())
    model = tmp_path / "m.json"
    _run("train", "--from", str(db), "--out", str(model), "--features",
         "ph_online_minus_offline", "--json")  # fmt: skip
    good = _run("check", "G311", "--model", str(model), "--db", str(db), "--json")
    assert not [a for a in good["alarms"] if a["alarm"] == "ph.CROSSCHECK"]
    bad = _run("check", "DRIFT", "--model", str(model), "--db", str(db), "--store", "--json")
    ph = [a for a in bad["alarms"] if a["alarm"] == "ph.CROSSCHECK"]
    assert ph and ph[0]["transition"] == "raised" and ph[0]["top_variable"] is None
    onset = drift.start_utc + pd.Timedelta(days=3)
    assert pd.Timestamp(ph[0]["time_utc"]) > onset and ph[0]["value"] > ph[0]["limit"] > 0
    stored = _run("alarms", "--db", str(db), "--json")
    assert "ph.CROSSCHECK" in {r["alarm"] for r in stored}
