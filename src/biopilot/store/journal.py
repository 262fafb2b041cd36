"""The batch journal: events (alarms, acknowledgements, setpoints, faults) and batch records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from biopilot.config import parse_model
from biopilot.store import schema as s
from biopilot.store._base import StoreBase, check_json
from biopilot.store.records import EventInfo, NewEvent, RecordInfo
from biopilot.store.timebase import from_us, to_us

__all__ = ["JournalStore"]


class JournalStore(StoreBase):
    """Append-only events and records of units and batches."""

    def write_events(
        self, batch_id: int | None, unit: str, events: Iterable[NewEvent | Mapping[str, Any]]
    ) -> int:
        """Append events of a unit (and batch, if any) in one transaction; return how many.

        Each event is a :class:`NewEvent` or a dict of its fields (``time_utc`` aware,
        ``kind``, ``severity``, ``message``, ``payload``). Raises ConfigError (a ValueError)
        naming the bad field of the first bad event, UnknownBatchError or UnknownUnitError;
        nothing is written then.
        """
        checked = [
            e if isinstance(e, NewEvent) else parse_model(NewEvent, e, source=f"event {i}")
            for i, e in enumerate(events)
        ]
        for i, e in enumerate(checked):
            check_json(e.payload, f"event {i} payload")
        with self.engine.begin() as conn:
            if batch_id is None:
                unit_id = self._unit_id(conn, unit)
            else:
                unit_id = self._batch_unit(conn, batch_id, unit)[1]
            if checked:
                conn.execute(
                    sa.insert(s.event),
                    [
                        {
                            "unit_id": unit_id,
                            "batch_id": batch_id,
                            "t_us": to_us(e.time_utc, "time_utc"),
                            "kind": e.kind,
                            "severity": e.severity,
                            "message": e.message,
                            "payload": e.payload,
                        }
                        for e in checked
                    ],
                )
            self._bump(conn, batch_id, "n_events", len(checked))
        return len(checked)

    def read_events(
        self,
        batch_id: int | None = None,
        unit: str | None = None,
        kinds: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[EventInfo]:
        """Return events of a batch and/or a unit in time order, optionally of some ``kinds``.

        Raises ValueError if neither ``batch_id`` nor ``unit`` is given or a kind is unknown;
        UnknownBatchError / UnknownUnitError for an unknown batch or unit.
        """
        if batch_id is None and unit is None:
            raise ValueError("read_events needs a batch_id or a unit")
        bad = sorted(set(kinds or ()) - set(s.EVENT_KINDS))
        if bad:
            raise ValueError(f"unknown event kinds {bad}; allowed: {list(s.EVENT_KINDS)}")
        ev = s.event
        q = sa.select(ev, s.unit.c.name.label("unit_name")).join(
            s.unit, s.unit.c.id == ev.c.unit_id
        )
        with self.engine.connect() as conn:
            if batch_id is not None:
                self._batch_row(conn, batch_id)
                q = q.where(ev.c.batch_id == batch_id)
            if unit is not None:
                q = q.where(ev.c.unit_id == self._unit_id(conn, unit))
            if kinds is not None:
                q = q.where(ev.c.kind.in_(list(kinds)))
            if start is not None:
                q = q.where(ev.c.t_us >= to_us(start, "start"))
            if end is not None:
                q = q.where(ev.c.t_us <= to_us(end, "end"))
            rows = conn.execute(q.order_by(ev.c.t_us, ev.c.id)).all()
        return [
            EventInfo(
                id=r.id,
                time_utc=from_us(r.t_us),
                unit=r.unit_name,
                batch_id=r.batch_id,
                kind=r.kind,
                severity=r.severity,
                message=r.message,
                payload=r.payload,
            )
            for r in rows
        ]

    def add_record(
        self,
        batch_id: int | None,
        kind: str,
        body: Mapping[str, Any],
        author: str | None = None,
        time_utc: datetime | None = None,
    ) -> int:
        """Append a record (QC result, specification, release, signature...) and return its id.

        ``batch_id`` None files a record not tied to one batch (e.g. a specification);
        ``time_utc`` defaults to now. Raises ValueError for an unknown kind or a body that is
        not a JSON object, UnknownBatchError for an unknown batch.
        """
        if kind not in s.RECORD_KINDS:
            raise ValueError(f"unknown record kind {kind!r}; allowed: {list(s.RECORD_KINDS)}")
        checked = check_json(body, "record body")
        t_us = to_us(time_utc if time_utc is not None else datetime.now(UTC), "time_utc")
        with self.engine.begin() as conn:
            if batch_id is not None:
                self._batch_row(conn, batch_id)
            new = conn.execute(
                sa.insert(s.record).values(
                    batch_id=batch_id, kind=kind, t_us=t_us, author=author, body=checked
                )
            )
            self._bump(conn, batch_id, "n_records", 1)
        return int(new.inserted_primary_key[0])  # type: ignore[index]

    def read_records(self, batch_id: int | None, kind: str | None = None) -> list[RecordInfo]:
        """Return the records of a batch (None: those tied to no batch) in time order."""
        rec = s.record
        q = sa.select(rec).order_by(rec.c.t_us, rec.c.id)
        q = q.where(rec.c.batch_id.is_(None) if batch_id is None else rec.c.batch_id == batch_id)
        if kind is not None:
            q = q.where(rec.c.kind == kind)
        with self.engine.connect() as conn:
            if batch_id is not None:
                self._batch_row(conn, batch_id)
            rows = conn.execute(q).all()
        return [
            RecordInfo(
                id=r.id,
                batch_id=r.batch_id,
                kind=r.kind,
                time_utc=from_us(r.t_us),
                author=r.author,
                body=r.body,
            )
            for r in rows
        ]
