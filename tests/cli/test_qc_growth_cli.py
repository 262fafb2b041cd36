"""`biopilot qc culture` and `qc growth`: a simulated time-lapse, analysed, fitted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.quality.growth import GrowthFit

runner = CliRunner()
DOUBLING_H = 20.0


def _said(res) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(res.output.split())


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("culture")
    res = runner.invoke(app, ["qc", "culture", "--out", str(out), "--scenario", "adherent",
                              "--start", "0.1", "--doubling-h", str(DOUBLING_H), "--hours", "48",
                              "--every-h", "12", "--size", "384", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["time_h"] for r in rows] == [0.0, 12.0, 24.0, 36.0, 48.0]
    path = out / "run.json"
    res = runner.invoke(app, ["qc", "analyze", *[r["file"] for r in rows], "--json", str(path)])
    assert res.exit_code == 0, res.output
    return path


def test_growth_finds_the_cultures_doubling_time_and_passage_hour(report, tmp_path):
    plot = tmp_path / "growth.html"
    res = runner.invoke(app, ["qc", "growth", str(report), "--every-h", "12", "--capacity", "0.8",
                              "--plot", str(plot), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # the imaged confluence doubles like the twin's culture (20 h while sparse)
    rate = out["confluence_fit"]["rate_per_h"]
    assert rate == pytest.approx(math.log(2) / DOUBLING_H, rel=0.2)
    assert out["frames"] == 5 and out["plateau_confluence"] == 0.8
    rate_twin = math.log(2) / DOUBLING_H
    twin = GrowthFit("logistic", rate_twin, (rate_twin,) * 2, 0.1, 0.8, 0, 0.0).time_to(0.7)
    assert out["hours_to_passage"] == pytest.approx(twin, abs=12.0)  # 112 h, 64 h ahead
    lo, hi = out["doubling_ci95_h"]  # hi is None (inf) when 5 frames cannot prove growth
    assert lo < out["doubling_h"] < (hi or math.inf)
    assert plot.stat().st_size > 10_000 and "viable cells" in plot.read_text(encoding="utf-8")


def test_growth_prints_a_table_and_the_doubling_time(report):
    res = runner.invoke(app, ["qc", "growth", str(report), "--times", "0,12,24,36,48"])
    assert res.exit_code == 0, res.output
    assert "doubling time" in _said(res) and "--capacity" in _said(res)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--every-h", "12", "--times", "0,1"], "not both"),
        (["--times", "0,12"], "2 hours for 5 frames"),
        (["--times", "a,b"], "numbers separated by commas"),
        (["--every-h", "-1"], "--every-h must be > 0"),
    ],
)
def test_growth_refuses_missing_or_bad_times(report, args, match):
    res = runner.invoke(app, ["qc", "growth", str(report), *args])
    assert res.exit_code == 2 and match in _said(res)


def test_growth_names_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    res = runner.invoke(app, ["qc", "growth", str(bad), "--every-h", "8"])
    assert res.exit_code == 2 and "not a 'biopilot qc analyze --json' report" in _said(res)
    bad.write_text("{", encoding="utf-8")
    res = runner.invoke(app, ["qc", "growth", str(bad), "--every-h", "8"])
    assert res.exit_code == 2 and "cannot read the report" in _said(res)


def test_culture_refuses_a_bad_scenario_and_start(tmp_path):
    res = runner.invoke(app, ["qc", "culture", "--out", str(tmp_path), "--scenario", "yeast"])
    assert res.exit_code == 2 and "--scenario must be one of" in _said(res)
    res = runner.invoke(app, ["qc", "culture", "--out", str(tmp_path), "--start", "0.9"])
    assert res.exit_code == 2 and "confluence" in _said(res)
    res = runner.invoke(app, ["qc", "culture", "--out", str(tmp_path), "--start-utc", "9am"])
    assert res.exit_code == 2 and "--start-utc must be an ISO 8601 time" in _said(res)


def test_growth_names_a_frame_without_cells(tmp_path):
    frames = [{"viable_cells_per_cm2": d, "confluence": c}
              for d, c in ((1e4, 0.05), (0.0, 0.0), (2e4, 0.1), (3e4, 0.15))]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"frames": frames, "failed": []}), encoding="utf-8")
    for extra in ([], ["--capacity", "0.8"]):
        res = runner.invoke(app, ["qc", "growth", str(path), "--every-h", "8", *extra])
        assert res.exit_code == 2 and "value 1 (t = 8 h) is 0" in _said(res)


def test_growth_dates_the_frames_by_their_acquisition_times(report):
    by_stamp = runner.invoke(app, ["qc", "growth", str(report), "--json"])
    by_step = runner.invoke(app, ["qc", "growth", str(report), "--every-h", "12", "--json"])
    assert by_stamp.exit_code == 0, by_stamp.output
    assert json.loads(by_stamp.stdout)["doubling_h"] == json.loads(by_step.stdout)["doubling_h"]
    frames = json.loads(report.read_text(encoding="utf-8"))["frames"]
    assert frames[1]["acquired_utc"] == "2026-01-05T20:00:00+00:00"


def test_growth_without_times_says_how_to_give_them(tmp_path):
    frames = [{"file": f"f{k}.tiff", "viable_cells_per_cm2": 1e4 * 2**k, "confluence": 0.05 * 2**k}
              for k in range(4)]
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"frames": frames}), encoding="utf-8")
    res = runner.invoke(app, ["qc", "growth", str(path)])
    assert res.exit_code == 2
    assert "frame 0 (f0.tiff) has no acquisition time" in _said(res) and "--every-h" in _said(res)


def test_analyze_fails_a_frame_whose_acquisition_time_is_malformed(report, tmp_path):
    frames = json.loads(report.read_text(encoding="utf-8"))["frames"]
    holo = Path(frames[0]["file"])
    copy = tmp_path / holo.name
    copy.write_bytes(holo.read_bytes())
    side = json.loads(holo.with_suffix(".json").read_text(encoding="utf-8"))
    side["acquired_utc"] = "monday morning"
    copy.with_suffix(".json").write_text(json.dumps(side), encoding="utf-8")
    res = runner.invoke(app, ["qc", "analyze", str(copy), "--json", "-"])
    assert res.exit_code == 1
    failed = json.loads(res.stdout)["failed"]
    assert "acquired_utc must be an ISO 8601 time" in failed[0]["error"]


def test_growth_leaves_out_a_frame_whose_phase_does_not_explain_its_hologram(tmp_path):
    frames = [{"file": f"f{k}.tiff", "viable_cells_per_cm2": 1e4 * 2**k,
               "confluence": 0.05 * 2**k, "hologram_agreement": 0.9} for k in range(5)]
    frames[2] |= {"viable_cells_per_cm2": 1e3, "confluence": 0.01, "hologram_agreement": -0.6}
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"frames": frames}), encoding="utf-8")
    res = runner.invoke(app, ["qc", "growth", str(path), "--every-h", "10", "--json"])
    assert res.exit_code == 0, res.output
    assert "f2.tiff left out" in _said(res)
    out = json.loads(res.stdout)
    assert out["frames"] == 4 and out["left_out"] == ["f2.tiff"]
    assert out["doubling_h"] == pytest.approx(10.0, rel=0.05)  # the wild frame did not bend it
    for f in frames:
        f["hologram_agreement"] = -0.5
    path.write_text(json.dumps({"frames": frames}), encoding="utf-8")
    res = runner.invoke(app, ["qc", "growth", str(path), "--every-h", "10"])
    assert res.exit_code == 2 and "nothing to fit" in _said(res)
