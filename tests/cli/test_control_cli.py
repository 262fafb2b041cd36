"""``biopilot control run``: the NMPC on one unit of a line served by another process."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.line.server import free_port
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail
from biopilot.store.records import EventInfo, NewEvent
from biopilot.web.api_control import ACCEPT_KEY

runner = CliRunner()


@contextlib.contextmanager
def served_twin(units: int, speed: float) -> Iterator[str]:
    """A twin line served by ``biopilot twin serve`` in another process; yields its URL."""
    port = free_port()
    serve = [sys.executable, "-m", "biopilot.cli.main", "twin", "serve", "--units", str(units),
             "--speed", str(speed), "--port", str(port)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    plant = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90  # a cold interpreter (fresh venv) imports slowly
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert plant.poll() is None, plant.stderr.read().decode() if plant.stderr else ""
            time.sleep(0.5)
        yield f"opc.tcp://127.0.0.1:{port}"
    finally:
        plant.terminate()
        plant.wait(10)


@contextlib.contextmanager
def _cli_process(args: list[str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """``biopilot ARGS`` in its own process (stderr to ``log``), killed on the way out."""
    cmd = [sys.executable, "-m", "biopilot.cli.main", *args]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_control_run_drives_a_unit_of_a_served_twin(tmp_path: Path) -> None:
    db = tmp_path / "ctrl.db"
    with served_twin(units=2, speed=2000) as url:
        args = ["control", "run", url, "--unit", "BR-02", "--units", "2", "--db", str(db),
                "--hours", "13", "--json"]  # fmt: skip
        res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    rows = out["decisions"]
    assert len(rows) >= 2 and all(r["written"] >= 2 for r in rows)  # temperature and feed
    # A late solve (a loaded machine) falls back to the recipe, still written, reason named.
    assert all(r["plan"] in ("solved", "capped", "re-simulated", "fallback") for r in rows), rows
    assert all(r["error"] for r in rows if r["plan"] == "fallback")
    with Historian(db) as h:
        batches = h.list_batches()
        assert [b.unit for b in batches] == ["BR-02"]  # only the controlled unit is ingested
        assert len(h.read_tag(batches[0].id, "ph")) > 0
        audit = [e for e in AuditTrail(h).entries() if e.action == "setpoint_change"]
        assert len(audit) == len(rows) and audit[0].actor == "system:nmpc"


def _advice(db: Path) -> tuple[EventInfo | None, bool]:
    """The latest stored recommendation (an event, or None), and whether a step wrote setpoints."""
    latest, wrote = None, False
    with Historian(db) as h:
        for b in h.list_batches():
            for e in h.read_events(b.id):
                step = e.payload.get("controller") or {}
                if step.get("setpoints"):  # not a fallback
                    latest = e
                if any(v is not None for v in (step.get("written") or {}).values()):
                    wrote = True
    return latest, wrote


def _accept(db: Path, rec: EventInfo) -> float:
    """Record an operator's acceptance of recommendation ``rec`` (as the cockpit does)."""
    t_h = float(rec.payload["controller"]["t_h"])
    accept = {ACCEPT_KEY: {"t_h": t_h, "user": "operator"}}
    with Historian(db) as h:
        h.write_events(rec.batch_id, rec.unit, [NewEvent(time_utc=rec.time_utc, kind="operation",
                                                         message="accepted", payload=accept)])
    return t_h


def test_control_run_names_bad_input() -> None:
    res = runner.invoke(app, ["control", "run", "http://127.0.0.1:1", "--json"])
    assert res.exit_code != 0 and "opc.tcp://" in res.output
    res = runner.invoke(app, ["control", "run", "opc.tcp://127.0.0.1:1", "--unit", "BR-09"])
    assert res.exit_code != 0 and "BR-09" in res.output and "BR-01" in res.output


def test_advisory_mode_writes_only_what_a_user_accepted(tmp_path: Path) -> None:
    db = tmp_path / "advice.db"
    accepted = None
    with served_twin(units=1, speed=1500) as url:
        args = ["control", "run", url, "--unit", "BR-01", "--units", "1", "--mode", "advisory",
                "--db", str(db), "--hours", "13", "--json"]  # fmt: skip
        # Its own process, as on a site: whatever happens, the test stops it (a thread could
        # outlive the test, retrying a plant already gone, and keep the test run from ending).
        with _cli_process(args, tmp_path / "control.log") as ctl:
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline and ctl.poll() is None:
                time.sleep(0.5)
                if not db.exists():
                    continue
                # The cockpit's part: an operator accepts the pending recommendation. One the
                # controller superseded before it saw the acceptance is not written; then the
                # operator accepts the newer one (the race of a loaded machine, not a fault).
                latest, wrote = _advice(db)
                if wrote:
                    break
                if latest is not None and float(latest.payload["controller"]["t_h"]) != accepted:
                    accepted = _accept(db, latest)
            stdout, _ = ctl.communicate(timeout=200)
    assert ctl.returncode == 0, (tmp_path / "control.log").read_text()[-3000:]
    rows = json.loads(stdout)["decisions"]
    assert accepted is not None and len(rows) >= 3
    written = [r["batch h"] for r in rows if r["written"]]
    # The accepted advice reached the plant; at the next, unaccepted one the unit was handed
    # back to its recipe (NaN written); nothing else was written.
    assert len(written) == 2 and written[0] == accepted and written[1] > accepted
    assert all(r["mode"] == "advisory" for r in rows)
    with Historian(db) as h:
        audit = [e for e in AuditTrail(h).entries() if e.action == "setpoint_change"]
        assert len(audit) == 2 and "accepted by operator" in audit[0].reason
        assert audit[0].new_value["temperature_c"] > 30.0  # what was written, as written
        assert audit[1].new_value == {"temperature_c": None, "feed": None}  # NaN: the recipe
