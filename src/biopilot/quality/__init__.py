"""Specifications, QC results and batch disposition."""

from biopilot.quality.attributes import QCAttributes, batch_attributes, frame_attributes
from biopilot.quality.release import audit_disposition, batch_qc, record_qc, release_batch
from biopilot.quality.spec import Check, Decision, Spec, evaluate, load_spec

__all__ = [
    "Check",
    "Decision",
    "QCAttributes",
    "Spec",
    "audit_disposition",
    "batch_attributes",
    "batch_qc",
    "evaluate",
    "frame_attributes",
    "load_spec",
    "record_qc",
    "release_batch",
]
