"""Tests of the Parquet export of a batch: an exact round trip, metadata, sibling spectra file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from biopilot.store import Historian, UnknownBatchError, read_export

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Historian, int]:
    h = Historian(tmp_path / "line.db")
    h.ensure_unit("Basel", "USP", "BR-01")
    h.ensure_product("mAb-1")
    bid = h.start_batch("B001", "BR-01", "mAb-1", None, T0, {"seed": 7})
    h.add_phase(bid, "production", T0, T0 + timedelta(days=14))
    rng = np.random.default_rng(0)
    t = [T0 + timedelta(minutes=i, microseconds=13 * i) for i in range(200)]
    df = pd.concat(
        [pd.DataFrame({"time_utc": t, "tag": tag, "value": rng.normal(size=200)}) for tag in "xyz"],
        ignore_index=True,
    )
    df.loc[7, "value"] = np.nan
    df.loc[8, "quality"] = "uncertain"
    df["quality"] = df["quality"].fillna("good")
    h.write_samples(bid, "BR-01", df, units={"x": "g/L"})
    axis = np.linspace(400.0, 1800.0, 701)
    h.write_spectra(bid, "BR-01", t[::15], axis, rng.normal(size=(len(t[::15]), 701)))
    h.end_batch(bid, T0 + timedelta(days=14), "complete")
    return h, bid


def test_export_round_trips_samples_spectra_and_batch_exactly(
    batch: tuple[Historian, int], tmp_path: Path
) -> None:
    h, bid = batch
    files = h.export_parquet(bid, tmp_path / "out" / "B001.parquet")
    assert [f.name for f in files] == ["B001.parquet", "B001.spectra.parquet"]
    got = read_export(files[0])
    pd.testing.assert_frame_equal(got.samples, h.read_samples(bid))
    times, axis, data = h.read_spectra(bid)
    assert got.spectra_times.equals(times)
    assert np.array_equal(got.wavenumbers_cm1, axis)
    assert got.spectra.dtype == np.float32 and np.array_equal(got.spectra, data)
    assert got.batch == h.batch(bid).as_dict()
    assert got.batch["metadata"] == {"seed": 7} and got.batch["status"] == "complete"
    assert got.tag_units == {"x": "g/L", "y": None, "z": None}


def test_export_is_readable_by_plain_pyarrow_with_typed_columns(
    batch: tuple[Historian, int], tmp_path: Path
) -> None:
    h, bid = batch
    path = h.export_parquet(bid, tmp_path / "b.parquet")[0]
    table = pq.read_table(path)
    assert str(table.schema.field("time_utc").type) == "timestamp[us, tz=UTC]"
    assert table.column("value").null_count == 1  # the NaN sample is a null, not a number
    assert set(table.column("quality").to_pylist()) == {"good", "uncertain", "bad"}
    assert b"biopilot.batch" in table.schema.metadata


def test_batch_without_spectra_exports_one_file(tmp_path: Path) -> None:
    h = Historian(tmp_path / "line.db")
    h.ensure_unit("S", "A", "U")
    h.ensure_product("P")
    bid = h.start_batch("E1", "U", "P", None, T0)
    files = h.export_parquet(bid, tmp_path / "e.parquet")
    assert [f.name for f in files] == ["e.parquet"]
    got = read_export(files[0])
    assert got.samples.empty and got.spectra.shape == (0, 0)
    with pytest.raises(UnknownBatchError):
        h.export_parquet(99, tmp_path / "x.parquet")
