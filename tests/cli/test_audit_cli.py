"""The `biopilot audit` commands: bootstrap users, log, checkpoint, and verify a tampered chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from biopilot.cli.main import app
from biopilot.store import Historian
from biopilot.store.audit import AuditTrail

runner = CliRunner()
ADMIN_PW = "admin password 1"


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A line database with an administrator, an operator and a few audited changes."""
    db = tmp_path_factory.mktemp("audit") / "line.db"
    res = runner.invoke(
        app,
        [
            "audit",
            "users",
            "add",
            "ada",
            "--name",
            "Ada Admin",
            "--role",
            "administrator",
            "--reason",
            "site bootstrap",
            "--db",
            str(db),
        ],
        input=f"{ADMIN_PW}\n{ADMIN_PW}\n",
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "audit",
            "users",
            "add",
            "olga",
            "--name",
            "Olga Operator",
            "--role",
            "operator",
            "--reason",
            "new hire",
            "--admin",
            "ada",
            "--db",
            str(db),
        ],
        input=f"olga password\nolga password\n{ADMIN_PW}\n",
    )
    assert res.exit_code == 0, res.output
    h = Historian(db)
    trail = AuditTrail(h)
    for i in range(4):
        trail.record(
            "olga",
            "setpoint_change",
            "unit",
            "BR-01",
            reason=f"feed step {i}",
            old={"feed_l_per_h": i},
            new={"feed_l_per_h": i + 1},
        )
    h.close()  # the last connection folds the WAL into the file copied below
    return db


def _copy(line: Path, tmp_path: Path) -> Path:
    """A copy of the line database and its checkpoints, checkpointed at its head."""
    db = tmp_path / "line.db"
    db.write_bytes(line.read_bytes())
    assert not Path(f"{line}-wal").exists() or not Path(f"{line}-wal").stat().st_size
    res = runner.invoke(app, ["audit", "checkpoint", "--db", str(db)])
    assert res.exit_code == 0, res.output
    return db


def _attack(db: Path, *sql: str) -> None:
    with Historian(db).engine.begin() as c:
        c.execute(sa.text("DROP TRIGGER audit_entry_no_update"))
        c.execute(sa.text("DROP TRIGGER audit_entry_no_delete"))
        for statement in sql:
            c.execute(sa.text(statement))


def test_users_list_shows_the_bootstrapped_admin_and_the_operator(line: Path) -> None:
    res = runner.invoke(app, ["audit", "users", "list", "--db", str(line), "--json"])
    assert res.exit_code == 0, res.output
    rows = {u["username"]: u for u in json.loads(res.stdout)}
    assert rows["ada"]["role"] == "administrator" and rows["olga"]["role"] == "operator"


def test_a_second_bootstrap_without_admin_is_refused(line: Path) -> None:
    res = runner.invoke(
        app,
        [
            "audit",
            "users",
            "add",
            "eve",
            "--name",
            "Eve",
            "--role",
            "administrator",
            "--reason",
            "me",
            "--db",
            str(line),
        ],
        input="eve password\neve password\n",
    )
    assert res.exit_code == 2 and "manage_users" in res.output


def test_log_lists_who_what_and_why(line: Path) -> None:
    res = runner.invoke(app, ["audit", "log", "--db", str(line), "--json"])
    assert res.exit_code == 0, res.output
    entries = json.loads(res.stdout)
    assert [e["action"] for e in entries[:2]] == ["user_create", "login"]
    assert entries[-1]["reason"] == "feed step 3" and entries[-1]["new_value"] == {
        "feed_l_per_h": 4
    }


def test_verify_passes_an_intact_chain(line: Path, tmp_path: Path) -> None:
    db = _copy(line, tmp_path)
    res = runner.invoke(app, ["audit", "verify", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"] and report["n_checkpoints"] == 1 and report["first_broken"] is None


def test_verify_names_the_first_broken_entry_and_fails(line: Path, tmp_path: Path) -> None:
    db = _copy(line, tmp_path)
    _attack(
        db,
        "UPDATE audit_entry SET reason = 'nothing to see' WHERE seq = 5",
        "UPDATE audit_entry SET actor = 'ada' WHERE seq = 6",
    )
    res = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert res.exit_code == 1
    assert "BROKEN at entry 5: hash_mismatch" in res.output
    res = runner.invoke(app, ["audit", "verify", "--db", str(db), "--json"])
    first = json.loads(res.stdout)["first_broken"]
    assert (first["seq"], first["kind"]) == (5, "hash_mismatch")


def test_verify_catches_a_cut_tail_with_the_checkpoint_only(line: Path, tmp_path: Path) -> None:
    db = _copy(line, tmp_path)
    head = AuditTrail(Historian(db)).head()[0]
    _attack(db, f"DELETE FROM audit_entry WHERE seq > {head - 2}")
    res = runner.invoke(app, ["audit", "verify", "--db", str(db), "--json"])
    assert res.exit_code == 1
    first = json.loads(res.stdout)["first_broken"]
    assert (first["seq"], first["kind"]) == (head - 1, "missing_tail")
    empty = tmp_path / "elsewhere"
    res = runner.invoke(app, ["audit", "verify", "--db", str(db), "--checkpoints", str(empty)])
    assert res.exit_code == 0 and "no checkpoints" in res.output  # said loudly, not hidden


def test_verify_of_a_missing_database_is_an_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["audit", "verify", "--db", str(tmp_path / "none.db")])
    assert res.exit_code == 2 and "no historian" in res.output
