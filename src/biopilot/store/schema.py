"""The store's tables: the ISA-88 hierarchy, the historian and the batch records, in one MetaData.

Portable SQLAlchemy Core: the same tables run on SQLite (the embedded default) and
PostgreSQL. Dialect-specific pieces -- SQLite's clustered WITHOUT ROWID sample table and the
triggers that make the journal tables append-only -- are keyword arguments or DDL that only
fire on their dialect. Later tables (users, roles, the hash-chained audit) join ``metadata``.

Conventions
-----------
- Times are ``*_us`` BigInteger epoch microseconds, UTC (see :mod:`biopilot.store.timebase`).
- ``sample``, ``spectrum``, ``event`` and ``record`` are append-only (``APPEND_ONLY``).
- ``quality`` is 0 good, 1 uncertain, 2 bad (the OPC UA status classes); a bad sample has a
  NULL value, never a made-up number, and a ``reason``.
"""

from __future__ import annotations

from typing import get_args

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from biopilot.store.records import BatchStatus, EventKind, Quality, RecordKind, Severity

__all__ = [
    "APPEND_ONLY",
    "BATCH_STATUSES",
    "EVENT_KINDS",
    "QUALITY_CODES",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "make_append_only",
    "metadata",
]

SCHEMA_VERSION = 1

#: Sample and spectrum quality, name -> stored code (OPC UA good / uncertain / bad).
QUALITY_CODES: dict[str, int] = {name: i for i, name in enumerate(get_args(Quality))}
BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
SEVERITIES: tuple[str, ...] = get_args(Severity)
RECORD_KINDS: tuple[str, ...] = get_args(RecordKind)
#: Tables whose rows are never updated nor deleted.
APPEND_ONLY = ("sample", "spectrum", "event", "record")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY autoincrements (rowid alias).
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", _BigId, primary_key=True, autoincrement=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


