"""schemathesis against the OpenAPI schema: no generated request gets a server error (5xx).

Each operation is called in-process (ASGI) with requests generated from its schema, by a
demo user whose role may take the operation's ``x-required-action`` (so the body and the
parameters reach the handler instead of stopping at a 403). ``/api/logout`` gets a new
session for each case; the account and session operations run last, as they may disable or
lock the demo users the others need. The SSE stream ``/api/live`` is included: the app is
built with a 0.05 s stream lifetime so each response ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from biopilot.store.permissions import PERMISSIONS, Action, Role
from biopilot.web.demo import DEMO_USERS

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

#: Path parameters of what the test historian holds (see conftest.py).
REAL = {"ref": "BR-01-S1", "tag": "ph", "alarm": "ph.HI", "record_id": 2, "username": "qc"}
EXAMPLES = 30  # per operation: the whole run stays well under a minute


class Sessions:
    """The app under test and a way to log each demo user in to it (bearer tokens)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._tokens: dict[str, str] = {}

    def token(self, action: str | None, fresh: bool = False) -> str | None:
        """A bearer token of a demo user allowed to take ``action`` (None: no login needed)."""
        if action is None:
            return None
        role = next(r for r in Role if Action(action) in PERMISSIONS[r])
        if fresh or role.value not in self._tokens:
            demo = next(d for d in DEMO_USERS if d.role == role)
            with TestClient(self.app) as client:
                r = client.post("/api/login",
                                json={"username": demo.username, "password": demo.password})
            assert r.status_code == 200, r.text
            if fresh:  # a session of its own, to be closed
                return str(r.json()["token"])
            self._tokens[role.value] = r.json()["token"]
        return self._tokens[role.value]


@pytest.fixture
def sessions(make_app: Callable[..., FastAPI], seeded: Path, mspc_model_file: Path) -> Sessions:
    """The app (estimates stored, an MSPC model deployed, a short live stream), its sessions."""
    return Sessions(make_app(live_max_s=0.05, live_interval_s=0.02, mspc_model=mspc_model_file))


def test_no_generated_request_gets_a_server_error(sessions: Sessions) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", sessions.app)
    failures: dict[str, str] = {}
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_last)
    assert len(operations) > 10
    for operation in operations:
        try:
            _fuzz(operation, sessions)
        except Exception as err:  # a failure names the request that reproduces it
            failures[operation.label] = str(err)[:2000]
    assert failures == {}


def _last(operation: Any) -> int:
    """Order: account changes, then login and logout (fuzzed logins may lock a demo user)."""
    return (operation.path.startswith("/api/users")
            + 2 * (operation.path in ("/api/login", "/api/logout")))


def _fuzz(operation: Any, sessions: Sessions) -> None:
    """Run ``EXAMPLES`` generated requests against one operation."""
    action = operation.definition.raw.get("x-required-action")
    fresh = operation.path == "/api/logout"

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)),
           real=st.booleans())
    def run(case: Any, real: bool) -> None:
        if real:  # half the cases name the stored batch, its tags and alarms
            for name in case.path_parameters or {}:
                case.path_parameters[name] = REAL[name]
            if case.query and "unit" in case.query:
                case.query["unit"] = "BR-01"
        token = sessions.token(action, fresh=fresh)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    run()
