"""Tests of the sensor model: optics validation, Fresnel fringes, illumination, noise, tilt."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from pydantic import ValidationError

from biopilot.models.optics import propagate
from biopilot.twin.cells import STATES, sample_cells
from biopilot.twin.hologram import OpticalSetup, expose, illumination_field, sensor_intensity
from biopilot.twin.incubator import SceneSpec, simulate_frame
from biopilot.twin.incubator_render import render_cells

N = 512
PIXEL = 1.12


def _small_object(n: int = N) -> np.ndarray:
    """Transmission of one small (7 um) weak phase object at the frame centre."""
    cell = sample_cells(np.array([STATES.index("live_round")]), np.random.default_rng(0))
    cell = replace(cell, a_um=np.array([3.5]), b_um=np.array([3.5]), height_um=np.array([3.0]),
                   x_um=np.array([n / 2 * PIXEL]), y_um=np.array([n / 2 * PIXEL]))
    phase, _ = render_cells(cell, (n, n), pixel_um=PIXEL, wavelength_um=0.532)
    return np.exp(1j * phase).astype(np.complex64)


def _ring_radii(intensity: np.ndarray) -> np.ndarray:
    """Radii (um) where the azimuthal mean of ``I - 1`` changes sign, outside 10 um."""
    yy, xx = np.indices(intensity.shape)
    bins = np.rint(2 * np.hypot(yy - N / 2, xx - N / 2)).astype(int).ravel()
    prof = np.bincount(bins, (intensity - 1).ravel()) / np.maximum(np.bincount(bins), 1)
    r = np.arange(prof.size) / 2 * PIXEL
    sel = (r > 10) & (r < 200)
    p, q = prof[sel], r[sel]
    return q[:-1][np.sign(p[:-1]) != np.sign(p[1:])]


def test_optical_setup_refuses_out_of_range_values_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="wavelength_nm"):
        OpticalSetup(wavelength_nm=800, pixel_um=1.12)
    with pytest.raises(ValidationError, match="bit_depth"):
        OpticalSetup(wavelength_nm=500, pixel_um=1.12, bit_depth=11)
    with pytest.raises(ValidationError, match="z_mm"):
        OpticalSetup(wavelength_nm=500, pixel_um=1.12, z_mm=5.0)


@pytest.mark.parametrize("z_mm", [0.5, 1.0, 2.0])
def test_single_cell_fringes_follow_fresnel_scaling(z_mm: float) -> None:
    optics = OpticalSetup(wavelength_nm=532, pixel_um=PIXEL, z_mm=z_mm, shape_px=(N, N))
    radii = _ring_radii(sensor_intensity(_small_object(), optics))
    # zeros of sin(pi n r^2 / (lambda z)) are spaced by lambda z / n in r^2
    slope = np.polyfit(np.arange(10), radii[:10] ** 2, 1)[0]
    assert slope == pytest.approx(0.532 * z_mm * 1e3 / 1.335, rel=0.2)


def test_fringe_radius_grows_with_distance() -> None:
    optics = OpticalSetup(wavelength_nm=532, pixel_um=PIXEL, shape_px=(N, N))
    first = [_ring_radii(sensor_intensity(_small_object(), optics, z_mm=z))[3]
             for z in (0.5, 1.0, 2.0, 3.0)]
    assert np.all(np.diff(first) > 0)


def test_back_propagation_recovers_phase_of_thin_cells_up_to_twin_image() -> None:
    optics = OpticalSetup(wavelength_nm=650, pixel_um=PIXEL, z_mm=1.0, shape_px=(N, N))
    scene = SceneSpec(scenario="adherent", confluence=0.1, debris_per_mm2=0, thick_fraction=0)
    frame = simulate_frame(optics, scene, rng=3)
    clean = sensor_intensity(frame.transmission, optics, z_mm=frame.z_mm)
    back = propagate(np.sqrt(clean), -frame.z_mm, wavelength_um=optics.wavelength_um,
                     pixel_um=PIXEL, n_medium=optics.n_medium)
    cells = frame.labels > 0
    back *= np.exp(-1j * np.angle(back[~cells].mean()))  # the lost global phase exp(i k n z)
    est, truth = np.angle(back), np.angle(frame.transmission)
    assert np.sqrt(np.mean(est[~cells] ** 2)) < 0.15
    assert np.corrcoef(est[cells], truth[cells])[0, 1] > 0.8


def test_flat_field_gives_unit_intensity_and_tilt_shifts_the_hologram() -> None:
    optics = OpticalSetup(wavelength_nm=532, pixel_um=PIXEL, z_mm=2.0, shape_px=(N, N))
    assert np.allclose(sensor_intensity(np.ones((N, N), np.complex64), optics), 1.0, atol=1e-4)
    t = _small_object()
    straight = sensor_intensity(t, optics) - 1
    tilted = sensor_intensity(t, optics, tilt_mrad=(20.0, 0.0)) - 1
    shift = np.argmax(np.abs(np.fft.ifft2(np.fft.fft2(tilted) * np.conj(np.fft.fft2(straight)))))
    dx = (shift % N + N // 2) % N - N // 2
    expected = 2.0e3 * np.tan(20e-3) / PIXEL  # z tan(theta) in pixels, ~36
    assert abs(dx) == pytest.approx(expected, abs=2.0)


def test_illumination_is_smooth_with_requested_nonuniformity() -> None:
    field = illumination_field((300, 400), 0.25, np.random.default_rng(4))
    assert float(field.mean()) == pytest.approx(1.0, abs=1e-4)
    assert float(np.ptp(field)) == pytest.approx(0.25, rel=1e-3)
    assert float(np.abs(np.diff(field, axis=1)).max()) < 0.01  # smooth, low order
    assert np.all(illumination_field((8, 8), 0.0, np.random.default_rng(0)) == 1.0)


def test_shot_and_read_noise_follow_the_photon_transfer_model() -> None:
    optics = OpticalSetup(wavelength_nm=532, pixel_um=PIXEL, bit_depth=16, shape_px=(256, 256))
    flat = np.ones((256, 256), np.float32)
    counts = expose(flat, optics, rng=np.random.default_rng(5), exposure=0.5,
                    full_well_e=20000.0, read_noise_e=20.0)
    gain = optics.full_scale / 20000.0  # counts per electron
    assert counts.mean() == pytest.approx(10000 * gain, rel=1e-3)
    assert counts.var() == pytest.approx((10000 + 20.0**2) * gain**2, rel=0.05)


def test_quantisation_clips_at_full_scale() -> None:
    optics = OpticalSetup(wavelength_nm=532, pixel_um=PIXEL, bit_depth=10, shape_px=(16, 16))
    ramp = np.linspace(0, 5, 256, dtype=np.float32).reshape(16, 16)
    counts = expose(ramp, optics, rng=np.random.default_rng(0), shot_noise=False,
                    read_noise_e=0.0, exposure=0.3)
    assert counts.max() == 1023 and counts.min() == 0
    assert np.all(np.diff(counts.ravel().astype(int)) >= 0)
