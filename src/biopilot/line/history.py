"""The server's in-memory history: what it served, per node, for clients' HistoryRead.

asyncua's ``HistoryDict`` trims by *wall* age and stores whole DataValue objects; a twin's
timestamps are simulated (months away from the wall clock) and a line serves thousands of
samples a second, so this store keeps compact per-node columns (time, value, status) in
source-time order, trims by count, and builds DataValues only when read.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from asyncua import ua
from asyncua.server.history import HistoryStorageInterface

__all__ = ["DEFAULT_DEPTH", "SampleHistory", "make_datavalue"]

#: Samples kept per node: a whole 14-day batch at one per minute (20,160) with margin, so a
#: client cut off for any part of an accelerated batch can read back all it missed.
DEFAULT_DEPTH = 30_000
_EPOCH = ua.get_win_epoch()
_Columns = tuple[list[datetime], list[Any], list[int], ua.VariantType]


class SampleHistory(HistoryStorageInterface):
    """Count-limited history of served values, read by source time.

    Parameters
    ----------
    depth : int
        Samples kept per node; the oldest are dropped beyond it.
    max_response : int
        Values per HistoryRead answer; the rest come with a continuation point.
    """

    def __init__(self, depth: int = DEFAULT_DEPTH, max_response: int = 10_000) -> None:
        super().__init__(max_response)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.depth = depth
        self._cols: dict[ua.NodeId, _Columns] = {}

    async def new_historized_node(
        self, node_id: ua.NodeId, period: timedelta | None, count: int = 0
    ) -> None:
        """Start keeping the history of ``node_id`` (``period`` and ``count`` are ignored)."""
        self.add_node(node_id, ua.VariantType.Double)

    def add_node(self, node_id: ua.NodeId, variant: ua.VariantType) -> None:
        """Start keeping the history of ``node_id``, whose values are of ``variant`` type."""
        self._cols.setdefault(node_id, ([], [], [], variant))

    def record(self, node_id: ua.NodeId, when: datetime, value: Any, status: int) -> None:
        """Append one served value (source time ``when``, later than the last one)."""
        times, values, codes, _ = self._cols[node_id]
        times.append(when)
        values.append(value)
        codes.append(status)
        if len(times) > 2 * self.depth:  # amortised O(1) trimming
            drop = len(times) - self.depth
            del times[:drop], values[:drop], codes[:drop]

    def count(self, node_id: ua.NodeId) -> int:
        """Return how many samples of ``node_id`` are kept."""
        return len(self._cols[node_id][0]) if node_id in self._cols else 0

    def items(self, node_id: ua.NodeId) -> list[tuple[datetime, Any, int]]:
        """Return the kept (source time, value, status code) of ``node_id``, oldest first."""
        times, values, codes, _ = self._cols[node_id]
        return list(zip(times, values, codes, strict=True))

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        """Keep a DataValue written by asyncua's own historizing path."""
        when = datavalue.SourceTimestamp or datetime.now(UTC)
        code = datavalue.StatusCode.value if datavalue.StatusCode else 0
        self.record(node_id, when, datavalue.Value.Value if datavalue.Value else None, code)

    async def read_node_history(
        self, node_id: ua.NodeId, start: datetime | None, end: datetime | None, nb_values: int
    ) -> tuple[list[ua.DataValue], datetime | None]:
        """Return values with source time in [start, end] (either open), and a continuation."""
        if node_id not in self._cols:
            return [], None
        times, values, codes, variant = self._cols[node_id]
        lo_open = start is None or start == _EPOCH
        hi_open = end is None or end == _EPOCH
        reverse = not lo_open and not hi_open and start > end  # type: ignore[operator]
        a, b = (end, start) if reverse else (start, end)
        i = 0 if a is None or (lo_open and not reverse) else bisect.bisect_left(times, a)
        j = len(times) if b is None or (hi_open and not reverse) else bisect.bisect_right(times, b)
        idx = list(range(i, j))
        if reverse:
            idx.reverse()
        limit = min(nb_values or len(idx), self.max_history_data_response_size)
        cont = times[idx[limit]] if len(idx) > limit and not nb_values else None
        dvs = [
            make_datavalue(ua.Variant(values[k], variant), codes[k], times[k], times[k])
            for k in idx[:limit]
        ]
        return dvs, cont

    async def init(self) -> None:
        """Nothing to open: the history lives in memory."""

    async def stop(self) -> None:
        """Keep the history: it outlives a server restart."""

    async def new_historized_event(  # type: ignore[override]
        self,
        source_id: ua.NodeId,
        evtypes: list[ua.NodeId],
        period: timedelta | None,
        count: int = 0,
    ) -> None:
        """Events are not historized by this store."""

    async def save_event(self, event: Any) -> None:
        """Events are not historized by this store."""

    async def read_event_history(
        self, source_id: ua.NodeId, start: Any, end: Any, nb_values: int, evfilter: Any
    ) -> tuple[list[Any], None]:
        """Events are not historized by this store: no events."""
        return [], None


def make_datavalue(
    variant: ua.Variant, code: int, source: datetime | None, server: datetime | None
) -> ua.DataValue:
    """Return a DataValue of ``variant`` with status ``code`` and its two timestamps."""
    return ua.DataValue(
        variant,
        StatusCode=ua.StatusCode(ua.UInt32(code)),
        SourceTimestamp=cast(ua.DateTime, source),
        ServerTimestamp=cast(ua.DateTime, server),
    )
