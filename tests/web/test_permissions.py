"""Every API operation against every role (the role-permission matrix), and the audit of writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.store.permissions import PERMISSIONS, Action, Role
from biopilot.web.app import api_routes
from biopilot.web.auth import route_action

BATCH, ALARM = "BR-01-S1", "ph.HI"
OVERLAY_RECORD = 2  # conftest.py's QC result with a hologram overlay
Body = Callable[[TestClient, Any], dict[str, Any] | None]


@pytest.fixture
def app(make_app: Callable[..., FastAPI], seeded: Path) -> FastAPI:
    """The app over the seeded historian (it holds an advisory recommendation to accept)."""
    return make_app()


def digest(client: TestClient) -> str:
    """The batch record digest as it stands (what a signer reviews)."""
    return str(client.get(f"/api/batches/{BATCH}/release").json()["record_digest"])


#: One valid request per operation: (url, body factory), in the order a session runs them
#: (a user is created before it is changed; logout comes last: it ends the session).
REQUESTS: dict[str, tuple[str, Body]] = {
    "GET /api/me": ("/api/me", lambda c, d: None),
    "GET /api/overview": ("/api/overview", lambda c, d: None),
    "GET /api/batches": ("/api/batches", lambda c, d: None),
    "GET /api/batches/{ref}": (f"/api/batches/{BATCH}", lambda c, d: None),
    "GET /api/batches/{ref}/tags/{tag}": (f"/api/batches/{BATCH}/tags/ph?max_points=50",
                                          lambda c, d: None),
    "GET /api/batches/{ref}/release": (f"/api/batches/{BATCH}/release", lambda c, d: None),
    "GET /api/batches/{ref}/events": (f"/api/batches/{BATCH}/events", lambda c, d: None),
    "GET /api/batches/{ref}/alarms": (f"/api/batches/{BATCH}/alarms", lambda c, d: None),
    "GET /api/batches/{ref}/estimates": (f"/api/batches/{BATCH}/estimates", lambda c, d: None),
    "GET /api/batches/{ref}/mspc": (f"/api/batches/{BATCH}/mspc", lambda c, d: None),
    "GET /api/batches/{ref}/controller": (f"/api/batches/{BATCH}/controller", lambda c, d: None),
    "GET /api/batches/{ref}/qc": (f"/api/batches/{BATCH}/qc", lambda c, d: None),
    "GET /api/batches/{ref}/qc/{record_id}/overlay.png": (
        f"/api/batches/{BATCH}/qc/{OVERLAY_RECORD}/overlay.png", lambda c, d: None),
    "GET /api/specifications": ("/api/specifications", lambda c, d: None),
    "GET /api/audit": ("/api/audit?limit=5", lambda c, d: None),
    "GET /api/live": ("/api/live?unit=BR-01&tags=ph", lambda c, d: None),
    "GET /api/users": ("/api/users", lambda c, d: None),
    "POST /api/batches/{ref}/alarms/{alarm}/acknowledge": (
        f"/api/batches/{BATCH}/alarms/{ALARM}/acknowledge",
        lambda c, d: {"reason": "pH probe checked against offline sample"}),
    "POST /api/batches/{ref}/records": (
        f"/api/batches/{BATCH}/records",
        lambda c, d: {"kind": "comment", "body": {"text": "foam at 40 h"}, "reason": "observed"}),
    "POST /api/batches/{ref}/disposition": (
        f"/api/batches/{BATCH}/disposition",
        lambda c, d: {"disposition": "pass", "reasons": ["all assays within limits"],
                      "reason": "QC review complete"}),
    "POST /api/batches/{ref}/controller/accept": (
        f"/api/batches/{BATCH}/controller/accept",
        lambda c, d: {"t_h": 132.0, "reason": "bolus agrees with the at-line glucose"}),
    "POST /api/batches/{ref}/controller/mode": (
        f"/api/batches/{BATCH}/controller/mode",
        lambda c, d: {"mode": "manual", "reason": "probe maintenance on this unit"}),
    "POST /api/specifications": (
        "/api/specifications",
        lambda c, d: {"specification": {"product": "demo-cells", "version": "2",
                                        "viability_min": 0.7}, "reason": "new release spec"}),
    "POST /api/batches/{ref}/signatures": (
        f"/api/batches/{BATCH}/signatures",
        lambda c, d: {"password": d.password, "meaning": "approved", "comment": "record reviewed",
                      "record_digest": digest(c)}),
    "POST /api/users": (
        "/api/users",
        lambda c, d: {"username": "newbie", "full_name": "New Bie", "role": "operator",
                      "password": "newbie-password", "reason": "joined the night shift"}),
    "PATCH /api/users/{username}": (
        "/api/users/newbie", lambda c, d: {"active": False, "reason": "left the site"}),
    "POST /api/logout": ("/api/logout", lambda c, d: None),
}
PUBLIC = {"POST /api/login"}
#: The action each operation must require (the permission mapping, written out by hand).
EXPECTED_ACTION = {op: Action.READ for op in REQUESTS} | {
    "POST /api/batches/{ref}/alarms/{alarm}/acknowledge": Action.ACKNOWLEDGE_ALARM,
    "POST /api/batches/{ref}/records": Action.RECORD_QC_RESULT,
    "POST /api/batches/{ref}/disposition": Action.RECORD_QC_RESULT,
    "POST /api/batches/{ref}/controller/accept": Action.CHANGE_SETPOINT,
    "POST /api/batches/{ref}/controller/mode": Action.SWITCH_MODE_MANUAL,
    "POST /api/specifications": Action.CHANGE_SPECIFICATION,
    "POST /api/batches/{ref}/signatures": Action.RELEASE_BATCH,
    "GET /api/users": Action.MANAGE_USERS,
    "POST /api/users": Action.MANAGE_USERS,
    "PATCH /api/users/{username}": Action.MANAGE_USERS,
}
#: The audit action each data-changing operation writes.
AUDITED = {
    "POST /api/login": "login",
    "POST /api/logout": "logout",
    "POST /api/batches/{ref}/alarms/{alarm}/acknowledge": "alarm_acknowledge",
    "POST /api/batches/{ref}/records": "comment_add",
    "POST /api/batches/{ref}/disposition": "qc_disposition",
    "POST /api/batches/{ref}/controller/accept": "recommendation_accept",
    "POST /api/batches/{ref}/controller/mode": "controller_mode_change",
    "POST /api/specifications": "specification_create",
    "POST /api/batches/{ref}/signatures": "e_signature",
    "POST /api/users": "user_create",
    "PATCH /api/users/{username}": "user_update",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def call(client: TestClient, op: str, user: Any) -> int:
    """Send the table's request for operation ``op``; return the status (streams read out)."""
    method = op.split(" ", 1)[0]
    url, body = REQUESTS[op]
    payload = body(client, user)
    with client.stream(method, url, json=payload) as r:
        r.read()
        return r.status_code


