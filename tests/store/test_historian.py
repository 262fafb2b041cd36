"""Tests of the historian's ISA-88 hierarchy, batches, phases, events, records and integrity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from biopilot.config import ConfigError
from biopilot.store import (
    Historian,
    NewEvent,
    NotFoundError,
    UnknownBatchError,
    UnknownUnitError,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def hist(tmp_path: Path) -> Historian:
    h = Historian(tmp_path / "line.db")
    h.ensure_unit("Basel", "USP", "BR-01")
    h.ensure_unit("Basel", "USP", "BR-02")
    h.ensure_product("mAb-1")
    return h


def _batch(h: Historian, code: str = "B001", unit: str = "BR-01") -> int:
    rid = h.add_recipe("mAb-1", "fed-batch", "1.0", {"days": 14, "feed": [1.5, 2.0]})
    return h.start_batch(code, unit, "mAb-1", rid, T0, {"seed": 7, "campaign": "C1"})


def test_ensure_calls_are_idempotent_and_share_the_hierarchy(hist: Historian) -> None:
    assert hist.ensure_site("Basel") == hist.ensure_site("Basel")
    assert hist.ensure_area("Basel", "USP") == hist.ensure_area("Basel", "USP")
    assert hist.ensure_unit("Basel", "USP", "BR-01") == hist.ensure_unit("Basel", "USP", "BR-01")
    assert hist.ensure_product("mAb-1") == hist.ensure_product("mAb-1")
    with pytest.raises(ValueError, match="BR-01"):
        hist.ensure_unit("Basel", "DSP", "BR-01")  # one name, one unit


def test_schema_is_created_once_and_reopening_keeps_data(tmp_path: Path) -> None:
    h = Historian(f"sqlite:///{tmp_path / 'a.db'}")
    h.ensure_unit("S", "A", "U")
    h.ensure_product("P")
    h.start_batch("X1", "U", "P", None, T0)
    h.close()
    again = Historian(tmp_path / "a.db")
    assert [b.code for b in again.list_batches()] == ["X1"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(hist: Historian) -> None:
    with hist.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_recipe_versions_are_immutable(hist: Historian) -> None:
    rid = hist.add_recipe("mAb-1", "fed-batch", "1.0", {"days": 14})
    assert hist.add_recipe("mAb-1", "fed-batch", "1.0", {"days": 14}) == rid
    assert hist.recipe(rid)["body"] == {"days": 14}
    with pytest.raises(ValueError, match="another body"):
        hist.add_recipe("mAb-1", "fed-batch", "1.0", {"days": 12})
    assert hist.add_recipe("mAb-1", "fed-batch", "1.1", {"days": 12}) != rid


def test_batch_lifecycle_with_phases(hist: Historian) -> None:
    bid = _batch(hist)
    hist.add_phase(bid, "inoculation", T0, T0 + timedelta(hours=1))
    hist.add_phase(bid, "production", T0 + timedelta(hours=1))
    end = T0 + timedelta(days=14, microseconds=7)
    hist.end_batch(bid, end, "complete")
    info = hist.batch("B001")
    assert info == hist.batch(bid)
    assert (info.unit, info.product, info.status) == ("BR-01", "mAb-1", "complete")
    assert info.start_utc == T0 and info.end_utc == end
    assert info.metadata == {"seed": 7, "campaign": "C1"}
    assert [p.name for p in info.phases] == ["inoculation", "production"]
    assert info.phases[1].end_utc is None
    assert info.as_dict()["end_utc"] == end.isoformat()
    with pytest.raises(ValueError, match="already ended"):
        hist.end_batch(bid, end, "aborted")


def test_list_batches_in_start_order_with_counts(hist: Historian) -> None:
    b2 = hist.start_batch("B002", "BR-02", "mAb-1", None, T0 + timedelta(days=1))
    b1 = _batch(hist)
    hist.add_record(b1, "qc_result", {"titer_g_per_l": 4.2})
    listed = hist.list_batches()
    assert [b.id for b in listed] == [b1, b2]
    assert (listed[0].n_records, listed[1].n_records) == (1, 0)


def test_bad_batch_input_is_refused_by_name(hist: Historian) -> None:
    with pytest.raises(UnknownUnitError, match=r"BR-99.*known units: BR-01, BR-02"):
        hist.start_batch("B9", "BR-99", "mAb-1", None, T0)
    with pytest.raises(NotFoundError, match="mAb-9"):
        hist.start_batch("B9", "BR-01", "mAb-9", None, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        hist.start_batch("B9", "BR-01", "mAb-1", None, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="batch metadata is not valid JSON"):
        hist.start_batch("B9", "BR-01", "mAb-1", None, T0, {"x": float("nan")})
    _batch(hist)
    with pytest.raises(ValueError, match="'B001' is taken"):
        hist.start_batch("B001", "BR-02", "mAb-1", None, T0)
    with pytest.raises(ValueError, match="before it started"):
        hist.end_batch(1, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="status must be one of"):
        hist.end_batch(1, T0, "done")


def test_unknown_batch_is_a_key_error_naming_it(hist: Historian) -> None:
    with pytest.raises(UnknownBatchError, match="no batch with id 42"):
        hist.batch(42)
    with pytest.raises(KeyError, match="no batch with code 'NOPE'"):
        hist.batch("NOPE")
    with pytest.raises(UnknownBatchError, match="42"):
        hist.add_phase(42, "x", T0)


def test_events_round_trip_and_filter_by_kind(hist: Historian) -> None:
    bid = _batch(hist)
    events = [
        NewEvent(
            time_utc=T0 + timedelta(hours=2),
            kind="alarm",
            severity="high",
            message="DO low",
            payload={"do_pct": 18.5, "limit": 20},
        ),
        {
            "time_utc": T0 + timedelta(hours=2, minutes=3),
            "kind": "acknowledgement",
            "message": "ack by operator",
            "payload": {"user": "jdoe"},
        },
        {
            "time_utc": T0 + timedelta(hours=3),
            "kind": "setpoint_change",
            "message": "DO setpoint 40 -> 35 %",
            "payload": {"tag": "do_sp", "old": 40, "new": 35},
        },
    ]
    assert hist.write_events(bid, "BR-01", events) == 3
    got = hist.read_events(batch_id=bid)
    assert [e.kind for e in got] == ["alarm", "acknowledgement", "setpoint_change"]
    assert got[0].payload == {"do_pct": 18.5, "limit": 20}
    assert got[0].time_utc == T0 + timedelta(hours=2)
    assert got[1].severity == "info"
    alarms = hist.read_events(unit="BR-01", kinds=["alarm"])
    assert [e.message for e in alarms] == ["DO low"]
    assert hist.batch(bid).n_events == 3


def test_a_bad_event_writes_none_of_the_batch(hist: Historian) -> None:
    bid = _batch(hist)
    good = {"time_utc": T0, "kind": "fault", "message": "feed pump stopped"}
    bad = {"time_utc": T0, "kind": "meltdown", "message": "?"}
    with pytest.raises(ConfigError, match="event 1"):
        hist.write_events(bid, "BR-01", [good, bad])
    assert hist.read_events(batch_id=bid) == []
    with pytest.raises(ValueError, match="runs on unit 'BR-01', not 'BR-02'"):
        hist.write_events(bid, "BR-02", [good])


def test_records_round_trip_with_author_and_kind_filter(hist: Historian) -> None:
    bid = _batch(hist)
    spec = hist.add_record(None, "specification", {"titer_g_per_l": {"min": 3.0}}, "qa.lead")
    body = {"titer_g_per_l": 4.2, "method": "ProA-HPLC"}
    qc = hist.add_record(bid, "qc_result", body, "qc.ana", T0 + timedelta(days=15))
    hist.add_record(bid, "release", {"decision": "released"}, "qa.lead", T0 + timedelta(days=20))
    recs = hist.read_records(bid)
    assert [r.kind for r in recs] == ["qc_result", "release"]
    assert recs[0].id == qc and recs[0].author == "qc.ana"
    assert recs[0].body == {"titer_g_per_l": 4.2, "method": "ProA-HPLC"}
    assert [r.id for r in hist.read_records(None, kind="specification")] == [spec]
    assert [r.kind for r in hist.read_records(bid, kind="release")] == ["release"]
    with pytest.raises(ValueError, match="unknown record kind"):
        hist.add_record(bid, "opinion", {})
    with pytest.raises(ValueError, match="JSON object"):
        hist.add_record(bid, "comment", ["not", "a", "dict"])  # type: ignore[arg-type]


@pytest.mark.parametrize("table", ["sample", "spectrum", "event", "record"])
@pytest.mark.parametrize("verb", ["UPDATE {t} SET batch_id = batch_id", "DELETE FROM {t}"])
def test_journal_tables_refuse_update_and_delete_in_the_database(
    hist: Historian, table: str, verb: str
) -> None:
    bid = _batch(hist)
    hist.add_record(bid, "comment", {"text": "hello"})
    hist.write_events(bid, "BR-01", [{"time_utc": T0, "kind": "info", "message": "start"}])
    samples = pd.DataFrame({"time_utc": [T0], "tag": ["ph"], "value": [7.0]})
    hist.write_samples(bid, "BR-01", samples)
    hist.write_spectra(bid, "BR-01", [T0], np.arange(3.0), np.ones((1, 3)))
    with hist.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.exec_driver_sql(verb.format(t=table))
    info = hist.batch(bid)
    assert (info.n_samples, info.n_spectra, info.n_events, info.n_records) == (1, 1, 1, 1)
    assert len(hist.read_samples(bid)) == 1 and len(hist.read_records(bid)) == 1
