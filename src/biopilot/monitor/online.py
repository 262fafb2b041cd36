"""The line's online monitor: each unit's samples to its monitor, what they derive to the historian.

:class:`OnlineMonitor` sits beside the historian writer on the line client's sink: the
client's task hands it samples (:meth:`OnlineMonitor.feed`, cheap, never blocks the event
loop) and :meth:`OnlineMonitor.run` works them off in a worker thread every ``period_s``:
each unit's :class:`~biopilot.monitor.online_unit.UnitMonitor` derives soft-sensor values,
state estimates, MSPC statistics and alarm transitions, which are written to the unit's
running batch as samples of their own tags and as events. The batch is the one the ingest
opened for the unit (``batch_of(unit)``); until it exists, outputs wait. A write that fails
for a passing reason (a locked database) is retried at the next round; one the store refuses
(a value error) is counted and reported, never retried forever. An error in a unit's models
is counted in its status and never stops the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from biopilot.monitor.alarms import AlarmRule
from biopilot.monitor.online_models import OnlineModels
from biopilot.monitor.online_types import SampleLike, UnitStatus
from biopilot.monitor.online_unit import UnitMonitor
from biopilot.store import Historian, NewEvent
from biopilot.twin.recipe import Recipe

__all__ = ["MonitorStats", "OnlineMonitor", "derived_units"]

_log = logging.getLogger(__name__)
# Engineering units of the derived tags, by the suffix of the quantity they hold.
_SUFFIX_UNITS = (
    ("_cells_per_ml", "cells/mL"),
    ("_g_per_l", "g/L"),
    ("_mmol_per_l", "mmol/L"),
)


def derived_units(tag: str) -> str:
    """Return the engineering units of a derived tag (``titer_g_per_l.est_high`` -> ``g/L``)."""
    base = tag.split(".", 1)[0]
    return next((u for suffix, u in _SUFFIX_UNITS if base.endswith(suffix)), "-")


@dataclass
class MonitorStats:
    """What the monitor did: samples processed, derived samples and events written, errors."""

    processed: int = 0
    written: int = 0
    events: int = 0
    refused: int = 0
    write_errors: int = 0
    last_error: str | None = None


@dataclass
class _Pending:
    samples: list[tuple[str, datetime, float]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)
    first_utc: datetime | None = None
    deployed: bool = False


class OnlineMonitor:
    """Run a :class:`UnitMonitor` per unit on the line's samples and store what they derive.

    Parameters
    ----------
    models : OnlineModels
        Soft sensor and MSPC model, shared by the units.
    units : sequence of str
        The units monitored (samples of other units are ignored).
    historian : Historian, optional
        Where derived samples and events go; None keeps them in memory only (status).
    batch_of : callable, optional
        ``batch_of(unit)`` -> the id of the unit's running batch, or None while it has none.
    recipe : Recipe, optional
        The recipe the units run (for the state estimator).
    start_utc : datetime, optional
        Inoculation time of the units' batches (default: each unit's first sample).
    rules : sequence of AlarmRule, optional
        Alarm rules of the online tags (default rules if None).
    mspc_interval_s : float
        Least wall time between two MSPC scorings of a unit (see :class:`UnitMonitor`).
    """

    def __init__(
        self,
        models: OnlineModels,
        units: Sequence[str],
        *,
        historian: Historian | None = None,
        batch_of: Callable[[str], int | None] | None = None,
        recipe: Recipe | None = None,
        start_utc: datetime | pd.Timestamp | None = None,
        rules: Sequence[AlarmRule] | None = None,
        mspc_interval_s: float = 1.0,
    ) -> None:
        self.models = models
        self.historian = historian
        self.batch_of = batch_of or (lambda unit: None)
        self.units = {
            u: UnitMonitor(
                u, models, recipe=recipe, start_utc=start_utc, rules=rules,
                mspc_interval_s=mspc_interval_s,
            )
            for u in units
        }
        self.stats = MonitorStats()
        self._inbox: deque[SampleLike] = deque()
        self._pending = {u: _Pending() for u in units}
        self._status = {u: m.status() for u, m in self.units.items()}
        self._lock = threading.Lock()  # one process() at a time

    def feed(self, samples: Iterable[Any]) -> None:
        """Queue samples (objects with ``unit``, ``tag``, ``time_utc``, ``value``, ``quality``)."""
        self._inbox.extend(samples)

    @property
    def backlog(self) -> int:
        """Samples fed and not processed yet."""
        return len(self._inbox)

    def process(self, *, final: bool = False) -> int:
        """Work off the queued samples, store the outputs; return how many samples were taken.

        ``final`` also scores every complete MSPC bin (at the end of a run).
        """
        with self._lock:
            taken: dict[str, list[SampleLike]] = {u: [] for u in self.units}
            n = 0
            while self._inbox:
                smp = self._inbox.popleft()
                n += 1
                unit = getattr(smp, "unit", None)
                if unit in taken:
                    taken[unit].append(smp)
            for unit, samples in taken.items():
                if samples or final:
                    self._step(unit, samples, final)
            self.stats.processed += n
            if self.historian is not None:
                for unit in self.units:
                    self._write(unit)
            self._status = {u: m.status() for u, m in self.units.items()}
            return n

    def status(self) -> dict[str, UnitStatus]:
        """Return each unit's latest snapshot (as of the last :meth:`process`)."""
        return dict(self._status)

    async def run(self, stop: asyncio.Event, period_s: float = 1.0) -> None:
        """Process in a worker thread every ``period_s`` until ``stop``; then once more."""
        while not stop.is_set():
            await asyncio.to_thread(self.process)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period_s)
        await asyncio.to_thread(self.process, final=True)

    # -- helpers ---------------------------------------------------------------------------

    def _step(self, unit: str, samples: list[SampleLike], final: bool) -> None:
        pending = self._pending[unit]
        if pending.first_utc is None and samples:
            pending.first_utc = min(s.time_utc for s in samples)
        out = self.units[unit].step(samples, final=final)
        pending.samples += out.samples
        pending.events += [t.to_event() for t in out.transitions]
        pending.events += out.events

    def _write(self, unit: str) -> None:
        """Write the unit's pending outputs into its running batch (once it exists)."""
        assert self.historian is not None
        pending = self._pending[unit]
        if not pending.samples and not pending.events:
            return
        batch_id = self.batch_of(unit)
        if batch_id is None:
            return
        if not pending.deployed and pending.first_utc is not None:
            pending.events.insert(0, self._deployment(pending.first_utc))
            pending.deployed = True
        samples, events = pending.samples, pending.events
        pending.samples, pending.events = [], []
        try:
            if samples:
                frame = pd.DataFrame(samples, columns=["tag", "time_utc", "value"])
                units = {t: derived_units(t) for t in frame["tag"].unique()}
                self.stats.written += self.historian.write_samples(batch_id, unit, frame, units)
            samples = []
            if events:
                self.stats.events += self.historian.write_events(batch_id, unit, events)
        except (sa.exc.OperationalError, OSError) as err:  # passing: retried next round
            pending.samples[:0], pending.events[:0] = samples, events
            self._error(f"{unit}: {err}", retry=True)
        except ValueError as err:  # refused by the store: reported, not retried
            self.stats.refused += len(samples) + len(events)
            self._error(f"{unit}: {err}", retry=False)

    def _deployment(self, when: datetime) -> NewEvent:
        """The event that records which models monitor the batch (the report reads it)."""
        meta = self.models.metadata
        mspc = meta.get("mspc", {})
        soft = meta.get("soft_sensor", {}).get("source", {})
        text = (
            f"online monitor started: soft sensors calibrated on {soft.get('twin campaign', '?')} "
            f"twin batches; MSPC on {mspc.get('good_batches', '?')} good batches, alarm "
            f"limits on {mspc.get('calibration_batches', '?')} more"
        )
        return NewEvent(time_utc=when, kind="info", message=text, payload={"models": _json(meta)})

    def _error(self, text: str, *, retry: bool) -> None:
        self.stats.write_errors += 1
        self.stats.last_error = text
        _log.warning("monitor write %s: %s", "delayed" if retry else "refused", text)


def _json(obj: Any) -> Any:
    """``obj`` as plain JSON values: NaN/inf -> None, tuples -> lists, others -> str."""
    if isinstance(obj, dict):
        return {str(k): _json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json(v) for v in obj]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    try:
        return _json(float(obj))
    except (TypeError, ValueError):
        return str(obj)
