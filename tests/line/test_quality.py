"""OPC UA status and values -> biopilot quality: bad is never a number."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from asyncua import ua

from biopilot.line.quality import classify

T = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def _dv(value, code=ua.StatusCodes.Good, variant=ua.VariantType.Double):
    return ua.DataValue(
        ua.Variant(value, variant), StatusCode=ua.StatusCode(code), SourceTimestamp=T
    )


@pytest.mark.parametrize(
    ("dv", "quality", "value", "reason"),
    [
        (_dv(7.01), "good", 7.01, None),
        (_dv(7.01, ua.StatusCodes.BadSensorFailure), "bad", None, "OPC UA BadSensorFailure"),
        (_dv(7.0, ua.StatusCodes.UncertainInitialValue), "uncertain", 7.0, "Uncertain"),
        (_dv(math.nan), "bad", None, "non-finite value (nan)"),
        (_dv(-math.inf), "bad", None, "non-finite value (-inf)"),
        (_dv("7.0", variant=ua.VariantType.String), "bad", None, "not a number (str)"),
        (_dv(None, variant=ua.VariantType.Null), "bad", None, "no value"),
    ],
)
def test_scalar_quality(dv, quality, value, reason):
    when, got, q, why = classify(dv)
    assert when == T and q == quality and got == value
    assert (why is None) if reason is None else (reason in why)


def test_spectrum_of_wrong_length_or_with_nan_is_bad():
    arr = ua.VariantType.Float
    _, value, q, _ = classify(_dv([1.0, 2.0, 3.0], variant=arr), spectrum_points=3)
    assert q == "good" and value.dtype == np.float32 and value.tolist() == [1.0, 2.0, 3.0]
    _, value, q, why = classify(_dv([1.0, 2.0], variant=arr), spectrum_points=3)
    assert q == "bad" and value is None and "axis has 3 points" in why
    _, _, q, why = classify(_dv([1.0, math.nan, 3.0], variant=arr), spectrum_points=3)
    assert q == "bad" and "NaN" in why
