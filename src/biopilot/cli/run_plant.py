"""The demo's plant: the twin's OPC UA server (as ``biopilot twin serve``) in a child process.

The plant runs in its own process so that it steps on its own core, as real equipment
would, while the ingest and the monitor run in the parent. The two speak through a pipe:

- child -> parent: ``("ready", endpoint)`` once listening, ``("progress", steps, t_h)``
  every 0.25 s, ``("done", served)`` when every unit reached harvest or ``until_h``
  (``served``: samples served per (unit, tag), from the server's history), or
  ``("error", text)``;
- parent -> child: ``"go"`` to start the clock, ``"stop"`` to stop stepping and, once done,
  to close the server and exit.

The child ignores Ctrl-C (the parent decides when the plant stops) and exits by itself if
the parent goes away (the pipe closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["PlantConfig", "PlantProcess", "plant_main"]

_POLL_S = 0.05
_PROGRESS_S = 0.25


@dataclass(frozen=True)
class PlantConfig:
    """What the plant serves: units, their seeds and faults, how fast, where, how long.

    ``faults`` maps a unit to the faults injected into it (parsed faults or
    ``"NAME@DAY[:MAG]"`` texts); ``until_h`` stops the clock at that culture time (the
    recipe's harvest stops it anyway).
    """

    units: int = 3
    seed: int = 7
    speed: float = 8000.0
    host: str = "127.0.0.1"
    port: int = 4840
    faults: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    until_h: float = float("inf")


class PlantProcess:
    """The parent's handle on the plant process: start, go, read its news, stop."""

    def __init__(self, config: PlantConfig) -> None:
        self.config = config
        self.endpoint: str | None = None
        self.steps = 0
        self.t_h = 0.0
        self.served: dict[tuple[str, str], int] | None = None
        self.error: str | None = None
        ctx = mp.get_context("spawn")  # a clean interpreter: no inherited event loop or threads
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=plant_main, args=(config, child), daemon=True)

    def start(self) -> None:
        """Start the child process (it imports, builds the address space and listens)."""
        self._proc.start()

    @property
    def done(self) -> bool:
        """True once the plant stopped stepping (and said what it served)."""
        return self.served is not None

    async def ready(self, timeout_s: float = 60.0) -> str:
        """Wait until the server listens; return its endpoint.

        Raises
        ------
        RuntimeError
            If the plant failed to start (the message says why) or did not in time.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.endpoint is None:
            self.poll()
            if self.error is not None:
                raise RuntimeError(f"the plant could not start: {self.error}")
            if not self._proc.is_alive() and not self._conn.poll():
                raise RuntimeError(f"the plant process exited ({self._proc.exitcode})")
            if loop.time() > deadline:
                raise RuntimeError(f"the plant did not start within {timeout_s:g} s")
            await asyncio.sleep(_POLL_S)
        return self.endpoint

    def go(self) -> None:
        """Start the plant's clock."""
        self._send("go")

    def poll(self) -> None:
        """Read the plant's news (progress, done, errors) without waiting."""
        with contextlib.suppress(EOFError, OSError):
            while self._conn.poll():
                msg = self._conn.recv()
                if msg[0] == "ready":
                    self.endpoint = msg[1]
                elif msg[0] == "progress":
                    self.steps, self.t_h = msg[1], msg[2]
                elif msg[0] == "done":
                    self.served = msg[1]
                elif msg[0] == "error":
                    self.error = msg[1]

    def stop_clock(self) -> None:
        """Stop the plant's clock (it keeps serving what it served until :meth:`stop`)."""
        self._send("stop")

    async def stop(self, timeout_s: float = 30.0) -> dict[tuple[str, str], int] | None:
        """Stop the clock, wait for what was served, close the server; return ``served``."""
        self.poll()
        if self.served is None:
            self.stop_clock()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while self.served is None and self._proc.is_alive() and loop.time() < deadline:
                await asyncio.sleep(_POLL_S)
                self.poll()
        self._send("stop")  # closes the server
        await asyncio.to_thread(self._proc.join, 10.0)
        if self._proc.is_alive():
            self._proc.terminate()
        return self.served

    def _send(self, msg: str) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send(msg)


def plant_main(config: PlantConfig, conn: Connection) -> None:
    """The child process: serve the twin line until told to stop or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    try:
        asyncio.run(_serve(config, conn))
    except Exception as err:  # the parent shows it: nothing else can
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        conn.close()


async def _serve(config: PlantConfig, conn: Connection) -> None:
    from biopilot.line.server import LineServer
    from biopilot.line.twin_server import TwinLine
    from biopilot.twin import Bioreactor

    server = LineServer(host=config.host, port=config.port)
    line = TwinLine(server, config.units, seed=config.seed, speed=config.speed)
    for i, (name, unit) in enumerate(line.units.items()):
        faults = tuple(config.faults.get(name, ()))
        if faults:  # TwinLine injects one fault list in every unit: this unit gets its own
            unit.twin = Bioreactor(seed=config.seed + i, unit=name, faults=faults)
    await server.start()
    conn.send(("ready", server.endpoint))
    try:
        if await _wait_for(conn, ("go", "stop")) == "go":
            await _step(line, config.until_h, conn)
        served = {
            (unit, tag): server.history.count(node)
            for unit, nodes in server.nodes.items()
            for tag, node in nodes.pv.items()
        }
        conn.send(("done", served))
        await _wait_for(conn, ("stop",))
    finally:
        await server.stop()


async def _step(line: Any, until_h: float, conn: Connection) -> None:
    """Run the line's clock until harvest, ``until_h`` or a ``stop`` from the parent."""
    stop = asyncio.Event()
    run = asyncio.create_task(line.run(stop=stop))
    loop = asyncio.get_running_loop()
    told = loop.time()
    while not run.done():
        t_h = min(u.twin.t_h for u in line.units.values())
        if t_h >= until_h - 1e-9 or _received(conn, "stop"):
            stop.set()
        if loop.time() - told >= _PROGRESS_S:
            conn.send(("progress", line.steps, t_h))
            told = loop.time()
        await asyncio.sleep(_POLL_S / 5)
    run.result()
    conn.send(("progress", line.steps, min(u.twin.t_h for u in line.units.values())))


async def _wait_for(conn: Connection, wanted: tuple[str, ...]) -> str:
    """Wait for one of ``wanted`` from the parent; ``"stop"`` if the parent is gone."""
    while True:
        try:
            while conn.poll():
                msg = conn.recv()
                if msg in wanted:
                    return str(msg)
        except (EOFError, OSError):
            return "stop"
        await asyncio.sleep(_POLL_S)


def _received(conn: Connection, wanted: str) -> bool:
    try:
        while conn.poll():
            if conn.recv() == wanted:
                return True
    except (EOFError, OSError):
        return True
    return False
