"""`biopilot batch start/end`: a batch opened by hand for a culture with no line to record it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail

runner = CliRunner()


def _start(db: Path, *extra: str) -> object:
    return runner.invoke(app, ["batch", "start", "CT-7", "--product", "CAR-T", "--db", str(db),
                               "--author", "qa.lee", "--json", *extra])


def test_start_needs_create_for_a_new_store_then_opens_an_audited_batch(tmp_path: Path) -> None:
    db = tmp_path / "cells.db"
    res = _start(db)
    assert res.exit_code == 2 and "no historian" in res.output and not db.exists()
    res = _start(db, "--create")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert (info["code"], info["product"], info["unit"], info["status"]) == (
        "CT-7", "CAR-T", "INC-01", "running")
    entries = AuditTrail(Historian(db)).entries()
    assert [(e.actor, e.action, e.object_id) for e in entries] == [
        ("qa.lee", "batch_start", "CT-7")]


def test_a_taken_code_is_refused_and_the_first_batch_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "cells.db"
    assert _start(db, "--create").exit_code == 0
    res = runner.invoke(app, ["batch", "start", "CT-7", "--product", "other", "--db", str(db)])
    assert res.exit_code == 2 and "taken" in res.output
    batches = Historian(db).list_batches()
    assert [(b.code, b.product) for b in batches] == [("CT-7", "CAR-T")]


def test_a_batch_on_an_existing_unit_of_the_line_runs_there(tmp_path: Path) -> None:
    db = tmp_path / "line.db"
    h = Historian(db)
    h.ensure_unit("plant", "usp", "BR-01")  # a bioreactor already in the store
    res = runner.invoke(app, ["batch", "start", "B9", "--product", "mAb", "--unit", "BR-01",
                              "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["unit"] == "BR-01"
    assert h.unit_names() == ["BR-01"]


def test_end_closes_the_batch_once_and_audits_the_change(tmp_path: Path) -> None:
    db = tmp_path / "cells.db"
    assert _start(db, "--create").exit_code == 0
    res = runner.invoke(app, ["batch", "end", "CT-7", "--status", "aborted", "--reason",
                              "contaminated", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "aborted"
    last = AuditTrail(Historian(db)).entries()[-1]
    assert (last.action, last.old_value, last.new_value, last.reason) == (
        "batch_end", {"status": "running"}, {"status": "aborted"}, "contaminated")
    res = runner.invoke(app, ["batch", "end", "CT-7", "--db", str(db)])
    assert res.exit_code == 2 and "already ended" in res.output
    res = runner.invoke(app, ["batch", "end", "CT-7", "--status", "lost", "--db", str(db)])
    assert res.exit_code == 2 and "status must be one of" in res.output
