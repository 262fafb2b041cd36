"""A simulated batch recorded into the historian reads back exactly as the twin produced it."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.store import Historian
from biopilot.store.twin_ingest import record_batch, units_of
from biopilot.twin import default_recipe, simulate_batch
from biopilot.twin.recipe import with_harvest_day


@pytest.fixture(scope="module")
def short_batch():
    recipe = with_harvest_day(default_recipe(), 6.0)
    return simulate_batch(recipe, seed=3, unit="BR-07", faults=["do_probe_drift@5"])


def test_recorded_batch_reads_back_exactly(tmp_path, short_batch):
    with Historian(tmp_path / "h.db") as h:
        rec = record_batch(h, short_batch)
        info = h.batch(rec.code)
        assert info.code == "BR-07-S3" and info.status == "complete"
        assert [p.name for p in info.phases] == ["inoculation", "growth", "production", "harvest"]
        wide = h.read_wide(rec.batch_id)
        for tag in ("ph", "do_pct", "volume_l"):
            want = short_batch.online[tag]
            got = wide[tag].reindex(want.index)
            good = (short_batch.quality[tag] != "bad").to_numpy()
            np.testing.assert_array_equal(got.to_numpy()[good], want.to_numpy()[good])
        titer = h.read_tag(rec.batch_id, "titer_g_per_l")
        assert len(titer) == len(short_batch.atline)
        _, wn, spectra = h.read_spectra(rec.batch_id)
        np.testing.assert_array_equal(spectra, short_batch.raman.spectra)
        np.testing.assert_array_equal(wn, short_batch.raman.wavenumbers_cm1)
        kinds = {e.kind for e in h.read_events(rec.batch_id)}
        assert "fault" in kinds and "operation" in kinds
        assert h.batch_tags(rec.batch_id)["glucose_g_per_l"] == "g/L"


def test_same_batch_twice_is_refused_and_first_copy_kept(tmp_path, short_batch):
    with Historian(tmp_path / "h.db") as h:
        rec = record_batch(h, short_batch)
        with pytest.raises(ValueError, match="taken"):
            record_batch(h, short_batch)
        assert h.batch(rec.batch_id).n_samples == rec.n_samples
        assert len(h.list_batches()) == 1


@pytest.mark.parametrize(
    ("tag", "units"),
    [("vcd_cells_per_ml", "cells/mL"), ("our_mmol_per_l_h", "mmol/L/h"),
     ("ammonia_mmol_per_l", "mmol/L"), ("temperature_c", "degC"), ("ph", "pH"),
     ("volume_l", "L"), ("mystery", None)],
)
def test_units_come_from_the_tag_name(tag, units):
    assert units_of(tag) == units