def test_every_api_operation_is_in_the_request_table(app: FastAPI) -> None:
    assert set(api_routes(app)) - PUBLIC == set(REQUESTS)


def test_every_operation_but_login_requires_its_documented_action(app: FastAPI) -> None:
    actual = {op: route_action(r) for op, r in api_routes(app).items() if op not in PUBLIC}
    assert actual == EXPECTED_ACTION


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_permission_matrix_over_every_operation(
    role: str, app: FastAPI, login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    client = login(role)
    outcome = {}
    for op in REQUESTS:  # logout last
        action = EXPECTED_ACTION[op]
        allowed = action in PERMISSIONS[Role(role)]
        status = call(client, op, demo[role])
        outcome[op] = (action.value, allowed, status)
    wrong = {op: o for op, o in outcome.items() if (200 <= o[2] < 300) != o[1] or
             (not o[1] and o[2] != 403)}
    assert wrong == {}


def test_refusal_names_user_role_and_action(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    url, body = REQUESTS["POST /api/batches/{ref}/records"]
    r = client.post(url, json=body(client, None))
    assert r.status_code == 403
    assert r.json()["detail"] == "user 'operator' (role operator) may not record_qc_result"


def test_every_data_changing_operation_writes_an_audit_entry(
    app: FastAPI, login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    routes = api_routes(app)
    writes = {op for op in routes if op.split(" ", 1)[0] in WRITE_METHODS}
    assert writes == set(AUDITED)
    allowed_role = {  # a role allowed to take each operation's action
        op: next(r for r in Role if (route_action(routes[op]) or Action.READ) in PERMISSIONS[r])
        for op in writes - PUBLIC
    }
    seen = {}
    for op in (o for o in REQUESTS if o in writes):  # the table's order: logout last
        role = allowed_role[op].value
        client = login(role)
        before = client.get("/api/audit?limit=1").json()["head_seq"]
        assert 200 <= call(client, op, demo[role]) < 300
        client = login(role)  # the logout route closed the session
        entries = client.get(f"/api/audit?start_seq={before + 1}").json()["entries"]
        seen[op] = {e["action"] for e in entries if e["actor"] == demo[role].username}
    client = login("qc_analyst")
    entries = client.get("/api/audit?start_seq=1&limit=5000").json()["entries"]
    seen["POST /api/login"] = {e["action"] for e in entries if e["actor"] == "qc"}
    missing = {op: a for op, a in AUDITED.items() if a not in seen[op]}
    assert missing == {}
