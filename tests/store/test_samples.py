"""Tests of the historian's samples and spectra: exact round trips, bad input, atomic writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biopilot.store import Historian, UnknownBatchError, UnknownTagError

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TAGS = {"ph": "pH", "do_pct": "%", "temperature_c": "degC"}


@pytest.fixture
def hist(tmp_path: Path) -> Historian:
    h = Historian(tmp_path / "line.db")
    h.ensure_unit("Basel", "USP", "BR-01")
    h.ensure_product("mAb-1")
    h.start_batch("B001", "BR-01", "mAb-1", None, T0, {"seed": 1})
    return h


def _samples(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Long samples of TAGS, 1-min apart plus odd microseconds, a few uncertain."""
    rng = np.random.default_rng(seed)
    t = pd.DatetimeIndex(
        [T0 + timedelta(minutes=i, microseconds=int(rng.integers(1e6))) for i in range(n)]
    )
    parts = [
        pd.DataFrame(
            {
                "time_utc": t,
                "tag": tag,
                "value": rng.normal(7.0, 1.0, n),
                "quality": rng.choice(["good", "good", "good", "uncertain"], n),
            }
        )
        for tag in TAGS
    ]
    return pd.concat(parts, ignore_index=True)


def test_samples_round_trip_exactly(hist: Historian) -> None:
    df = _samples()
    assert hist.write_samples(1, "BR-01", df, units=TAGS) == len(df)
    back = hist.read_samples(1)
    want = df.sort_values(["time_utc", "tag"], ignore_index=True)
    assert back["time_utc"].dt.tz is not None
    assert (back["time_utc"] == want["time_utc"]).all()  # to the microsecond
    assert (back["tag"] == want["tag"]).all()
    assert np.array_equal(back["value"].to_numpy(), want["value"].to_numpy())  # bit for bit
    assert (back["quality"].astype(str) == want["quality"]).all()
    assert back["reason"].isna().all()
    assert hist.batch_tags(1) == {"do_pct": "%", "ph": "pH", "temperature_c": "degC"}
    assert hist.batch(1).n_samples == len(df)


def test_read_tag_returns_a_utc_indexed_frame_within_a_time_range(hist: Historian) -> None:
    df = _samples()
    hist.write_samples(1, "BR-01", df)
    ph = hist.read_tag(1, "ph")
    want = df[df["tag"] == "ph"].sort_values("time_utc")
    assert list(ph.columns) == ["value", "quality"]
    assert str(ph.index.tz) == "UTC"
    assert ph.index.equals(pd.DatetimeIndex(want["time_utc"]).rename("time_utc"))
    assert np.array_equal(ph["value"].to_numpy(), want["value"].to_numpy())
    assert list(ph["quality"].astype(str)) == list(want["quality"])  # good and uncertain rows
    start, end = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    part = hist.read_tag(1, "ph", start=start, end=end)
    assert len(part) == 60 and part.index.min() >= start and part.index.max() <= end


def test_read_wide_has_one_column_per_tag(hist: Historian) -> None:
    t = [T0, T0 + timedelta(minutes=1)]
    df = pd.DataFrame({"time_utc": t * 2, "tag": ["a", "a", "b", "b"], "value": [1.0, 2, 3, 4]})
    hist.write_samples(1, "BR-01", df)
    wide = hist.read_wide(1)
    assert list(wide.columns) == ["a", "b"]
    assert wide.loc[pd.Timestamp(t[1]), "b"] == 4.0
    assert list(hist.read_wide(1, tags=["b"]).columns) == ["b"]


def test_nan_inf_and_missing_values_are_stored_bad_with_null_and_a_reason(hist: Historian) -> None:
    t = [T0 + timedelta(minutes=i) for i in range(5)]
    df = pd.DataFrame(
        {
            "time_utc": t,
            "tag": "ph",
            "value": [7.0, np.nan, np.inf, -np.inf, 6.9],
            "quality": ["good", "good", "uncertain", "good", "bad"],
        }
    )
    assert hist.write_samples(1, "BR-01", df) == 5
    back = hist.read_samples(1)
    assert list(back["quality"].astype(str)) == ["good", "bad", "bad", "bad", "bad"]
    assert back["value"].iloc[0] == 7.0 and back["value"].iloc[1:].isna().all()
    assert "missing value" in back["reason"].iloc[1]
    assert "non-finite value (inf)" in back["reason"].iloc[2]
    assert "raw value 6.9" in back["reason"].iloc[4]  # a source-bad number is kept, not as value
    with hist.engine.connect() as conn:  # in the database itself: NULL, never a number
        stored = conn.exec_driver_sql("SELECT value FROM sample WHERE quality = 2").scalars().all()
    assert stored == [None, None, None, None]


