"""The GMP audit trail: append-only, SHA-256 hash-chained entries of who changed what, and why.

Every data-changing action writes one entry: who (``actor``), when (the server's UTC clock;
a client's time is never taken), what (``action`` on ``object_type``/``object_id``), the old
and the new value and the reason, which is required -- 21 CFR 11.10(e), EU GMP Annex 11 §9,
ALCOA+ (attributable, contemporaneous, original, enduring).

Hash chain
----------
Entry ``n`` stores ``hash_n = SHA-256(canonical_json(entry_n))`` where the hashed object holds
``seq = n``, every field above and ``prev_hash = hash_{n-1}`` (64 zeros for entry 1). The
canonical form is RFC 8785's (JSON Canonicalization Scheme, :mod:`biopilot.store.canonical`);
times are written ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Old and new values are stored as their
canonical text, and the verifier refuses any other text.

An edit, deletion or reordering of entries breaks the chain at the first touched entry; a
truncation of the tail or a rewrite of the whole chain is caught by the Ed25519-signed
checkpoints kept apart from the database (:mod:`biopilot.store.checkpoints`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from biopilot.store.audit_schema import audit_entry, ensure_tables
from biopilot.store.canonical import Canonical, canonical_json, to_canonical
from biopilot.store.timebase import from_us, to_us

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditTrail",
    "Break",
    "BreakKind",
    "Checkpoint",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "format_time",
    "verify_rows",
]

GENESIS_HASH = "0" * 64
#: What can be wrong with the chain, as :attr:`Break.kind`.
BreakKind = Literal[
    "malformed",
    "sequence_gap",
    "reordered",
    "out_of_order",
    "broken_link",
    "hash_mismatch",
    "missing_tail",
    "checkpoint_mismatch",
    "bad_checkpoint_signature",
]
_FIELDS = ("actor", "action", "object_type", "object_id", "reason")
_APPEND_TRIES = 5
_PG_LOCK_KEY = 7_356_001  # pg_advisory_xact_lock key serialising appends on PostgreSQL


def format_time(t_us: int) -> str:
    """Return the fixed ISO-8601 UTC form of epoch microseconds: ``2026-03-01T08:00:00.000000Z``."""
    return from_us(int(t_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(row: Mapping[str, Any]) -> str:
    """Return the SHA-256 hex of an audit row as stored (values as canonical JSON text).

    Raises ValueError (or TypeError) if a field is missing, of the wrong type, or a value
    is not the canonical JSON of what it holds.
    """
    obj: dict[str, Any] = {k: _text(row[k], k) for k in (*_FIELDS, "prev_hash")}
    obj["seq"] = _int(row["seq"], "seq")
    obj["time_utc"] = format_time(_int(row["t_us"], "t_us"))
    for key in ("old_value", "new_value"):
        stored = _text(row[key], key)
        if to_canonical(json.loads(stored)) != stored:
            raise ValueError(f"{key} is not canonical JSON")
        obj[key] = Canonical(stored)  # already canonical: embedded as is
    return hashlib.sha256(canonical_json(obj)).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit entry as stored: who, when (UTC), what, old and new value, why, and its hash."""

    seq: int
    time_utc: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    old_value: Any
    new_value: Any
    reason: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO-8601 UTC time)."""
        return asdict(self) | {"time_utc": self.time_utc.isoformat()}


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed (seq, hash) of the chain, as read back; ``signature_ok`` says if it verified."""

    seq: int
    hash: str
    time_utc: str
    signature_ok: bool
    source: str


@dataclass(frozen=True, slots=True)
class Break:
    """Where and why the chain is broken: the entry ``seq``, a ``kind`` and a sentence."""

    seq: int
    kind: BreakKind
    message: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The verdict on a chain: ok, how much was checked, the head and every break found."""

    ok: bool
    n_entries: int
    head_seq: int
    head_hash: str
    n_checkpoints: int
    breaks: tuple[Break, ...]

    @property
    def first_broken(self) -> Break | None:
        """The break of the lowest entry (None when the chain is intact)."""
        return self.breaks[0] if self.breaks else None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, ``first_broken`` included."""
        out = asdict(self)
        first = self.first_broken
        out["first_broken"] = None if first is None else asdict(first)
        return out


