"""The line client into the historian: every sample once, quality kept, gaps backfilled."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from asyncua import ua

from biopilot.line import Backoff, LineClient, UnknownNodeError
from biopilot.line.netcut import NetworkRelay
from biopilot.line.tagmap import TagMap
from biopilot.line.twin_server import twin_tagmap
from biopilot.store import Historian
from biopilot.store.line_ingest import HistorianSink, TagInfo

FAST = Backoff(initial_s=0.05, factor=2.0, max_s=0.4)


def _sink(tmp_path, tagmap: TagMap, code: str) -> HistorianSink:
    infos = [TagInfo(t.unit, t.tag, t.units, t.kind == "spectrum") for t in tagmap.tags]
    return HistorianSink(
        Historian(tmp_path / "line.db"), tagmap.site, tagmap.area, infos, batch_code=code
    )


def _client(url: str, tagmap: TagMap, sink: HistorianSink, **kw) -> LineClient:
    client = LineClient(url, tagmap, sink, backoff=FAST, watchdog_s=0.2, timeout_s=2.0, **kw)
    sink.axes = client.axes
    return client


async def _until(cond, timeout: float = 20.0) -> None:
    """Wait (bounded) until ``cond()`` is true; fail the test if it never is."""
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _served(server, unit: str, tag: str) -> list[tuple[datetime, float | None]]:
    out = []
    for when, value, code in server.history.items(server.nodes[unit].pv[tag]):
        good = code == 0 and value is not None and math.isfinite(value)
        out.append((when, value if good else None))
    return out


def _stored(sink: HistorianSink, unit: str, tag: str) -> list[tuple[datetime, float | None]]:
    df = sink.historian.read_tag(sink.batch_ids[unit], tag)
    return [
        (t.to_pydatetime(), None if q == "bad" else v)
        for t, v, q in zip(df.index, df["value"], df["quality"], strict=True)
    ]


def test_subscription_writes_every_sample_with_its_quality(aloop, twin_server, tmp_path):
    server, _ = twin_server
    tagmap = TagMap.model_validate(
        {
            "tags": [
                {"unit": "QA-01", "tag": "x", "node": "ns=2;s=Site/Area/QA-01/x/PV"},
                {
                    "unit": "QA-01",
                    "tag": "spec",
                    "kind": "spectrum",
                    "node": "ns=2;s=Site/Area/QA-01/spec/PV",
                    "axis_node": "ns=2;s=Site/Area/QA-01/spec/wavenumbers_cm1",
                },
            ]
        }
    )
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    at = [t0 + timedelta(minutes=k) for k in range(6)]
    sink = _sink(tmp_path, tagmap, "QA")

    async def scenario():
        pub = server.publish
        await pub("QA-01", {"x": 1.0, "spec": np.arange(5.0)}, at[0])  # before: backfilled
        await pub("QA-01", {"x": 5.0}, at[1], {"x": ua.StatusCodes.BadSensorFailure})
        client = _client(server.endpoint, tagmap, sink, backfill_all=True)
        stop = asyncio.Event()
        run = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 20)
        await pub("QA-01", {"x": 2.0}, at[2], {"x": ua.StatusCodes.UncertainLastUsableValue})
        await pub("QA-01", {"x": math.nan}, at[3], {"x": ua.StatusCodes.Good})
        good = {"x": ua.StatusCodes.Good}  # a server that calls inf good: bad all the same
        await pub("QA-01", {"x": math.inf, "spec": np.arange(3.0)}, at[4], good)
        await pub("QA-01", {"x": 3.0, "spec": np.arange(5.0) + 1}, at[5])
        await _until(lambda: sink.stats.samples + sink.stats.spectra >= 9)
        stop.set()
        await run
        return client

    client = aloop.run(scenario())
    df = sink.historian.read_samples(sink.batch_ids["QA-01"])
    x = df[df["tag"] == "x"].reset_index(drop=True)
    assert list(x["quality"]) == ["good", "bad", "uncertain", "bad", "bad", "good"]
    assert x["value"].iloc[0] == 1.0 and x["value"].iloc[2] == 2.0 and x["value"].iloc[5] == 3.0
    assert x["value"].iloc[[1, 3, 4]].isna().all()  # bad is NULL, never a number
    assert "BadSensorFailure" in x["reason"].iloc[1]
    assert "Uncertain" in x["reason"].iloc[2]
    assert "non-finite value (nan)" in x["reason"].iloc[3]
    assert "non-finite value (inf)" in x["reason"].iloc[4]
    bad_spec = df[df["tag"] == "spec"]
    assert list(bad_spec["quality"]) == ["bad"] and "axis has 5" in bad_spec["reason"].iloc[0]
    _times, axis, spectra = sink.historian.read_spectra(sink.batch_ids["QA-01"])
    assert list(axis) == [400.0, 500.0, 600.0, 700.0, 800.0]
    assert spectra.shape == (2, 5) and spectra[1, 0] == 1.0
    assert client.stats.backfilled >= 3 and client.stats.live >= 4


def test_a_variable_not_read_yet_is_no_sample(aloop, twin_server, tmp_path):
    server, _ = twin_server
    node = "ns=2;s=Site/Area/QA-01/y/PV"
    tagmap = TagMap.model_validate({"tags": [{"unit": "QA-01", "tag": "y", "node": node}]})
    sink = _sink(tmp_path, tagmap, "WAIT")
    old = datetime(2026, 2, 1, tzinfo=UTC)  # simulated time, long before the wall clock

    async def scenario():
        client = _client(server.endpoint, tagmap, sink, backfill_all=True)
        stop = asyncio.Event()
        run = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 20)
        await asyncio.sleep(0.3)  # the placeholder value has been notified by now
        await server.publish("QA-01", {"y": 4.2}, old)
        await _until(lambda: sink.stats.samples >= 1)
        stop.set()
        await run

    aloop.run(scenario())
    stored = _stored(sink, "QA-01", "y")
    assert stored == [(old, 4.2)]


def test_setpoint_written_back_through_the_client(aloop, twin_server, tmp_path):
    server, line = twin_server
    sp = {"unit": "BR-02", "tag": "feed_sp", "node": "ns=2;s=Site/Area/BR-02/feed/SP"}
    ph = {"unit": "BR-02", "tag": "ph", "node": "ns=2;s=Site/Area/BR-02/ph/PV"}
    tagmap = TagMap.model_validate({"tags": [ph, sp]})
    sink = _sink(tmp_path, tagmap, "WB")

    async def scenario():
        client = _client(server.endpoint, tagmap, sink)
        with pytest.raises(ConnectionError):
            await client.write("BR-02", "feed_sp", 1.0)
        stop = asyncio.Event()
        run = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 20)
        written_at = line.units["BR-02"].twin.time_utc.to_pydatetime()
        await client.write("BR-02", "feed_sp", 0.75)
        with pytest.raises(KeyError):
            await client.write("BR-02", "nope", 1.0)
        feed = server.setpoint("BR-02", "feed")
        await _until(lambda: sink.last_times().get(("BR-02", "feed_sp")) == written_at)
        await client.write("BR-02", "feed_sp", math.nan)  # back to the recipe
        stop.set()
        await run
        return feed, written_at

    feed, written_at = aloop.run(scenario())
    assert feed == 0.75 and server.setpoint("BR-02", "feed") is None
    # The write is recorded on the plant's (simulated) clock, not the wall clock.
    assert (written_at, 0.75) in _stored(sink, "BR-02", "feed_sp")


def test_a_failing_sink_stops_the_client_with_its_error(aloop, twin_server):
    server, _ = twin_server
    tagmap = TagMap.model_validate(
        {"tags": [{"unit": "BR-01", "tag": "ph", "node": "ns=2;s=Site/Area/BR-01/ph/PV"}]}
    )

    async def sink(batch):
        raise OSError("disk full")

    client = LineClient(server.endpoint, tagmap, sink, backfill_all=True, backoff=FAST)
    with pytest.raises(OSError, match="disk full"):
        aloop.run(client.run())


def test_unknown_node_is_a_clear_error_naming_it(aloop, twin_server):
    server, _ = twin_server
    tagmap = TagMap.model_validate(
        {
            "tags": [
                {"unit": "BR-01", "tag": "ph", "node": "ns=2;s=Site/Area/BR-01/ph/PV"},
                {"unit": "BR-01", "tag": "nope", "node": "ns=2;s=Site/Area/BR-01/nope/PV"},
                {"unit": "BR-01", "tag": "lost", "browse_path": ["0:Objects", "2:Nowhere"]},
            ]
        }
    )

    async def sink(batch):
        return None

    client = LineClient(server.endpoint, tagmap, sink, backoff=FAST)
    with pytest.raises(UnknownNodeError) as err:
        aloop.run(client.run())
    assert "BR-01/nope -> ns=2;s=Site/Area/BR-01/nope/PV" in str(err.value)
    assert "BR-01/lost -> 0:Objects/2:Nowhere" in str(err.value)
    assert "BR-01/ph" not in str(err.value)


def test_restart_and_network_cut_are_backfilled_stored_equals_served(aloop, twin_server, tmp_path):
    server, line = twin_server
    full = twin_tagmap(2)
    tagmap = TagMap(tags=[t for t in full.tags if t.unit == "BR-01"])
    relay = NetworkRelay("127.0.0.1", server.port)
    sink = _sink(tmp_path, tagmap, "RB")

    async def scenario():
        await relay.start()
        client = _client(relay.url, tagmap, sink, backfill_all=True)
        stop = asyncio.Event()
        run = asyncio.create_task(client.run(stop))
        await asyncio.wait_for(client.connected.wait(), 20)
        await line.advance(20)
        relay.cut(down=True)  # network cut: nothing gets through for a while
        await line.advance(45)
        relay.down = False
        await _until(lambda: client.stats.sessions == 2 and client.connected.is_set())
        await line.advance(15)
        await server.stop()  # server restart; the plant goes on meanwhile
        await line.advance(40)
        await server.start()
        await _until(lambda: client.stats.sessions == 3 and client.connected.is_set())
        await line.advance(10)
        n_served = sum(server.history.count(n) for n in server.nodes["BR-01"].pv.values())
        await _until(lambda: sink.stats.samples + sink.stats.spectra == n_served)
        stop.set()
        await run
        await relay.stop()
        return client

    client = aloop.run(scenario(), timeout=90)
    for tag in ("ph", "do_pct", "temperature_c", "our_mmol_per_l_h", "volume_l"):
        assert _stored(sink, "BR-01", tag) == _served(server, "BR-01", tag)
    times, _, spectra = sink.historian.read_spectra(sink.batch_ids["BR-01"])
    served = server.history.items(server.nodes["BR-01"].pv["raman"])
    assert [t.to_pydatetime() for t in times] == [w for w, _, _ in served]
    assert np.array_equal(spectra[-1], np.asarray(served[-1][1], np.float32))
    assert client.stats.connection_losses >= 2 and client.stats.backfilled > 0

    # A new ingest on the same store resumes after what is stored: nothing twice.
    resumed = _sink(tmp_path, tagmap, "RB")
    assert resumed.last_times()["BR-01", "ph"] == _served(server, "BR-01", "ph")[-1][0]

    async def again():
        await line.advance(5)
        c2 = _client(server.endpoint, tagmap, resumed, since=resumed.last_times())
        stop = asyncio.Event()
        run = asyncio.create_task(c2.run(stop))
        await asyncio.wait_for(c2.connected.wait(), 20)
        await _until(lambda: resumed.stats.samples >= 5 * 9)
        stop.set()
        await run

    aloop.run(again())
    assert _stored(resumed, "BR-01", "ph") == _served(server, "BR-01", "ph")
