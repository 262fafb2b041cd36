"""Benchmark the OPC UA line: throughput at 10 units x 500 tags, and no sample lost.

(1) Throughput. A synthetic server *process* (this file with ``--serve``) holds 10 units x
500 AnalogItem tags and publishes all 5,000 once a wall second (source time = wall time;
each unit at its own phase in the second, as PLCs sample independently) for a bounded
time. In this process, one after the other on the same server, for WINDOW_S each (after a
warm-up): (a) a bare asyncua subscription (asyncua's handler API, every change queued);
(b) a bare asyncua Read of the 5,000 nodes once a second; (c) biopilot's LineClient handing
samples to a callback; (d) LineClient -> alarm engine (``biopilot.monitor.alarms``, a limit
and a sanity rule on every tag) -> historian (SQLite file). Latency = when the sample was
handled (callback, alarm evaluated, transaction committed) minus its OPC UA ServerTimestamp
(one machine, one clock). CPU = this process's CPU seconds per 1,000 samples; the server's
load is the same in every phase. Overhead = (c) or (d) against (a).

(2) No sample lost. Two stepping twins (speed 3600: a simulated hour per second) serve an
accelerated batch in this process; a LineClient goes through a cuttable loopback relay into
a historian; 20 disruptions at random (seeded) -- server restarts and network cuts, down
0.2-1.5 s each -- then the stored samples are compared with the served history, sample by
sample (time, value, quality) and spectrum by spectrum. All on 127.0.0.1; every loop is
bounded and stops by itself.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from _util import print_table
from biopilot.line import Backoff, LineClient, LineServer, NetworkRelay, TagMap, TagSpec
from biopilot.line.server import free_port
from biopilot.line.twin_server import TwinLine, twin_tagmap
from biopilot.store import Historian
from biopilot.store.line_ingest import HistorianSink, TagInfo

N_UNITS, N_TAGS = 10, 500
WINDOW_S, WARMUP_S = 20.0, 4.0
N_DISRUPTIONS = 20
if os.environ.get("BENCH_LINE_QUICK"):  # a small dry run of the same code
    N_UNITS, N_TAGS, WINDOW_S, N_DISRUPTIONS = 2, 50, 5.0, 4


def main() -> None:
    """Run both parts and print their tables."""
    if "--serve" in sys.argv:
        asyncio.run(_serve_synthetic(int(sys.argv[2]), float(sys.argv[3])))
        return
    print(f"## Throughput: {N_UNITS} units x {N_TAGS} tags at 1 Hz, {WINDOW_S:.0f} s windows")
    print_table(throughput())
    print(f"\n## No sample lost: {N_DISRUPTIONS} restarts and cuts during an accelerated batch")
    print_table(no_sample_lost())


# -- (1) throughput ----------------------------------------------------------------------


def throughput() -> list[dict[str, Any]]:
    """Run the synthetic server process and the four client phases against it."""
    port = free_port()
    budget = 4 * (WINDOW_S + WARMUP_S + 25.0) + 120.0
    cmd = [sys.executable, __file__, "--serve", str(port), str(budget)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _Window.server_pid = proc.pid
    try:
        _wait_listening(port, proc, timeout_s=180.0)
        url = f"opc.tcp://127.0.0.1:{port}"
        tagmap = _synthetic_tagmap()
        rows = [
            asyncio.run(_bare_subscription(url, tagmap)),
            asyncio.run(_bare_read(url, tagmap)),
            asyncio.run(_ours(url, tagmap, store=False)),
            asyncio.run(_ours(url, tagmap, store=True)),
        ]
    finally:
        proc.terminate()
        proc.wait(30)
    base = rows[0]["cpu_ms_per_1k"]
    for r in rows:
        r["cpu_vs_bare_sub"] = f"{100.0 * (r['cpu_ms_per_1k'] / base - 1.0):+.0f} %"
    return rows


async def _serve_synthetic(port: int, duration_s: float) -> None:
    server = LineServer(port=port, history_depth=600)
    specs = [TagSpec(f"t{k:03d}", "-", 0.0, 100.0) for k in range(N_TAGS)]
    for u in range(N_UNITS):
        server.add_unit(f"U{u + 1:02d}", specs)
    await server.start()
    rng = np.random.default_rng(0)
    phase = rng.uniform(0, 2 * np.pi, (N_UNITS, N_TAGS))
    t0 = time.time()
    tick = 0
    while time.time() - t0 < duration_s:
        tick += 1
        values = 50.0 + 10.0 * np.sin(phase + 0.1 * tick) + rng.normal(0, 0.5, phase.shape)
        for u in range(N_UNITS):  # units sample at their own phase within the second
            await asyncio.sleep(max(0.0, t0 + tick + u / N_UNITS - time.time()))
            row = values[u]
            now = datetime.now(UTC)
            await server.publish(
                f"U{u + 1:02d}", {s.tag: float(row[k]) for k, s in enumerate(specs)}, now
            )
    await server.stop()


def _synthetic_tagmap() -> TagMap:
    tags = [
        {
            "unit": f"U{u + 1:02d}",
            "tag": f"t{k:03d}",
            "node": f"ns=2;s=Site/Area/U{u + 1:02d}/t{k:03d}/PV",
        }
        for u in range(N_UNITS)
        for k in range(N_TAGS)
    ]
    return TagMap.model_validate({"tags": tags})


class _Window:
    """Latencies and CPU of the samples whose server time falls in the measured window."""

    server_pid = 0  # the synthetic server process, whose CPU time is read from /proc

    def __init__(self) -> None:
        self.start = time.time() + WARMUP_S
        self.end = self.start + WINDOW_S
        self.lat: dict[str, list[float]] = {}
        self.cpu0 = self.cpu1 = self.srv0 = self.srv1 = 0.0

    def add(self, what: str, server_s: float, now: float) -> None:
        if self.start <= server_s < self.end:
            self.lat.setdefault(what, []).append(now - server_s)

    async def run(self) -> None:
        await asyncio.sleep(max(0.0, self.start - time.time()))
        self.cpu0, self.srv0 = time.process_time(), _proc_cpu_s(self.server_pid)
        await asyncio.sleep(max(0.0, self.end - time.time()))
        self.cpu1, self.srv1 = time.process_time(), _proc_cpu_s(self.server_pid)
        await asyncio.sleep(1.5)  # let the window's last samples arrive

    def row(self, name: str, key: str) -> dict[str, Any]:
        lat = self.lat.get(key, [])
        n = len(lat)
        return {
            "client": name,
            "samples": n,
            "expected": int(N_UNITS * N_TAGS * WINDOW_S),
            "per_s": round(n / WINDOW_S),
            "p50_ms": _ms(lat, 50),
            "p99_ms": _ms(lat, 99),
            "cpu_ms_per_1k": round(1e6 * (self.cpu1 - self.cpu0) / max(n, 1), 1),
            "server_cpu_pct": round(100.0 * (self.srv1 - self.srv0) / WINDOW_S),
            "p99_stored_ms": _ms(self.lat.get("stored", []), 99),
        }


async def _bare_subscription(url: str, tagmap: TagMap) -> dict[str, Any]:
    from asyncua import Client

    w = _Window()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            stamp = data.monitored_item.Value.ServerTimestamp
            if stamp is not None:  # None: a variable not written yet
                w.add("cb", stamp.timestamp(), time.time())

    async with Client(url, timeout=30, watchdog_intervall=5.0) as client:
        sub = await client.create_subscription(100, Handler())
        nodes = [client.get_node(t.node) for t in tagmap.tags]
        await sub.subscribe_data_change(nodes, queuesize=100)
        await w.run()
    return w.row("bare asyncua subscription -> handler", "cb")


async def _bare_read(url: str, tagmap: TagMap) -> dict[str, Any]:
    from asyncua import Client, ua

    w = _Window()
    async with Client(url, timeout=30, watchdog_intervall=5.0) as client:
        ids = [ua.NodeId.from_string(t.node) for t in tagmap.tags]
        task = asyncio.create_task(w.run())
        while not task.done():
            t_read = time.time()
            dvs = await client.uaclient.read_attributes(ids, ua.AttributeIds.Value)
            now = time.time()
            for dv in dvs:
                if dv.ServerTimestamp is not None:
                    w.add("read", dv.ServerTimestamp.timestamp(), now)
            await asyncio.sleep(max(0.0, t_read + 1.0 - time.time()))
    return w.row("bare asyncua Read of all nodes, 1 Hz", "read")


async def _ours(url: str, tagmap: TagMap, *, store: bool) -> dict[str, Any]:
    w = _Window()
    engines: dict[str, Any] = {}
    hist_sink = None
    tmp = tempfile.TemporaryDirectory()
    if store:
        from biopilot.monitor.alarms import AlarmEngine, LimitRule, SanityRule

        rules = [LimitRule(tag=f"t{k:03d}", lo=20.0, hi=80.0) for k in range(N_TAGS)]
        rules += [
            SanityRule(tag=f"t{k:03d}", low=0.0, high=100.0, spike=30.0) for k in range(N_TAGS)
        ]
        engines = {u: AlarmEngine(rules) for u in tagmap.units}
        infos = [TagInfo(t.unit, t.tag, t.units) for t in tagmap.tags]
        hist_sink = HistorianSink(
            Historian(Path(tmp.name) / "bench.db"),
            "Site",
            "Area",
            infos,
            batch_code="BENCH",
            on_written=lambda batch: _stored(w, batch),
        )

    async def sink(batch: list[Any]) -> None:
        now = time.time()
        for s in batch:
            w.add("cb", s.server_time.timestamp(), now)
        if hist_sink is None:
            return
        for s in batch:
            engines[s.unit].update(s.tag, s.time_utc, s.value, s.quality)
        now = time.time()
        for s in batch:
            w.add("alarm", s.server_time.timestamp(), now)
        await hist_sink(batch)  # queued; the sink's writer commits in the background

    client = LineClient(url, tagmap, sink, timeout_s=30.0)
    stop = asyncio.Event()
    run = asyncio.create_task(client.run(stop))
    await asyncio.wait_for(client.connected.wait(), 120)
    await w.run()
    stop.set()
    await run
    if hist_sink is not None:
        await hist_sink.flush()
    tmp.cleanup()
    if not store:
        return w.row("LineClient -> callback", "cb")
    row = w.row("LineClient -> alarms -> historian", "alarm")
    row["client"] += " (latency: to alarm)"
    return row


def _stored(w: _Window, batch: Any) -> None:
    now = time.time()
    for s in batch:
        w.add("stored", s.server_time.timestamp(), now)


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    return round(1e3 * float(np.percentile(values, q)), 1)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.2)):
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("synthetic server did not start listening")


# -- (2) no sample lost ------------------------------------------------------------------


def no_sample_lost(seed: int = 11) -> list[dict[str, Any]]:
    """20 random restarts/cuts during an accelerated batch; compare stored with served."""
    return [asyncio.run(_disrupted_batch(seed))]


async def _disrupted_batch(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    server = LineServer(port=0)
    line = TwinLine(server, 2, seed=seed, speed=3600.0)
    tagmap = twin_tagmap(2)
    tmp = tempfile.TemporaryDirectory()
    infos = [TagInfo(t.unit, t.tag, t.units, t.kind == "spectrum") for t in tagmap.tags]
    sink = HistorianSink(
        Historian(Path(tmp.name) / "nsl.db"), "Site", "Area", infos, batch_code="NSL"
    )
    await server.start()
    relay = NetworkRelay("127.0.0.1", server.port)
    await relay.start()
    client = LineClient(
        relay.url, tagmap, sink, backfill_all=True, watchdog_s=0.3, backoff=Backoff(0.1, 2.0, 1.0)
    )
    sink.axes = client.axes
    stop_twin, stop_client = asyncio.Event(), asyncio.Event()
    twin = asyncio.create_task(line.run(stop=stop_twin))
    run = asyncio.create_task(client.run(stop_client))
    await asyncio.wait_for(client.connected.wait(), 60)
    kinds = []
    for _ in range(N_DISRUPTIONS):
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        down = rng.uniform(0.2, 1.5)
        if rng.random() < 0.5:
            kinds.append("restart")
            await server.stop()
            await asyncio.sleep(down)
            await server.start()
        else:
            kinds.append("cut")
            relay.cut(down=True)
            await asyncio.sleep(down)
            relay.down = False
    await asyncio.sleep(2.0)
    stop_twin.set()
    await twin
    served_n = sum(server.history.count(n) for u in server.nodes.values() for n in u.pv.values())
    for _ in range(1200):  # up to 60 s for the last backfill to land
        if sink.stats.samples + sink.stats.spectra >= served_n:
            break
        await asyncio.sleep(0.05)
    stop_client.set()
    await run
    await sink.flush()
    missing, extra, stored_n = _compare(server, sink)
    await relay.stop()
    await server.stop()
    tmp.cleanup()
    return {
        "disruptions": f"{kinds.count('restart')} restarts + {kinds.count('cut')} cuts",
        "simulated_h": round(line.steps / 60.0, 1),
        "served": served_n,
        "stored": stored_n,
        "missing": missing,
        "extra_or_changed": extra,
        "backfilled": client.stats.backfilled,
        "duplicates_skipped": client.stats.duplicates + sink.stats.skipped,
        "sessions": client.stats.sessions,
        "stored == served": missing == 0 and extra == 0 and stored_n == served_n,
    }


def _compare(server: LineServer, sink: HistorianSink) -> tuple[int, int, int]:
    """Count served samples not stored as served, and stored ones never served."""
    missing = extra = stored_n = 0
    for unit, nodes in server.nodes.items():
        batch_id = sink.batch_ids[unit]
        df = sink.historian.read_samples(batch_id)
        spectra_t, _, spectra = sink.historian.read_spectra(batch_id)
        stored_n += len(df) + len(spectra_t)
        for tag, node in nodes.pv.items():
            served = server.history.items(node)
            if tag == "raman":
                got = {t.to_pydatetime(): spectra[i] for i, t in enumerate(spectra_t)}
                same = [np.array_equal(got.get(w), np.asarray(v, np.float32)) for w, v, _ in served]
            else:
                part = df[df["tag"] == tag]
                got = {
                    t.to_pydatetime(): (v, q)
                    for t, v, q in zip(
                        part["time_utc"], part["value"], part["quality"], strict=True
                    )
                }
                same = [_same(got.get(w), v, c) for w, v, c in served]
            missing += same.count(False)
            extra += max(0, len(got) - len(served))
    return missing, extra, stored_n


def _same(stored: tuple[float, str] | None, value: float, code: int) -> bool:
    if stored is None:
        return False
    v, q = stored
    if code != 0 or not math.isfinite(value):
        return q == "bad" and math.isnan(v)
    return q == "good" and v == value


if __name__ == "__main__":
    main()
