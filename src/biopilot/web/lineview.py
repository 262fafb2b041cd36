"""What the cockpit shows, read from the historian: line overview, latest values, alarm states.

Alarm states are replayed from the stored ``alarm``/``acknowledgement`` events (the last
event of each alarm carries its ISA-18.2 state), so every server process shows the same
state as the batch journal.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from biopilot.store import BatchInfo, EventInfo, Historian
from biopilot.store import schema as s
from biopilot.store.timebase import from_us

__all__ = [
    "KEY_TAGS",
    "OPEN_STATES",
    "alarm_states",
    "current_batches",
    "event_dict",
    "latest_values",
    "line_overview",
    "samples_after",
    "thin",
]

#: Tags shown on the overview when a batch has them (first found first).
KEY_TAGS = ("vcd_cells_per_ml", "viability_pct", "glucose_g_per_l", "titer_g_per_l", "ph",
            "do_pct", "temperature_c")
#: ISA-18.2 states an operator still has to see (active, or cleared but unacknowledged).
OPEN_STATES = ("unack_active", "ack_active", "unack_rtn")
_QUALITY = {code: name for name, code in s.QUALITY_CODES.items()}


def current_batches(historian: Historian) -> dict[str, BatchInfo]:
    """Return each unit's current batch: the running one, else the last started."""
    out: dict[str, BatchInfo] = {}
    for b in historian.list_batches():  # oldest start first
        held = out.get(b.unit)
        if held is None or held.status != "running" or b.status == "running":
            out[b.unit] = b
    return out


def line_overview(historian: Historian) -> list[dict[str, Any]]:
    """Return one row per unit: current batch, phase, key values and open alarm count."""
    rows = []
    for unit, b in sorted(current_batches(historian).items()):
        info = historian.batch(b.id)
        values = latest_values(historian, b.id)
        last = max((v["time_utc"] for v in values.values()), default=None)
        rows.append({
            "unit": unit,
            "batch": {"id": b.id, "code": b.code, "product": b.product, "status": b.status,
                      "start_utc": b.start_utc.isoformat()},
            "phase": _phase_at(info, last),
            "last_sample_utc": last,
            "key_values": {t: values[t] for t in KEY_TAGS if t in values},
            "open_alarms": len(alarm_states(historian, b.id, only_open=True)),
        })
    return rows


def latest_values(historian: Historian, batch_id: int) -> dict[str, dict[str, Any]]:
    """Return the last stored sample of each tag of a batch (value None when bad)."""
    tags = historian.batch_tags(batch_id)
    smp, tag = s.sample.c, s.tag.c
    out: dict[str, dict[str, Any]] = {}
    with historian.engine.connect() as conn:
        ids = dict(conn.execute(sa.select(tag.name, tag.id).where(tag.name.in_(list(tags)))
                                .where(tag.unit_id == _unit_of(conn, batch_id))).all())
        for name, tag_id in ids.items():
            row = conn.execute(
                sa.select(smp.t_us, smp.value, smp.quality)
                .where(smp.batch_id == batch_id, smp.tag_id == tag_id)
                .order_by(smp.t_us.desc()).limit(1)
            ).first()
            if row is not None:
                out[name] = {"time_utc": from_us(row.t_us).isoformat(), "value": _num(row.value),
                             "units": tags.get(name), "quality": _QUALITY[row.quality]}
    return out


def samples_after(historian: Historian, batch_id: int, tags: list[str],
                  after_us: int, limit: int = 5000) -> list[dict[str, Any]]:
    """Return samples of ``tags`` newer than ``after_us`` (epoch us), oldest first, bounded.

    When ``limit`` cuts the rows, those of the last time are left for the next call (so a
    cursor on the last time sent loses none), unless they are all there is.
    """
    smp, tag = s.sample.c, s.tag.c
    with historian.engine.connect() as conn:
        q = (sa.select(tag.name, smp.t_us, smp.value).join(s.tag, tag.id == smp.tag_id)
             .where(smp.batch_id == batch_id, tag.name.in_(tags), smp.t_us > after_us)
             .order_by(smp.t_us).limit(limit))
        rows = conn.execute(q).all()
    if len(rows) == limit:
        whole = [r for r in rows if r.t_us != rows[-1].t_us]
        rows = whole or rows
    return [{"tag": r.name, "t_us": int(r.t_us), "time_utc": from_us(r.t_us).isoformat(),
             "value": _num(r.value)} for r in rows]


def alarm_states(historian: Historian, batch_id: int, *, only_open: bool = False,
                 unit: str | None = None) -> list[dict[str, Any]]:
    """Return the current state of each alarm of a batch, from its last stored event."""
    events = historian.read_events(batch_id=batch_id, unit=unit,
                                   kinds=["alarm", "acknowledgement"])
    last: dict[str, EventInfo] = {}
    raised: dict[str, EventInfo] = {}  # the alarm event that set the current episode
    for e in events:
        if isinstance(e.payload.get("alarm"), str) and "state" in e.payload:
            last[e.payload["alarm"]] = e
            if e.kind == "alarm":
                raised[e.payload["alarm"]] = e
    rows = []
    for name, e in sorted(last.items()):
        p = e.payload
        if only_open and p["state"] not in OPEN_STATES:
            continue
        rows.append({"alarm": name, "tag": p.get("tag"), "unit": e.unit, "batch_id": e.batch_id,
                     "state": p["state"], "severity": raised.get(name, e).severity,
                     "since_utc": raised.get(name, e).time_utc.isoformat(),
                     "changed_utc": e.time_utc.isoformat(), "value": p.get("value"),
                     "limit": p.get("limit"), "message": e.message, "event_id": e.id})
    return rows


def event_dict(e: EventInfo) -> dict[str, Any]:
    """Return an event as JSON-ready dict."""
    return {"id": e.id, "time_utc": e.time_utc.isoformat(), "unit": e.unit,
            "batch_id": e.batch_id, "kind": e.kind, "severity": e.severity,
            "message": e.message, "payload": e.payload}


def thin(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Return at most ``max_points`` rows of a time-indexed frame, keeping each bucket's extremes.

    The rows are split in buckets; each keeps its first, minimum and maximum ``value`` (so
    spikes stay visible) and the last row is always kept.
    """
    n = len(frame)
    if n <= max_points or max_points < 4:
        return frame
    per = max(1, math.ceil(n / ((max_points - 1) // 3)))  # 3 rows a bucket, + the last
    values = frame["value"].to_numpy(dtype=float)
    keep = {0, n - 1}
    for start in range(0, n, per):
        chunk = values[start:start + per]
        keep.add(start)
        if np.isfinite(chunk).any():
            keep.add(start + int(np.nanargmin(chunk)))
            keep.add(start + int(np.nanargmax(chunk)))
    return frame.iloc[sorted(keep)]


def _phase_at(info: BatchInfo, last_iso: str | None) -> str | None:
    if not info.phases:
        return None
    at = datetime.fromisoformat(last_iso) if last_iso else None
    for p in info.phases:
        if at is None and p.end_utc is None:
            return p.name
        if at is not None and p.start_utc <= at and (p.end_utc is None or at <= p.end_utc):
            return p.name
    return info.phases[-1].name


def _unit_of(conn: sa.Connection, batch_id: int) -> int:
    return int(conn.execute(sa.select(s.batch.c.unit_id).where(s.batch.c.id == batch_id))
               .scalar_one())


def _num(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)

