"""No input makes the API answer 500: odd paths, queries and bodies on every route and role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biopilot.web.app import api_routes

ODD_SEGMENTS = ["0", "-1", "99999999999999999999999", "%00", "..%2F..", "BR-01-S1%20", "é",
                "x" * 300]
ODD_QUERIES = ["?max_points=-5", "?max_points=abc", "?start=yesterday",
               "?start=2026-01-01T00:00:00",
               "?kind=bogus", "?start_seq=0",
               "?start_seq=99999999999999999999", "?limit=99999999", "?unit=BR-01&tags=",
               "?unit=BR-01&tags=ph&since=not-a-time", "?unit=BR-01&tags=ph&since=2026-01-01"]
ODD_BODIES: list[Any] = [None, {}, [], "text", 3, {"reason": None}, {"reason": "x" * 5000},
                         {"kind": "signature", "body": {}, "reason": "sneaky"},
                         {"kind": "comment", "body": {"x": 1e308}, "reason": "big"},
                         {"password": "", "meaning": "maybe", "comment": "", "record_digest": "zz"},
                         {"username": "a" * 1000, "password": "b"},
                         {"disposition": None, "reasons": [], "reason": "judge it"},
                         {"disposition": None, "reasons": ["x"], "reason": "judge it"},
                         {"specification": {"product": "p", "viability_min": 0.9,
                                            "viability_max": 0.1}, "reason": "min above max"},
                         b'{"specification": {"product": "p", "viable_cells_per_cm2_max":'
                         b' Infinity}, "reason": "no upper bound"}',
                         {"username": "new", "full_name": "N", "role": "god",
                          "password": "12345678", "reason": "unknown role"},
                         {"role": "operator", "reason": "demote"}, {"reason": "nothing"}]


def concrete(path: str, segment: str) -> str:
    """Fill every ``{param}`` of a path with ``segment``."""
    out = path
    for name in ("ref", "tag", "alarm", "record_id", "username"):
        out = out.replace("{" + name + "}", segment)
    return out


@pytest.mark.parametrize("role", [None, "operator", "qc_analyst", "qa_approver", "administrator"])
def test_no_request_gets_a_server_error(
    role: str | None, make_app: Callable[..., FastAPI], demo: dict[str, Any]
) -> None:
    app = make_app(live_max_s=0.02)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {}
        if role is not None:
            d = demo[role]
            token = client.post("/api/login", json={"username": d.username,
                                                    "password": d.password}).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            client.cookies.clear()
        errors = []
        for op, route in api_routes(app).items():
            method, path = op.split(" ", 1)
            if path == "/api/logout":
                continue
            base = concrete(path, "BR-01-S1")
            bodies = ODD_BODIES if method in ("POST", "PATCH") else [None]
            tries = [(concrete(path, s), {}) for s in ODD_SEGMENTS]
            if route.dependant.query_params:  # the slow routes take none
                tries += [(base + q, {}) for q in ODD_QUERIES]
            tries += [(base, b) for b in bodies]
            for url, body in tries:
                send = {"content": body, "headers": headers | {"content-type": "application/json"}
                        } if isinstance(body, bytes) else {"json": body, "headers": headers}
                with client.stream(method, url, **send) as r:
                    r.read()
                if r.status_code >= 500:
                    errors.append((method, url, body, r.status_code, r.text[:200]))
        assert errors == []
