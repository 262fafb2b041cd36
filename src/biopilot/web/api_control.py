"""Operator decisions on a unit's controller: accept its advice, switch its mode (audited).

The cockpit and the controller share the historian: each decision is a batch event
(``payload.controller_accept`` or ``payload.controller_mode``) that the control loop of the
unit reads and applies (see :mod:`biopilot.cli.run_mpc`). Only the latest advisory
recommendation can be accepted, once; switching to automatic needs ``switch_mode_automatic``
(process engineers), to advisory ``switch_mode_advisory``, to manual ``switch_mode_manual``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from biopilot.store.permissions import Action, User, authorize
from biopilot.web.api_read import batch_ref
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.panels import controller_state
from biopilot.web.schemas import AcceptBody, ModeBody

__all__ = ["ACCEPT_KEY", "MODE_KEY", "router"]

router = APIRouter(prefix="/api", tags=["write"])
#: Payload keys of an acceptance and of a mode switch (read by the control loop).
ACCEPT_KEY = "controller_accept"
MODE_KEY = "controller_mode"
_MODE_ACTION = {"manual": Action.SWITCH_MODE_MANUAL, "advisory": Action.SWITCH_MODE_ADVISORY,
                "automatic": Action.SWITCH_MODE_AUTOMATIC}


@router.post("/batches/{ref}/controller/accept",
             summary="Accept the controller's advisory recommendation (written to the plant)")
def accept(
    ref: str,
    body: AcceptBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.CHANGE_SETPOINT)),
) -> dict[str, Any]:
    """Record the acceptance and its audit entry; 409 if that recommendation is not pending."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    rec = controller_state(h, info.id)["recommendation"]
    if rec is None or rec.get("mode") != "advisory":
        raise HTTPException(409, f"batch {info.code!r} has no advisory recommendation to accept")
    if abs(float(rec["t_h"]) - body.t_h) > 1e-6:
        raise HTTPException(409, f"the pending recommendation is for batch hour {rec['t_h']:g}, "
                                 f"not {body.t_h:g}")
    done = [e for e in h.read_events(batch_id=info.id, kinds=["operation"])
            if (e.payload.get(ACCEPT_KEY) or {}).get("t_h") == body.t_h]
    if done:
        raise HTTPException(409, f"the recommendation for batch hour {body.t_h:g} was already "
                                 f"accepted by {done[0].payload[ACCEPT_KEY]['user']}")
    now = ctx.audit.clock()
    entry = ctx.audit.record(user.username, "recommendation_accept", "batch", info.code,
                             reason=body.reason, new=rec["setpoints"])
    accepted = {"t_h": body.t_h, "user": user.username, "reason": body.reason,
                "setpoints": rec["setpoints"]}
    h.write_events(info.id, info.unit, [{
        "time_utc": now, "kind": "operation", "severity": "info",
        "message": f"NMPC recommendation for batch hour {body.t_h:g} accepted by "
                   f"{user.username}", "payload": {ACCEPT_KEY: accepted}}])
    return {"accepted": accepted, "audit_seq": entry.seq}


@router.post("/batches/{ref}/controller/mode",
             summary="Switch the unit's controller to manual, advisory or automatic")
def switch_mode(
    ref: str,
    body: ModeBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.SWITCH_MODE_MANUAL)),
) -> dict[str, Any]:
    """Record the switch and its audit entry; 403 if the role may not enter that mode."""
    authorize(user, _MODE_ACTION[body.mode])  # automatic needs more than manual
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    old = controller_state(h, info.id)["mode"]
    now = ctx.audit.clock()
    entry = ctx.audit.record(user.username, "controller_mode_change", "unit", info.unit,
                             reason=body.reason, old={"mode": old}, new={"mode": body.mode})
    switch = {"mode": body.mode, "user": user.username, "reason": body.reason}
    h.write_events(info.id, info.unit, [{
        "time_utc": now, "kind": "operation", "severity": "info",
        "message": f"controller of {info.unit} switched to {body.mode} by {user.username}",
        "payload": {MODE_KEY: switch}}])
    return {"switched": switch, "previous": old, "audit_seq": entry.seq}