def verify_rows(
    rows: Iterable[Mapping[str, Any]], checkpoints: Sequence[Checkpoint] = ()
) -> VerifyReport:
    """Check a chain, offline, from its rows in stored order and the signed checkpoints.

    Parameters
    ----------
    rows : iterable of mappings
        Audit rows with the columns of ``audit_entry`` (as :meth:`AuditTrail.rows` gives),
        in the order they are stored (by ``seq``).
    checkpoints : sequence of Checkpoint
        Signed heads read by :class:`~biopilot.store.checkpoints.CheckpointStore`. Without
        them a truncated tail or a fully recomputed chain cannot be told from a real one.

    Returns
    -------
    VerifyReport
        ``ok`` False with the breaks sorted by entry; ``first_broken`` names the first one.
    """
    rows = list(rows)
    seen = {r.get("seq") for r in rows}
    where = {r.get("hash"): r.get("seq") for r in rows}
    breaks: list[Break] = []
    hashes: dict[int, str] = {}
    expected, prev = 1, GENESIS_HASH
    for row in rows:
        try:
            seq = _int(row["seq"], "seq")
            computed = entry_hash(row)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            breaks.append(Break(expected, "malformed", f"entry {expected} cannot be read: {err}"))
            expected, prev = expected + 1, str(row.get("hash"))
            continue
        gap = seq > expected
        if gap and expected in seen:
            breaks.append(Break(expected, "reordered", f"entry {expected} is out of its place"))
        elif gap:
            missing = f"{expected}..{seq - 1}" if seq - 1 > expected else str(expected)
            breaks.append(Break(expected, "sequence_gap", f"entries {missing} are missing"))
        elif seq < expected:
            breaks.append(Break(seq, "out_of_order", f"entry {seq} comes after {expected - 1}"))
        if row["prev_hash"] != prev and not gap:
            other = where.get(row["prev_hash"])
            if other is not None and other != seq - 1:
                msg = f"entry {seq} links to entry {other}, not to entry {seq - 1}"
                breaks.append(Break(seq, "reordered", msg))
            else:
                msg = f"prev_hash of entry {seq} is not the hash of entry {seq - 1}"
                breaks.append(Break(seq, "broken_link", msg))
        if computed != row["hash"]:
            msg = f"entry {seq} does not match its hash: it was edited"
            breaks.append(Break(seq, "hash_mismatch", msg))
        hashes[seq] = str(row["hash"])
        expected, prev = seq + 1, str(row["hash"])
    last = max(hashes, default=0)
    for cp in checkpoints:
        if not cp.signature_ok:
            msg = f"checkpoint {cp.source} (entry {cp.seq}) has a bad signature"
            breaks.append(Break(cp.seq, "bad_checkpoint_signature", msg))
        elif cp.seq > last:
            msg = f"checkpoint {cp.source} vouches for entry {cp.seq}; the chain ends at {last}"
            breaks.append(Break(last + 1, "missing_tail", msg))
        elif hashes.get(cp.seq) != cp.hash:
            msg = f"entry {cp.seq} differs from checkpoint {cp.source}: the chain was rewritten"
            breaks.append(Break(cp.seq, "checkpoint_mismatch", msg))
    breaks.sort(key=lambda b: b.seq)  # stable: the chain's own finding first at one entry
    return VerifyReport(
        ok=not breaks,
        n_entries=len(rows),
        head_seq=last,
        head_hash=hashes.get(last, GENESIS_HASH),
        n_checkpoints=len(checkpoints),
        breaks=tuple(breaks),
    )


class _HasEngine(Protocol):
    engine: Engine