def test_unknown_tag_error_lists_the_batch_tags(hist: Historian) -> None:
    hist.write_samples(1, "BR-01", _samples(10))
    with pytest.raises(UnknownTagError, match=r"no tag 'glucose'.*do_pct, ph, temperature_c"):
        hist.read_tag(1, "glucose")
    with pytest.raises(KeyError, match="glucose"):
        hist.read_samples(1, tags=["ph", "glucose"])


def test_unknown_batch_is_refused_for_reads_and_writes(hist: Historian) -> None:
    with pytest.raises(UnknownBatchError, match="no batch with id 9"):
        hist.read_tag(9, "ph")
    with pytest.raises(UnknownBatchError, match="9"):
        hist.write_samples(9, "BR-01", _samples(3))
    with pytest.raises(UnknownBatchError, match="9"):
        hist.read_spectra(9)


def test_a_failed_bulk_ingest_writes_nothing(hist: Historian) -> None:
    first = _samples(100)
    hist.write_samples(1, "BR-01", first)
    # a new tag and 900 new samples, plus one (tag, time) already stored: all or nothing
    more = _samples(300, seed=1)
    more["time_utc"] = more["time_utc"] + timedelta(days=1)
    new_tag = pd.DataFrame({"time_utc": [T0], "tag": ["osmolality"], "value": [320.0]})
    clash = first.iloc[[5]]
    with pytest.raises(ValueError, match="already stored; nothing written"):
        hist.write_samples(1, "BR-01", pd.concat([more, new_tag, clash], ignore_index=True))
    assert len(hist.read_samples(1)) == len(first)
    assert hist.batch(1).n_samples == len(first)
    assert "osmolality" not in hist.batch_tags(1)
    with pytest.raises(UnknownTagError):
        hist.read_tag(1, "osmolality")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.assign(time_utc=d["time_utc"].dt.tz_localize(None)), "timezone-aware"),
        (lambda d: d.assign(value="high"), "value must be numeric"),
        (lambda d: d.assign(quality="excellent"), "quality must be one of"),
        (lambda d: d.drop(columns="tag"), r"missing \['tag'\]"),
        (lambda d: d.assign(units="pH"), r"unexpected \['units'\]"),
        (lambda d: pd.concat([d, d.iloc[[0]]]), "two samples at"),
    ],
)
def test_bad_sample_frames_are_refused_and_write_nothing(
    hist: Historian, change: object, message: str
) -> None:
    bad = change(_samples(20))  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        hist.write_samples(1, "BR-01", bad)
    assert hist.batch(1).n_samples == 0


def test_units_that_contradict_the_stored_ones_are_refused(hist: Historian) -> None:
    hist.write_samples(1, "BR-01", _samples(5), units=TAGS)
    later = _samples(5)
    later["time_utc"] += timedelta(days=1)
    with pytest.raises(ValueError, match="'temperature_c' is stored in 'degC', not 'K'"):
        hist.write_samples(1, "BR-01", later, units={"temperature_c": "K"})


def test_spectra_round_trip_exactly_as_float32(hist: Historian) -> None:
    rng = np.random.default_rng(3)
    axis = np.arange(400.0, 1802.0, 2.0)
    data = rng.normal(3e4, 200.0, (12, axis.size)).astype(np.float32)
    times = [T0 + timedelta(minutes=15 * i, microseconds=i) for i in range(12)]
    assert hist.write_spectra(1, "BR-01", times, axis, data) == 12
    t_back, ax_back, back = hist.read_spectra(1)
    assert list(t_back) == times
    assert np.array_equal(ax_back, axis)
    assert back.dtype == np.float32 and np.array_equal(back, data)
    assert hist.batch(1).n_spectra == 12


def test_spectrum_of_the_wrong_length_is_refused_naming_the_lengths(hist: Historian) -> None:
    axis = np.arange(400.0, 1802.0, 2.0)
    with pytest.raises(ValueError, match=r"700 points each.*wavenumbers_cm1 has 701"):
        hist.write_spectra(1, "BR-01", [T0], axis, np.zeros((1, 700)))
    with pytest.raises(ValueError, match="2 spectra but 1 times_utc"):
        hist.write_spectra(1, "BR-01", [T0], axis, np.zeros((2, 701)))
    hist.write_spectra(1, "BR-01", [T0], axis, np.zeros((1, 701)))
    with pytest.raises(ValueError, match="another axis"):
        hist.write_spectra(1, "BR-01", [T0 + timedelta(hours=1)], axis + 1.0, np.zeros((1, 701)))
    assert hist.batch(1).n_spectra == 1


def test_non_finite_spectrum_is_kept_but_flagged_bad(hist: Historian) -> None:
    axis = np.arange(5.0)
    data = np.ones((2, 5))
    data[1, 2] = np.nan
    hist.write_spectra(1, "BR-01", [T0, T0 + timedelta(minutes=15)], axis, data)
    with hist.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT quality, reason FROM spectrum ORDER BY t_us").all()
    assert rows[0] == (0, None) and rows[1] == (2, "1 non-finite points")
    assert np.isnan(hist.read_spectra(1)[2][1, 2])
