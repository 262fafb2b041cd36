"""A loopback TCP relay that can cut the network, to test reconnection and backfill.

Put it between a client and a server (``client -> relay -> server``); :meth:`NetworkRelay.cut`
drops every open connection at once (as a pulled cable or a firewall reset would) and, while
``down``, new connections are closed as soon as they open. For tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["NetworkRelay"]

_CHUNK = 65536


class NetworkRelay:
    """Relay TCP from ``127.0.0.1:<port>`` to ``target_host:target_port``, cuttable.

    Parameters
    ----------
    target_host, target_port : str, int
        Where connections are relayed to.
    port : int
        Port to listen on (0: a free one, see :attr:`port` after :meth:`start`).
    """

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.down = False
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """``opc.tcp://127.0.0.1:<port>`` of the relay."""
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()

    def cut(self, *, down: bool | None = None) -> None:
        """Drop every open connection; ``down`` also sets whether new ones are refused."""
        if down is not None:
            self.down = down
        self.cuts += 1
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(_pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy ``src`` to ``dst`` until either side closes; then close ``dst``."""
    try:
        while data := await src.read(_CHUNK):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.transport.abort()