class AuditTrail:
    """The audit trail of a store: append entries, read them back, verify the chain.

    Parameters
    ----------
    store : Historian or any object with an ``engine``
        The store; the audit tables and their append-only triggers are created if missing.
    clock : callable, optional
        The server's UTC clock (``datetime.now(UTC)`` by default; tests pass a fixed one).
    """

    def __init__(self, store: _HasEngine, *, clock: Callable[[], datetime] | None = None) -> None:
        self.engine = store.engine
        self.clock = clock or _utc_now
        ensure_tables(self.engine)

    def record(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str | int,
        *,
        reason: str,
        old: Any = None,
        new: Any = None,
        conn: Connection | None = None,
    ) -> AuditEntry:
        """Append one entry and return it; ``conn`` appends inside the caller's transaction.

        Raises ValueError if ``reason`` (or the actor, action, object) is empty or a value
        is not JSON. Without ``conn``, a race with another writer for the same place in the
        chain is retried; with one, the caller's transaction fails instead.
        """
        fields = {"actor": actor, "action": action, "object_type": object_type}
        fields |= {"object_id": str(object_id), "reason": reason}
        for name, text in fields.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"audit {name} is required (got {text!r})")
        fields["old_value"] = canonical_json(old).decode("utf-8")
        fields["new_value"] = canonical_json(new).decode("utf-8")
        if conn is not None:
            return self._append(conn, fields)
        for _ in range(_APPEND_TRIES - 1):  # a lost race for the next seq: read the head again
            with suppress(sa.exc.IntegrityError, sa.exc.OperationalError), self.engine.begin() as c:
                return self._append(c, fields)
        with self.engine.begin() as own:
            return self._append(own, fields)

    def rows(self, start_seq: int = 1, limit: int | None = None) -> list[dict[str, Any]]:
        """Return the stored rows (values as canonical JSON text) from ``start_seq`` on."""
        q = sa.select(audit_entry).where(audit_entry.c.seq >= start_seq)
        q = q.order_by(audit_entry.c.seq).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def entries(self, start_seq: int = 1, limit: int | None = None) -> list[AuditEntry]:
        """Return the entries from ``start_seq`` on, oldest first (values parsed)."""
        return [_entry(r) for r in self.rows(start_seq, limit)]

    def head(self) -> tuple[int, str]:
        """Return (seq, hash) of the last entry; (0, GENESIS_HASH) for an empty trail."""
        with self.engine.connect() as conn:
            return _head(conn)

    def verify(self, checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
        """Check the whole stored chain against ``checkpoints`` (see :func:`verify_rows`)."""
        return verify_rows(self.rows(), checkpoints)

    def _append(self, conn: Connection, fields: dict[str, str]) -> AuditEntry:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
        elif conn.dialect.name == "sqlite":
            # Take the write lock before reading the head: a deferred transaction would read
            # first and let two writers pick the same seq. An UPDATE of no row makes the driver
            # BEGIN and SQLite take the RESERVED lock, waiting out other writers (busy_timeout).
            conn.exec_driver_sql("UPDATE audit_entry SET seq = seq WHERE 0")
        seq, prev = _head(conn)
        row: dict[str, Any] = fields | {"seq": seq + 1, "prev_hash": prev}
        row["t_us"] = to_us(self.clock(), "server clock")  # never a client's time
        row["hash"] = entry_hash(row)
        conn.execute(sa.insert(audit_entry).values(**row))
        return _entry(row)


def _head(conn: Connection) -> tuple[int, str]:
    q = sa.select(audit_entry.c.seq, audit_entry.c.hash).order_by(audit_entry.c.seq.desc())
    last = conn.execute(q.limit(1)).first()
    return (0, GENESIS_HASH) if last is None else (int(last.seq), str(last.hash))


def _entry(row: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(row["seq"]),
        time_utc=from_us(int(row["t_us"])),
        old_value=json.loads(row["old_value"]),
        new_value=json.loads(row["new_value"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
        **{k: row[k] for k in _FIELDS},
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be text, got {value!r}")
    return value
