"""Read routes of the cockpit's unit panels: estimates, MSPC chart, controller state, QC results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response

from biopilot.store.permissions import Action, User
from biopilot.web.api_read import batch_ref
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.panels import controller_state, estimates, mspc_chart, overlay_png, qc_panel

__all__ = ["router"]

router = APIRouter(prefix="/api/batches/{ref}", tags=["panels"])
READ = Depends(require(Action.READ))


@router.get("/estimates", summary="Soft-sensor and state estimates with their intervals")
def batch_estimates(
    ref: str,
    max_points: int = Query(1500, ge=10, le=20000),
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> dict[str, Any]:
    """Return every estimated tag (``X.est``, ``X.est_low``, ``X.est_high``) and measured ``X``."""
    info = ctx.historian.batch(batch_ref(ref))
    rows = estimates(ctx.historian, info.id, min(max_points, ctx.trend_max_points))
    detail = None if rows else "no soft-sensor estimates stored for this batch"
    return {"batch": info.code, "estimates": rows, "detail": detail}


@router.get("/mspc", summary="MSPC chart: T2 and SPE with 95/99 % limits, latest contributions")
def batch_mspc(ref: str, ctx: WebContext = Depends(get_ctx), _: User = READ) -> dict[str, Any]:
    """Score the batch on the deployed MSPC model, or say that none is deployed."""
    info = ctx.historian.batch(batch_ref(ref))
    return {"batch": info.code} | mspc_chart(ctx.historian, info.id, ctx.models)


@router.get("/controller", summary="Controller mode and latest recommendation")
def batch_controller(
    ref: str, ctx: WebContext = Depends(get_ctx), _: User = READ
) -> dict[str, Any]:
    """Return the stored controller decisions of the batch (empty state when none)."""
    info = ctx.historian.batch(batch_ref(ref))
    return {"batch": info.code} | controller_state(ctx.historian, info.id)


@router.get("/qc", summary="QC results and dispositions of a batch")
def batch_qc(ref: str, ctx: WebContext = Depends(get_ctx), _: User = READ) -> dict[str, Any]:
    """Return the QC results (with a link to each stored overlay) and the dispositions."""
    info = ctx.historian.batch(batch_ref(ref))
    panel = qc_panel(ctx.historian, info.id)
    for r in panel["results"]:
        r["overlay_url"] = (f"/api/batches/{info.id}/qc/{r['record_id']}/overlay.png"
                            if r.pop("overlay") else None)
    return {"batch": info.code} | panel


@router.get("/qc/{record_id}/overlay.png", summary="The hologram overlay of a QC result (PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def qc_overlay(
    ref: str,
    record_id: int,
    ctx: WebContext = Depends(get_ctx),
    _: User = READ,
) -> Response:
    """Return the overlay PNG stored with the QC result; 404 when it has none."""
    info = ctx.historian.batch(batch_ref(ref))
    png = overlay_png(ctx.historian, info.id, record_id)
    if png is None:
        raise HTTPException(404, f"QC result {record_id} of batch {info.code!r} has no overlay")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
