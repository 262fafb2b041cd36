"""QC results in the historian: file per-frame results, then judge and record a batch's release."""

from __future__ import annotations

from typing import Any

from biopilot.quality.attributes import QCAttributes, batch_attributes
from biopilot.quality.spec import Decision, Spec, evaluate
from biopilot.store import Historian
from biopilot.store.audit import AuditEntry, AuditTrail

__all__ = [
    "QC_KIND",
    "RELEASE_KIND",
    "audit_disposition",
    "batch_qc",
    "record_qc",
    "release_batch",
]

QC_KIND = "qc_result"
RELEASE_KIND = "release"


def record_qc(
    historian: Historian,
    batch: int | str,
    qc: QCAttributes,
    *,
    author: str,
    source: str,
    extra: dict[str, Any] | None = None,
    reason: str | None = None,
) -> int:
    """File the QC attributes of one frame as a ``qc_result`` record of the batch (audited).

    Parameters
    ----------
    historian : Historian
        The store.
    batch : int or str
        Batch id or code.
    qc : QCAttributes
        Attributes of the frame.
    author : str
        Who (or which instrument/service) produced the result.
    source : str
        What was measured (e.g. the hologram file name).
    extra : dict, optional
        More JSON fields (optics, z, timings...).
    reason : str, optional
        Why, for the audit trail (default: the QC of ``source``).

    Returns
    -------
    int
        The record id.

    Raises
    ------
    biopilot.store.UnknownBatchError
        If the batch is not in the store.
    """
    info = historian.batch(batch)
    body = {
        "method": "holographic_imaging",
        "source": source,
        "attributes": qc.as_dict(),
        **(extra or {}),
    }
    rid = historian.add_record(info.id, QC_KIND, body, author)
    AuditTrail(historian).record(author, "qc_result_add", "batch", info.code,
                                 reason=reason or f"imaging QC of {source}",
                                 new={"record_id": rid, "source": source})
    return rid


def batch_qc(historian: Historian, batch: int | str) -> QCAttributes:
    """Pool every ``qc_result`` record of a batch into batch attributes.

    Raises
    ------
    ValueError
        If the batch has no imaging QC result.
    """
    batch_id = historian.batch(batch).id
    frames = [
        QCAttributes.from_dict(r.body["attributes"])
        for r in historian.read_records(batch_id, QC_KIND)
        if isinstance(r.body, dict) and "attributes" in r.body
    ]
    if not frames:
        raise ValueError(f"batch {batch!r} has no QC results to release on")
    return batch_attributes(frames)


def release_batch(
    historian: Historian, batch: int | str, spec: Spec, *, author: str
) -> tuple[Decision, QCAttributes, int]:
    """Judge a batch on its QC results and record the disposition as a ``release`` record.

    Parameters
    ----------
    historian : Historian
        The store.
    batch : int or str
        Batch id or code.
    spec : Spec
        The release specification.
    author : str
        Who asked for the disposition.

    Returns
    -------
    decision : Decision
        Pass, fail or review with the reasons.
    attributes : QCAttributes
        The pooled batch attributes the decision is based on.
    record_id : int
        Id of the ``release`` record written.

    Raises
    ------
    ValueError
        If the specification is another product's, or the batch has no QC results.
    biopilot.store.UnknownBatchError
        If the batch is not in the store.
    """
    info = historian.batch(batch)
    if spec.product != info.product:  # a batch is judged on its own product's specification
        raise ValueError(f"the specification is for {spec.product!r}, but batch {info.code!r} "
                         f"makes {info.product!r}")
    qc = batch_qc(historian, info.id)
    decision = evaluate(spec, qc)
    n_results = len(historian.read_records(info.id, QC_KIND))
    body = {
        "batch_code": info.code,
        "specification": spec.model_dump(mode="json"),
        "attributes": qc.as_dict(),
        "qc_results": n_results,
        **decision.as_dict(),
    }
    record_id = historian.add_record(info.id, RELEASE_KIND, body, author)
    return decision, qc, record_id


def audit_disposition(
    historian: Historian,
    batch: int | str,
    record_id: int,
    *,
    author: str,
    reason: str,
    trail: AuditTrail | None = None,
) -> AuditEntry:
    """Audit the disposition filed as ``release`` record ``record_id``, with the one it replaces.

    ``trail`` is the audit trail to append to (default: the historian's own).
    """
    info = historian.batch(batch)
    filed = [r for r in historian.read_records(info.id, RELEASE_KIND) if "disposition" in r.body]
    at = next((k for k, r in enumerate(filed) if r.id == record_id), None)
    if at is None:
        raise ValueError(f"batch {info.code!r} has no disposition record {record_id}")
    new = filed[at]  # the records come in time order: the one before it is what it replaces
    old = {"disposition": filed[at - 1].body["disposition"]} if at else None
    body = {"record_id": record_id, "disposition": new.body["disposition"],
            "reasons": new.body.get("reasons", [])}
    return (trail or AuditTrail(historian)).record(
        author, "qc_disposition", "batch", info.code, reason=reason, old=old, new=body
    )
