"""Data-changing routes of the web API: acknowledge an alarm, file a record, e-sign a release.

Each writes its audit entry (who from the session, when from the server's clock, the old
and new value and the reason the body must carry); the e-signature is audited by
:func:`biopilot.store.signatures.sign_batch` itself, refusals included.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from biopilot.monitor.alarms import AlarmTransition
from biopilot.store.permissions import Action, AuthenticationError, User
from biopilot.store.signatures import sign_batch
from biopilot.web.api_read import batch_ref
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.lineview import alarm_states
from biopilot.web.schemas import AckBody, RecordBody, SignBody

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["write"])

_ACKED = {"unack_active": "ack_active", "unack_rtn": "normal"}  # ISA-18.2 fig. 5


@router.post("/batches/{ref}/alarms/{alarm}/acknowledge", summary="Acknowledge an alarm")
def acknowledge(
    ref: str,
    alarm: str,
    body: AckBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.ACKNOWLEDGE_ALARM)),
) -> dict[str, Any]:
    """Write the acknowledgement event and its audit entry; 409 if nothing is to acknowledge."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    state = next((a for a in alarm_states(h, info.id) if a["alarm"] == alarm), None)
    if state is None:
        raise HTTPException(404, f"batch {info.code!r} has no alarm {alarm!r}")
    new = _ACKED.get(state["state"])
    if new is None:
        raise HTTPException(409, f"alarm {alarm!r} is {state['state']}: nothing to acknowledge")
    now = ctx.audit.clock()
    transition = AlarmTransition(
        time_utc=now, alarm=alarm, tag=state["tag"] or alarm.split(".")[0],
        transition="acknowledged", state_before=state["state"], state=new,  # type: ignore[arg-type]
        severity=state["severity"], value=state["value"], limit=state["limit"],
        user=user.username,
    )
    event = transition.to_event()
    event = event.model_copy(update={"payload": event.payload | {"reason": body.reason}})
    entry = ctx.audit.record(user.username, "alarm_acknowledge", "alarm",
                             f"{info.code}/{alarm}", reason=body.reason,
                             old={"state": state["state"]}, new={"state": new})
    h.write_events(info.id, state["unit"], [event])
    return {"alarm": alarm, "state_before": state["state"], "state": new,
            "audit_seq": entry.seq, "message": event.message}


@router.post("/batches/{ref}/records", summary="File a QC result or a comment in a batch record")
def add_record(
    ref: str,
    body: RecordBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.RECORD_QC_RESULT)),
) -> dict[str, Any]:
    """Append the record (author from the session) and its audit entry."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    now = ctx.audit.clock()
    rid = h.add_record(info.id, body.kind, body.body, user.username, now)
    entry = ctx.audit.record(user.username, f"{body.kind}_add", "batch", info.code,
                             reason=body.reason, new={"record_id": rid, "body": body.body})
    return {"record_id": rid, "kind": body.kind, "audit_seq": entry.seq}


@router.post("/batches/{ref}/signatures", summary="E-sign a batch release (password re-entered)")
def sign(
    ref: str,
    body: SignBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.RELEASE_BATCH)),
) -> dict[str, Any]:
    """Sign as the session's user; 403 on a wrong password, 409 when the signature is refused."""
    try:
        sig = sign_batch(ctx.historian, ctx.users, batch_ref(ref), username=user.username,
                         password=body.password, meaning=body.meaning, comment=body.comment,
                         record_digest=body.record_digest)
    except AuthenticationError as err:  # the session is fine; the re-entered password is not
        raise HTTPException(403, f"signature refused: {err}") from None
    return {"record_id": sig.record_id, "manifestation": sig.manifestation(),
            "record_digest": sig.record_digest, "meaning": sig.meaning}
