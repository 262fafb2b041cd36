"""The line's OPC UA client: subscribe, reconnect with backoff, backfill gaps by HistoryRead.

:class:`LineClient` hands every reading of the mapped nodes, once, in source-time order per
tag, to an async ``sink`` (the historian writer, an alarm engine...). Exactly once: per tag
it remembers the last source time handed over; after a server restart or a network cut it
reconnects with exponential backoff, subscribes first (notifications are held back), reads
the gap since that time with HistoryRead, hands it over, then releases the held
notifications -- anything not newer than the last time is a duplicate and is skipped. A
(tag, source time) is therefore the identity of a sample, as in the historian.

Unknown nodes (not on the server, browse path not found) raise :class:`UnknownNodeError`
naming each tag and node: a wrong map is a configuration error, fixed before recording.
A value with no timestamp or with status BadWaitingForInitialData (a variable not read
yet) is not a sample and is skipped; a value without a source timestamp takes its server
timestamp. A wrong user or password raises :class:`LoginRefusedError`, a security mode the
server does not offer :class:`LineConfigError`; none of these is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import numpy as np
from asyncua import Client, ua

from biopilot.line.client_types import (
    Backoff,
    ClientStats,
    LineConfigError,
    LoginRefusedError,
    UnknownNodeError,
)
from biopilot.line.opcua_io import (
    BatchSubscription,
    history_read_raw,
    resolve_entry,
    resolve_node_id,
)
from biopilot.line.quality import Sample, classify
from biopilot.line.security import ClientSecurity, apply_client_security
from biopilot.line.tagmap import TagEntry, TagMap

__all__ = ["LineClient", "Sink"]

#: Where samples go: an async callable taking a batch (list) of samples.
Sink = Callable[[list[Sample]], Awaitable[None]]
_log = logging.getLogger(__name__)
_LOGIN_REFUSED = (
    ua.StatusCodes.BadUserAccessDenied,
    ua.StatusCodes.BadIdentityTokenInvalid,
    ua.StatusCodes.BadIdentityTokenRejected,
)
_HISTORY_CHUNK = 200  # nodes per HistoryRead request


class LineClient:
    """Subscribe to the nodes of a tag map and hand every sample, once, to ``sink``.

    Parameters
    ----------
    url : str
        ``opc.tcp://host:port``.
    tagmap : TagMap
        Which nodes, as which unit/tag.
    sink : Sink
        Awaited with each batch of samples (in order); if it raises, the client stops.
    security : ClientSecurity, optional
        Sign&Encrypt with certificate and user; None connects without security.
    since : mapping of (unit, tag) to datetime, optional
        The last source time already stored per tag (e.g. read from the historian): the
        first session backfills from there, so a restarted ingest neither loses nor repeats.
    backfill_all : bool
        For tags without a ``since`` time, read back all the server's history at the first
        connection (else start from the current value).
    publishing_ms : float
        Subscription publishing interval, ms.
    queue_size : int
        Server-side queue per monitored item (every change between two publishes is kept).
    backoff : Backoff
        Waits between reconnection attempts.
    watchdog_s, timeout_s : float
        Connection probe period (also the probe's timeout: a busy server is not a dead one;
        a closed connection is seen at once) and request timeout, seconds.
    """

    def __init__(
        self,
        url: str,
        tagmap: TagMap,
        sink: Sink,
        *,
        security: ClientSecurity | None = None,
        since: Mapping[tuple[str, str], datetime] | None = None,
        backfill_all: bool = False,
        publishing_ms: float = 100.0,
        queue_size: int = 10_000,
        backoff: Backoff | None = None,
        watchdog_s: float = 5.0,
        timeout_s: float = 4.0,
    ) -> None:
        self.url, self.tagmap, self.sink, self.security = url, tagmap, sink, security
        self.entries: list[TagEntry] = list(tagmap.tags)
        self._last: dict[int, datetime] = {}
        for i, e in enumerate(self.entries):
            if since and (e.unit, e.tag) in since:
                self._last[i] = since[e.unit, e.tag]
        self.backfill_all = backfill_all
        self.publishing_ms, self.queue_size = publishing_ms, queue_size
        self.backoff = backoff or Backoff()
        self.watchdog_s, self.timeout_s = watchdog_s, timeout_s
        self.stats = ClientStats()
        self.connected = asyncio.Event()
        #: Wavenumber axis (cm-1) of each unit's spectrum, read at connection.
        self.axes: dict[str, np.ndarray] = {}
        self._points: dict[int, int] = {}
        self._held: list[tuple[list[ua.MonitoredItemNotification], float]] | None = None
        self._out: asyncio.Queue[list[Sample]] = asyncio.Queue()
        self._drain_task: asyncio.Task[None] | None = None
        self._live: tuple[Client, list[ua.NodeId]] | None = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Record until ``stop`` is set, reconnecting after every loss.

        Raises
        ------
        UnknownNodeError, LoginRefusedError, LineConfigError
            On a wrong tag map, credentials or security (not retried).
        """
        stop = stop or asyncio.Event()
        drain = self._drain_task = asyncio.create_task(self._drain())
        delays = self.backoff.delays()
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    delays = self.backoff.delays()
                except LineConfigError:
                    raise
                except ua.UaStatusCodeError as err:
                    if err.code in _LOGIN_REFUSED:
                        raise LoginRefusedError(f"{self.url} refused the login: {err}") from None
                    self._note(err)
                except (OSError, TimeoutError, ConnectionError, ua.UaError) as err:
                    if "No matching endpoints" in str(err):
                        raise LineConfigError(
                            f"{self.url} offers no endpoint with this security ({err}); "
                            "check --security and the certificates"
                        ) from None
                    self._note(err)
                if drain.done():
                    drain.result()  # the sink failed: stop and say why
                if not stop.is_set():
                    await _wait(stop, next(delays))
        finally:
            if not drain.done():
                await self._out.join()
            drain.cancel()

    async def write(self, unit: str, tag: str, value: float) -> None:
        """Write ``value`` to the node mapped as ``unit``/``tag`` (a setpoint), now.

        The write goes through the current session; the caller records it (audit trail).

        Raises
        ------
        KeyError
            If ``unit``/``tag`` is not in the tag map.
        ConnectionError
            If the client is not connected (the write is not queued for later).
        asyncua.ua.UaStatusCodeError
            If the server refuses it (not writable, out of range, access denied).
        """
        index = {(e.unit, e.tag): i for i, e in enumerate(self.entries)}
        if (unit, tag) not in index:
            raise KeyError(f"{unit}/{tag} is not in the tag map")
        if self._live is None:
            raise ConnectionError(f"not connected to {self.url}: {unit}/{tag} not written")
        client, node_ids = self._live
        variant = ua.Variant(float(value), ua.VariantType.Double)
        await client.get_node(node_ids[index[unit, tag]]).write_value(variant)

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection: resolve, subscribe (held), backfill, then stream until lost."""
        client = Client(self.url, timeout=self.timeout_s, watchdog_intervall=self.watchdog_s)
        await apply_client_security(client, self.security)
        lost = asyncio.Event()

        async def _on_lost(exc: Exception) -> None:
            lost.set()

        client.connection_lost_callback = _on_lost
        await client.connect()
        self.stats.sessions += 1
        try:
            node_ids = await self._resolve(client)
            self._held = []
            sub = BatchSubscription(client, self._on_items, self.publishing_ms)
            await sub.init()
            await sub.create_monitored_items(self._requests(node_ids))
            await self._backfill(client, node_ids)
            held, self._held = self._held, None
            for items, received in held:
                self._take(items, received, backfilled=False)
            self._live = (client, node_ids)
            self.connected.set()
            drain = self._drain_task
            waits = [asyncio.create_task(e.wait()) for e in (lost, stop)]
            await asyncio.wait([*waits, *([drain] if drain else [])], return_when="FIRST_COMPLETED")
            for w in waits:
                w.cancel()
            if drain is not None and drain.done():
                drain.result()  # the sink failed: stop and say why
            if lost.is_set():
                self.stats.connection_losses += 1
        finally:
            self.connected.clear()
            self._held, self._live = None, None
            try:
                await asyncio.wait_for(client.disconnect(), 2.0)
            except Exception:  # the server is gone already: nothing to close cleanly
                client.disconnect_socket()

    async def _resolve(self, client: Client) -> list[ua.NodeId]:
        """Map entries to NodeIds; UnknownNodeError naming every missing one."""
        out: list[ua.NodeId] = []
        missing: list[str] = []
        for e in self.entries:
            try:
                out.append(await resolve_entry(client, e))
            except ua.UaStatusCodeError as err:
                out.append(ua.NodeId())
                missing.append(f"{e.unit}/{e.tag} -> {e.address} ({ua.StatusCode(err.code).name})")
        classes = await client.uaclient.read_attributes(out, ua.AttributeIds.NodeClass)
        for e, n, dv in zip(self.entries, out, classes, strict=True):
            if not n.is_null() and dv.StatusCode is not None and dv.StatusCode.is_bad():
                missing.append(f"{e.unit}/{e.tag} -> {e.address} ({dv.StatusCode.name})")
        if missing:
            raise UnknownNodeError(f"{self.url} has no node for: " + "; ".join(missing))
        for i, e in enumerate(self.entries):
            if e.axis_node is not None:
                axis_id = await resolve_node_id(client, e.axis_node)
                axis = await client.get_node(axis_id).read_value()
                self.axes[e.unit] = np.asarray(axis, dtype=np.float64)
                self._points[i] = len(axis)
        return out

    def _requests(self, node_ids: list[ua.NodeId]) -> list[ua.MonitoredItemCreateRequest]:
        """One monitored item per entry, client handle = entry index, every change queued."""
        flt = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
        out = []
        for i, node_id in enumerate(node_ids):
            params = ua.MonitoringParameters(
                ClientHandle=i,
                SamplingInterval=0.0,
                Filter=flt,
                QueueSize=self.queue_size,
                DiscardOldest=True,
            )
            out.append(
                ua.MonitoredItemCreateRequest(
                    ItemToMonitor=ua.ReadValueId(NodeId=node_id, AttributeId=ua.AttributeIds.Value),
                    MonitoringMode=ua.MonitoringMode.Reporting,
                    RequestedParameters=params,
                )
            )
        return out

    async def _backfill(self, client: Client, node_ids: list[ua.NodeId]) -> None:
        """Read back, per tag, what the server served since the last time handed over."""
        groups: dict[datetime | None, list[int]] = {}
        for i in range(len(node_ids)):
            if i in self._last or self.backfill_all:
                groups.setdefault(self._last.get(i), []).append(i)
        for start, idx in groups.items():
            for k in range(0, len(idx), _HISTORY_CHUNK):
                chunk = idx[k : k + _HISTORY_CHUNK]
                values = await history_read_raw(client, [node_ids[i] for i in chunk], start)
                received = time.time()
                batch: list[Sample] = []
                for i, dvs in zip(chunk, values, strict=True):
                    for dv in dvs:
                        self._take_value(i, dv, received, True, batch)
                self._queue(batch, backfilled=True)

    def _on_items(self, items: list[ua.MonitoredItemNotification]) -> None:
        """Subscription callback: hold while backfilling, else take."""
        received = time.time()
        if self._held is not None:
            self._held.append((items, received))
        else:
            self._take(items, received, backfilled=False)

    def _take(
        self, items: list[ua.MonitoredItemNotification], received: float, *, backfilled: bool
    ) -> None:
        """Take the data changes of one publish: one batch for the sink, in arrival order."""
        batch: list[Sample] = []
        n = len(self.entries)
        for item in items:
            i = item.ClientHandle
            if 0 <= i < n:
                self._take_value(i, item.Value, received, backfilled, batch)
        self._queue(batch, backfilled)

    def _take_value(
        self, i: int, dv: ua.DataValue, received: float, backfilled: bool, out: list[Sample]
    ) -> None:
        """Classify a value of entry ``i``; append it to ``out`` if newer than its last time."""
        if _no_reading(dv):
            return
        when, value, quality, reason = classify(dv, spectrum_points=self._points.get(i))
        last = self._last.get(i)
        if last is not None and when <= last:
            self.stats.duplicates += 1
            return
        self._last[i] = when
        e = self.entries[i]
        out.append(
            Sample(
                e.unit,
                e.tag,
                when,
                value,
                quality,
                reason,
                dv.ServerTimestamp,
                received,
                backfilled,
            )
        )

    def _queue(self, batch: list[Sample], backfilled: bool) -> None:
        if not batch:
            return
        if backfilled:
            self.stats.backfilled += len(batch)
        else:
            self.stats.live += len(batch)
        self._out.put_nowait(batch)

    async def _drain(self) -> None:
        """Hand the queued batches to the sink, merging what has piled up."""
        while True:
            batch = list(await self._out.get())
            n = 1
            while not self._out.empty():
                batch.extend(self._out.get_nowait())
                n += 1
            try:
                await self.sink(batch)
            finally:
                for _ in range(n):
                    self._out.task_done()

    def _note(self, err: BaseException) -> None:
        text = f"{type(err).__name__}: {err}"
        self.stats.last_error = text
        self.stats.errors.append(text)
        _log.warning("line %s: %s; reconnecting", self.url, text)


def _no_reading(dv: ua.DataValue) -> bool:
    """True for a placeholder, not a sample: no timestamp at all, or no data yet."""
    code = dv.StatusCode.value if dv.StatusCode is not None else 0
    if code & 0xFFFF0000 == ua.StatusCodes.BadWaitingForInitialData:
        return True
    return dv.SourceTimestamp is None and dv.ServerTimestamp is None


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
