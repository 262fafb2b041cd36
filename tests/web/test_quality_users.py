"""Specifications, QC dispositions and user management through the API, each audited."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from biopilot.store import Historian
from biopilot.store.audit_schema import app_user

BATCH = "BR-01-S1"
PRODUCT = "mAb-1"  # the product of the twin's batches


def audit_since(client: TestClient, seq: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = client.get(f"/api/audit?start_seq={seq + 1}").json()["entries"]
    return entries


def head(client: TestClient) -> int:
    return int(client.get("/api/audit?limit=1").json()["head_seq"])


def spec(version: str, viability_min: float) -> dict[str, Any]:
    return {"specification": {"product": PRODUCT, "version": version,
                              "viability_min": viability_min}, "reason": f"spec {version}"}


def test_a_specification_change_is_versioned_and_audited_with_old_and_new(
    login: Callable[[str], TestClient]
) -> None:
    qa = login("qa_approver")
    assert qa.post("/api/specifications", json=spec("1", 0.7)).status_code == 200
    before = head(qa)
    r = qa.post("/api/specifications", json=spec("2", 0.8))
    assert r.status_code == 200 and r.json()["version"] == "2"
    [entry] = audit_since(qa, before)
    assert (entry["actor"], entry["action"], entry["object_id"]) == (
        "qa", "specification_change", PRODUCT)
    assert entry["old_value"]["viability_min"] == 0.7
    assert entry["new_value"]["viability_min"] == 0.8 and entry["reason"] == "spec 2"
    [current] = qa.get("/api/specifications").json()
    assert current["specification"]["version"] == "2" and current["author"] == "qa"
    again = qa.post("/api/specifications", json=spec("2", 0.9))
    assert again.status_code == 409 and "new version" in again.json()["detail"]


def test_a_bad_specification_is_422_naming_the_field(login: Callable[[str], TestClient]) -> None:
    body = spec("1", 0.9)
    body["specification"] |= {"confluence_min": 0.9, "confluence_max": 0.5}
    r = login("qa_approver").post("/api/specifications", json=body)
    assert r.status_code == 422 and "confluence_min (0.9) is above confluence_max" in r.text
    body = spec("1", 0.9) | {"reason": ""}
    r = login("qa_approver").post("/api/specifications", json=body)
    assert r.status_code == 422 and "body.reason" in {e["field"] for e in r.json()["errors"]}


def test_disposition_is_judged_on_the_specification_in_force(
    login: Callable[[str], TestClient]
) -> None:
    login("qa_approver").post("/api/specifications", json=spec("1", 0.95))  # 0.93 measured
    qc = login("qc_analyst")
    before = head(qc)
    r = qc.post(f"/api/batches/{BATCH}/disposition", json={"reason": "imaging QC complete"})
    assert r.status_code == 200, r.text
    assert r.json()["disposition"] == "fail"
    assert any("viability" in why for why in r.json()["reasons"])
    [entry] = audit_since(qc, before)
    assert (entry["actor"], entry["action"]) == ("qc", "qc_disposition")
    assert entry["old_value"] == {"disposition": "pass"}  # the template's first disposition
    assert entry["new_value"]["disposition"] == "fail"
    panel = qc.get(f"/api/batches/{BATCH}/qc").json()
    assert panel["disposition"]["disposition"] == "fail"
    assert panel["disposition"]["specification"] == "1"


def test_disposition_by_hand_and_its_refusals(login: Callable[[str], TestClient]) -> None:
    qc = login("qc_analyst")
    r = qc.post(f"/api/batches/{BATCH}/disposition", json={"reason": "judge it"})
    assert r.status_code == 409 and "no specification of product 'mAb-1'" in r.json()["detail"]
    r = qc.post(f"/api/batches/{BATCH}/disposition",
                json={"reasons": ["looks fine"], "reason": "judge it"})
    assert r.status_code == 422 and "reasons" in r.json()["detail"]
    r = qc.post(f"/api/batches/{BATCH}/disposition",
                json={"disposition": "review", "reasons": ["endotoxin pending"],
                      "reason": "waiting for the LAL assay"})
    assert r.status_code == 200
    assert r.json()["reasons"] == ["endotoxin pending"]
    r = login("operator").post(f"/api/batches/{BATCH}/disposition",
                               json={"disposition": "pass", "reason": "not my job"})
    assert r.status_code == 403


def test_admin_creates_a_user_who_logs_in_with_an_argon2_hashed_password(
    login: Callable[[str], TestClient], client: TestClient, db: Path
) -> None:
    admin = login("administrator")
    body = {"username": "nina", "full_name": "Nina Night", "role": "operator",
            "password": "night-shift-pw", "reason": "joined the night shift"}
    r = admin.post("/api/users", json=body)
    assert r.status_code == 201 and r.json()["role"] == "operator"
    entry = admin.get("/api/audit?limit=1").json()
    last = audit_since(admin, entry["head_seq"] - 1)[0]
    assert (last["actor"], last["action"], last["object_id"]) == ("admin", "user_create", "nina")
    assert "password" not in last["new_value"]
    assert admin.post("/api/users", json=body).status_code == 409
    with Historian(db) as h, h.engine.connect() as conn:
        stored = conn.execute(sa.select(app_user.c.password_hash)
                              .where(app_user.c.username == "nina")).scalar_one()
    assert stored.startswith("$argon2id$") and "night-shift-pw" not in stored
    client.cookies.clear()
    r = client.post("/api/login", json={"username": "nina", "password": "night-shift-pw"})
    assert r.status_code == 200 and r.json()["user"]["role"] == "operator"


def test_admin_changes_a_role_and_disables_a_user_with_effect_at_once(
    login: Callable[[str], TestClient], demo: dict[str, Any], make_app: Callable[..., Any]
) -> None:
    token = login("operator").cookies["biopilot_session"]
    admin = login("administrator")
    before = head(admin)
    r = admin.patch("/api/users/operator", json={"role": "process_engineer",
                                                 "reason": "moved to MSAT"})
    assert r.status_code == 200 and r.json()["role"] == "process_engineer"
    [entry] = audit_since(admin, before)
    assert (entry["action"], entry["old_value"], entry["new_value"]) == (
        "user_update", {"role": "operator"}, {"role": "process_engineer"})
    bearer = {"Authorization": f"Bearer {token}"}
    with TestClient(make_app()) as other:
        assert other.get("/api/me", headers=bearer).json()["role"] == "process_engineer"
        admin.patch("/api/users/operator", json={"active": False, "reason": "left the site"})
        r = other.get("/api/me", headers=bearer)
    assert r.status_code == 403 and "inactive" in r.json()["detail"]


def test_user_changes_that_are_refused(login: Callable[[str], TestClient]) -> None:
    admin = login("administrator")
    r = admin.patch("/api/users/admin", json={"active": False, "reason": "oops"})
    assert r.status_code == 409 and "another administrator" in r.json()["detail"]
    r = admin.patch("/api/users/nobody", json={"active": False, "reason": "who?"})
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    r = admin.patch("/api/users/qc", json={"reason": "nothing"})
    assert r.status_code == 422 and "nothing to change" in r.json()["detail"]
    r = admin.post("/api/users", json={"username": "x", "full_name": "X", "role": "operator",
                                       "password": "short", "reason": "weak"})
    assert r.status_code == 422 and "body.password" in r.text
    r = login("qa_approver").get("/api/users")
    assert r.status_code == 403 and "manage_users" in r.json()["detail"]


def test_an_advisory_recommendation_is_accepted_once_by_an_authorised_user(
    seeded: Path, login: Callable[[str], TestClient],
) -> None:
    url = f"/api/batches/{BATCH}/controller/accept"
    assert login("qc_analyst").post(url, json={"t_h": 132.0, "reason": "x" * 5}).status_code == 403
    operator = login("operator")  # the same client, now the operator's session
    stale = operator.post(url, json={"t_h": 126.0, "reason": "looks right"})
    assert stale.status_code == 409 and "132" in stale.json()["detail"]
    ok = operator.post(url, json={"t_h": 132.0, "reason": "bolus agrees with at-line glucose"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["accepted"]["setpoints"]["feed_bolus_l"] == 12.5
    again = login("process_engineer").post(url, json={"t_h": 132.0, "reason": "me too"})
    assert again.status_code == 409 and "already accepted by operator" in again.json()["detail"]


def test_only_a_process_engineer_switches_the_controller_to_automatic(
    seeded: Path, login: Callable[[str], TestClient],
) -> None:
    url = f"/api/batches/{BATCH}/controller/mode"
    body = {"mode": "automatic", "reason": "model validated on the last three batches"}
    refused = login("operator").post(url, json=body)
    assert refused.status_code == 403 and "switch_mode_automatic" in refused.json()["detail"]
    assert login("operator").post(url, json={**body, "mode": "manual"}).status_code == 200
    engineer = login("process_engineer")
    ok = engineer.post(url, json=body)
    assert ok.status_code == 200 and ok.json()["previous"] == "advisory"
    entries = engineer.get("/api/audit?start_seq=1&limit=5000").json()["entries"]
    switch = [e for e in entries if e["action"] == "controller_mode_change"]
    assert [e["actor"] for e in switch] == ["operator", "engineer"]
    assert switch[-1]["new_value"] == {"mode": "automatic"}
