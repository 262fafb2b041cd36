"""Fixtures of the web tests: a short simulated batch in a historian, demo users, an app."""

from __future__ import annotations

import base64
import io
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.monitor.alarms import AlarmTransition
from biopilot.monitor.mspc import BatchEvolutionModel
from biopilot.monitor.mspc_io import ONLINE_TAGS, read_batches
from biopilot.quality import QCAttributes
from biopilot.store import Historian
from biopilot.store.twin_ingest import record_batch
from biopilot.store.users import FAST_TEST_HASHER, UserStore
from biopilot.twin import default_recipe, simulate_batch
from biopilot.twin.recipe import with_harvest_day
from biopilot.web.app import create_app
from biopilot.web.demo import DEMO_USERS, DemoUser, ensure_demo_users

BATCH = "BR-01-S1"
UNIT = "BR-01"
ALARMS = ("ph.HI", "do_pct.LO")
BY_ROLE: dict[str, DemoUser] = {d.role.value: d for d in DEMO_USERS}
#: One imaged frame's QC attributes (1000 cells, 93 % viable).
QC_FRAME = QCAttributes(1, 1000, 930, 10.0, 9300.0, float("nan"), 0.93, 0.3, 0.1, 200.0, 190.0,
                        120.0, 300.0, 0.3, clustered_fraction=0.02, hologram_agreement=0.91)
OVERLAY_RECORD = 2  # the record id of the QC result that carries a hologram overlay


def _overlay_png() -> bytes:
    """A small PNG standing in for a hologram overlay: grey phase, one green contour."""
    from PIL import Image

    rgb = np.full((48, 64, 3), 90, np.uint8)
    rgb[10:30, 20] = rgb[10:30, 40] = rgb[10, 20:41] = rgb[30, 20:41] = (40, 220, 40)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def demo() -> dict[str, DemoUser]:
    """The demo users by role value."""
    return dict(BY_ROLE)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A historian with one 6-day batch, two open alarms, QC results and their disposition."""
    path = tmp_path_factory.mktemp("web") / "template.db"
    h = Historian(path)
    result = simulate_batch(with_harvest_day(default_recipe(), 6), seed=1, raman=False)
    rec = record_batch(h, result)
    t = result.online.index[-1].to_pydatetime() - timedelta(hours=1)
    events = [
        AlarmTransition(time_utc=t, alarm=a, tag=a.split(".")[0], transition="raised",
                        state_before="normal", state="unack_active", severity="high",
                        value=7.6 if a == "ph.HI" else 12.0, limit=7.4 if a == "ph.HI" else 20.0
                        ).to_event()
        for a in ALARMS
    ]
    h.write_events(rec.batch_id, rec.unit, events)
    users = UserStore(h, hasher=FAST_TEST_HASHER)
    ensure_demo_users(users)
    h.add_record(rec.batch_id, "qc_result", {"assay": "titer", "value": 2.1}, "qc")
    overlay = base64.b64encode(_overlay_png()).decode("ascii")
    rid = h.add_record(rec.batch_id, "qc_result", {
        "method": "holographic_imaging", "source": "frame_001.tiff",
        "attributes": QC_FRAME.as_dict(), "overlay_png_base64": overlay}, "qc")
    assert rid == OVERLAY_RECORD
    h.add_record(rec.batch_id, "release", {"disposition": "pass", "reasons": []}, "qc")
    h.close()
    return path


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template historian for one test."""
    target = tmp_path / "line.db"
    shutil.copy(template_db, target)
    return target


@pytest.fixture
def make_app(db: Path) -> Callable[..., FastAPI]:
    """Build an app over the test's historian (fast hashing, a quick live stream)."""

    def make(**kwargs: object) -> FastAPI:
        options: dict[str, object] = {"hasher": FAST_TEST_HASHER, "live_interval_s": 0.05,
                                      "live_max_s": 0.3}
        return create_app(db, **(options | kwargs))  # type: ignore[arg-type]

    return make


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """The app over the test's historian."""
    return make_app()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client that is not logged in."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def login(client: TestClient) -> Callable[[str], TestClient]:
    """Log the client in as the demo user of a role (cookie set); return the client."""

    def as_role(role: str) -> TestClient:
        demo = BY_ROLE[role]
        r = client.post("/api/login", json={"username": demo.username, "password": demo.password})
        assert r.status_code == 200, r.text
        return client

    return as_role



@pytest.fixture
def overlay_png() -> bytes:
    """The overlay PNG stored with the QC result ``OVERLAY_RECORD``."""
    return _overlay_png()


@pytest.fixture
def seeded(db: Path) -> Path:
    """The test's historian with what the monitor and the controller would store.

    Glucose estimates with their interval every 2 h, one advisory controller decision.
    """
    with Historian(db) as h:
        info = h.batch(BATCH)
        measured = h.read_tag(info.id, "glucose_g_per_l").dropna()
        times = pd.date_range(measured.index[0], measured.index[-1], freq="2h")
        glucose = np.interp(times.asi8, measured.index.asi8, measured["value"].to_numpy())
        rows = [pd.DataFrame({"time_utc": times, "tag": f"glucose_g_per_l{suffix}",
                              "value": glucose + shift})
                for suffix, shift in ((".est", 0.05), (".est_low", -0.4), (".est_high", 0.5))]
        h.write_samples(info.id, UNIT, pd.concat(rows), units={
            f"glucose_g_per_l{s}": "g/L" for s in (".est", ".est_low", ".est_high")})
        decision = {"mode": "advisory", "status": "Solve_Succeeded",
                    "predicted_harvest_kg": 5.42, "t_h": 132.0,
                    "setpoints": {"feed_bolus_l": 12.5, "glucose_bolus_l": 2.0,
                                  "feed_l_per_h": 0.3, "temperature_c": 33.0}}
        h.write_events(info.id, UNIT, [{
            "time_utc": times[-1].to_pydatetime(), "kind": "operation", "severity": "info",
            "message": "controller recommends a 12.5 L feed bolus", "payload": {
                "controller": decision}}])
    return db


@pytest.fixture
def mspc_model_file(db: Path, tmp_path: Path) -> Path:
    """An online MSPC model fitted on noisy copies of the test batch, saved as a model file."""
    with Historian(db) as h:
        [(_, frame)] = read_batches(h, [BATCH], ONLINE_TAGS)
    rng = np.random.default_rng(3)
    copies = [frame * (1 + 0.02 * rng.standard_normal(frame.shape)) for _ in range(4)]
    model = BatchEvolutionModel(n_components=2, lag_h=6.0, period_min=30.0).fit(copies)
    return model.save(tmp_path / "mspc.json", {"batches": ["copy-1", "copy-2", "copy-3"]})
