"""Turn OPC UA DataValues into biopilot samples: value, quality (good/uncertain/bad), reason.

OPC UA Bad -> bad with NULL value (never a number); Uncertain -> uncertain; a value that is
NaN, infinite or not numeric -> bad with the reason; a spectrum of the wrong length -> bad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from asyncua import ua

__all__ = ["Sample", "classify"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a tag as it reached biopilot.

    Attributes
    ----------
    unit, tag : str
        Where it belongs (from the tag map).
    time_utc : datetime
        Source timestamp (the plant's time of the reading), timezone-aware UTC.
    value : float, ndarray or None
        The reading (a float32 array for a spectrum); None when bad.
    quality : str
        ``good``, ``uncertain`` or ``bad``.
    reason : str or None
        Why it is not good (the OPC UA status, NaN, wrong length...).
    server_time : datetime or None
        Server timestamp (wall clock of the server when it served the value).
    received_s : float
        ``time.time()`` when the client received it (for latency measurements).
    backfilled : bool
        True if it came from HistoryRead rather than the subscription.
    """

    unit: str
    tag: str
    time_utc: datetime
    value: float | np.ndarray | None
    quality: str
    reason: str | None
    server_time: datetime | None
    received_s: float
    backfilled: bool = False


def classify(
    dv: ua.DataValue, *, spectrum_points: int | None = None
) -> tuple[datetime, float | np.ndarray | None, str, str | None]:
    """Return (source time, value, quality, reason) of a DataValue.

    Parameters
    ----------
    dv : asyncua.ua.DataValue
        As received from a subscription or HistoryRead.
    spectrum_points : int, optional
        Expected length of an array value (the wavenumber axis); None for a scalar.
    """
    when = dv.SourceTimestamp or dv.ServerTimestamp or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    code = dv.StatusCode if dv.StatusCode is not None else ua.StatusCode(ua.UInt32(0))
    if code.is_bad():
        return when, None, "bad", f"OPC UA {code.name}"
    quality = "uncertain" if code.is_uncertain() else "good"
    reason = f"OPC UA {code.name}" if quality == "uncertain" else None
    raw: Any = dv.Value.Value if dv.Value is not None else None
    value, why = _spectrum(raw, spectrum_points) if spectrum_points is not None else _scalar(raw)
    if why is not None:
        return when, None, "bad", why if reason is None else f"{reason}; {why}"
    return when, value, quality, reason


def _scalar(raw: Any) -> tuple[float | None, str | None]:
    if raw is None:
        return None, "no value"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None, f"not a number ({type(raw).__name__})"
    value = float(raw)
    if not math.isfinite(value):
        return None, f"non-finite value ({value})"
    return value, None


def _spectrum(raw: Any, n_points: int) -> tuple[np.ndarray | None, str | None]:
    try:
        arr = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        return None, f"spectrum is not numeric ({type(raw).__name__})"
    if arr.ndim != 1 or arr.size != n_points:
        return None, f"spectrum has shape {arr.shape}, the axis has {n_points} points"
    if not np.all(np.isfinite(arr)):
        return None, "spectrum holds NaN or inf"
    return arr, None
