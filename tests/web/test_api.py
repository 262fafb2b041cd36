"""The web API's behaviour: sessions, reads, writes and their audit, and clear 4xx on bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

BATCH = "BR-01-S1"
ACK = f"/api/batches/{BATCH}/alarms/ph.HI/acknowledge"


def last_audit(client: TestClient) -> dict[str, Any]:
    head = client.get("/api/audit?limit=1").json()["head_seq"]
    entry: dict[str, Any] = client.get(f"/api/audit?start_seq={head}").json()["entries"][0]
    return entry


def test_login_sets_an_httponly_cookie_and_returns_a_bearer_token(
    client: TestClient, demo: dict[str, Any]
) -> None:
    user = demo["operator"]
    r = client.post("/api/login", json={"username": user.username, "password": user.password})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    token = r.json()["token"]
    client.cookies.clear()
    me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "operator"
    assert "acknowledge_alarm" in me.json()["actions"]


def test_bad_credentials_are_refused_with_401_and_audited(
    client: TestClient, login: Callable[[str], TestClient]
) -> None:
    r = client.post("/api/login", json={"username": "operator", "password": "not-it-at-all"})
    assert r.status_code == 401
    assert r.json()["detail"] == "wrong username or password"
    entries = login("qa_approver").get("/api/audit?limit=5000").json()["entries"]
    failed = entries[-2]  # the last is qa's own login
    assert (failed["action"], failed["actor"]) == ("login_failed", "operator")


def test_no_session_is_401_with_a_reason(client: TestClient) -> None:
    r = client.get("/api/overview")
    assert r.status_code == 401
    assert "log" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"


def test_an_expired_session_is_401(
    make_app: Callable[..., FastAPI], login: Callable[[str], TestClient]
) -> None:
    token = login("operator").cookies["biopilot_session"]
    later = make_app(clock=lambda: datetime.now(UTC) + timedelta(hours=9))
    with TestClient(later) as c:
        r = c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


def test_logout_ends_the_session(login: Callable[[str], TestClient]) -> None:
    client = login("process_engineer")
    token = client.cookies["biopilot_session"]
    assert client.post("/api/logout").status_code == 200
    r = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_overview_shows_unit_batch_phase_values_and_alarm_count(
    login: Callable[[str], TestClient]
) -> None:
    rows = login("operator").get("/api/overview").json()
    assert [r["unit"] for r in rows] == ["BR-01"]
    row = rows[0]
    assert row["batch"]["code"] == BATCH
    assert row["phase"]
    assert 6.5 < row["key_values"]["ph"]["value"] < 7.5
    assert row["open_alarms"] == 2


def test_trend_is_thinned_and_keeps_the_extremes(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    full = client.get(f"/api/batches/{BATCH}/tags/do_pct?max_points=20000").json()
    thin = client.get(f"/api/batches/{BATCH}/tags/do_pct?max_points=300").json()
    assert thin["n_stored"] == full["n_stored"] > 5000
    assert thin["n_shown"] <= 300
    values = [v for v in full["value"] if v is not None]
    assert max(v for v in thin["value"] if v is not None) == max(values)
    assert min(v for v in thin["value"] if v is not None) == min(values)
    assert thin["time_utc"][-1] == full["time_utc"][-1]


def test_unknown_batch_and_tag_are_404_naming_them(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    r = client.get("/api/batches/NOPE")
    assert r.status_code == 404 and "NOPE" in r.json()["detail"]
    r = client.get(f"/api/batches/{BATCH}/tags/nope")
    assert r.status_code == 404 and "nope" in r.json()["detail"]


def test_acknowledge_writes_an_event_and_an_audit_entry(
    login: Callable[[str], TestClient]
) -> None:
    client = login("operator")
    r = client.post(ACK, json={"reason": "pH probe checked against offline sample"})
    assert r.status_code == 200 and r.json()["state"] == "ack_active"
    entry = last_audit(client)
    assert (entry["actor"], entry["action"]) == ("operator", "alarm_acknowledge")
    assert entry["old_value"] == {"state": "unack_active"}
    assert entry["reason"] == "pH probe checked against offline sample"
    acks = client.get(f"/api/batches/{BATCH}/events?kind=acknowledgement").json()
    assert acks[-1]["payload"]["user"] == "operator"
    alarms = {a["alarm"]: a for a in client.get(f"/api/batches/{BATCH}/alarms").json()}
    assert {k: a["state"] for k, a in alarms.items()} == {"ph.HI": "ack_active",
                                                           "do_pct.LO": "unack_active"}
    assert alarms["ph.HI"]["since_utc"] == alarms["do_pct.LO"]["since_utc"]  # raised, not acked
    again = client.post(ACK, json={"reason": "pH probe checked again"})
    assert again.status_code == 409 and "nothing to acknowledge" in again.json()["detail"]


def test_a_malformed_body_is_422_naming_the_field(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    r = client.post(ACK, json={"why": "x"})
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"body.reason", "body.why"}
    r = client.post(ACK, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_an_oversized_body_is_413(login: Callable[[str], TestClient]) -> None:
    client = login("qc_analyst")
    body = {"kind": "comment", "body": {"text": "x" * 100_000}, "reason": "too long"}
    r = client.post(f"/api/batches/{BATCH}/records", json=body)
    assert r.status_code == 413 and "refused" in r.json()["detail"]


def test_a_qc_result_is_filed_with_its_author_and_audited(
    login: Callable[[str], TestClient]
) -> None:
    client = login("qc_analyst")
    body = {"kind": "qc_result", "body": {"assay": "aggregates_pct", "value": 1.2},
            "reason": "SEC run 42"}
    r = client.post(f"/api/batches/{BATCH}/records", json=body)
    assert r.status_code == 200
    records = client.get(f"/api/batches/{BATCH}").json()["records"]
    assert records[-1]["author"] == "qc" and records[-1]["body"]["assay"] == "aggregates_pct"
    assert last_audit(client)["action"] == "qc_result_add"


def sign(client: TestClient, password: str, digest: str | None = None) -> Any:
    digest = digest or client.get(f"/api/batches/{BATCH}/release").json()["record_digest"]
    return client.post(f"/api/batches/{BATCH}/signatures",
                       json={"password": password, "meaning": "approved",
                             "comment": "record reviewed", "record_digest": digest})


def test_release_signature_is_shown_and_invalidated_by_a_later_record(
    login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    client = login("qa_approver")
    r = sign(client, demo["qa_approver"].password)
    assert r.status_code == 200
    assert "Quincy Approver" in r.json()["manifestation"]
    assert last_audit(client)["action"] == "e_signature"
    sig = client.get(f"/api/batches/{BATCH}/release").json()["signatures"]
    assert [s["state"] for s in sig] == ["valid"]
    login("qc_analyst").post(f"/api/batches/{BATCH}/records", json={
        "kind": "comment", "body": {"text": "late note"}, "reason": "found later"})
    sig = login("qa_approver").get(f"/api/batches/{BATCH}/release").json()["signatures"]
    assert sig[0]["state"] == "invalidated" and "records" in sig[0]["reason"]


def test_signature_with_a_wrong_password_or_stale_digest_is_refused(
    login: Callable[[str], TestClient], demo: dict[str, Any]
) -> None:
    client = login("qa_approver")
    r = sign(client, "wrong-password")
    assert r.status_code == 403 and "signature refused" in r.json()["detail"]
    r = sign(client, demo["qa_approver"].password, digest="0" * 64)
    assert r.status_code == 409 and "digest" in r.json()["detail"]
    assert last_audit(client)["action"] == "e_signature_refused"


def test_the_live_stream_sends_samples_and_alarms(login: Callable[[str], TestClient]) -> None:
    client = login("operator")
    since = "2026-01-11T07:00:00%2B00:00"
    with client.stream("GET", f"/api/live?unit=BR-01&tags=ph&since={since}") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    assert "event: samples" in text and "event: alarms" in text
    assert '"ph.HI"' in text
    r = client.get("/api/live?unit=BR-99&tags=ph")
    assert r.status_code == 404 and "BR-99" in r.json()["detail"]


def test_openapi_schema_lists_the_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/api/batches/{ref}/signatures"]["post"]["x-required-action"] == "release_batch"
    assert paths["/api/login"]["post"]["x-required-action"] is None
    body = paths["/api/batches/{ref}/records"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/RecordBody")


def test_the_live_stream_ends_when_the_session_expires(
    make_app: Callable[..., FastAPI], demo: dict[str, Any]
) -> None:
    ahead = [timedelta(0)]
    app = make_app(clock=lambda: datetime.now(UTC) + ahead[0], live_max_s=30.0)
    with TestClient(app) as client:
        user = demo["operator"]
        client.post("/api/login", json={"username": user.username, "password": user.password})
        with client.stream("GET", "/api/live?unit=BR-01&tags=ph&since=2026-01-11T08:00:00Z") as r:
            lines = r.iter_lines()
            assert next(lines).startswith("retry:")
            ahead[0] = timedelta(hours=9)  # the session is now past its expiry
            rest = list(lines)  # the stream ends by itself, long before live_max_s
    assert "event: session" in rest
    assert any("expired" in line for line in rest)
