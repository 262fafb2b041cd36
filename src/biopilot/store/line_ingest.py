"""Write what the line's OPC UA client receives into the historian, once and with quality.

:class:`HistorianSink` is the sink of a :class:`biopilot.line.client.LineClient`: it keeps a
running batch per unit (created at the unit's first sample, or resumed when its code is
already in the store), writes scalar samples with their quality and reason, spectra on
their wavenumber axis, and a spectrum that cannot be stored as an array (wrong length, no
value) as a bad sample with the reason. It is idempotent: samples not newer than the last
stored time of their tag are skipped, so a backfill that overlaps what is stored writes
nothing twice (and :meth:`HistorianSink.last_times` tells a client where to resume).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from biopilot.store import schema as s
from biopilot.store.historian import Historian
from biopilot.store.records import UnknownBatchError
from biopilot.store.timebase import from_us, to_us

__all__ = ["HistorianSink", "IngestStats", "TagInfo"]


@dataclass(frozen=True)
class TagInfo:
    """What the sink needs of a mapped tag: unit, tag, engineering units, spectrum or not."""

    unit: str
    tag: str
    units: str | None = None
    spectrum: bool = False


@dataclass
class IngestStats:
    """What the sink wrote (scalar samples, spectra, of which bad) and skipped as stored."""

    samples: int = 0
    spectra: int = 0
    skipped: int = 0
    bad: int = 0


class HistorianSink:
    """Write batches of line samples into ``historian`` (an async callable sink).

    Parameters
    ----------
    historian : Historian
        The store.
    site, area : str
        Where the units are (created if new).
    tags : sequence of TagInfo
        The mapped tags (from the tag map).
    batch_code : str
        Batch code; with several units each unit's batch is ``<code>-<unit>``. A code that
        exists (same unit) is resumed.
    product : str
        Product of new batches (created if new).
    axes : mapping of str to ndarray, optional
        Wavenumber axis per unit; required to store spectra (else they are stored as bad).
    on_written : callable, optional
        Called with each batch of samples once committed (e.g. to measure latency).
    """

    def __init__(
        self,
        historian: Historian,
        site: str,
        area: str,
        tags: Sequence[TagInfo],
        *,
        batch_code: str,
        product: str = "unassigned",
        axes: Mapping[str, np.ndarray] | None = None,
        on_written: Callable[[Sequence[Any]], None] | None = None,
    ) -> None:
        self.historian = historian
        self.on_written = on_written
        self.tags = {(t.unit, t.tag): t for t in tags}
        self.units = list(dict.fromkeys(t.unit for t in tags))
        self.axes = dict(axes or {})
        self.product = product
        self.stats = IngestStats()
        multi = len(self.units) > 1
        self.codes = {u: f"{batch_code}-{u}" if multi else batch_code for u in self.units}
        historian.ensure_product(product)
        for u in self.units:
            historian.ensure_unit(site, area, u)
        self.batch_ids: dict[str, int] = {}
        for u, code in self.codes.items():
            try:
                info = historian.batch(code)
            except UnknownBatchError:
                continue
            if info.unit != u:
                raise ValueError(f"batch {code!r} exists on unit {info.unit!r}, not {u!r}")
            self.batch_ids[u] = info.id
        self._last = self._stored_last()
        self._pending: list[Any] = []
        self._writer: asyncio.Task[None] | None = None
        self._failed: Exception | None = None

    def last_times(self) -> dict[tuple[str, str], datetime]:
        """Return the last stored source time per (unit, tag) of the current batches."""
        return {k: from_us(v) for k, v in self._last.items()}

    async def __call__(self, samples: list[Any]) -> None:
        """Queue samples for writing and return at once; raise if an earlier write failed.

        A background task writes what is queued (off the event loop, one transaction per
        unit and kind), all that piled up in one go, so a slow commit never holds up the
        client or what runs beside it (alarms). :meth:`flush` waits for it.
        """
        if self._failed is not None:
            raise self._failed
        self._pending.extend(samples)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())

    async def flush(self) -> None:
        """Wait until every queued sample is written; raise the write error, if any."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._failed is not None:
            raise self._failed

    async def _write_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await asyncio.to_thread(self.write, batch)
            except Exception as err:  # kept (not written), raised to the next caller
                self._pending = batch + self._pending
                self._failed = err
                return

    def write(self, samples: Sequence[Any]) -> int:
        """Write samples (objects with unit, tag, time_utc, value, quality, reason); return n."""
        by_unit: dict[str, list[tuple[int, Any]]] = defaultdict(list)
        last = dict(self._last)  # committed to self._last only once written
        for smp in samples:
            key = (smp.unit, smp.tag)
            t_us = to_us(smp.time_utc, "time_utc")
            if key not in self.tags or t_us <= last.get(key, -(2**62)):
                self.stats.skipped += 1
                continue
            last[key] = t_us
            by_unit[smp.unit].append((t_us, smp))
        n = 0
        for unit, rows in by_unit.items():
            n += self._write_unit(unit, rows)
            self._last.update({(unit, smp.tag): t for t, smp in rows})
        if self.on_written is not None:
            self.on_written(samples)
        return n

    def _write_unit(self, unit: str, rows: list[tuple[int, Any]]) -> int:
        batch_id = self._batch(unit, min(smp.time_utc for _, smp in rows))
        axis = self.axes.get(unit)
        spectra = [
            (t, smp)
            for t, smp in rows
            if self.tags[unit, smp.tag].spectrum and smp.value is not None and axis is not None
        ]
        kept = {id(smp) for _, smp in spectra}
        scalars = [smp for _, smp in rows if id(smp) not in kept]
        n = 0
        if scalars:
            df = pd.DataFrame(
                {
                    "time_utc": [smp.time_utc for smp in scalars],
                    "tag": [smp.tag for smp in scalars],
                    "value": [_scalar(smp) for smp in scalars],
                    "quality": [smp.quality if smp.value is not None else "bad" for smp in scalars],
                    "reason": [_reason(smp, unit in self.axes) for smp in scalars],
                }
            )
            units = {t: i.units for (u, t), i in self.tags.items() if u == unit and i.units}
            n += self.historian.write_samples(batch_id, unit, df, units=units)
            self.stats.bad += int((df["quality"] == "bad").sum())
        if spectra:
            assert axis is not None
            m = self.historian.write_spectra(
                batch_id,
                unit,
                [smp.time_utc for _, smp in spectra],
                axis,
                np.stack([np.asarray(smp.value, np.float32) for _, smp in spectra]),
            )
            self.stats.spectra += m
            n += m
        self.stats.samples += len(scalars)
        return n

    def _batch(self, unit: str, first: datetime) -> int:
        """Return the unit's batch id, starting the batch at its first sample's time."""
        if unit not in self.batch_ids:
            self.batch_ids[unit] = self.historian.start_batch(
                self.codes[unit], unit, self.product, None, first, {"source": "opc-ua line"}
            )
        return self.batch_ids[unit]

    def _stored_last(self) -> dict[tuple[str, str], int]:
        """Last stored t_us per (unit, tag) of the current batches (samples and spectra)."""
        out: dict[tuple[str, str], int] = {}
        spectrum_tags = {(t.unit, t.tag) for t in self.tags.values() if t.spectrum}
        with self.historian.engine.connect() as conn:
            for unit, batch_id in self.batch_ids.items():
                q = (
                    sa.select(s.tag.c.name, sa.func.max(s.sample.c.t_us))
                    .join(s.tag, s.tag.c.id == s.sample.c.tag_id)
                    .where(s.sample.c.batch_id == batch_id)
                    .group_by(s.tag.c.name)
                )
                for name, t_us in conn.execute(q):
                    out[unit, name] = int(t_us)
                last_spectrum = conn.execute(
                    sa.select(sa.func.max(s.spectrum.c.t_us)).where(
                        s.spectrum.c.batch_id == batch_id
                    )
                ).scalar()
                for u, tag in spectrum_tags:
                    if u == unit and last_spectrum is not None:
                        out[u, tag] = max(out.get((u, tag), -(2**62)), int(last_spectrum))
        return out


def _scalar(smp: Any) -> float:
    v = smp.value
    return float("nan") if v is None or isinstance(v, np.ndarray) else float(v)


def _reason(smp: Any, has_axis: bool) -> str | None:
    if isinstance(smp.value, np.ndarray) and not has_axis:
        return "spectrum received but the unit has no wavenumber axis"
    return smp.reason
