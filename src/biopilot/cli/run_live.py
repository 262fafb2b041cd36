"""The live demo line: the plant over OPC UA, the ingest into the historian, the online monitor.

:func:`run_live` connects the three as a site would: the plant (:mod:`biopilot.cli.run_plant`,
the twin's OPC UA server in its own process) serves its units; a
:class:`~biopilot.line.LineClient` subscribes to every mapped node (reconnecting and
backfilling with HistoryRead after any cut, so nothing is lost) and hands each batch of
samples to the historian writer (:class:`~biopilot.store.line_ingest.HistorianSink`, what
``biopilot line connect`` runs) and to the :class:`~biopilot.monitor.online.OnlineMonitor`,
which stores its estimates, MSPC statistics and alarms beside the raw samples.

Unit tasks are the seam for what acts on the line (a controller, an operator simulation): a
:data:`LineTask` is an async callable run beside the ingest with a :class:`LineContext` --
the plant's endpoint and its setpoints' tag map (a task writes setpoints through its own
client: ``LineClient(ctx.endpoint, ctx.setpoints, sink)`` then ``await client.write(unit,
"feed_sp", 12.0)``), the ingest client, the monitor (``ctx.monitor.units[unit].estimate``,
the latest UKF estimate) and the historian -- until ``ctx.stop`` is set. A task that fails is
reported, never stops the line. A model-predictive controller of one unit is such a task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from biopilot.cli.run_plant import PlantProcess
from biopilot.line import LineClient, TagMap, twin_tagmap
from biopilot.line.address_space import SETPOINT_SPECS, node_text
from biopilot.line.twin_server import unit_names
from biopilot.monitor.online import OnlineMonitor
from biopilot.monitor.online_models import OnlineModels
from biopilot.store import Historian
from biopilot.store import schema as s
from biopilot.store.line_ingest import HistorianSink, TagInfo
from biopilot.twin.bioreactor import DEFAULT_START_UTC

__all__ = [
    "LineContext",
    "LineTask",
    "LiveResult",
    "LiveSettings",
    "LiveState",
    "run_live",
    "setpoint_tagmap",
]

_log = logging.getLogger(__name__)
_TICK_S = 0.25


@dataclass(frozen=True)
class LiveSettings:
    """How the live line runs.

    ``ingest_url`` connects the ingest somewhere else than the plant's endpoint (a gateway,
    a relay); ``catch_up_s`` is how long the ingest may take, once the plant has stopped, to
    receive what it served before the run ends and says what is missing.
    """

    db: Path
    batch_code: str = "DEMO"
    product: str = "mAb-demo"
    site: str = "Site"
    area: str = "Area"
    ingest_url: str | None = None
    catch_up_s: float = 60.0
    connect_timeout_s: float = 30.0


@dataclass
class LineContext:
    """What a unit task gets: the plant's endpoint and setpoints, the ingest, monitor, store."""

    endpoint: str
    setpoints: TagMap
    client: LineClient
    monitor: OnlineMonitor
    historian: Historian
    plant: PlantProcess | None  # None: a line biopilot does not run (biopilot control run)
    stop: asyncio.Event


#: A unit task: runs beside the ingest until ``ctx.stop`` is set.
LineTask = Callable[[LineContext], Awaitable[None]]


@dataclass(frozen=True)
class LiveState:
    """What a live view shows, refreshed every 0.25 s."""

    endpoint: str
    speed: float
    until_h: float
    plant_h: float
    plant_done: bool
    connected: bool
    received: int
    backfilled: int
    stored: int
    sessions: int
    losses: int
    backlog: int
    wall_s: float
    phase: str
    monitor: dict[str, Any]


@dataclass
class LiveResult:
    """How the run went: served and stored per (unit, tag), the batches, the counters."""

    batch_ids: dict[str, int]
    served: dict[tuple[str, str], int]
    stored: dict[tuple[str, str], int]
    client: dict[str, Any]
    monitor: dict[str, Any]
    plant_h: float
    wall_s: float
    interrupted: bool
    estimates: dict[str, dict[str, float]] = field(default_factory=dict)
    task_errors: list[str] = field(default_factory=list)

    @property
    def missing(self) -> dict[tuple[str, str], int]:
        """Samples served and not stored, per (unit, tag) (empty when nothing was lost)."""
        return {k: n - self.stored.get(k, 0) for k, n in self.served.items()
                if n != self.stored.get(k, 0)}


