"""The NMPC closed over real OPC UA: setpoints and doses reach the twin, modes, broken writes."""

from __future__ import annotations

import math

import pytest
from asyncua import Client, ua

from biopilot.control import Controller, ControlLoop, ControlMode, make_problem
from biopilot.line.address_space import node_text
from biopilot.line.server import LineServer
from biopilot.line.twin_server import TwinLine
from biopilot.twin import default_recipe


def test_the_controller_drives_a_twin_unit_over_opc_ua(aloop):
    server = LineServer(port=0)
    line = TwinLine(server, 1, seed=3, speed=3600.0)
    twin = line.units["BR-01"].twin
    recipe = default_recipe()
    controller = Controller(recipe, problem=make_problem(recipe))

    async def write(unit: str, tag: str, value: float) -> None:
        async with Client(server.endpoint) as c:  # a fresh session each time: any client works
            node = c.get_node(node_text(2, "Site", "Area", unit, tag, "SP"))
            await node.write_value(ua.Variant(float(value), ua.VariantType.Double))

    async def broken(unit: str, tag: str, value: float) -> None:
        raise ConnectionError("connection refused")

    # The test plays a perfect estimator: the loop only needs (batch hours, state).
    loop = ControlLoop(controller, "BR-01", write, lambda: (twin.t_h, twin.state.copy()))

    async def scenario():
        await server.start()
        try:
            for _ in range(4):  # the first day: one decision every 6 simulated hours
                step = await loop.tick()
                assert step is not None and step.error is None
                assert await loop.tick() is None  # not yet time for the next one
                held = (server.setpoint("BR-01", "temperature_c"), server.setpoint("BR-01", "feed"))
                await line.advance(360)
                doses = [server.setpoint("BR-01", t) for t in ("bolus", "glucose_bolus")]
                results.append((step, held, doses))
            loop.write = broken
            failed = await loop.tick()
            loop.write = write
            await line.advance(360)
            controller.mode = ControlMode.MANUAL
            manual = await loop.tick()
            released = server.setpoint("BR-01", "temperature_c"), server.setpoint("BR-01", "feed")
            return failed, manual, released
        finally:
            await server.stop()

    results: list = []
    failed, manual, released = aloop.run(scenario(), timeout=180)
    for step, held, doses in results:
        sp = step.decision.setpoints
        assert sp is not None  # the plan, or (a late solve on a loaded machine) the recipe
        assert held == pytest.approx((sp.temperature_c, sp.feed_l_per_h))  # arrived at the plant
        assert all(d in (None, 0.0) for d in doses)  # doses delivered, then reset
        assert step.written["temperature_c"] == sp.temperature_c
    assert 1.0 <= twin.state[2] <= 6.0  # glucose stayed in the band
    assert failed is not None and failed.error is not None and "connection refused" in failed.error
    assert failed.alarm is not None and failed.alarm.code == "MPC_WRITE_FAILED"
    assert manual is not None and manual.decision.inputs is None
    assert manual.written == {
        "temperature_c": pytest.approx(math.nan, nan_ok=True),
        "feed": pytest.approx(math.nan, nan_ok=True),
    }
    assert released == (None, None)  # NaN hands the unit back to its recipe
    assert len(loop.steps) == 6
