"""Read routes of the web API: line overview, batches, a batch record, trends, events, audit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from biopilot.store.permissions import Action, User
from biopilot.store.records import EventKind
from biopilot.store.signatures import batch_record_digest, batch_signatures
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.lineview import alarm_states, event_dict, latest_values, line_overview, thin

__all__ = ["batch_ref", "router"]

router = APIRouter(prefix="/api", tags=["read"])
READ = Depends(require(Action.READ))


def batch_ref(ref: str) -> int | str:
    """A batch reference in a path: an integer id, or else a batch code."""
    return int(ref) if ref.isdigit() and len(ref) < 19 else ref  # 19 digits: past int64


@router.get("/overview", summary="Line overview: units, batch, phase, key values, alarms")
def overview(ctx: WebContext = Depends(get_ctx), _: User = READ) -> list[dict[str, Any]]:
    """Return one row per unit."""
    return line_overview(ctx.historian)


@router.get("/batches", summary="Every batch, oldest first")
def batches(ctx: WebContext = Depends(get_ctx), _: User = READ) -> list[dict[str, Any]]:
    """Return the batches (no phases)."""
    return [b.as_dict() for b in ctx.historian.list_batches()]


@router.get("/batches/{ref}", summary="One batch: phases, tags with latest values, records")
def batch(ref: str, ctx: WebContext = Depends(get_ctx), _: User = READ) -> dict[str, Any]:
    """Return the batch with its phases, tags and latest values and its records."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    values = latest_values(h, info.id)
    tags = [{"tag": t, "units": u, "latest": values.get(t)}
            for t, u in h.batch_tags(info.id).items()]
    records = [{"id": r.id, "kind": r.kind, "time_utc": r.time_utc.isoformat(),
                "author": r.author, "body": r.body} for r in h.read_records(info.id)]
    return info.as_dict() | {"tags": tags, "records": records}


@router.get("/batches/{ref}/release", summary="Release view: record digest and signatures")
def release(ref: str, ctx: WebContext = Depends(get_ctx), _: User = READ) -> dict[str, Any]:
    """Return the digest of the batch record as it stands (what a signer signs) and the
    status of every signature, invalidated ones with the reason. Hashes every sample: slow
    for long batches."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    digest = batch_record_digest(h, info.id)
    signatures = [{"record_id": st.signature.record_id, "state": st.state, "reason": st.reason,
                   "manifestation": st.signature.manifestation(),
                   "meaning": st.signature.meaning, "signer": st.signature.signer}
                  for st in batch_signatures(h, info.id)]
    return {"batch": info.code, "record_digest": digest.digest, "parts": digest.parts,
            "signatures": signatures}


@router.get("/batches/{ref}/tags/{tag}", summary="A tag's trend, thinned for plotting")
def trend(
    ref: str,
    tag: str,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    max_points: int = Query(2000, ge=10, le=20000),
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> dict[str, Any]:
    """Return times, values and qualities of one tag (extremes kept when thinned)."""
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    frame = h.read_tag(info.id, tag, start, end)
    shown = thin(frame, min(max_points, ctx.trend_max_points))
    values = shown["value"].astype(float)
    return {
        "batch": info.code, "tag": tag, "units": h.batch_tags(info.id).get(tag),
        "n_stored": len(frame), "n_shown": len(shown),
        "time_utc": [t.isoformat() for t in shown.index],
        "value": [None if v != v else float(v) for v in values],
        "quality": [str(q) for q in shown["quality"]],
    }


@router.get("/batches/{ref}/events", summary="Events of a batch (alarms, operations...)")
def events(
    ref: str,
    kind: list[EventKind] | None = Query(None),
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> list[dict[str, Any]]:
    """Return the batch's events in time order, optionally of some kinds."""
    info = ctx.historian.batch(batch_ref(ref))
    return [event_dict(e) for e in ctx.historian.read_events(batch_id=info.id, kinds=kind)]


@router.get("/batches/{ref}/alarms", summary="Alarm states of a batch (ISA-18.2)")
def alarms(
    ref: str,
    open_only: bool = Query(True, alias="open"),
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> list[dict[str, Any]]:
    """Return each alarm's current state; by default only those still open."""
    info = ctx.historian.batch(batch_ref(ref))
    return alarm_states(ctx.historian, info.id, only_open=open_only)


@router.get("/audit", summary="The audit trail, newest last")
def audit(
    start_seq: int = Query(1, ge=1, le=2**63 - 1),  # a BIGINT column: larger is refused
    limit: int = Query(200, ge=1, le=5000),
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> dict[str, Any]:
    """Return entries from ``start_seq`` and the chain's head."""
    seq, head = ctx.audit.head()
    return {"head_seq": seq, "head_hash": head,
            "entries": [e.as_dict() for e in ctx.audit.entries(start_seq, limit)]}

