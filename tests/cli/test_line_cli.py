"""`biopilot twin serve` and `biopilot line connect`: a real server process, a real client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.line.server import free_port
from biopilot.store import Historian

runner = CliRunner()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`biopilot twin serve` as a process on a free loopback port (stops by itself)."""
    port = free_port()
    cmd = [sys.executable, "-m", "biopilot.cli.main", "twin", "serve", "--units", "1"]
    cmd += ["--speed", "1200", "--port", str(port), "--duration", "60", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    for _ in range(600):  # up to 60 s for the server to listen
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "server died")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"opc.tcp://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_connect_records_the_twin_into_the_historian(served, tmp_path):
    tags = tmp_path / "tags.yaml"
    res = runner.invoke(app, ["twin", "tagmap", "--units", "1", "--out", str(tags)])
    assert res.exit_code == 0, res.output
    db = tmp_path / "line.db"
    args = ["line", "connect", served, "--map", str(tags), "--db", str(db)]
    res = runner.invoke(app, [*args, "--batch", "CLI", "--duration", "3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["batches"] == "CLI" and out["samples_stored"] > 0 and out["last_error"] is None
    with Historian(db) as h:
        batch = h.batch("CLI")
        assert batch.n_samples == out["samples_stored"] and batch.unit == "BR-01"
        assert h.batch_tags(batch.id)["temperature_c"] == "degC"
    # Connecting again with the same batch resumes: what is stored is not stored twice.
    res = runner.invoke(app, [*args, "--batch", "CLI", "--duration", "1", "--json"])
    assert res.exit_code == 0, res.output
    with Historian(db) as h:
        ph = h.read_tag(h.batch("CLI").id, "ph")
        assert ph.index.is_unique and ph.index.is_monotonic_increasing


def test_browse_lists_variables_with_units(served):
    res = runner.invoke(app, ["line", "browse", served, "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["node"]: r for r in json.loads(res.stdout)}
    assert rows["ns=2;s=Site/Area/BR-01/ph/PV"]["units"] == "pH"


def test_bad_map_fails_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tags:\n  - {unit: BR-01, tag: ph, node: 'ns=2;q=1'}\n", encoding="utf-8")
    res = runner.invoke(app, ["line", "connect", "opc.tcp://127.0.0.1:1", "--map", str(bad)])
    assert res.exit_code == 2
    assert "tags.0.node" in res.output and "not an OPC UA NodeId" in res.output


def test_password_without_security_is_refused(tmp_path):
    tags = tmp_path / "tags.yaml"
    runner.invoke(app, ["twin", "tagmap", "--units", "1", "--out", str(tags)])
    args = ["line", "connect", "opc.tcp://127.0.0.1:1", "--map", str(tags), "--user", "a:b"]
    res = runner.invoke(app, [*args, "--db", str(tmp_path / "x.db")])
    assert res.exit_code == 2 and "needs --security sign-encrypt" in res.output


def test_serve_refuses_sign_encrypt_without_users():
    res = runner.invoke(app, ["twin", "serve", "--security", "sign-encrypt", "--port", "0"])
    assert res.exit_code == 2 and "--user" in res.output
