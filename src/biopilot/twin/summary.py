"""Key figures of a fed-batch from its at-line samples: what an MSAT engineer looks at first."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["key_figures"]


def key_figures(atline: pd.DataFrame, start_utc: pd.Timestamp) -> dict[str, Any]:
    """Peak VCD, final titer, viability at day 10 and at harvest, lactate peak and final.

    Parameters
    ----------
    atline : DataFrame
        At-line samples, tz-aware UTC index, columns named as the twin's tags
        (``vcd_cells_per_ml``, ``viability_pct``, ``titer_g_per_l``, ``lactate_g_per_l``).
        Missing columns give NaN figures.
    start_utc : Timestamp
        Inoculation time, for the culture day.

    Returns
    -------
    dict
        ``peak_vcd_cells_per_ml``, ``peak_vcd_day``, ``final_titer_g_per_l``,
        ``viability_day10_pct``, ``final_viability_pct``, ``peak_lactate_g_per_l``,
        ``final_lactate_g_per_l``, ``duration_days``.
    """
    day = np.asarray((atline.index - pd.Timestamp(start_utc)).total_seconds()) / 86400.0

    def col(tag: str) -> pd.Series:
        if tag not in atline.columns:
            return pd.Series(np.nan, index=atline.index)
        return pd.Series(atline[tag].to_numpy(dtype=float), index=atline.index)

    def last(s: pd.Series) -> float:
        s = s.dropna()
        return float(s.iloc[-1]) if len(s) else math.nan

    def at_day(s: pd.Series, d: float) -> float:
        ok = ~np.isnan(s.to_numpy())
        if not ok.any():
            return math.nan
        i = int(np.argmin(np.abs(np.where(ok, day, np.inf) - d)))
        return float(s.iloc[i])

    vcd = col("vcd_cells_per_ml")
    lac = col("lactate_g_per_l")
    peak_i = int(np.nanargmax(vcd.to_numpy())) if vcd.notna().any() else None
    return {
        "peak_vcd_cells_per_ml": float(vcd.iloc[peak_i]) if peak_i is not None else math.nan,
        "peak_vcd_day": float(day[peak_i]) if peak_i is not None else math.nan,
        "final_titer_g_per_l": last(col("titer_g_per_l")),
        "viability_day10_pct": at_day(col("viability_pct"), 10.0),
        "final_viability_pct": last(col("viability_pct")),
        "peak_lactate_g_per_l": float(lac.max()) if lac.notna().any() else math.nan,
        "final_lactate_g_per_l": last(lac),
        "duration_days": float(day[-1]) if len(day) else math.nan,
    }
