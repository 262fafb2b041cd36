"""What the historian returns and refuses: batch, phase, event and record types, and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from biopilot.config import StrictModel

__all__ = [
    "BatchInfo",
    "BatchStatus",
    "EventInfo",
    "EventKind",
    "NewEvent",
    "NotFoundError",
    "PhaseInfo",
    "Quality",
    "RecordInfo",
    "RecordKind",
    "Severity",
    "StoreError",
    "UnknownBatchError",
    "UnknownTagError",
    "UnknownUnitError",
]

#: The allowed values, named once; the schema's CHECK constraints are built from them.
Quality = Literal["good", "uncertain", "bad"]  # OPC UA status classes
BatchStatus = Literal["running", "held", "complete", "stopped", "aborted"]  # ISA-88 states
EventKind = Literal["alarm", "acknowledgement", "setpoint_change", "fault", "operation", "info"]
Severity = Literal["info", "low", "medium", "high", "critical"]  # ISA-18.2 priorities + info
RecordKind = Literal["qc_result", "specification", "release", "signature", "deviation", "comment"]


class StoreError(Exception):
    """Base of the historian's own errors."""


class _NamedKeyError(StoreError, KeyError):
    """A KeyError whose message reads as a sentence (KeyError would quote it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFoundError(_NamedKeyError):
    """No product or recipe of this name or id is known."""


class UnknownBatchError(_NamedKeyError):
    """No batch has this id or code."""


class UnknownTagError(_NamedKeyError):
    """The batch has no such tag; the message lists the batch's tags."""


class UnknownUnitError(_NamedKeyError):
    """No unit of this name is known; the message lists the known ones."""


@dataclass(frozen=True, slots=True)
class PhaseInfo:
    """An ISA-88 phase of a batch (UTC times; ``end_utc`` None while it runs)."""

    name: str
    start_utc: datetime
    end_utc: datetime | None


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch as stored: identity, where and what it ran, when, its status and row counts."""

    id: int
    code: str
    unit: str
    product: str
    recipe_id: int | None
    start_utc: datetime
    end_utc: datetime | None
    status: str
    metadata: dict[str, Any]
    n_samples: int
    n_spectra: int
    n_events: int
    n_records: int
    phases: tuple[PhaseInfo, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO-8601 UTC times) for the CLI, the web API and exports."""

        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        out = {
            name: getattr(self, name)
            for name in ("id", "code", "unit", "product", "recipe_id", "status", "metadata")
        }
        out |= {"start_utc": iso(self.start_utc), "end_utc": iso(self.end_utc)}
        out |= {k: getattr(self, k) for k in ("n_samples", "n_spectra", "n_events", "n_records")}
        out["phases"] = [
            {"name": p.name, "start_utc": iso(p.start_utc), "end_utc": iso(p.end_utc)}
            for p in self.phases
        ]
        return out


class NewEvent(StrictModel):
    """An event to write: an alarm, acknowledgement, setpoint change, fault, operation or note."""

    time_utc: AwareDatetime
    kind: EventKind
    severity: Severity = "info"
    message: str = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventInfo:
    """An event as stored."""

    id: int
    time_utc: datetime
    unit: str
    batch_id: int | None
    kind: str
    severity: str
    message: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """A batch record as stored: a QC result, specification, release, signature..."""

    id: int
    batch_id: int | None
    kind: str
    time_utc: datetime
    author: str | None
    body: dict[str, Any]
