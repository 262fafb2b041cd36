"""An OPC UA server of a line's units: publish values, keep their history, read setpoints.

:class:`LineServer` owns what outlives one OPC UA endpoint -- the units' tag specs, the
history and the last values and setpoints -- so :meth:`LineServer.stop` then
:meth:`LineServer.start` is a server restart: the plant goes on recording into the history
while no client can reach it, and clients read back the gap with HistoryRead afterwards.
"""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
from asyncua import Server, ua

from biopilot.line.address_space import NAMESPACE_URI, TagSpec, UnitNodes, add_unit
from biopilot.line.history import DEFAULT_DEPTH, SampleHistory, make_datavalue
from biopilot.line.security import SERVER_APP_URI, ServerSecurity, apply_server_security

__all__ = ["BAD_SENSOR_FAILURE", "WAITING", "LineServer", "free_port"]

#: Status code served for a reading that is NaN (a probe drop-out).
BAD_SENSOR_FAILURE = ua.StatusCodes.BadSensorFailure
#: Status of a variable before its first reading.
WAITING = ua.StatusCodes.BadWaitingForInitialData
_log = logging.getLogger(__name__)


class LineServer:
    """An OPC UA server of the units of one ISA-88 site/area, restartable.

    Parameters
    ----------
    host : str
        Address to listen on (``127.0.0.1`` for loopback only).
    port : int
        TCP port; 0 picks a free one at the first start and keeps it across restarts.
    site, area : str
        The ISA-88 site and area of the units.
    security : ServerSecurity, optional
        Basic256Sha256 Sign&Encrypt with username login; None serves without security.
    history_depth : int
        Samples of history kept per variable (see :class:`SampleHistory`).
    name : str
        Server name shown to clients.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        site: str = "Site",
        area: str = "Area",
        security: ServerSecurity | None = None,
        history_depth: int = DEFAULT_DEPTH,
        name: str = "biopilot line",
    ) -> None:
        self.host, self.port, self.site, self.area = host, port, site, area
        self.security = security
        self.name = name
        self.history = SampleHistory(history_depth)
        self.nodes: dict[str, UnitNodes] = {}
        self._specs: dict[str, tuple[tuple[TagSpec, ...], np.ndarray | None]] = {}
        self._server: Server | None = None
        self._running = False
        self.ns = 2
        #: The plant's clock per unit; stamps setpoints written by clients (else wall time).
        self.clock: Callable[[str], datetime] | None = None

    @property
    def endpoint(self) -> str:
        """The server's URL, ``opc.tcp://host:port``."""
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the OPC UA endpoint is up."""
        return self._running

    def add_unit(
        self, unit: str, specs: Sequence[TagSpec], *, axis_cm1: np.ndarray | None = None
    ) -> None:
        """Declare a unit and its variables (before :meth:`start`)."""
        if self._server is not None:
            raise RuntimeError("add units before the server starts")
        if unit in self._specs:
            raise ValueError(f"unit {unit!r} is declared twice")
        self._specs[unit] = (tuple(specs), axis_cm1)

    async def start(self) -> None:
        """Build the address space (first time) and listen; a restart reuses it."""
        if self._running:
            return
        if self._server is None:
            self._server = await self._build()
        await self._server.start()
        self._running = True
        _log.info("serving %d units on %s", len(self._specs), self.endpoint)

    async def stop(self) -> None:
        """Close the endpoint and every session; the address space and history are kept."""
        if self._server is not None and self._running:
            self._running = False
            await self._server.stop()

    async def _build(self) -> Server:
        if self.port == 0:
            self.port = free_port(self.host)
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(self.name)
        await server.set_application_uri(SERVER_APP_URI)
        await apply_server_security(server, self.security)
        self.ns = await server.register_namespace(NAMESPACE_URI)
        server.iserver.history_manager.set_storage(self.history)
        for unit, (specs, axis) in self._specs.items():
            nodes = await add_unit(
                server, self.ns, self.site, self.area, unit, specs, axis_cm1=axis
            )
            self.nodes[unit] = nodes
            for spec in specs:
                if not spec.writable:
                    variant = ua.VariantType.Float if spec.array else ua.VariantType.Double
                    self.history.add_node(nodes.pv[spec.tag], variant)
                    # No reading yet: not a sample (clients skip it), no made-up timestamp.
                    empty: list[float] | float = [] if spec.array else math.nan
                    await server.write_attribute_value(
                        nodes.pv[spec.tag],
                        make_datavalue(ua.Variant(empty, variant), WAITING, None, None),
                    )
            for node_id in nodes.sp.values():
                server.set_attribute_value_setter(node_id, self._stamp(unit))
                await server.write_attribute_value(node_id, ua.DataValue(ua.Variant(math.nan)))
        return server

    def _stamp(self, unit: str) -> Callable[[Any, ua.AttributeIds, ua.DataValue], None]:
        """A value setter giving client writes the unit's (simulated) time as source time."""

        def setter(node: Any, attr: ua.AttributeIds, dv: ua.DataValue) -> None:
            now = datetime.now(UTC)
            when = self.clock(unit) if self.clock is not None else now
            dv.SourceTimestamp = cast(ua.DateTime, when)
            dv.ServerTimestamp = cast(ua.DateTime, now)
            node.attributes[attr].value = dv  # subscribers get this same, stamped object
            node.attributes[attr].value_callback = None

        return setter

    async def publish(
        self,
        unit: str,
        values: Mapping[str, float | np.ndarray],
        when: datetime,
        status: Mapping[str, int] | None = None,
    ) -> None:
        """Serve new values of a unit's variables with source time ``when``, and keep them.

        Parameters
        ----------
        unit : str
            A declared unit.
        values : mapping of str to float or ndarray
            Tag -> value (a float, or a 1-D array for a spectrum).
        when : datetime
            Source timestamp (timezone-aware UTC): the plant's time of the reading.
        status : mapping of str to int, optional
            OPC UA status code per tag (default Good; a NaN reading is BadSensorFailure).
        """
        if self._server is None:
            raise RuntimeError("start the server before publishing")
        pv = self.nodes[unit].pv
        now = datetime.now(UTC)
        for tag, value in values.items():
            code = _status(value, status.get(tag) if status else None)
            variant = _variant(value)
            dv = make_datavalue(variant, code, when, now)
            self.history.record(pv[tag], when, variant.Value, code)
            # Written while stopped too: a restarted server serves the latest value.
            await self._server.write_attribute_value(pv[tag], dv)

    def setpoint(self, unit: str, tag: str) -> float | None:
        """Return setpoint ``tag`` of ``unit`` as last written by a client; None if unset or NaN."""
        if self._server is None:
            return None
        dv = self._server.read_attribute_value(self.nodes[unit].sp[tag])
        value = dv.Value.Value if dv.Value is not None else None
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
        return None


    async def take_dose(self, unit: str, tag: str) -> float:
        """Return a dose command ``tag`` of ``unit`` (litres, 0 if unset) and reset it to 0."""
        value = self.setpoint(unit, tag)
        if value is None or value <= 0.0:
            return 0.0
        assert self._server is not None  # setpoint() returned a value
        variant = ua.Variant(0.0, ua.VariantType.Double)
        now = datetime.now(UTC)
        await self._server.write_attribute_value(
            self.nodes[unit].sp[tag], make_datavalue(variant, 0, now, now)
        )
        return value


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port free on ``host`` now (for tests and demos on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _status(value: Any, given: int | None) -> int:
    if given is not None:
        return int(given)
    if isinstance(value, float) and not math.isfinite(value):
        return int(BAD_SENSOR_FAILURE)
    return int(ua.StatusCodes.Good)


def _variant(value: float | np.ndarray) -> ua.Variant:
    if isinstance(value, np.ndarray):
        return ua.Variant(value.astype(np.float32).tolist(), ua.VariantType.Float)
    return ua.Variant(float(value), ua.VariantType.Double)
