"""Tests of the store's schema portability, time base and bulk-insert paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from biopilot.store import Historian, schema
from biopilot.store.timebase import from_us, index_from_us, to_us, to_us_array


def _ddl(url: str) -> str:
    """All DDL that creating the schema emits on the dialect of ``url`` (no server needed)."""
    out: list[str] = []

    def executor(sql: Any, *_: Any, **__: Any) -> None:
        out.append(str(sql.compile(dialect=engine.dialect)))

    engine = sa.create_mock_engine(url, executor)
    schema.metadata.create_all(engine, checkfirst=False)
    return "\n".join(out)


def test_schema_renders_for_postgresql_with_its_append_only_triggers() -> None:
    ddl = _ddl("postgresql://")
    assert "CREATE TABLE sample" in ddl and "JSONB" in ddl and "BIGSERIAL" in ddl
    assert "WITHOUT ROWID" not in ddl and "RAISE(ABORT" not in ddl  # no SQLite-only DDL
    for table in schema.APPEND_ONLY:
        assert f"BEFORE UPDATE OR DELETE ON {table}" in ddl
        assert f"BEFORE TRUNCATE ON {table}" in ddl
    assert "RAISE EXCEPTION" in ddl and "LANGUAGE plpgsql" in ddl


def test_schema_renders_for_sqlite_with_a_clustered_sample_table() -> None:
    ddl = _ddl("sqlite://")
    assert "WITHOUT ROWID" in ddl
    for table in schema.APPEND_ONLY:
        assert f"BEFORE DELETE ON {table}" in ddl and f"BEFORE UPDATE ON {table}" in ddl
    assert "plpgsql" not in ddl


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_times_round_trip_to_the_microsecond(naive: datetime) -> None:
    when = naive.replace(tzinfo=UTC)
    assert from_us(to_us(when)) == when
    assert index_from_us(to_us_array([when], "t"))[0] == when


def test_other_time_zones_are_converted_to_utc_and_naive_times_refused() -> None:
    cet = datetime(2026, 7, 1, 14, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert from_us(to_us(cet)) == datetime(2026, 7, 1, 12, 0, 0, 5, tzinfo=UTC)
    assert to_us(pd.Timestamp(cet)) == to_us(cet)
    with pytest.raises(ValueError, match="timezone-aware"):
        to_us(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        to_us_array(pd.date_range("2026-01-01", periods=2, freq="h"), "time_utc")


@pytest.mark.parametrize("n", [1, 149, 150, 151, 1000])
@pytest.mark.parametrize("paramstyle", ["qmark", "named"])
def test_bulk_ingest_paths_store_every_row(tmp_path: Path, n: int, paramstyle: str) -> None:
    # "named" takes Core's generic executemany, the path of drivers with no positional style
    h = Historian(tmp_path / "x.db")
    h.engine = sa.create_engine(f"sqlite:///{tmp_path / 'y.db'}", paramstyle=paramstyle)
    schema.metadata.create_all(h.engine)
    h.ensure_unit("S", "A", "U")
    h.ensure_product("P")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    bid = h.start_batch("B", "U", "P", None, t0)
    values = np.random.default_rng(n).normal(size=n)
    df = pd.DataFrame({"time_utc": [t0 + timedelta(seconds=i) for i in range(n)], "tag": "a"})
    df["value"] = values
    assert h.write_samples(bid, "U", df) == n
    assert np.array_equal(h.read_tag(bid, "a")["value"].to_numpy(), values)
