"""Fixtures of the line tests: a background event loop and a real OPC UA twin server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import numpy as np
import pytest

from biopilot.line.address_space import TagSpec
from biopilot.line.server import LineServer
from biopilot.line.twin_server import TwinLine

T = TypeVar("T")

#: The QA unit: tags whose values and statuses the tests publish by hand.
QA_SPECS = (
    TagSpec("x", "-", 0.0, 10.0),
    TagSpec("y", "-", 0.0, 10.0),
    TagSpec("spec", "counts", 0.0, 1e6, array=True),
)
QA_AXIS = np.array([400.0, 500.0, 600.0, 700.0, 800.0])


class LoopThread:
    """An asyncio loop running in a thread; sync tests run coroutines on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="session")
def aloop() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


@pytest.fixture(scope="session")
def twin_server(aloop: LoopThread) -> Iterator[tuple[LineServer, TwinLine]]:
    """Two stepping twins (BR-01, BR-02) and a QA unit on 127.0.0.1, an ephemeral port."""
    server = LineServer(port=0)
    line = TwinLine(server, 2, seed=7, speed=3600.0)
    server.add_unit("QA-01", QA_SPECS, axis_cm1=QA_AXIS)

    async def start() -> None:
        await server.start()
        await line.advance(30)

    aloop.run(start())
    yield server, line
    aloop.run(server.stop())