store_info = sa.Table(
    "store_info",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

site = sa.Table(
    "site", metadata, _id(), sa.Column("name", sa.String(200), nullable=False, unique=True)
)

area = sa.Table(
    "area",
    metadata,
    _id(),
    sa.Column("site_id", sa.ForeignKey("site.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.UniqueConstraint("site_id", "name"),
)

# Unit names are unique across the store so that the API can address a unit by its name.
unit = sa.Table(
    "unit",
    metadata,
    _id(),
    sa.Column("area_id", sa.ForeignKey("area.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
)

product = sa.Table(
    "product", metadata, _id(), sa.Column("name", sa.String(200), nullable=False, unique=True)
)

recipe = sa.Table(
    "recipe",
    metadata,
    _id(),
    sa.Column("product_id", sa.ForeignKey("product.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("body", _Json, nullable=False),
    sa.Column("created_us", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("product_id", "name", "version"),
)

# The n_* counters are kept in the same transaction as the rows they count, so listing
# batches never scans the (large) sample table.
batch = sa.Table(
    "batch",
    metadata,
    _id(),
    sa.Column("code", sa.String(200), nullable=False, unique=True),
    sa.Column("unit_id", sa.ForeignKey("unit.id"), nullable=False, index=True),
    sa.Column("product_id", sa.ForeignKey("product.id"), nullable=False),
    sa.Column("recipe_id", sa.ForeignKey("recipe.id"), nullable=True),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("meta", _Json, nullable=False),
    sa.Column("n_samples", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_spectra", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_events", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("n_records", sa.BigInteger, nullable=False, server_default="0"),
    sa.CheckConstraint(_in("status", BATCH_STATUSES), name="status"),
    sa.CheckConstraint("end_us IS NULL OR end_us >= start_us", name="end_after_start"),
)

phase = sa.Table(
    "phase",
    metadata,
    _id(),
    sa.Column("batch_id", sa.ForeignKey("batch.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("start_us", sa.BigInteger, nullable=False),
    sa.Column("end_us", sa.BigInteger, nullable=True),
    sa.CheckConstraint("end_us IS NULL OR end_us >= start_us", name="end_after_start"),
)

tag = sa.Table(
    "tag",
    metadata,
    _id(),
    sa.Column("unit_id", sa.ForeignKey("unit.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("units", sa.String(64), nullable=True),
    sa.UniqueConstraint("unit_id", "name"),
)

# The historian. The primary key (batch, tag, time) is the read path of read_tag: on SQLite
# the table is WITHOUT ROWID, i.e. clustered on it, so one tag of one batch is one range scan.
# It also refuses two values of one tag at one time.
sample = sa.Table(
    "sample",
    metadata,
    sa.Column("batch_id", sa.ForeignKey("batch.id"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tag.id"), primary_key=True),
    sa.Column("t_us", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.CheckConstraint("quality IN (0, 1, 2)", name="quality"),
    sa.CheckConstraint(
        "(quality = 2 AND value IS NULL) OR (quality <> 2 AND value IS NOT NULL)",
        name="bad_is_null",
    ),
    sqlite_with_rowid=False,
)

spectrum_axis = sa.Table(
    "spectrum_axis",
    metadata,
    _id(),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # sha256 of the values
    sa.Column("n_points", sa.Integer, nullable=False),
    sa.Column("values_f8", sa.LargeBinary, nullable=False),  # float64 little-endian
)

spectrum = sa.Table(
    "spectrum",
    metadata,
    _id(),
    sa.Column("batch_id", sa.ForeignKey("batch.id"), nullable=False),
    sa.Column("unit_id", sa.ForeignKey("unit.id"), nullable=False),
    sa.Column("axis_id", sa.ForeignKey("spectrum_axis.id"), nullable=False),
    sa.Column("t_us", sa.BigInteger, nullable=False),
    sa.Column("quality", sa.SmallInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("data_f4", sa.LargeBinary, nullable=False),  # float32 little-endian
    sa.UniqueConstraint("batch_id", "t_us"),
    sa.CheckConstraint("quality IN (0, 1, 2)", name="quality"),
)

event = sa.Table(
    "event",
    metadata,
    _id(),
    sa.Column("unit_id", sa.ForeignKey("unit.id"), nullable=False),
    sa.Column("batch_id", sa.ForeignKey("batch.id"), nullable=True),
    sa.Column("t_us", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("payload", _Json, nullable=False),
    sa.CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
    sa.CheckConstraint(_in("severity", SEVERITIES), name="severity"),
    sa.Index(None, "batch_id", "t_us"),
    sa.Index(None, "unit_id", "t_us"),
)

record = sa.Table(
    "record",
    metadata,
    _id(),
    sa.Column("batch_id", sa.ForeignKey("batch.id"), nullable=True, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("t_us", sa.BigInteger, nullable=False),
    sa.Column("author", sa.String(200), nullable=True),
    sa.Column("body", _Json, nullable=False),
    sa.CheckConstraint(_in("kind", RECORD_KINDS), name="kind"),
)

# Append-only, enforced by the database itself, not only by the API offering no update.
# (DDL text is %-formatted by SQLAlchemy, hence the %% below.)
# SQLite: BEFORE UPDATE/DELETE triggers that abort. PostgreSQL: one plpgsql function raising
# an exception, bound BEFORE UPDATE OR DELETE (per row) and BEFORE TRUNCATE (per statement);
# deployments also REVOKE UPDATE, DELETE, TRUNCATE on these tables from the application role.
_PG_REFUSE = """
CREATE OR REPLACE FUNCTION biopilot_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def make_append_only(table: sa.Table) -> None:
    """Bind the triggers that refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) of ``table``."""
    name = table.name
    for op in ("UPDATE", "DELETE"):
        sa.event.listen(
            table,
            "after_create",
            sa.DDL(
                f"CREATE TRIGGER {name}_no_{op.lower()} BEFORE {op} ON {name} "
                f"BEGIN SELECT RAISE(ABORT, '{name} is append-only: {op} refused'); END"
            ).execute_if(dialect="sqlite"),
        )
    sa.event.listen(table, "after_create", sa.DDL(_PG_REFUSE).execute_if(dialect="postgresql"))
    for pg_trigger in (
        f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
        "FOR EACH ROW EXECUTE FUNCTION biopilot_refuse_change()",
        f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
        "FOR EACH STATEMENT EXECUTE FUNCTION biopilot_refuse_change()",
    ):
        sa.event.listen(table, "after_create", sa.DDL(pg_trigger).execute_if(dialect="postgresql"))


for _name in APPEND_ONLY:
    make_append_only(metadata.tables[_name])
