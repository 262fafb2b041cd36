"""Angular-spectrum propagation: invertibility, energy, Fresnel zones, caching, torch, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from biopilot.models.optics import KernelCache, fft_shape, propagate, transfer_function
from biopilot.models.refocus import Refocuser

OPTICS = {"wavelength_um": 0.532, "pixel_um": 1.12, "n_medium": 1.335}


def _random_field(shape: tuple[int, int] = (96, 128), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.5, 1.0, shape)
    return (amp * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(np.complex64)


def test_forward_then_back_is_identity_and_conserves_energy() -> None:
    u = _random_field()
    v = propagate(u, 2.0, fast_shape=False, **OPTICS)
    w = propagate(v, -2.0, fast_shape=False, **OPTICS)
    assert v.dtype == np.complex64 and v.shape == u.shape
    # every sampled frequency propagates at this pitch: the transform is unitary
    assert np.sum(np.abs(v) ** 2) == pytest.approx(np.sum(np.abs(u) ** 2), rel=1e-4)
    np.testing.assert_allclose(w, u, atol=2e-4)


def test_zero_distance_is_identity() -> None:
    u = _random_field()
    np.testing.assert_allclose(propagate(u, 0.0, **OPTICS), u, atol=1e-5)


def test_evanescent_waves_are_cut_not_amplified() -> None:
    # 0.1 um pixels sample far beyond n / lambda: back-propagation must not blow them up
    u = _random_field((64, 64))
    opt = {"wavelength_um": 0.532, "pixel_um": 0.1, "n_medium": 1.0}
    back = propagate(u, -0.05, **opt)
    assert np.sum(np.abs(back) ** 2) < np.sum(np.abs(u) ** 2)
    h = transfer_function((64, 64), 0.05, **opt)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64, 0.1), np.fft.fftfreq(64, 0.1)))
    assert np.all(h[f > 1.0 / 0.532] == 0)
    assert np.allclose(np.abs(h[f < 1.0 / 0.532]), 1.0, atol=1e-5)


def test_point_source_gives_fresnel_zone_radii() -> None:
    """A point source's phase is k (R - z) (Rayleigh-Sommerfeld); rings at sqrt(2 n lambda z)."""
    n, z_mm, sigma_px = 512, 0.5, 1.0
    yy, xx = np.mgrid[:n, :n] - n // 2
    # a 1-px Gaussian spot: a point source without the grid's Nyquist ringing
    src = np.exp(-(yy**2 + xx**2) / (2 * sigma_px**2)).astype(np.complex64)
    u = propagate(src, z_mm, fast_shape=False, **OPTICS)
    lam_m = OPTICS["wavelength_um"] / OPTICS["n_medium"]
    r_px = np.arange(0, 70)
    phase = np.unwrap(np.angle(u[n // 2, n // 2 + r_px]))
    phase -= phase[0]
    r_um = r_px * OPTICS["pixel_um"]
    # Gaussian-beam wavefront radius R = z (1 + (z_R / z)^2), z_R = pi w0^2 / lambda_m
    w0 = np.sqrt(2) * sigma_px * OPTICS["pixel_um"]  # field exp(-r^2 / w0^2)
    z_um = z_mm * 1e3
    big_r = z_um * (1 + (np.pi * w0**2 / lam_m / z_um) ** 2)
    exact = 2 * np.pi / lam_m * (np.sqrt(big_r**2 + r_um**2) - big_r)
    np.testing.assert_allclose(phase, exact, atol=0.1)
    # Fresnel zone radii r_n = sqrt(2 n lambda_m z) where the phase passes 2 pi n
    for ring in (1, 2, 3):
        r_ring = np.interp(2 * np.pi * ring, phase, r_um)
        assert r_ring == pytest.approx(np.sqrt(2 * ring * lam_m * z_um), abs=0.3)


def test_real_input_path_matches_complex_path() -> None:
    a = np.abs(_random_field()).astype(np.float32)
    real_path = propagate(a, -1.3, **OPTICS)
    complex_path = propagate(a.astype(np.complex64), -1.3, **OPTICS)
    np.testing.assert_allclose(real_path, complex_path, atol=2e-5)


def test_numpy_path_equals_a_double_precision_reference() -> None:
    # The NumPy path runs on torch's (MKL) FFTs: check it against numpy.fft in float64.
    u = _random_field((90, 122))  # 122 = 2 x 61: not an FFT-friendly size
    h = transfer_function(u.shape, 0.8, **OPTICS).astype(np.complex128)
    ref = np.fft.ifft2(np.fft.fft2(u.astype(np.complex128)) * h)
    out = propagate(u, 0.8, fast_shape=False, **OPTICS)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, ref, atol=2e-5)


def test_refocuser_equals_propagate_at_every_distance() -> None:
    a = np.abs(_random_field((100, 130))).astype(np.float32)
    cache = KernelCache(max_entries=4)
    scan = Refocuser(a, pad_px=16, cache=cache, **OPTICS)
    for z in (-2.0, -0.7, 0.0, 1.5):
        np.testing.assert_allclose(scan(z), propagate(a, z, pad_px=16, **OPTICS), atol=2e-5)
    # Its kernels are propagate's: a scan's cache serves a later propagation.
    propagate(a, -0.7, pad_px=16, cache=cache, **OPTICS)
    assert cache.hits == 1
    with pytest.raises(ValueError, match="real 2-D"):
        Refocuser(a.astype(np.complex64), **OPTICS)
    with pytest.raises(ValueError, match="finite"):
        scan(float("nan"))


def test_padding_keeps_shape_and_a_centred_object() -> None:
    u = np.ones((100, 90), np.complex64)
    u[40:60, 35:55] = np.exp(0.5j)
    plain = propagate(u, 0.3, fast_shape=False, **OPTICS)
    padded = propagate(u, 0.3, pad_px=20, **OPTICS)
    assert padded.shape == u.shape
    np.testing.assert_allclose(padded[30:70, 25:65], plain[30:70, 25:65], atol=0.05)
    assert fft_shape((2748, 3840)) == (2750, 3840)


def test_kernel_cache_reuses_and_evicts() -> None:
    cache = KernelCache(max_entries=2)
    u = _random_field((32, 32))
    for z in (1.0, 1.0, 2.0, 3.0, 1.0):
        propagate(u, z, cache=cache, **OPTICS)
    assert (cache.hits, cache.misses, len(cache)) == (1, 4, 2)
    with pytest.raises(ValueError, match="max_entries"):
        KernelCache(max_entries=0)


def test_torch_path_matches_numpy_on_cpu() -> None:
    u = _random_field((64, 80))
    ref = propagate(u, 1.1, pad_px=8, **OPTICS)
    out = propagate(torch.from_numpy(u), 1.1, pad_px=8, **OPTICS)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.complex64
    np.testing.assert_allclose(out.numpy(), ref, atol=2e-5)
    real = propagate(torch.from_numpy(np.abs(u)), -1.1, **OPTICS)
    np.testing.assert_allclose(real.numpy(), propagate(np.abs(u), -1.1, **OPTICS), atol=2e-5)


def test_band_limit_cuts_aliased_frequencies() -> None:
    h = transfer_function((64, 64), 3.0, band_limit=True, **OPTICS)
    lam_m = OPTICS["wavelength_um"] / OPTICS["n_medium"]
    f_lim = 1 / (lam_m * np.hypot(2 * 3000 / (64 * OPTICS["pixel_um"]), 1))
    fx = np.abs(np.fft.fftfreq(64, OPTICS["pixel_um"]))
    assert np.all(h[:, fx >= f_lim] == 0) and np.all(h[0, fx < f_lim] != 0)


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        (np.ones(8, np.complex64), {}, "shape"),
        (np.ones((0, 8), np.complex64), {}, "non-empty"),
        (np.full((8, 8), np.nan, np.complex64), {}, "NaN"),
        (np.ones((8, 8), np.complex64), {"wavelength_um": -0.5}, "wavelength_um"),
        (np.ones((8, 8), np.complex64), {"pixel_um": 0.0}, "pixel_um"),
        (np.ones((8, 8), np.complex64), {"pad_px": -1}, "pad_px"),
        (np.ones((8, 8), np.complex64), {"pad_px": 2, "pad_mode": "wrap"}, "pad_mode"),
    ],
)
def test_bad_input_is_refused(field: np.ndarray, kwargs: dict, message: str) -> None:
    opt = {**OPTICS, **kwargs}
    with pytest.raises(ValueError, match=message):
        propagate(field, 1.0, **opt)
