"""`biopilot run`: the live line over real OPC UA on loopback, as `make run` starts it (short)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.cli.run import run_demo
from biopilot.cli.run_cockpit import CockpitProcess
from biopilot.cli.run_live import LineContext, LiveResult, LiveSettings, run_live
from biopilot.cli.run_plant import PlantConfig, PlantProcess
from biopilot.line import LineClient, NetworkRelay
from biopilot.line.server import free_port
from biopilot.monitor.online_models import build_online_models
from biopilot.monitor.online_mspc import MSPC_TAGS
from biopilot.monitor.online_types import estimate_tag, soft_tag
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail

runner = CliRunner()


def test_run_serves_records_monitors_and_reports_the_line(tmp_path: Path) -> None:
    """0.6 simulated days at 20000x: nothing lost, estimates, MSPC per unit, DO drift alarmed."""
    args = ["run", "--out", str(tmp_path), "--days", "0.6", "--speed", "20000", "--port", "0",
            "--fault", "BR-03/do_probe_drift@0.05:-20", "--campaign", "6", "--good-batches", "10",
            "--no-serve", "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["missing_samples"] == 0 and out["simulated_days"] >= 0.6
    assert [u["unit"] for u in out["units"]] == ["BR-01", "BR-02", "BR-03"]
    assert [u["fed by"] for u in out["units"]] == ["recipe", "NMPC (MSPC: probe checks)", "recipe"]
    for u in out["units"]:
        assert u["served"] == u["stored"] >= 13 * 0.6 * 1440, u  # 13 tags a minute
    assert "mspc_t2_checks.MSPC" in out["units"][2]["alarms raised"]
    with Historian(tmp_path / "line.db") as h:
        for b in h.list_batches():
            tags = h.batch_tags(b.id)
            assert {estimate_tag("vcd_cells_per_ml"), estimate_tag("titer_g_per_l", "low"),
                    soft_tag("glucose_g_per_l"), *MSPC_TAGS.values()} <= set(tags), b.code
            assert len(h.read_tag(b.id, MSPC_TAGS["t2"])) >= 0.6 * 6 * 24 - 1  # one per bin
            assert b.status == "stopped" and b.end_utc is not None
        actions = [e.action for e in AuditTrail(h).entries()]
        assert actions.count("model_deploy") == 2
        # BR-02 runs under the NMPC: a decision every 6 simulated hours, written and audited.
        br02 = next(b for b in h.list_batches() if b.unit == "BR-02")
        decisions = [e.payload["controller"] for e in h.read_events(br02.id)
                     if "controller" in e.payload]
        hours = [d["t_h"] for d in decisions]  # a loaded machine may skip a slot, never repeat
        assert len(hours) >= 2 and hours[0] == 0.0 and all(h % 6.0 == 0.0 for h in hours)
        assert hours == sorted(set(hours))
        assert all(d["error"] is None and "temperature_c" in d["written"] for d in decisions)
        assert actions.count("setpoint_change") == len(decisions)
    # The imaging incubator: each batch's harvest sample analysed and filed as QC with overlay.
    assert [q["unit"] for q in out["imaging_qc"]] == ["BR-01", "BR-02", "BR-03"]
    assert all(q["cells"] > 100 and 0.8 < q["viability (imaging)"] < 1.0 for q in out["imaging_qc"])
    assert all(q["hologram agreement"] > 0.5 for q in out["imaging_qc"])  # the release limit
    with Historian(tmp_path / "line.db") as h:
        qc = [r for b in h.list_batches() for r in h.read_records(b.id) if r.kind == "qc_result"]
        assert len(qc) == 3 and all(r.body["overlay_png_base64"] for r in qc)
    page = Path(out["report"]).read_text(encoding="utf-8")
    assert "Imaging QC" in page
    assert "id='mspc'" in page and "probe checks T2" in page and "id='estimates'" in page
    assert Path(out["mspc_model"]).is_file() and Path(out["soft_sensor_model"]).is_file()


def test_a_cut_connection_loses_nothing(tmp_path: Path) -> None:
    """The ingest through a relay that drops the connection mid-run: it backfills the gap."""
    models = build_online_models(soft_sensor_batches=3, mspc_batches=4, calibration_batches=0)
    plant = PlantProcess(PlantConfig(units=1, speed=20000.0, port=free_port(), until_h=10.0))
    relay = NetworkRelay("127.0.0.1", plant.config.port, port=free_port())
    cut_at_h = 4.0

    async def cut(ctx: LineContext) -> None:
        while ctx.plant.t_h < cut_at_h:
            await asyncio.sleep(0.05)
        relay.cut(down=True)  # the cable is pulled for a second (~5 simulated hours)
        await asyncio.sleep(1.0)
        relay.down = False
        await ctx.stop.wait()

    async def cool(ctx: LineContext) -> None:
        """A controller's seam: write BR-01's temperature setpoint over OPC UA from hour 5."""
        async def ignore(samples: list[object]) -> None:
            return None

        writer = LineClient(ctx.endpoint, ctx.setpoints, ignore)
        run = asyncio.create_task(writer.run(ctx.stop))
        await writer.connected.wait()
        while ctx.plant.t_h < 5.0:
            await asyncio.sleep(0.05)
        await writer.write("BR-01", "temperature_c_sp", 34.0)
        await run

    async def main() -> LiveResult:
        await relay.start()
        try:
            settings = LiveSettings(db=tmp_path / "line.db", ingest_url=relay.url)
            return await run_live(settings, plant, models, tasks=[cut, cool])
        finally:
            await relay.stop()

    plant.start()
    result = asyncio.run(main())
    assert result.task_errors == []
    assert result.client["connection_losses"] >= 1 and result.client["backfilled"] > 0
    assert result.served and result.missing == {}
    assert result.plant_h >= 10.0 > cut_at_h
    with Historian(tmp_path / "line.db") as h:
        temp = h.read_tag(result.batch_ids["BR-01"], "temperature_c")["value"]
    hours = (temp.index - temp.index[0]).total_seconds() / 3600.0
    assert temp[hours < 5.0].mean() > 36.0 > 35.0 > temp[hours > 9.0].mean()  # the plant obeyed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "BR-07/do_probe_drift@3"], "unknown unit 'BR-07'"),
        (["--fault", "BR-01/leak@3"], "unknown fault 'leak'"),
        (["--days", "20"], "--days"),
    ],
)
def test_bad_options_name_the_problem(tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["run", "--out", str(tmp_path), "--no-serve", *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split())
    assert not (tmp_path / "line.db").exists()


def test_the_cockpit_serves_the_line_while_it_runs(tmp_path: Path) -> None:
    """The cockpit answers before the live phase ends, and shows the line's units after."""
    cockpit = CockpitProcess(tmp_path / "line.db", free_port(), tmp_path / "cockpit.log")
    first_answer: list[float] = []

    def watch() -> None:
        while not cockpit.running and not done.is_set():
            time.sleep(0.05)
        if cockpit.ready(timeout_s=120):
            first_answer.append(time.monotonic())

    done = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        summary = run_demo(tmp_path, days=1.0, speed=5000, port=0, quiet=True,
                           training=(4, 5), cockpit=cockpit)  # fmt: skip
        live_ended = time.monotonic()
        done.set()
        watcher.join(10)
        assert first_answer and first_answer[0] < live_ended, "served only after the run"
        assert summary["missing_samples"] == 0
        with httpx.Client(base_url=cockpit.url, timeout=30) as web:
            web.post("/api/login", json={"username": "engineer",
                                              "password": "engineer-demo-pw"}).raise_for_status()
            overview = web.get("/api/overview").json()
        assert {"BR-01", "BR-02", "BR-03"} <= {u["unit"] for u in overview}
    finally:
        cockpit.stop()
    assert not cockpit.running
