"""The tables of GMP data integrity: users, sessions and the append-only, hash-chained audit trail.

They join the store's one ``schema.metadata`` (so a Historian opened after this module is
imported creates them too) and :func:`ensure_tables` creates them on an existing store: the
audit objects call it on construction. The audit table is append-only, enforced by the
database the same way the store does it for its journal tables: SQLite ``BEFORE UPDATE`` /
``BEFORE DELETE`` triggers that abort; on PostgreSQL one plpgsql function raising an
exception bound per row (UPDATE, DELETE) and per statement (TRUNCATE). 21 CFR 11.10(e) and
EU GMP Annex 11 §9: audit records cannot be modified or deleted by the application.

Values are stored as canonical JSON text (not the JSON column type) so that the bytes the
hash chain covers come back exactly as written on every database (PostgreSQL's JSONB would
reorder keys and renormalise numbers).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from biopilot.store import schema as s

__all__ = ["AUDIT_APPEND_ONLY", "app_user", "audit_entry", "ensure_tables", "user_session"]

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The integrity tables whose rows are never updated nor deleted.
AUDIT_APPEND_ONLY = ("audit_entry",)

# Users change (role, lockout, failed attempts): every change is in the audit trail instead.
app_user = sa.Table(
    "app_user",
    s.metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("full_name", sa.String(200), nullable=False),  # the printed name (11.50(a)(1))
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),  # argon2id PHC string
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("locked", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_us", sa.BigInteger, nullable=False),
)

# Only the SHA-256 of a session token is stored: a copy of the database opens no session.
user_session = sa.Table(
    "user_session",
    s.metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.ForeignKey("app_user.id"), nullable=False, index=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.Column("expires_us", sa.BigInteger, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
)

# The sequence number is the primary key: two writers racing for the same place in the chain
# cannot both commit, so the chain never forks.
audit_entry = sa.Table(
    "audit_entry",
    s.metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("t_us", sa.BigInteger, nullable=False),  # server UTC clock
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(200), nullable=False),
    sa.Column("old_value", sa.Text, nullable=False),  # canonical JSON
    sa.Column("new_value", sa.Text, nullable=False),  # canonical JSON
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.CheckConstraint("seq >= 1", name="seq_positive"),
    sa.CheckConstraint("length(reason) > 0", name="reason_given"),
)

_TABLES = (app_user, user_session, audit_entry)


def ensure_tables(engine: Engine) -> None:
    """Create the user, session and audit tables (and the audit triggers) where missing."""
    s.metadata.create_all(engine, tables=list(_TABLES))


for _name in AUDIT_APPEND_ONLY:
    s.make_append_only(s.metadata.tables[_name])
