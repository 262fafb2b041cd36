"""Per-cell features: dry mass against physics and the simulator's truth, shape, texture."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import draw, measure

from biopilot.imaging import FEATURE_COLUMNS, match_labels, measure_cells, segment_cells
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def frame():
    optics = OpticalSetup(wavelength_nm=488, pixel_um=1.12, z_mm=1.0, shape_px=(192, 192))
    return simulate_frame(optics, SceneSpec(scenario="adherent", confluence=0.3), rng=5)


def test_dry_mass_of_a_sphere_follows_barer():
    # A 10 um sphere of index step 0.036 in medium holds 0.036 / 0.18 * 523.6 = 104.7 pg.
    pixel, lam, r = 0.25, 0.532, 5.0
    yy, xx = (np.mgrid[:64, :64] - 31.5) * pixel
    thickness = 2 * np.sqrt(np.clip(r**2 - yy**2 - xx**2, 0, None))
    phase = 2 * np.pi / lam * 0.036 * thickness
    labels = (thickness > 0).astype(np.int32)
    t = measure_cells(phase, labels, pixel_um=pixel, wavelength_um=lam, background_rad=0.0)
    assert t.dry_mass_pg[0] == pytest.approx(0.036 / 0.18 * 4 / 3 * math.pi * r**3, rel=0.01)
    assert t.optical_volume_um3[0] == pytest.approx(0.036 * 4 / 3 * math.pi * r**3, rel=0.01)
    assert t.equivalent_diameter_um[0] == pytest.approx(10.0, rel=0.03)


def test_dry_mass_matches_simulator_truth(frame):
    px, lam = frame.optics.pixel_um, frame.optics.wavelength_um
    exact = measure_cells(
        frame.phase_rad,
        frame.labels,
        pixel_um=px,
        wavelength_um=lam,
        background_rad=0.0,
        mass_margin_px=0,
    )
    np.testing.assert_allclose(exact.dry_mass_pg, frame.cells.dry_mass_pg, rtol=1e-4)
    labels = segment_cells(frame.phase_rad, pixel_um=px)
    ours = measure_cells(frame.phase_rad, labels, pixel_um=px, wavelength_um=lam)
    t, p, _ = match_labels(frame.labels, labels)
    measured = ours.set_index("label").loc[p, "dry_mass_pg"].sum()
    true = frame.cells.set_index("label").loc[t, "dry_mass_pg"].sum()
    assert measured / true - 1 == pytest.approx(0.0, abs=0.02)


def test_shape_agrees_with_regionprops():
    labels = np.zeros((120, 160), np.int32)
    rr, cc = draw.ellipse(60, 50, 12, 30, rotation=0.6)
    labels[rr, cc] = 1
    rr, cc = draw.disk((60, 125), 20)
    labels[rr, cc] = 2
    t = measure_cells(
        np.ones(labels.shape), labels, pixel_um=1.0, wavelength_um=0.5, background_rad=0.0
    )
    ref = measure.regionprops_table(
        labels, properties=("eccentricity", "axis_major_length", "axis_minor_length", "perimeter")
    )
    np.testing.assert_allclose(t.eccentricity, ref["eccentricity"], atol=1e-6)
    np.testing.assert_allclose(t.major_axis_um, ref["axis_major_length"], rtol=1e-6)
    np.testing.assert_allclose(t.minor_axis_um, ref["axis_minor_length"], rtol=1e-6)
    np.testing.assert_allclose(t.perimeter_um, ref["perimeter"], rtol=0.06)
    assert t.circularity[1] > 0.95 and t.circularity[0] < 0.8
    assert 0.9 < t.solidity[1] <= 1.0


def test_solidity_is_low_for_a_concave_cell():
    labels = np.zeros((60, 60), np.int32)
    labels[10:50, 10:50] = 1
    labels[20:40, 25:50] = 0  # a C shape
    t = measure_cells(
        np.ones(labels.shape), labels, pixel_um=1.0, wavelength_um=0.5, background_rad=0.0
    )
    assert t.solidity[0] < 0.75


def test_texture_is_higher_for_a_rough_cell():
    labels = np.zeros((40, 80), np.int32)
    labels[10:30, 5:35], labels[10:30, 45:75] = 1, 2
    phase = np.ones(labels.shape)
    phase[10:30, 45:75] += 0.5 * np.random.default_rng(0).standard_normal((20, 30))
    t = measure_cells(phase, labels, pixel_um=1.0, wavelength_um=0.5, background_rad=0.0)
    assert t.gradient_energy_rad2_per_um2[1] > 10 * t.gradient_energy_rad2_per_um2[0]
    assert t.phase_std_rad[1] > t.phase_std_rad[0]


def test_no_cells_gives_an_empty_table_with_all_columns():
    t = measure_cells(np.zeros((16, 16)), np.zeros((16, 16), int), pixel_um=1.0, wavelength_um=0.5)
    assert t.empty and list(t.columns) == FEATURE_COLUMNS


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="one shape"):
        measure_cells(np.zeros((16, 16)), np.zeros((8, 8), int), pixel_um=1, wavelength_um=0.5)
    with pytest.raises(ValueError, match="> 0"):
        measure_cells(np.zeros((8, 8)), np.zeros((8, 8), int), pixel_um=0, wavelength_um=0.5)
