"""One frame end to end: phase or hologram in, classified cells and step timings out."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from biopilot.imaging import FrameAnalysis, analyze_frame, analyze_phase
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def frame():
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.4, z_mm=1.2, shape_px=(256, 256))
    scene = SceneSpec(scenario="suspension", confluence=0.3, viability=0.7)
    return simulate_frame(optics, scene, rng=33)


def test_analyze_phase_counts_and_classifies_like_the_truth(frame):
    rng = np.random.default_rng(0)
    phase = ndi.gaussian_filter(frame.phase_rad, 0.6) + 0.04 * rng.standard_normal(
        frame.phase_rad.shape
    )
    res = analyze_phase(
        phase, wavelength_um=frame.optics.wavelength_um, pixel_um=frame.optics.pixel_um
    )
    assert isinstance(res, FrameAnalysis)
    assert abs(res.n_cells - len(frame.cells)) <= 0.1 * len(frame.cells)
    s = res.summary()
    true_viability = frame.cells.alive.mean()
    assert abs(s["viability"] - true_viability) < 0.08
    assert abs(s["confluence"] - frame.confluence) < 0.05
    assert {"p_alive", "p_differentiated", "alive", "differentiated", "dry_mass_pg"} <= set(
        res.cells.columns
    )
    assert {"segment", "measure", "classify", "total"} <= set(res.timings_s)


def test_analyze_frame_reconstructs_at_the_given_distance(frame):
    res = analyze_frame(
        frame.hologram,
        wavelength_um=frame.optics.wavelength_um,
        pixel_um=frame.optics.pixel_um,
        z=frame.z_mm,
    )
    assert res.z_mm == pytest.approx(frame.z_mm)
    assert res.labels.shape == frame.hologram.shape
    assert "reconstruct" in res.timings_s and res.timings_s["total"] > 0
    assert res.summary()["hologram_agreement"] > 0.5  # the phase explains the hologram
    assert "check" in res.timings_s


def test_empty_phase_gives_an_empty_analysis():
    res = analyze_phase(np.zeros((64, 64)), wavelength_um=0.53, pixel_um=1.4)
    assert res.n_cells == 0
    assert np.isnan(res.summary()["viability"])


def test_bad_z_is_refused(frame):
    with pytest.raises(ValueError, match="z must be"):
        analyze_frame(frame.hologram, wavelength_um=0.53, pixel_um=1.4, z="near")  # type: ignore[arg-type]