async def run_live(
    settings: LiveSettings,
    plant: PlantProcess,
    models: OnlineModels,
    *,
    tasks: Sequence[LineTask] = (),
    view: Callable[[LiveState], None] | None = None,
    interrupt: asyncio.Event | None = None,
) -> LiveResult:
    """Run the line until the plant stops (harvest, ``until_h``) or ``interrupt``; return how.

    ``plant`` is started (:meth:`PlantProcess.start`) but not yet running its clock; it is
    started here once the ingest is connected, and stopped at the end.

    Raises
    ------
    RuntimeError
        If the plant does not start or the ingest cannot connect.
    biopilot.line.LineConfigError
        On a tag map or security the server refuses (not retried).
    """
    t0 = time.monotonic()
    endpoint = await plant.ready()
    with Historian(settings.db) as historian:
        result = await _run(settings, plant, models, historian, endpoint, tasks, view, interrupt)
    result.wall_s = time.monotonic() - t0
    return result


async def _run(
    settings: LiveSettings,
    plant: PlantProcess,
    models: OnlineModels,
    historian: Historian,
    endpoint: str,
    tasks: Sequence[LineTask],
    view: Callable[[LiveState], None] | None,
    interrupt: asyncio.Event | None,
) -> LiveResult:
    t0 = time.monotonic()
    config = plant.config
    tagmap = twin_tagmap(config.units, site=settings.site, area=settings.area)
    units = list(dict.fromkeys(t.unit for t in tagmap.tags))
    infos = [TagInfo(t.unit, t.tag, t.units, t.kind == "spectrum") for t in tagmap.tags]
    sink = HistorianSink(historian, settings.site, settings.area, infos,
                         batch_code=settings.batch_code, product=settings.product)
    monitor = OnlineMonitor(models, units, historian=historian, batch_of=sink.batch_ids.get,
                            start_utc=DEFAULT_START_UTC)
    received: Counter[tuple[str, str]] = Counter()

    async def fan_out(samples: list[Any]) -> None:
        received.update((smp.unit, smp.tag) for smp in samples)
        await sink(samples)
        monitor.feed(samples)

    client = LineClient(settings.ingest_url or endpoint, tagmap, fan_out,
                        since=sink.last_times(), backfill_all=True)
    sink.axes = client.axes  # filled at connection
    stop_ingest, stop_monitor, stop_tasks = asyncio.Event(), asyncio.Event(), asyncio.Event()
    ingest = asyncio.create_task(client.run(stop_ingest))
    watch = asyncio.create_task(monitor.run(stop_monitor))
    setpoints = setpoint_tagmap(config.units, site=settings.site, area=settings.area)
    ctx = LineContext(endpoint, setpoints, client, monitor, historian, plant, stop_tasks)
    errors: list[str] = []
    running = [asyncio.create_task(_guarded(task, ctx, errors)) for task in tasks]
    interrupted = False

    until_h = min(config.until_h, _harvest_h())

    def state(phase: str) -> LiveState:
        st = client.stats
        return LiveState(endpoint, config.speed, until_h, plant.t_h,
                         plant.done, client.connected.is_set(), st.live + st.backfilled,
                         st.backfilled, sink.stats.samples + sink.stats.spectra, st.sessions,
                         st.connection_losses, monitor.backlog, time.monotonic() - t0, phase,
                         monitor.status())

    try:
        await _connected(client, ingest, settings.connect_timeout_s)
        plant.go()
        caught_up_by: float | None = None
        while True:
            plant.poll()
            if ingest.done():
                ingest.result()  # raises what stopped the ingest (a configuration error)
            if interrupt is not None and interrupt.is_set() and not interrupted:
                interrupted = True
                if not plant.done:
                    plant.stop_clock()
            if plant.error is not None:
                raise RuntimeError(f"the plant failed: {plant.error}")
            if plant.done:
                assert plant.served is not None
                if all(received[k] >= n for k, n in plant.served.items()):
                    break
                caught_up_by = caught_up_by or time.monotonic() + settings.catch_up_s
                if time.monotonic() > caught_up_by:
                    _log.warning("the ingest did not catch up within %s s", settings.catch_up_s)
                    break
            if view is not None:
                view(state("catching up" if plant.done else "running"))
            await asyncio.sleep(_TICK_S)
        if view is not None:
            view(state("storing"))
    finally:
        stop_tasks.set()
        await _finish(running, 5.0)
        stop_ingest.set()
        await asyncio.gather(ingest, return_exceptions=True)
        try:
            await sink.flush()
        finally:
            stop_monitor.set()
            await asyncio.gather(watch, return_exceptions=True)
            served = await plant.stop()
    result = _result(historian, sink, client, monitor, served, plant.t_h)
    result.interrupted, result.task_errors = interrupted, errors
    if view is not None:
        view(state("done"))
    return result


