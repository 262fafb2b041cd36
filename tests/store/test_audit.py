"""The audit trail: who/when/what/why entries, the hash chain, append-only tables, checkpoints."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from biopilot.store import Historian
from biopilot.store.audit import GENESIS_HASH, AuditTrail, verify_rows
from biopilot.store.audit_schema import ensure_tables
from biopilot.store.canonical import canonical_json
from biopilot.store.checkpoints import CheckpointStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class Clock:
    """A server clock the test moves by hand (tests never depend on wall time)."""

    def __init__(self, t: datetime = T0) -> None:
        self.t = t

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def trail(tmp_path: Path) -> AuditTrail:
    return AuditTrail(Historian(tmp_path / "line.db"), clock=Clock())


def _fill(trail: AuditTrail, n: int) -> None:
    for i in range(n):
        trail.record(
            "op1",
            "setpoint_change",
            "unit",
            "BR-01",
            reason=f"step {i}",
            old={"temperature_degc": 36.5},
            new={"temperature_degc": 37.0 + i},
        )


def test_an_entry_says_who_when_what_old_new_and_why(trail: AuditTrail) -> None:
    e = trail.record(
        "op1",
        "setpoint_change",
        "unit",
        "BR-01",
        reason="pH drift",
        old={"ph": 7.0},
        new={"ph": 7.1},
    )
    assert (e.seq, e.actor, e.action, e.object_type, e.object_id) == (
        1,
        "op1",
        "setpoint_change",
        "unit",
        "BR-01",
    )
    assert (e.old_value, e.new_value, e.reason) == ({"ph": 7.0}, {"ph": 7.1}, "pH drift")
    assert e.time_utc == T0 + timedelta(seconds=1)  # the server's clock, UTC
    assert e.prev_hash == GENESIS_HASH and len(e.hash) == 64
    assert trail.entries() == [e]


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_the_reason_is_required_and_nothing_is_written_without_it(trail: AuditTrail, reason):
    with pytest.raises(ValueError, match="reason is required"):
        trail.record("op1", "alarm_ack", "alarm", 3, reason=reason)
    assert trail.head() == (0, GENESIS_HASH)


def test_values_that_are_not_json_are_refused(trail: AuditTrail) -> None:
    with pytest.raises(ValueError, match="nan"):
        trail.record("op1", "setpoint_change", "unit", "BR-01", reason="x", new=float("nan"))
    with pytest.raises(ValueError, match="not a JSON value"):
        trail.record("op1", "setpoint_change", "unit", "BR-01", reason="x", new={1, 2})


def test_entries_chain_each_to_the_previous_hash(trail: AuditTrail) -> None:
    _fill(trail, 5)
    entries = trail.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert trail.head() == (5, entries[-1].hash)
    report = trail.verify()
    assert report.ok and report.n_entries == 5 and report.first_broken is None


def test_the_database_refuses_update_and_delete_of_audit_entries(trail: AuditTrail) -> None:
    _fill(trail, 2)
    for sql in (
        "UPDATE audit_entry SET reason = 'nicer' WHERE seq = 1",
        "DELETE FROM audit_entry WHERE seq = 2",
    ):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), trail.engine.begin() as c:
            c.execute(sa.text(sql))
    assert trail.verify().ok


def test_audit_tables_are_created_on_a_store_opened_before_and_after(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Historian(db).close()  # a store made before the audit existed gets its tables on open
    names = sa.inspect(Historian(db).engine).get_table_names()
    assert {"audit_entry", "app_user", "user_session"} <= set(names)
    trail = AuditTrail(Historian(db))
    with trail.engine.connect() as c:
        triggers = c.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        assert {"audit_entry_no_update", "audit_entry_no_delete"} <= set(triggers.scalars())


def test_two_writers_on_one_file_keep_one_unbroken_chain(tmp_path: Path) -> None:
    trails = [AuditTrail(Historian(tmp_path / "line.db")) for _ in range(4)]

    def write(t: AuditTrail, who: str) -> None:
        for i in range(40):
            t.record(who, "alarm_ack", "alarm", i, reason="seen")

    threads = [threading.Thread(target=write, args=(t, f"op{i}")) for i, t in enumerate(trails)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    report = trails[0].verify()
    assert report.ok and report.n_entries == 160


@pytest.mark.parametrize(
    ("value", "text"),
    [  # RFC 8785 §3.2.2.3 and Appendix B number examples; key order by UTF-16 units
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (333333333.33333329, "333333333.3333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        ({"b": 1, "a": [True, None, "é\n"]}, '{"a":[true,null,"é\\n"],"b":1}'),
        ({"\ufb33": 1, "\U0001f600": 2}, '{"\U0001f600":2,"\ufb33":1}'),
    ],
)
def test_canonical_json_follows_rfc_8785(value, text: str) -> None:
    assert canonical_json(value) == text.encode("utf-8")


def test_stored_values_are_canonical_json_text(trail: AuditTrail) -> None:
    trail.record("op1", "x", "unit", "U", reason="r", new={"z": 1.0, "a": "b"})
    row = trail.rows()[0]
    assert row["new_value"] == '{"a":"b","z":1}'
    assert json.loads(row["old_value"]) is None


def test_a_signed_checkpoint_catches_a_cut_tail(trail: AuditTrail, tmp_path: Path) -> None:
    _fill(trail, 6)
    store = CheckpointStore(tmp_path / "cp")
    cp = store.checkpoint(trail)
    assert (cp.seq, cp.signature_ok) == (6, True)
    assert trail.verify(store.read()).ok
    with trail.engine.begin() as c:  # the attacker with database access
        c.execute(sa.text("DROP TRIGGER audit_entry_no_delete"))
        c.execute(sa.text("DELETE FROM audit_entry WHERE seq > 4"))
    assert trail.verify().ok  # the cut chain is consistent in itself...
    report = trail.verify(store.read())  # ...but not with the checkpoint
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.kind) == (5, "missing_tail")


def test_an_edited_checkpoint_or_another_key_fails_its_signature(
    trail: AuditTrail, tmp_path: Path
) -> None:
    _fill(trail, 3)
    store = CheckpointStore(tmp_path / "cp")
    store.checkpoint(trail)
    other = CheckpointStore(tmp_path / "other")
    other.checkpoint(trail)
    assert not any(c.signature_ok for c in store.read(other.public_key_path))
    line = json.loads(store.log_path.read_text())
    store.log_path.write_text(json.dumps(line | {"seq": 2}) + "\n")
    report = trail.verify(store.read())
    assert report.first_broken is not None
    assert report.first_broken.kind == "bad_checkpoint_signature"
    assert (store.key_path.stat().st_mode & 0o777) == 0o600


def test_checkpoints_are_taken_every_n_entries_and_not_of_an_empty_trail(
    trail: AuditTrail, tmp_path: Path
) -> None:
    store = CheckpointStore(tmp_path / "cp")
    with pytest.raises(ValueError, match="empty"):
        store.checkpoint(trail)
    for _ in range(7):
        _fill(trail, 1)
        store.maybe_checkpoint(trail, every=3)
    assert [c.seq for c in store.read()] == [3, 6]


def test_the_verifier_reads_rows_without_a_database(trail: AuditTrail) -> None:
    _fill(trail, 4)
    rows = trail.rows()
    rows[1], rows[2] = rows[2], rows[1]  # an export handed over in the wrong order
    report = verify_rows(rows)
    assert report.first_broken is not None
    assert (report.first_broken.seq, report.first_broken.kind) == (2, "reordered")


def test_the_audit_table_is_append_only_on_postgresql_too() -> None:
    out: list[str] = []
    engine = sa.create_mock_engine(
        "postgresql://", lambda sql, *a, **k: out.append(str(sql.compile(dialect=engine.dialect)))
    )
    ensure_tables(engine)  # type: ignore[arg-type]  # rendered, no server needed
    ddl = "\n".join(out)
    assert "CREATE TABLE audit_entry" in ddl and "RAISE(ABORT" not in ddl
    assert "BEFORE UPDATE OR DELETE ON audit_entry" in ddl
    assert "BEFORE TRUNCATE ON audit_entry" in ddl and "LANGUAGE plpgsql" in ddl
