"""The twin as an OPC UA server: ISA-88 address space, units, history, setpoints."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime

from asyncua import Client, ua

from biopilot.line.opcua_io import browse_variables

PH = "ns=2;s=Site/Area/BR-01/ph/PV"
DOSES = ("bolus", "glucose_bolus")


def test_address_space_follows_isa88_with_units_and_ranges(aloop, twin_server):
    server, _ = twin_server
    rows = aloop.run(browse_variables(server.endpoint))
    by_path = {r["path"]: r for r in rows}
    ph = by_path["0:Objects/2:Site/2:Area/2:BR-01/2:ph/2:PV"]
    assert ph["node"] == PH and ph["units"] == "pH" and ph["kind"] == "scalar"
    assert by_path["0:Objects/2:Site/2:Area/2:BR-02/2:raman/2:PV"]["kind"] == "array"
    assert by_path["0:Objects/2:Site/2:Area/2:BR-01/2:temperature_c/2:SP"]["units"] == "degC"
    assert by_path["0:Objects/2:Site/2:Area/2:QA-01/2:x/2:PV"]["units"] == "-"


def test_pv_read_carries_simulated_time_units_and_range(aloop, twin_server):
    server, line = twin_server

    async def read():
        async with Client(server.endpoint) as c:
            pv = c.get_node(PH)
            dv = await pv.read_data_value()
            eu = await c.get_node(PH + "/EngineeringUnits").read_value()
            rng = await c.get_node(PH + "/EURange").read_value()
            hist = await pv.read_raw_history()
            return dv, eu, rng, hist

    dv, eu, rng, hist = aloop.run(read())
    assert 6.5 < dv.Value.Value < 7.5 and dv.StatusCode.is_good()
    twin_now = line.units["BR-01"].twin.time_utc.to_pydatetime()
    assert dv.SourceTimestamp == twin_now  # simulated time, not the wall clock
    assert dv.SourceTimestamp < datetime.now(UTC).replace(year=2026, month=2, day=1)
    assert eu.DisplayName.Text == "pH" and (rng.Low, rng.High) == (6.0, 8.0)
    assert len(hist) == line.steps  # one per simulated minute since the start
    assert hist[-1].SourceTimestamp == twin_now


def test_written_temperature_setpoint_drives_the_twin(aloop, twin_server):
    server, line = twin_server
    sp = "ns=2;s=Site/Area/BR-02/temperature_c/SP"

    async def write_and_step():
        async with Client(server.endpoint) as c:
            await c.get_node(sp).write_value(ua.Variant(31.0, ua.VariantType.Double))
            assert await c.get_node(sp).read_value() == 31.0
        await line.advance(240)  # four simulated hours
        async with Client(server.endpoint) as c:
            t2 = await c.get_node("ns=2;s=Site/Area/BR-02/temperature_c/PV").read_value()
            t1 = await c.get_node("ns=2;s=Site/Area/BR-01/temperature_c/PV").read_value()
            await c.get_node(sp).write_value(ua.Variant(math.nan, ua.VariantType.Double))
        return t1, t2

    t1, t2 = aloop.run(write_and_step())
    assert abs(t2 - 31.0) < 0.5  # BR-02 follows the written setpoint
    assert abs(t1 - 36.5) < 0.5  # BR-01 still follows its recipe
    assert server.setpoint("BR-02", "temperature_c") is None  # NaN hands back to the recipe


def test_raman_spectrum_every_15_simulated_minutes(aloop, twin_server):
    server, line = twin_server
    node = server.nodes["BR-01"].pv["raman"]
    items = server.history.items(node)
    assert len(items) == line.steps // 15
    gaps = {(b[0] - a[0]).total_seconds() for a, b in itertools.pairwise(items)}
    assert gaps == {900.0}
    assert len(items[-1][1]) == len(line.raman.wavenumbers_cm1)


def test_dose_commands_are_delivered_once_then_reset(aloop, twin_server):
    server, line = twin_server
    twin = line.units["BR-02"].twin
    base = "ns=2;s=Site/Area/BR-02/"

    async def dose():
        before = twin.state.copy()
        async with Client(server.endpoint) as c:
            await c.get_node(base + "glucose_bolus/SP").write_value(
                ua.Variant(4.0, ua.VariantType.Double)
            )
            await c.get_node(base + "bolus/SP").write_value(ua.Variant(10.0, ua.VariantType.Double))
        await line.advance(2)
        async with Client(server.endpoint) as c:
            left = [await c.get_node(f"{base}{t}/SP").read_value() for t in DOSES]
        return before, twin.state.copy(), left

    before, after, left = aloop.run(dose())
    assert after[7] - before[7] > 13.9  # 10 L of feed + 4 L of glucose stock (+ base, evaporation)
    g_added = (after[2] * after[7] - before[2] * before[7]) / 4.0
    assert g_added > 300.0  # most of the 400 g/L stock's glucose is in (a little consumed)
    assert left == [0.0, 0.0]  # delivered once: the commands are reset