def _result(
    historian: Historian, sink: HistorianSink, client: LineClient, monitor: OnlineMonitor,
    served: dict[tuple[str, str], int] | None, plant_h: float,
) -> LiveResult:
    """End the batches and count what was stored."""
    _end_batches(historian, sink, plant_h)
    spectra = {t for (_, t), info in sink.tags.items() if info.spectrum}
    return LiveResult(
        batch_ids=dict(sink.batch_ids),
        served=served or {},
        stored=_stored(historian, sink.batch_ids, spectra),
        client={"sessions": client.stats.sessions, "live": client.stats.live,
                "backfilled": client.stats.backfilled, "duplicates": client.stats.duplicates,
                "connection_losses": client.stats.connection_losses,
                "last_error": client.stats.last_error},
        monitor={"processed": monitor.stats.processed, "written": monitor.stats.written,
                 "events": monitor.stats.events, "write_errors": monitor.stats.write_errors,
                 "last_error": monitor.stats.last_error},
        plant_h=plant_h,
        wall_s=0.0,
        interrupted=False,
        estimates={u: {k: v[0] for k, v in st.estimates.items()}
                   for u, st in monitor.status().items()},
    )


def setpoint_tagmap(units: int, *, site: str = "Site", area: str = "Area") -> TagMap:
    """The writable setpoints of the twin's units, as tags ``<tag>_sp`` (``feed_sp``...).

    For a unit task's own :class:`~biopilot.line.LineClient` that writes setpoints. The
    ingest does not map them: an unset setpoint is served without a plant timestamp, so a
    subscriber would stamp it with the wall clock, ahead of the accelerated plant's time.
    """
    tags = [{"unit": unit, "tag": f"{sp.tag}_sp", "units": sp.units,
             "node": node_text(2, site, area, unit, sp.tag, "SP")}
            for unit in unit_names(units) for sp in SETPOINT_SPECS]
    return TagMap.model_validate({"site": site, "area": area, "tags": tags})


def _harvest_h() -> float:
    from biopilot.twin import default_recipe

    return float(default_recipe().harvest_h)


async def _connected(client: LineClient, ingest: asyncio.Task[None], timeout_s: float) -> None:
    """Wait until the client's first session is up (or its task failed)."""
    wait = asyncio.create_task(client.connected.wait())
    done, _ = await asyncio.wait({wait, ingest}, timeout=timeout_s,
                                 return_when=asyncio.FIRST_COMPLETED)
    wait.cancel()
    if ingest in done:
        ingest.result()
        raise RuntimeError("the ingest stopped before connecting")
    if not done:
        raise RuntimeError(f"the ingest could not connect within {timeout_s:g} s: "
                           f"{client.stats.last_error}")


async def _guarded(task: LineTask, ctx: LineContext, errors: list[str]) -> None:
    """Run a unit task; a failure is recorded and logged, the line goes on."""
    try:
        await task(ctx)
    except asyncio.CancelledError:
        raise
    except Exception as err:
        name = getattr(task, "__name__", type(task).__name__)
        errors.append(f"{name}: {type(err).__name__}: {err}")
        _log.warning("unit task %s failed: %s", name, err)


async def _finish(tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Give the tasks ``grace_s`` to end after ``stop``, then cancel them."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for t in pending:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _end_batches(historian: Historian, sink: HistorianSink, plant_h: float) -> None:
    """Close each unit's batch at its last sample: complete at harvest, else stopped."""
    last = sink.last_times()
    status = "complete" if plant_h >= _harvest_h() - 1e-6 else "stopped"
    for unit, batch_id in sink.batch_ids.items():
        times = [t for (u, _), t in last.items() if u == unit]
        if times:
            historian.end_batch(batch_id, max(times), status)


def _stored(
    historian: Historian, batch_ids: dict[str, int], spectra: set[str]
) -> dict[tuple[str, str], int]:
    """Samples stored per (unit, tag) of the batches; a spectrum tag counts its spectra."""
    out: dict[tuple[str, str], int] = {}
    with historian.engine.connect() as conn:
        for unit, batch_id in batch_ids.items():
            q = (sa.select(s.tag.c.name, sa.func.count())
                 .join(s.tag, s.tag.c.id == s.sample.c.tag_id)
                 .where(s.sample.c.batch_id == batch_id).group_by(s.tag.c.name))
            out |= {(unit, name): int(n) for name, n in conn.execute(q)}
            n_spectra = conn.execute(sa.select(sa.func.count()).select_from(s.spectrum)
                                     .where(s.spectrum.c.batch_id == batch_id)).scalar()
            for tag in spectra:
                out[(unit, tag)] = int(n_spectra or 0)
    return out
