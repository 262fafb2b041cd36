"""Property-based tamper tests: every edit, deletion, reordering and truncation is detected.

The attacker has the database: they drop the append-only triggers and change the audit
table with raw SQL. The chain is built once through the real AuditTrail and checkpointed;
each generated case tampers a copy (an in-memory SQLite image of the file, changes rolled
back after the case) and runs the verifier on the rows read back. Cases that leave the
table unchanged (e.g. writing the value already there) are discarded, not counted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from biopilot.store import Historian
from biopilot.store.audit import AuditTrail, Checkpoint, VerifyReport, entry_hash, verify_rows
from biopilot.store.checkpoints import CheckpointStore

N = 16  # entries in the chain
COLUMNS = (
    "seq",
    "t_us",
    "actor",
    "action",
    "object_type",
    "object_id",
    "old_value",
    "new_value",
    "reason",
    "prev_hash",
    "hash",
)
SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
_counts: dict[str, int] = {}


class Chain:
    """The built chain: a raw connection to a tamperable copy, its rows and checkpoints."""

    def __init__(self, db: sqlite3.Connection, checkpoints: list[Checkpoint]) -> None:
        self.db = db
        self.checkpoints = checkpoints
        self.original = self.rows()

    def rows(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT * FROM audit_entry ORDER BY seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def tampered(self, attack: Callable[[sqlite3.Connection], None]) -> VerifyReport | None:
        """Run ``attack`` in a transaction, verify, roll back; None if nothing changed."""
        self.db.execute("BEGIN")
        try:
            try:
                attack(self.db)
            except sqlite3.IntegrityError:  # e.g. a duplicate seq: the attack is impossible
                return None
            rows = self.rows()
            if rows == self.original:
                return None
            return verify_rows(rows, self.checkpoints)
        finally:
            self.db.execute("ROLLBACK")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("tamper")
    h = Historian(folder / "line.db")
    ticks = iter(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=7 * i) for i in range(99))
    trail = AuditTrail(h, clock=lambda: next(ticks))
    for i in range(N):
        trail.record(
            ["op1", "qa-é", "eng"][i % 3],
            ["setpoint_change", "alarm_ack", "qc_result"][i % 3],
            "unit",
            f"BR-0{i % 4}",
            old={"value": 36.5 + i / 10, "units": "degC"} if i % 2 else None,
            new={"value": 37.0 + i / 10, "list": [i, 1e-7, "x"], "ok": i % 2 == 0},
            reason=f"reason {i} — shift handover",
        )
    store = CheckpointStore(folder / "checkpoints")
    store.checkpoint(trail)
    h.close()
    src = sqlite3.connect(folder / "line.db")
    db = sqlite3.connect(":memory:", isolation_level=None)
    src.backup(db)
    src.close()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the defence in place
        db.execute("UPDATE audit_entry SET reason = 'x' WHERE seq = 1")
    db.execute("DROP TRIGGER audit_entry_no_update")  # the attacker's first move
    db.execute("DROP TRIGGER audit_entry_no_delete")
    built = Chain(db, store.read())
    assert verify_rows(built.original, built.checkpoints).ok
    yield built
    db.close()


def _run(name: str, n: int, body: Callable[..., None], *strategies: Any) -> None:
    """Run ``body`` on ``n`` generated cases; check that most of them were real attacks."""
    _counts[name] = 0

    @settings(max_examples=n, **SETTINGS)
    @given(st.tuples(*strategies))
    def case(args: tuple[Any, ...]) -> None:
        body(*args)
        _counts[name] += 1

    case()
    print(f"{name}: {_counts[name]} tampered chains, all detected")
    assert _counts[name] >= 0.8 * n


def _insert(db: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    db.execute("DELETE FROM audit_entry")
    marks = ", ".join("?" * len(COLUMNS))
    db.executemany(
        f"INSERT INTO audit_entry ({', '.join(COLUMNS)}) VALUES ({marks})",
        [tuple(r[c] for c in COLUMNS) for r in rows],
    )


def _rechain(rows: list[dict[str, Any]], start: int) -> None:
    """Recompute prev_hash and hash from index ``start`` on, as an attacker who knows how."""
    for i in range(start, len(rows)):
        rows[i]["prev_hash"] = rows[i - 1]["hash"] if i else "0" * 64
        rows[i]["hash"] = entry_hash(rows[i])


_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.text(max_size=12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["{}", "null", '{"value":1}', "0" * 64, ""]),
)


def test_random_edits_are_detected_at_the_edited_entry(chain: Chain) -> None:
    def body(seq: int, column: str, value: Any) -> None:
        report = chain.tampered(
            lambda db: db.execute(
                f"UPDATE audit_entry SET {column} = ? WHERE seq = ?", (value, seq)
            )
        )
        assume(report is not None)
        assert report is not None and not report.ok
        # An edited seq moves the row (a real 3.5 sorts before 4): the break can come earlier.
        assert report.first_broken is not None
        assert report.first_broken.seq == seq or (column == "seq" and report.first_broken.seq < seq)

    _run("edit", 3000, body, st.integers(1, N), st.sampled_from(COLUMNS), _values)


def test_random_deletions_are_detected_at_the_first_deleted_entry(chain: Chain) -> None:
    def body(gone: set[int]) -> None:
        marks = ", ".join("?" * len(gone))
        report = chain.tampered(
            lambda db: db.execute(f"DELETE FROM audit_entry WHERE seq IN ({marks})", list(gone))
        )
        assert report is not None and report.first_broken is not None
        assert report.first_broken.seq == min(gone)

    _run("delete", 2000, body, st.sets(st.integers(1, N), min_size=1, max_size=N))


def test_random_reorderings_are_detected_at_the_first_moved_entry(chain: Chain) -> None:
    def body(order: list[int]) -> None:
        moved = [i + 1 for i, j in enumerate(order) if i != j]
        assume(moved)
        # Entries take the sequence number of their new place (storing rows in another
        # physical order changes nothing: the chain is read by seq).
        rows = [dict(chain.original[j]) | {"seq": i + 1} for i, j in enumerate(order)]
        report = chain.tampered(lambda db: _insert(db, rows))
        assert report is not None and report.first_broken is not None
        assert report.first_broken.seq == min(moved)

    _run("reorder", 2000, body, st.permutations(range(N)))


def test_truncations_and_forged_tails_are_caught_by_the_checkpoint(chain: Chain) -> None:
    def body(keep: int, forged: list[str]) -> None:
        rows = [dict(r) for r in chain.original[:keep]]
        for i, reason in enumerate(forged):  # re-extend the cut chain with valid-looking entries
            rows.append(dict(chain.original[0]) | {"seq": keep + i + 1, "reason": reason or "x"})
        _rechain(rows, keep)
        report = chain.tampered(lambda db: _insert(db, rows))
        assume(report is not None)
        assert report is not None and report.first_broken is not None
        kinds = {b.kind for b in report.breaks}
        assert kinds <= {"missing_tail", "checkpoint_mismatch"}
        assert report.first_broken.seq <= N + 1

    _run("truncate", 1500, body, st.integers(0, N - 1), st.lists(st.text(max_size=8), max_size=6))


def test_full_rewrites_with_recomputed_hashes_are_caught_by_the_checkpoint(chain: Chain) -> None:
    def body(seq: int, reason: str) -> None:
        rows = [dict(r) for r in chain.original]
        rows[seq - 1]["reason"] = reason
        _rechain(rows, seq - 1)
        report = chain.tampered(lambda db: _insert(db, rows))
        assume(report is not None)
        assert report is not None and not report.ok
        assert [b.kind for b in report.breaks] == ["checkpoint_mismatch"]
        assert verify_rows(rows).ok  # without the checkpoint the rewrite would pass: the limit

    _run("rewrite", 1500, body, st.integers(1, N), st.text(min_size=1, max_size=16))


def test_total_tamper_cases_reach_ten_thousand() -> None:
    if set(_counts) != {"edit", "delete", "reorder", "truncate", "rewrite"}:
        pytest.skip("runs after the five tamper properties of this module")
    assert sum(_counts.values()) >= 10_000 * 0.9


def test_a_forged_checkpoint_signature_is_reported(chain: Chain, tmp_path: Path) -> None:
    head = chain.original[-1]
    forged = Checkpoint(N, head["hash"], "2026-03-01T00:00:00.000000Z", False, "x.jsonl:1")
    report = verify_rows(chain.original, [forged])
    assert report.first_broken is not None
    assert report.first_broken.kind == "bad_checkpoint_signature"
