"""What the cockpit reads from the historian: live cursors lose no sample, trends keep extremes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biopilot.store import Historian
from biopilot.web.lineview import samples_after, thin


def test_a_live_cursor_in_small_pages_returns_every_sample_once(db: Path) -> None:
    with Historian(db) as h:
        info = h.batch("BR-01-S1")
        start = h.read_tag(info.id, "ph").index[-30]
        cursor = int(start.value // 1000)  # epoch microseconds
        expected = len(samples_after(h, info.id, ["ph", "do_pct"], cursor, limit=10_000))
        got: list[tuple[str, int]] = []
        for _ in range(200):
            page = samples_after(h, info.id, ["ph", "do_pct"], cursor, limit=7)
            if not page:
                break
            got += [(r["tag"], r["t_us"]) for r in page]
            cursor = page[-1]["t_us"]
    assert expected >= 58  # both tags, every minute
    assert len(got) == len(set(got)) == expected


def test_thin_keeps_first_last_and_extremes() -> None:
    t = pd.date_range("2026-01-01", periods=10_000, freq="min", tz="UTC")
    values = np.sin(np.arange(10_000) / 50.0)
    values[4321] = 9.0  # a spike that stride sampling would miss
    frame = pd.DataFrame({"value": values}, index=t)
    out = thin(frame, 300)
    assert len(out) <= 300
    assert out["value"].max() == 9.0
    assert out.index[0] == t[0] and out.index[-1] == t[-1]
