"""Yields measured in the historian replace the assumed titer and volume."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from economics_helpers import build

from biopilot.config import ConfigError
from biopilot.economics import apply_measured, estimate, read_yields

store = pytest.importorskip("biopilot.store", reason="biopilot.store (historian) not available")

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def line_db(tmp_path: Path) -> Path:
    """A historian with batch B001: titer samples (the last one bad) and a volume."""
    path = tmp_path / "line.db"
    with store.Historian(path) as h:
        h.ensure_site("site")
        h.ensure_area("site", "usp")
        h.ensure_unit("site", "usp", "br1")
        h.ensure_product("mab")
        batch = h.start_batch("B001", "br1", "mab", None, T0)
        h.start_batch("B002", "br1", "mab", None, T0)
        samples = pd.DataFrame(
            {
                "time_utc": [T0 + timedelta(days=d) for d in (10, 13, 14, 14)],
                "tag": ["titer_g_per_l", "titer_g_per_l", "titer_g_per_l", "volume_l"],
                "value": [2.0, 3.5, 9.9, 1800.0],
                "quality": ["good", "good", "bad", "good"],
            }
        )
        h.write_samples(batch, "br1", samples)
    return path


def test_reads_the_last_good_titer_and_the_volume(line_db: Path) -> None:
    got = read_yields(line_db, "B001")
    assert got.titer_g_per_l == pytest.approx(3.5)  # the later 9.9 is flagged bad
    assert got.harvest_volume_l == pytest.approx(1800.0)
    assert got.titer_time_utc == T0 + timedelta(days=13)
    assert got.titer_time_utc.tzinfo is not None
    assert read_yields(line_db, "1") == got  # numeric id works too


def test_measured_yields_change_the_cost_per_gram(line_db: Path) -> None:
    uncertain = {"yields.titer_g_per_l": {"dist": "uniform", "low": 1, "high": 5}}
    model = build(uncertain=uncertain)
    measured = apply_measured(model, read_yields(line_db, "B001"))
    assert measured.yields.titer_g_per_l == pytest.approx(3.5)
    assert "yields.titer_g_per_l" not in measured.uncertain
    est = estimate(measured)
    assert est.product_g_per_batch == pytest.approx(3.5 * 1800 * 0.8)
    assert est.per_gram == pytest.approx(est.per_batch / (3.5 * 1800 * 0.8))


def test_unknown_batch_missing_tag_and_missing_db_are_named(line_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="B404"):
        read_yields(line_db, "B404")
    with pytest.raises(ConfigError, match="titer_g_per_l"):
        read_yields(line_db, "B002")
    with pytest.raises(ConfigError, match="no such database"):
        read_yields(tmp_path / "nowhere.db", "B001")
