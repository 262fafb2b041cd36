"""Quality attributes per frame and per batch, checked on hand-counted frames."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from biopilot.imaging import FrameAnalysis
from biopilot.quality import QCAttributes, batch_attributes, frame_attributes


def _analysis(alive, differentiated, mass, covered_px=2500, side=100, pixel_um=10.0):
    labels = np.zeros((side, side), np.int32)
    labels.ravel()[:covered_px] = 1
    cells = pd.DataFrame(
        {
            "label": np.arange(1, len(alive) + 1),
            "alive": alive,
            "differentiated": differentiated,
            "dry_mass_pg": mass,
            "touches_border": [False] * len(alive),
        }
    )
    return FrameAnalysis(
        cells=cells,
        labels=labels,
        phase_rad=np.zeros((side, side), np.float32),
        pixel_um=pixel_um,
        wavelength_um=0.53,
    )


def test_frame_attributes_match_a_hand_count():
    # 1 mm x 1 mm field (100 px of 10 um), 4 cells of which 3 live, 1 of them differentiated.
    a = _analysis([True, True, True, False], [True, False, False, True], [100, 200, 300, 50])
    qc = frame_attributes(a, volume_ml=0.001)
    assert qc.n_cells == 4 and qc.n_live == 3
    assert qc.field_area_mm2 == pytest.approx(1.0)
    assert qc.viable_cells_per_cm2 == pytest.approx(300.0)  # 3 per mm2
    assert qc.viable_cells_per_ml == pytest.approx(3000.0)
    assert qc.viability == pytest.approx(0.75)
    assert qc.confluence == pytest.approx(0.25)
    assert qc.differentiated_fraction == pytest.approx(1 / 3)  # of live cells
    assert qc.dry_mass_pg_median == pytest.approx(200.0)  # live cells only
    assert qc.dry_mass_pg_mean == pytest.approx(200.0)


def test_a_frame_without_cells_has_undefined_fractions():
    qc = frame_attributes(_analysis([], [], [], covered_px=0))
    assert qc.n_cells == 0 and qc.viable_cells_per_cm2 == 0.0
    assert math.isnan(qc.viability) and math.isnan(qc.dry_mass_pg_median)
    assert qc.as_dict()["viability"] is None


def test_batch_pools_counts_not_frame_fractions():
    big = frame_attributes(_analysis([True] * 9 + [False], [False] * 10, [100.0] * 10))
    small = frame_attributes(_analysis([False, False], [False, False], [100.0, 100.0]))
    qc = batch_attributes([big, small])
    assert qc.n_frames == 2 and qc.n_cells == 12 and qc.n_live == 9
    assert qc.viability == pytest.approx(9 / 12)  # not the mean of 0.9 and 0.0
    assert qc.viable_cells_per_cm2 == pytest.approx(9 / 2 * 100)  # 2 mm2 imaged


def test_round_trip_through_a_record_body():
    qc = frame_attributes(_analysis([True, False], [False, False], [100.0, 20.0]))
    assert QCAttributes.from_dict(qc.as_dict()).as_dict() == qc.as_dict()


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="no frame"):
        batch_attributes([])
    with pytest.raises(ValueError, match="volume_ml"):
        frame_attributes(_analysis([True], [False], [1.0]), volume_ml=0.0)


def test_a_batch_carries_its_worst_frames_hologram_agreement():
    frames = [frame_attributes(_analysis([True], [False], [100.0])) for _ in range(3)]
    assert np.isnan(batch_attributes(frames).hologram_agreement)  # phase maps: no hologram
    worst = (0.9, -0.4, float("nan"))
    frames = [replace(f, hologram_agreement=a) for f, a in zip(frames, worst, strict=True)]
    assert batch_attributes(frames).hologram_agreement == pytest.approx(-0.4)
    assert math.isnan(QCAttributes.from_dict({"n_cells": 1}).hologram_agreement)  # old records
