"""Every API route against every role (the role-permission matrix), and the audit of every write."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.store.permissions import PERMISSIONS, Action, Role
from biopilot.web.app import api_routes
from biopilot.web.auth import route_action

BATCH, ALARM = "BR-01-S1", "ph.HI"
Body = Callable[[TestClient, Any], dict[str, Any] | None]


def digest(client: TestClient) -> str:
    """The batch record digest as it stands (what a signer reviews)."""
    return str(client.get(f"/api/batches/{BATCH}/release").json()["record_digest"])


#: One valid request per route: (method, url, body factory). Logout comes last: it ends the session.
REQUESTS: dict[str, tuple[str, str, Body]] = {
    "/api/me": ("GET", "/api/me", lambda c, d: None),
    "/api/overview": ("GET", "/api/overview", lambda c, d: None),
    "/api/batches": ("GET", "/api/batches", lambda c, d: None),
    "/api/batches/{ref}": ("GET", f"/api/batches/{BATCH}", lambda c, d: None),
    "/api/batches/{ref}/tags/{tag}": ("GET", f"/api/batches/{BATCH}/tags/ph?max_points=50",
                                      lambda c, d: None),
    "/api/batches/{ref}/release": ("GET", f"/api/batches/{BATCH}/release", lambda c, d: None),
    "/api/batches/{ref}/events": ("GET", f"/api/batches/{BATCH}/events", lambda c, d: None),
    "/api/batches/{ref}/alarms": ("GET", f"/api/batches/{BATCH}/alarms", lambda c, d: None),
    "/api/audit": ("GET", "/api/audit?limit=5", lambda c, d: None),
    "/api/live": ("GET", "/api/live?unit=BR-01&tags=ph", lambda c, d: None),
    "/api/batches/{ref}/alarms/{alarm}/acknowledge": (
        "POST", f"/api/batches/{BATCH}/alarms/{ALARM}/acknowledge",
        lambda c, d: {"reason": "pH probe checked against offline sample"}),
    "/api/batches/{ref}/records": (
        "POST", f"/api/batches/{BATCH}/records",
        lambda c, d: {"kind": "comment", "body": {"text": "foam at 40 h"}, "reason": "observed"}),
    "/api/batches/{ref}/signatures": (
        "POST", f"/api/batches/{BATCH}/signatures",
        lambda c, d: {"password": d.password, "meaning": "approved", "comment": "record reviewed",
                      "record_digest": digest(c)}),
    "/api/logout": ("POST", "/api/logout", lambda c, d: None),
}
PUBLIC = {"/api/login"}
#: The action each route must require (the permission mapping, written out by hand).
EXPECTED_ACTION = {path: Action.READ for path in REQUESTS} | {
    "/api/batches/{ref}/alarms/{alarm}/acknowledge": Action.ACKNOWLEDGE_ALARM,
    "/api/batches/{ref}/records": Action.RECORD_QC_RESULT,
    "/api/batches/{ref}/signatures": Action.RELEASE_BATCH,
}
#: The audit action each data-changing route writes.
AUDITED = {
    "/api/login": "login",
    "/api/logout": "logout",
    "/api/batches/{ref}/alarms/{alarm}/acknowledge": "alarm_acknowledge",
    "/api/batches/{ref}/records": "comment_add",
    "/api/batches/{ref}/signatures": "e_signature",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def call(client: TestClient, path: str, user: Any) -> int:
    """Send the table's request for ``path``; return the status (streams read to their end)."""
    method, url, body = REQUESTS[path]
    payload = body(client, user)
    with client.stream(method, url, json=payload) as r:
        r.read()
        return r.status_code


def test_every_api_route_is_in_the_request_table(app: FastAPI) -> None:
    assert set(api_routes(app)) - PUBLIC == set(REQUESTS)


def test_every_route_but_login_requires_its_documented_action(app: FastAPI) -> None:
    actual = {p: route_action(r) for p, r in api_routes(app).items() if p not in PUBLIC}
    assert actual == EXPECTED_ACTION


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_permission_matrix_over_every_route(
    role: str, app: FastAPI, login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    client = login(role)
    order = sorted(REQUESTS, key=lambda p: p == "/api/logout")
    outcome = {}
    for path in order:
        action = EXPECTED_ACTION[path]
        allowed = action in PERMISSIONS[Role(role)]
        status = call(client, path, demo[role])
        outcome[path] = (action.value, allowed, status)
    wrong = {p: o for p, o in outcome.items() if (200 <= o[2] < 300) != o[1] or
             (not o[1] and o[2] != 403)}
    assert wrong == {}


def test_refusal_names_user_role_and_action(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    _, url, body = REQUESTS["/api/batches/{ref}/records"]
    r = client.post(url, json=body(client, None))
    assert r.status_code == 403
    assert r.json()["detail"] == "user 'operator' (role operator) may not record_qc_result"


def test_every_data_changing_route_writes_an_audit_entry(
    app: FastAPI, login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    writes = {p for p, r in api_routes(app).items() if r.methods & WRITE_METHODS}
    assert writes == set(AUDITED)
    allowed_role = {  # a role allowed to take each route's action
        path: next(r for r in Role if action in PERMISSIONS[r])
        for path, action in ((p, route_action(api_routes(app)[p]) or Action.READ)
                             for p in writes if p not in PUBLIC)
    }
    seen = {}
    for path in sorted(writes - PUBLIC, key=lambda p: p == "/api/logout"):
        role = allowed_role[path].value
        client = login(role)
        before = client.get("/api/audit?limit=1").json()["head_seq"]
        assert call(client, path, demo[role]) == 200
        client = login(role)  # the logout route closed the session
        entries = client.get(f"/api/audit?start_seq={before + 1}").json()["entries"]
        seen[path] = {e["action"] for e in entries if e["actor"] == demo[role].username}
    client = login("qc_analyst")
    entries = client.get("/api/audit?start_seq=1&limit=5000").json()["entries"]
    seen["/api/login"] = {e["action"] for e in entries if e["actor"] == "qc"}
    missing = {p: a for p, a in AUDITED.items() if a not in seen[p]}
    assert missing == {}
