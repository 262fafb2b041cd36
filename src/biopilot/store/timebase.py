"""Convert timezone-aware UTC times to and from the store's epoch microseconds.

The store keeps every time as a BigInteger of microseconds since 1970-01-01 UTC: integers
compare and index fast, are exact to the microsecond (a float of seconds is not), mean the
same on SQLite (which has no native timestamp type; SQLAlchemy's DateTime would store text)
and PostgreSQL (whose timestamptz is itself int64 microseconds), and convert to pandas'
``datetime64[us, UTC]`` without any parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import overload

import numpy as np
import pandas as pd

__all__ = ["from_us", "index_from_us", "to_us", "to_us_array"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(when: datetime | pd.Timestamp, name: str = "time") -> int:
    """Return epoch microseconds of a timezone-aware time; raise ValueError if naive."""
    if when is None or getattr(when, "tzinfo", None) is None or when.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC), got {when!r}")
    if isinstance(when, pd.Timestamp):
        return int(when.value) // 1000  # .value is always epoch nanoseconds; floor to µs
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@overload
def from_us(us: int) -> datetime: ...
@overload
def from_us(us: None) -> None: ...
@overload
def from_us(us: int | None) -> datetime | None: ...
def from_us(us: int | None) -> datetime | None:
    """Return the UTC datetime of epoch microseconds (None stays None)."""
    if us is None:
        return None
    return _EPOCH + timedelta(microseconds=int(us))


def to_us_array(times: Iterable[datetime] | pd.Series | pd.DatetimeIndex, name: str) -> np.ndarray:
    """Return int64 epoch microseconds of timezone-aware times (sub-µs parts are dropped).

    Raises
    ------
    ValueError
        If the times are naive, not datetimes, or missing (NaT); the message names ``name``.
    """
    try:
        idx = pd.DatetimeIndex(times)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must hold timezone-aware datetimes: {err}") from None
    if idx.tz is None:
        raise ValueError(f"{name} must be timezone-aware (UTC); got naive times")
    if idx.hasnans:
        raise ValueError(f"{name} holds missing times (NaT)")
    return np.asarray(idx.tz_convert("UTC").as_unit("us").asi8, dtype=np.int64)


def index_from_us(us: np.ndarray, name: str = "time_utc") -> pd.DatetimeIndex:
    """Return a ``datetime64[us, UTC]`` DatetimeIndex of int64 epoch microseconds."""
    arr = np.asarray(us, dtype=np.int64).view("datetime64[us]")
    return pd.DatetimeIndex(arr, name=name).tz_localize("UTC")
