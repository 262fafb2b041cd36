"""Quality routes of the web API: release specifications and the QC disposition of a batch.

A specification is a ``specification`` record tied to no batch; the latest one of a product
is in force. A disposition is a ``release`` record of the batch (what e-signed release
requires first): judged by :func:`biopilot.quality.release_batch` on the batch's QC results
against the specification in force, or decided by hand with its reasons. Each write is
audited with the old and the new value and the reason the body carries.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from biopilot.quality import Spec, audit_disposition, release_batch
from biopilot.store import Historian, RecordInfo
from biopilot.store.permissions import Action, User
from biopilot.store.signatures import DISPOSITION_KIND, QC_RESULT_KIND
from biopilot.web.api_read import batch_ref
from biopilot.web.auth import require
from biopilot.web.context import WebContext, get_ctx
from biopilot.web.schemas import DispositionBody, SpecBody

__all__ = ["current_specifications", "router"]

router = APIRouter(prefix="/api", tags=["quality"])
SPEC_KIND = "specification"


def current_specifications(historian: Historian) -> dict[str, RecordInfo]:
    """Return the specification in force of each product (its latest record)."""
    out: dict[str, RecordInfo] = {}
    for r in historian.read_records(None, SPEC_KIND):  # oldest first
        product = r.body.get("product")
        if isinstance(product, str):
            out[product] = r
    return out


@router.get("/specifications", summary="The specification in force of each product")
def specifications(
    ctx: WebContext = Depends(get_ctx), _: User = Depends(require(Action.READ))
) -> list[dict[str, Any]]:
    """Return one row per product: record id, author, time and the specification."""
    return [{"record_id": r.id, "time_utc": r.time_utc.isoformat(), "author": r.author,
             "specification": r.body} for _, r in sorted(current_specifications(ctx.historian)
                                                         .items())]


@router.post("/specifications", summary="Create or change a product's release specification")
def put_specification(
    body: SpecBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.CHANGE_SPECIFICATION)),
) -> dict[str, Any]:
    """File the specification (it supersedes the product's previous one) and audit it.

    409 if the product already has a specification of this version.
    """
    spec = body.specification
    before = current_specifications(ctx.historian).get(spec.product)
    if before is not None and before.body.get("version") == spec.version:
        raise HTTPException(409, f"product {spec.product!r} already has specification version "
                                 f"{spec.version!r}: give the change a new version")
    new = spec.model_dump(mode="json")
    rid = ctx.historian.add_record(None, SPEC_KIND, new, user.username, ctx.audit.clock())
    entry = ctx.audit.record(
        user.username, "specification_change" if before else "specification_create",
        "specification", spec.product, reason=body.reason,
        old=before.body if before else None, new=new | {"record_id": rid})
    return {"record_id": rid, "product": spec.product, "version": spec.version,
            "audit_seq": entry.seq}


@router.post("/batches/{ref}/disposition", summary="Record the QC disposition of a batch")
def disposition(
    ref: str,
    body: DispositionBody,
    ctx: WebContext = Depends(get_ctx),
    user: User = Depends(require(Action.RECORD_QC_RESULT)),
) -> dict[str, Any]:
    """File a ``release`` record: judged on the specification in force, or given by hand.

    409 when there is no specification of the product or no QC result to judge on.
    """
    h = ctx.historian
    info = h.batch(batch_ref(ref))
    if body.disposition is None:
        if body.reasons:
            raise ValueError("reasons: give them with a disposition decided by hand")
        spec_record = current_specifications(h).get(info.product)
        if spec_record is None:
            raise HTTPException(409, f"no specification of product {info.product!r} in force: "
                                     "file one, or give the disposition by hand")
        if not h.read_records(info.id, QC_RESULT_KIND):
            raise HTTPException(409, f"batch {info.code!r} has no QC results to judge")
        try:
            decision, _, rid = release_batch(h, info.id, Spec.model_validate(spec_record.body),
                                             author=user.username)
        except (ValueError, TypeError, KeyError, AttributeError) as err:  # not imaging results
            raise HTTPException(409, f"the QC results of {info.code!r} cannot be judged on "
                                     f"the specification: {err}") from None
        verdict, reasons = decision.disposition, decision.reasons
    else:
        verdict, reasons = body.disposition, body.reasons or [body.reason]
        n_results = len(h.read_records(info.id, QC_RESULT_KIND))
        record = {"batch_code": info.code, "disposition": verdict, "reasons": reasons,
                  "decided_by": "hand", "qc_results": n_results}
        rid = h.add_record(info.id, DISPOSITION_KIND, record, user.username, ctx.audit.clock())
    entry = audit_disposition(h, info.id, rid, author=user.username, reason=body.reason,
                              trail=ctx.audit)
    return {"record_id": rid, "disposition": verdict, "reasons": reasons, "audit_seq": entry.seq}
