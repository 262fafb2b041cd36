"""The Historian: one object over the store for the ISA-88 hierarchy, batches and their data.

Example
-------
>>> from datetime import UTC, datetime
>>> h = Historian("sqlite://")  # in memory; a file path or any SQLAlchemy URL works too
>>> _ = h.ensure_unit("Site A", "Upstream", "BR-01")
>>> _ = h.ensure_product("mAb-1")
>>> bid = h.start_batch("B001", "BR-01", "mAb-1", None, datetime(2026, 1, 1, tzinfo=UTC), {})
>>> h.batch("B001").status
'running'
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from biopilot.store import schema as s
from biopilot.store._base import check_json, make_engine
from biopilot.store.journal import JournalStore
from biopilot.store.records import BatchInfo, NotFoundError, PhaseInfo, UnknownBatchError
from biopilot.store.samples import SampleStore
from biopilot.store.spectra import SpectrumStore
from biopilot.store.timebase import from_us, to_us

__all__ = ["Historian"]

_END_STATUSES = ("complete", "stopped", "aborted")


class Historian(SampleStore, SpectrumStore, JournalStore):
    """The historian and batch records over SQLAlchemy Core (SQLite WAL or PostgreSQL).

    Parameters
    ----------
    url : str or Path
        A SQLAlchemy URL (``sqlite:///line.db``, ``postgresql+psycopg://...``) or a path to
        an SQLite file. The schema is created on open if missing.
    sqlite_synchronous : str
        SQLite ``PRAGMA synchronous`` (NORMAL by default; FULL for the strictest durability).
    """

    def __init__(self, url: str | Path, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        s.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            stored = conn.execute(
                sa.select(s.store_info.c.value).where(s.store_info.c.key == "schema_version")
            ).scalar()
            if stored is None:
                conn.execute(
                    sa.insert(s.store_info).values(
                        key="schema_version", value=str(s.SCHEMA_VERSION)
                    )
                )
            elif int(stored) > s.SCHEMA_VERSION:
                raise RuntimeError(
                    f"store schema v{stored} is newer than this biopilot (v{s.SCHEMA_VERSION})"
                )

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> Historian:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # -- ISA-88 hierarchy and master data --------------------------------------------------

    def ensure_site(self, name: str) -> int:
        """Return the id of site ``name``, creating it if new."""
        with self.engine.begin() as conn:
            return _ensure(conn, s.site, name=name)

    def ensure_area(self, site: str, name: str) -> int:
        """Return the id of area ``name`` of ``site``, creating both if new."""
        with self.engine.begin() as conn:
            return _ensure(conn, s.area, site_id=_ensure(conn, s.site, name=site), name=name)

    def ensure_unit(self, site: str, area: str, name: str, kind: str = "bioreactor") -> int:
        """Return the id of unit ``name`` in ``site``/``area``, creating what is new.

        Unit names are unique in the store. Raises ValueError if ``name`` already exists in
        another area or with another kind.
        """
        with self.engine.begin() as conn:
            area_id = _ensure(conn, s.area, site_id=_ensure(conn, s.site, name=site), name=area)
            row = conn.execute(sa.select(s.unit).where(s.unit.c.name == name)).first()
            if row is None:
                return int(
                    conn.execute(
                        sa.insert(s.unit).values(area_id=area_id, name=name, kind=kind)
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
            if row.area_id != area_id or row.kind != kind:
                raise ValueError(
                    f"unit {name!r} exists in another area or as another kind ({row.kind})"
                )
            return int(row.id)

    def unit_names(self) -> list[str]:
        """Return the names of every unit in the store, sorted."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(s.unit.c.name).order_by(s.unit.c.name)).scalars())

    def ensure_product(self, name: str) -> int:
        """Return the id of product ``name``, creating it if new."""
        with self.engine.begin() as conn:
            return _ensure(conn, s.product, name=name)

    def add_recipe(self, product: str, name: str, version: str, body: dict[str, Any]) -> int:
        """Store a recipe version of a product and return its id.

        Adding the same (product, name, version) again with the same body returns the same
        id; with another body it raises ValueError (a recipe version never changes).
        """
        checked = check_json(body, "recipe body")
        with self.engine.begin() as conn:
            product_id = self._product_id(conn, product)
            r = s.recipe
            row = conn.execute(
                sa.select(r.c.id, r.c.body).where(
                    r.c.product_id == product_id, r.c.name == name, r.c.version == version
                )
            ).first()
            if row is not None:
                if row.body != checked:
                    raise ValueError(
                        f"recipe {name!r} v{version} of {product!r} exists with another body"
                    )
                return int(row.id)
            now = to_us(datetime.now(UTC))
            new = conn.execute(
                sa.insert(r).values(
                    product_id=product_id, name=name, version=version, body=checked, created_us=now
                )
            )
            return int(new.inserted_primary_key[0])  # type: ignore[index]

    def recipe(self, recipe_id: int) -> dict[str, Any]:
        """Return a stored recipe: id, product, name, version and body; KeyError if unknown."""
        q = sa.select(s.recipe, s.product.c.name.label("product")).join(s.product)
        with self.engine.connect() as conn:
            row = conn.execute(q.where(s.recipe.c.id == recipe_id)).first()
        if row is None:
            raise NotFoundError(f"no recipe with id {recipe_id!r}")
        return {
            "id": row.id,
            "product": row.product,
            "name": row.name,
            "version": row.version,
            "body": row.body,
        }

    # -- batches and phases ----------------------------------------------------------------

    def start_batch(
        self,
        code: str,
        unit: str,
        product: str,
        recipe_id: int | None,
        start_utc: datetime,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Start a batch (status ``running``) of ``product`` on ``unit`` and return its id.

        ``metadata`` is a JSON object (seed, operator, campaign...). Raises ValueError if the
        code is taken, the recipe belongs to another product or the time is naive;
        UnknownUnitError / NotFoundError for an unknown unit or product.
        """
        meta = check_json(metadata or {}, "batch metadata")
        start_us = to_us(start_utc, "start_utc")
        with self.engine.begin() as conn:
            unit_id = self._unit_id(conn, unit)
            product_id = self._product_id(conn, product)
            if recipe_id is not None:
                owner = conn.execute(
                    sa.select(s.recipe.c.product_id).where(s.recipe.c.id == recipe_id)
                ).scalar()
                if owner != product_id:
                    raise ValueError(f"recipe {recipe_id} is not a recipe of product {product!r}")
            taken = conn.execute(sa.select(s.batch.c.id).where(s.batch.c.code == code)).scalar()
            if taken is not None:
                raise ValueError(f"batch code {code!r} is taken (batch {taken})")
            new = conn.execute(
                sa.insert(s.batch).values(
                    code=code,
                    unit_id=unit_id,
                    product_id=product_id,
                    recipe_id=recipe_id,
                    start_us=start_us,
                    status="running",
                    meta=meta,
                )
            )
            return int(new.inserted_primary_key[0])  # type: ignore[index]

    def add_phase(
        self, batch_id: int, name: str, start_utc: datetime, end_utc: datetime | None = None
    ) -> int:
        """Add an ISA-88 phase to a batch and return its id.

        Raises ValueError if it ends before it starts, UnknownBatchError for an unknown batch.
        """
        start_us = to_us(start_utc, "start_utc")
        end_us = None if end_utc is None else to_us(end_utc, "end_utc")
        if end_us is not None and end_us < start_us:
            raise ValueError(f"phase {name!r} ends ({end_utc}) before it starts ({start_utc})")
        with self.engine.begin() as conn:
            self._batch_row(conn, batch_id)
            new = conn.execute(
                sa.insert(s.phase).values(
                    batch_id=batch_id, name=name, start_us=start_us, end_us=end_us
                )
            )
            return int(new.inserted_primary_key[0])  # type: ignore[index]

    def end_batch(self, batch_id: int, end_utc: datetime, status: str = "complete") -> None:
        """End a running batch with ``status`` complete, stopped or aborted.

        Raises ValueError for another status, an end before the start or a batch already
        ended; UnknownBatchError for an unknown batch.
        """
        if status not in _END_STATUSES:
            raise ValueError(f"status must be one of {list(_END_STATUSES)}, got {status!r}")
        end_us = to_us(end_utc, "end_utc")
        with self.engine.begin() as conn:
            row = self._batch_row(conn, batch_id)
            if row.end_us is not None:
                raise ValueError(f"batch {row.code!r} already ended ({row.status})")
            if end_us < row.start_us:
                raise ValueError(f"batch {row.code!r} cannot end ({end_utc}) before it started")
            conn.execute(
                sa.update(s.batch)
                .where(s.batch.c.id == batch_id, s.batch.c.end_us.is_(None))
                .values(end_us=end_us, status=status)
            )

    def list_batches(self) -> list[BatchInfo]:
        """Return every batch, oldest start first (without phases; see :meth:`batch`)."""
        with self.engine.connect() as conn:
            return [
                _info(r)
                for r in conn.execute(_batch_query().order_by(s.batch.c.start_us, s.batch.c.id))
            ]

    def batch(self, id_or_code: int | str) -> BatchInfo:
        """Return one batch, with its phases, by id or code; UnknownBatchError naming it."""
        b = s.batch
        cond = b.c.code == id_or_code if isinstance(id_or_code, str) else b.c.id == int(id_or_code)
        with self.engine.connect() as conn:
            row = conn.execute(_batch_query().where(cond)).first()
            if row is None:
                what = "code" if isinstance(id_or_code, str) else "id"
                raise UnknownBatchError(f"no batch with {what} {id_or_code!r} in the store")
            phases = conn.execute(
                sa.select(s.phase)
                .where(s.phase.c.batch_id == row.id)
                .order_by(s.phase.c.start_us, s.phase.c.id)
            ).all()
        return _info(
            row, tuple(PhaseInfo(p.name, from_us(p.start_us), from_us(p.end_us)) for p in phases)
        )

    def export_parquet(self, batch_id: int, path: str | Path) -> list[Path]:
        """Export a batch to Parquet (see :func:`biopilot.store.export.export_parquet`)."""
        from biopilot.store.export import export_parquet

        return export_parquet(self, batch_id, path)

    def _product_id(self, conn: Connection, name: str) -> int:
        pid = conn.execute(sa.select(s.product.c.id).where(s.product.c.name == name)).scalar()
        if pid is None:
            known = (
                conn.execute(sa.select(s.product.c.name).order_by(s.product.c.name)).scalars().all()
            )
            raise NotFoundError(
                f"unknown product {name!r}; known products: {', '.join(known) or '(none)'}"
            )
        return int(pid)


def _ensure(conn: Connection, table: sa.Table, **key: Any) -> int:
    """Return the id of the row of ``table`` matching ``key``, inserting it if absent."""
    q = sa.select(table.c.id).where(*(table.c[k] == v for k, v in key.items()))
    found = conn.execute(q).scalar()
    if found is not None:
        return int(found)
    return int(conn.execute(sa.insert(table).values(**key)).inserted_primary_key[0])  # type: ignore[index]


def _batch_query() -> sa.Select[Any]:
    b = s.batch
    return (
        sa.select(b, s.unit.c.name.label("unit_name"), s.product.c.name.label("product_name"))
        .join(s.unit, s.unit.c.id == b.c.unit_id)
        .join(s.product, s.product.c.id == b.c.product_id)
    )


def _info(r: Any, phases: tuple[PhaseInfo, ...] = ()) -> BatchInfo:
    return BatchInfo(
        id=r.id,
        code=r.code,
        unit=r.unit_name,
        product=r.product_name,
        recipe_id=r.recipe_id,
        start_utc=from_us(r.start_us),
        end_utc=from_us(r.end_us),
        status=r.status,
        metadata=r.meta,
        n_samples=r.n_samples,
        n_spectra=r.n_spectra,
        n_events=r.n_events,
        n_records=r.n_records,
        phases=phases,
    )
