"""Fixtures of the web tests: a short simulated batch in a historian, demo users, an app."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.monitor.alarms import AlarmTransition
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


@pytest.fixture
def demo() -> dict[str, DemoUser]:
    """The demo users by role value."""
    return dict(BY_ROLE)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A historian with one 6-day batch, two open alarms, a QC result and its disposition."""
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

