"""Resampling to the networks' grid: exact on band-limited fields, worth it on coarse sensors."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.imaging import analyze_frame, backpropagate, load_default_cellnet, score_segmentation
from biopilot.imaging.corenet import load_default_corenet
from biopilot.imaging.netcut import cut_field
from biopilot.imaging.resample import (
    ANALYSIS_PIXEL_UM,
    analysis_shape,
    labels_to_shape,
    resample_field,
    resample_map,
)
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame


def _waves(shape: tuple[int, int], n_src: tuple[int, int]) -> np.ndarray:
    """A field of plane waves at frequencies a sensor of ``n_src`` pixels holds, on ``shape``."""
    y = (np.arange(shape[0]) + 0.0)[:, None] / shape[0]  # the same extent, finer sampling
    x = (np.arange(shape[1]) + 0.0)[None, :] / shape[1]
    f = 1.0 + 0.3 * np.exp(2j * np.pi * (3 * y - 5 * x))
    f += 0.2 * np.exp(2j * np.pi * (-(n_src[0] // 2 - 2) * y + (n_src[1] // 2 - 3) * x))
    return f.astype(np.complex64)


def test_a_band_limited_field_is_resampled_exactly_both_ways() -> None:
    coarse, fine = (60, 84), (75, 108)
    up = resample_field(_waves(coarse, coarse), fine)
    assert up.dtype == np.complex64 and up.shape == fine
    np.testing.assert_allclose(up, _waves(fine, coarse), atol=2e-5)  # new pixels, exact values
    back = resample_field(up, coarse)
    np.testing.assert_allclose(back, _waves(coarse, coarse), atol=2e-5)


def test_a_phase_map_keeps_its_level_and_comes_back() -> None:
    flat = np.full((64, 80), 1.5)
    np.testing.assert_allclose(resample_map(flat, (90, 112)), 1.5, atol=1e-5)  # radians kept
    smooth = _waves((64, 80), (64, 80)).real
    there = resample_map(smooth, (90, 112))
    assert there.dtype == np.float32
    np.testing.assert_allclose(resample_map(there, (64, 80)), smooth, atol=2e-5)
    with pytest.raises(ValueError, match="2-D"):
        resample_map(np.zeros(5), (4, 4))


def test_only_coarse_sensors_are_resampled_and_to_at_most_the_pitch() -> None:
    assert analysis_shape((2748, 3840), 1.12, ANALYSIS_PIXEL_UM) is None
    assert analysis_shape((2748, 3840), 1.4, ANALYSIS_PIXEL_UM) is None  # not coarse enough
    assert analysis_shape((2748, 3840), 1.6, 1.58) is None  # within 2 % of the target
    assert analysis_shape((2748, 3840), 1.67, None) is None
    for bad in (0.0, -1.3, float("nan")):
        with pytest.raises(ValueError, match="positive pitch"):
            analysis_shape((2748, 3840), 1.12, bad)
    rows, cols = analysis_shape((2748, 3840), 1.67, ANALYSIS_PIXEL_UM) or (0, 0)
    for n, m in ((2748, rows), (3840, cols)):
        pitch = 1.67 * n / m
        assert 1.3 * 0.97 < pitch <= 1.3


def test_labels_go_back_by_pixel_centre_and_are_renumbered() -> None:
    coarse = np.zeros((6, 6), np.int32)
    coarse[1:3, 1:3], coarse[4:6, 3:6] = 7, 2
    fine = np.kron(coarse, np.ones((3, 3), np.int32))  # each pixel as 3 x 3
    back = labels_to_shape(fine, (6, 6))
    assert set(np.unique(back)) == {0, 1, 2}
    np.testing.assert_array_equal(back > 0, coarse > 0)
    assert back[1, 1] != back[4, 4]
    speck = np.zeros((12, 12), np.int32)
    speck[5, 5] = 3  # a cell smaller than a target pixel's centre grid vanishes
    assert labels_to_shape(speck, (4, 4)).max() == 0


@pytest.fixture(scope="module")
def coarse_stem_frame():
    # Stem cells at 80 % on a 1.67 um sensor: the frames the networks merge most cells of.
    optics = OpticalSetup(wavelength_nm=532, pixel_um=1.67, z_mm=1.2, shape_px=(384, 384))
    return optics, simulate_frame(optics, SceneSpec(scenario="stem_cell", confluence=0.8),
                                  rng=4720)


def test_cutting_a_coarse_field_on_the_finer_grid_finds_more_whole_cells(coarse_stem_frame):
    optics, frame = coarse_stem_frame
    field = backpropagate(frame.hologram, frame.z_mm, wavelength_um=optics.wavelength_um,
                          pixel_um=optics.pixel_um)
    net, cores = load_default_cellnet().fused(), load_default_corenet()
    native, fine = (cut_field(net, field, pixel_um=1.67, corenet=cores, merge=True,
                              max_pixel_um=m, precision="float32") for m in (None, 1.3))
    assert not native.resampled and fine.resampled and fine.pixel_um <= 1.3
    assert fine.labels.shape == fine.phase_rad.shape == field.shape  # the sensor's grid
    s_native, s_fine = (score_segmentation(frame.labels, c.labels) for c in (native, fine))
    # Six frames like it (seeds 4720-4725): F1 +0.07 to +0.11, |count error| 5-9 % -> 0-3 %.
    assert s_fine.f1 > s_native.f1 + 0.04
    assert abs(s_fine.count_error) < abs(s_native.count_error)


def test_the_pipeline_reports_its_analysis_grid_and_cells_on_the_sensor(coarse_stem_frame):
    optics, frame = coarse_stem_frame
    kw = {"wavelength_um": optics.wavelength_um, "pixel_um": optics.pixel_um, "z": frame.z_mm}
    res = analyze_frame(frame.hologram, **kw)
    assert res.labels.shape == res.phase_rad.shape == frame.hologram.shape
    assert res.pixel_um == 1.67 and res.reconstruction["analysis_pixel_um"] <= 1.3
    assert res.n_cells == res.labels.max() > 0
    off = analyze_frame(frame.hologram, **kw, analysis_pixel_um=None)
    assert off.reconstruction["analysis_pixel_um"] == 1.67
