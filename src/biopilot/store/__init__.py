"""The historian and batch records (ISA-88), on SQLAlchemy Core."""

from biopilot.store.export import ExportedBatch, export_parquet, read_export
from biopilot.store.historian import Historian
from biopilot.store.records import (
    BatchInfo,
    EventInfo,
    NewEvent,
    NotFoundError,
    PhaseInfo,
    RecordInfo,
    StoreError,
    UnknownBatchError,
    UnknownTagError,
    UnknownUnitError,
)

__all__ = [
    "BatchInfo",
    "EventInfo",
    "ExportedBatch",
    "Historian",
    "NewEvent",
    "NotFoundError",
    "PhaseInfo",
    "RecordInfo",
    "StoreError",
    "UnknownBatchError",
    "UnknownTagError",
    "UnknownUnitError",
    "export_parquet",
    "read_export",
]
