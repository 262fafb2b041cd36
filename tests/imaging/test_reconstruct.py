"""reconstruct(): hologram to quantitative phase end to end, with autofocus and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from biopilot.imaging.reconstruct import Reconstruction, reconstruct
from biopilot.twin.hologram import OpticalSetup
from biopilot.twin.incubator import SceneSpec, simulate_frame


@pytest.fixture(scope="module")
def frame():
    optics = OpticalSetup(wavelength_nm=650, pixel_um=1.4, z_mm=0.9, shape_px=(384, 384))
    scene = SceneSpec(scenario="adherent", confluence=0.2, thick_fraction=0.0, z_offset_um=23.0)
    return simulate_frame(optics, scene, rng=2)


def test_reconstruct_with_autofocus_meets_targets(frame) -> None:
    rec = reconstruct(frame.hologram, wavelength_um=0.65, pixel_um=1.4, z_min_mm=0.6, z_max_mm=1.2)
    assert isinstance(rec, Reconstruction) and rec.autofocused
    assert abs(rec.z_mm - frame.z_mm) * 1e3 <= 5.0
    m = frame.labels > 0
    assert rec.phase_rad.dtype == np.float32 and rec.phase_rad.shape == frame.hologram.shape
    assert float(np.sqrt(np.mean((rec.phase_rad - frame.phase_rad)[m] ** 2))) < 0.1
    assert abs(float(np.median(rec.phase_rad[~rec.support]))) < 0.01
    assert rec.field.dtype == np.complex64 and rec.amplitude.max() <= 1.0 + 1e-6
    assert set(rec.timings_s) == {"autofocus", "retrieve", "unwrap", "total"}


def test_given_z_skips_autofocus(frame) -> None:
    rec = reconstruct(frame.hologram, wavelength_um=0.65, pixel_um=1.4, z_mm=frame.z_mm, n_iter=0)
    assert not rec.autofocused and rec.z_mm == frame.z_mm and rec.timings_s["autofocus"] < 0.5


@pytest.mark.parametrize(
    ("hologram", "message"),
    [
        (np.zeros((64, 64), np.uint16), "flat"),
        (np.full((64, 64), 4095, np.uint16), "flat"),
        (np.zeros((64, 64, 3)), "2-D"),
        (np.full((64, 64), np.nan), "NaN"),
        (-np.ones((64, 64)) + np.eye(64), "negative"),
    ],
)
def test_bad_frames_are_refused(hologram: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        reconstruct(hologram, wavelength_um=0.65, pixel_um=1.4, z_mm=1.0)
