"""The unit panels' read routes: estimates with intervals, MSPC chart, controller state, QC."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.store import Historian

BATCH = "BR-01-S1"
OVERLAY_RECORD = 2  # conftest.py's QC result with a hologram overlay
URL = f"/api/batches/{BATCH}"


@pytest.fixture
def reader(login: Callable[[str], TestClient]) -> TestClient:
    """A client logged in as an operator (who may read)."""
    return login("operator")


def test_panels_say_plainly_when_nothing_is_stored_or_deployed(reader: TestClient) -> None:
    assert reader.get(f"{URL}/estimates").json() == {
        "batch": BATCH, "estimates": [], "detail": "no soft-sensor estimates stored for this batch"}
    assert reader.get(f"{URL}/mspc").json() == {"batch": BATCH, "deployed": False,
                                                "detail": "no MSPC model deployed"}
    ctrl = reader.get(f"{URL}/controller").json()
    assert (ctrl["mode"], ctrl["recommendation"], ctrl["history"]) == (None, None, [])
    assert ctrl["detail"] == "no controller decisions stored for this batch"


def test_estimates_come_with_their_interval_and_the_measured_values(
    seeded: Path, reader: TestClient
) -> None:
    [est] = reader.get(f"{URL}/estimates").json()["estimates"]
    assert (est["tag"], est["units"]) == ("glucose_g_per_l", "g/L")
    assert len(est["time_utc"]) == len(est["value"]) == len(est["low"]) == len(est["high"]) > 50
    assert all(lo < v < hi for lo, v, hi in zip(est["low"], est["value"], est["high"],
                                                 strict=True))
    assert len(est["measured"]["value"]) == 7  # the daily at-line samples (the first bad)


def test_mspc_chart_has_limits_and_the_latest_contributions(
    make_app: Callable[..., FastAPI], mspc_model_file: Path, demo: dict[str, object]
) -> None:
    with TestClient(make_app(mspc_model=mspc_model_file)) as client:
        user = demo["operator"]
        client.post("/api/login", json={"username": user.username,  # type: ignore[attr-defined]
                                         "password": user.password})  # type: ignore[attr-defined]
        chart = client.get(f"{URL}/mspc").json()
    assert chart["deployed"] and chart["model_file"] == "mspc.json"
    assert chart["points"] == len(chart["t2"]) == len(chart["spe"]) > 200
    limits = chart["limits"]
    assert 0 < limits["t2_95"] < limits["t2_99"] and 0 < limits["spe_95"] < limits["spe_99"]
    latest = chart["latest"]
    assert latest["time_utc"] == chart["time_utc"][-1]
    spe = latest["contributions"]["spe"]
    assert set(spe) <= set(chart["variables"]) and len(spe) >= 5
    assert sum(spe.values()) == pytest.approx(latest["spe"], rel=1e-6)
    assert list(spe.values()) == sorted(spe.values(), reverse=True)


def test_a_bad_model_file_is_a_clear_422(
    make_app: Callable[..., FastAPI], tmp_path: Path, login: Callable[[str], TestClient]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    token = login("operator").cookies["biopilot_session"]
    with TestClient(make_app(mspc_model=bad)) as client:
        r = client.get(f"{URL}/mspc", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422 and "not a biopilot MSPC model file" in r.json()["detail"]


def test_controller_panel_shows_the_latest_mode_and_recommendation(
    seeded: Path, reader: TestClient
) -> None:
    ctrl = reader.get(f"{URL}/controller").json()
    assert ctrl["mode"] == "advisory"
    assert ctrl["recommendation"]["setpoints"]["feed_bolus_l"] == 12.5
    assert ctrl["recommendation"]["predicted_harvest_kg"] == 5.42
    assert ctrl["detail"] is None and len(ctrl["history"]) == 1


def test_qc_panel_lists_results_dispositions_and_serves_the_overlay(
    reader: TestClient, overlay_png: bytes
) -> None:
    qc = reader.get(f"{URL}/qc").json()
    assert [r["record_id"] for r in qc["results"]] == [1, OVERLAY_RECORD]
    with_overlay = qc["results"][1]
    assert "overlay_png_base64" not in with_overlay["body"]  # linked, not inlined
    assert qc["results"][0]["overlay_url"] is None
    assert qc["disposition"]["disposition"] == "pass"
    png = reader.get(with_overlay["overlay_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == overlay_png
    r = reader.get(f"{URL}/qc/1/overlay.png")
    assert r.status_code == 404 and "no overlay" in r.json()["detail"]


def write(db: Path, values: dict[str, list[float]], every: str = "1h") -> None:
    """Store samples of some tags at the start of the test batch, one every ``every``."""
    with Historian(db) as h:
        info = h.batch(BATCH)
        times = pd.date_range(info.start_utc, periods=len(next(iter(values.values()))), freq=every)
        h.write_samples(info.id, "BR-01", pd.concat(
            pd.DataFrame({"time_utc": times, "tag": tag, "value": v}) for tag, v in values.items()))


def test_without_a_model_file_the_stored_mspc_statistics_are_shown(
    db: Path, reader: TestClient
) -> None:
    write(db, {"mspc_t2": [1.0, 2.0, 9.0], "mspc_spe": [3.0, 4.0, 5.0]})
    chart = reader.get(f"{URL}/mspc").json()
    assert (chart["deployed"], chart["source"], chart["points"]) == (False, "historian", 3)
    assert chart["t2"] == [1.0, 2.0, 9.0] and chart["spe"] == [3.0, 4.0, 5.0]
    assert chart["limits"] is None and chart["latest"] is None
    assert "limits and contributions need the model file" in chart["detail"]


def test_raman_soft_sensor_estimates_are_drawn_over_the_measured_tag(
    db: Path, reader: TestClient
) -> None:
    write(db, {"raman_glucose_g_per_l.est": [4.0, 4.1], "raman_glucose_g_per_l.est_low": [3.5, 3.6],
               "raman_glucose_g_per_l.est_high": [4.5, 4.6]})
    [est] = reader.get(f"{URL}/estimates").json()["estimates"]
    assert est["tag"] == "raman_glucose_g_per_l" and est["value"] == [4.0, 4.1]
    assert len(est["measured"]["value"]) == 7  # the at-line glucose_g_per_l
