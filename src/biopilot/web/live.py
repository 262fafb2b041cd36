"""Live updates for the cockpit: a Server-Sent Events stream of new samples and alarm changes.

The stream polls the historian every ``live_interval_s`` for samples newer than the last
sent and for new alarm/acknowledgement events, and sends them as ``samples`` and
``alarms`` events. It is bounded: at most ``live_max_s`` per connection (the browser's
EventSource reconnects by itself, resuming from ``Last-Event-ID``), at most 5000 samples a
message, and it stops when the client leaves or the session ends.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from biopilot.store import UnknownUnitError
from biopilot.store.permissions import Action, AuthenticationError, PermissionDenied, User
from biopilot.store.timebase import to_us
from biopilot.web.auth import require, session_token
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.lineview import alarm_states, current_batches, samples_after

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["live"])


@router.get("/live", summary="Server-Sent Events: new samples and alarm states of a unit",
            response_class=StreamingResponse)
async def live(
    request: Request,
    unit: str,
    tags: str = Query(..., description="comma-separated tag names", max_length=2000),
    since: str | None = Query(None, description="ISO-8601 UTC time to resume from"),
    ctx: WebContext = Depends(get_ctx),
    _: User = Depends(require(Action.READ)),
) -> StreamingResponse:
    """Stream ``samples`` (tag, time, value rows) and ``alarms`` (open alarm list) events."""
    batch = await run_in_threadpool(_batch_of, ctx, unit)
    names = [t for t in (x.strip() for x in tags.split(",")) if t]
    resume = request.headers.get("last-event-id")
    after = int(resume) if resume and resume.isdigit() else _since_us(since)
    token = session_token(request)
    stream = _stream(request, ctx, token, batch, names, after)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(request: Request, ctx: WebContext, token: str, batch_id: int,
                  tags: list[str], after_us: int) -> AsyncIterator[str]:
    deadline = time.monotonic() + ctx.live_max_s
    alarms_sent: Any = None
    yield f"retry: {int(ctx.live_interval_s * 1000)}\n\n"
    while time.monotonic() < deadline and not await request.is_disconnected():
        try:
            await run_in_threadpool(ctx.users.authorize, token, Action.READ)
        except (AuthenticationError, PermissionDenied) as err:
            yield _event("session", {"detail": str(err)})
            return
        rows = await run_in_threadpool(samples_after, ctx.historian, batch_id, tags, after_us)
        if rows:
            after_us = rows[-1]["t_us"]
            yield _event("samples", {"batch_id": batch_id, "rows": rows}, event_id=after_us)
        alarms = await run_in_threadpool(alarm_states, ctx.historian, batch_id, only_open=True)
        if alarms != alarms_sent:
            alarms_sent = alarms
            yield _event("alarms", {"batch_id": batch_id, "alarms": alarms})
        await asyncio.sleep(ctx.live_interval_s)


def _event(name: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _batch_of(ctx: WebContext, unit: str) -> int:
    current = current_batches(ctx.historian)
    if unit not in current:
        known = ", ".join(sorted(current)) or "(none)"
        raise UnknownUnitError(f"unit {unit!r} has no batch; units with batches: {known}")
    return current[unit].id


def _since_us(since: str | None) -> int:
    if not since:
        return 0
    try:
        return to_us(datetime.fromisoformat(since), "since")
    except ValueError as err:
        raise ValueError(f"since: {err}") from None
