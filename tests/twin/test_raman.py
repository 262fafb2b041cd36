"""Tests of the Raman synthesiser: band positions, linearity, noise, drift, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter
from sklearn.cross_decomposition import PLSRegression

from biopilot.twin.raman import CONCENTRATION_KEYS, RamanSynthesizer

RANGES = {  # typical fed-batch ranges, used to draw concentrations
    "glucose_g_per_l": (0.5, 8.0),
    "lactate_g_per_l": (0.2, 4.0),
    "glutamine_mmol_per_l": (0.0, 6.0),
    "ammonium_mmol_per_l": (0.0, 10.0),
    "titer_g_per_l": (0.0, 5.0),
    "vcd_cells_per_ml": (2e5, 2.5e7),
}


def _clean() -> RamanSynthesizer:
    """A synthesiser with no noise, fluorescence, laser drift or media variability."""
    return RamanSynthesizer(
        noise=False, fluorescence_counts=0.0, laser_power_drift=0.0, media_variability=0.0
    )


def _random_conc(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {k: rng.uniform(lo, hi, n) for k, (lo, hi) in RANGES.items()}


def _at(axis: np.ndarray, cm1: float) -> int:
    return int(np.argmin(np.abs(axis - cm1)))


def test_default_axis_spans_fingerprint_region_and_output_is_float32() -> None:
    syn = RamanSynthesizer()
    ax = syn.wavenumbers_cm1
    assert ax[0] == 400.0 and ax[-1] == 1800.0 and np.allclose(np.diff(ax), 2.0)
    rng = np.random.default_rng(1)
    out = syn.spectra(np.arange(10) * 0.25, _random_conc(rng, 10), rng)
    assert out.dtype == np.float32 and out.shape == (10, ax.size)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize(
    ("key", "band_cm1"),
    [
        ("glucose_g_per_l", 1125.0),
        ("lactate_g_per_l", 856.0),
        ("glutamine_mmol_per_l", 1410.0),
        ("titer_g_per_l", 1655.0),
        ("vcd_cells_per_ml", 1450.0),
    ],
)
def test_strongest_band_sits_at_its_literature_wavenumber(key: str, band_cm1: float) -> None:
    syn = RamanSynthesizer()
    pure = syn.pure_components()[key]
    assert abs(syn.wavenumbers_cm1[np.argmax(pure)] - band_cm1) <= 4.0


def test_mab_shows_sharp_phenylalanine_band_at_1003() -> None:
    syn = RamanSynthesizer()
    ax, mab = syn.wavenumbers_cm1, syn.pure_components()["titer_g_per_l"]
    window = (ax > 980) & (ax < 1025)
    assert abs(ax[window][np.argmax(mab[window])] - 1003.0) <= 2.0
    assert mab[_at(ax, 1003)] > 2.0 * mab[_at(ax, 1020)]  # a local, sharp band


@pytest.mark.parametrize(
    ("key", "band_cm1"),
    [(k, b) for k, b in zip(CONCENTRATION_KEYS, (1125, 856, 1410, 1450, 1655, 1450), strict=True)],
)
def test_band_intensity_is_linear_in_concentration(key: str, band_cm1: float) -> None:
    syn = _clean()
    hi = RANGES[key][1]
    c = np.linspace(0.0, hi, 25)
    conc = {k: np.zeros_like(c) for k in CONCENTRATION_KEYS} | {key: c}
    spec = syn.spectra(np.zeros_like(c), conc, np.random.default_rng(0)).astype(np.float64)
    y = (
        spec[:, _at(syn.wavenumbers_cm1, band_cm1)]
        - syn.background()[_at(syn.wavenumbers_cm1, band_cm1)]
    )
    slope, intercept = np.polyfit(c, y, 1)
    r2 = 1.0 - np.sum((y - (slope * c + intercept)) ** 2) / np.sum((y - y.mean()) ** 2)
    assert r2 > 0.999
    assert slope > 0
    assert abs(intercept) < 1e-3 * slope * hi  # zero intercept once background is removed


def test_noise_free_spectrum_is_background_plus_sum_of_pure_components() -> None:
    syn = _clean()
    rng = np.random.default_rng(3)
    conc = _random_conc(rng, 40)
    spec = syn.spectra(np.linspace(0, 300, 40), conc, rng)
    pure = syn.pure_components()
    expected = syn.background() + sum(conc[k][:, None] * pure[k] for k in CONCENTRATION_KEYS)
    np.testing.assert_allclose(spec, expected, rtol=1e-5, atol=1e-2)
    # and the concentrations come back exactly by least squares on the pure spectra
    basis = np.stack([pure[k] for k in CONCENTRATION_KEYS], axis=1)
    est, *_ = np.linalg.lstsq(basis, (spec - syn.background()).T.astype(np.float64), rcond=None)
    for i, k in enumerate(CONCENTRATION_KEYS):
        np.testing.assert_allclose(est[i], conc[k], rtol=1e-3, atol=1e-3 * RANGES[k][1])


def test_same_rng_state_gives_identical_spectra_and_another_seed_differs() -> None:
    syn = RamanSynthesizer()
    conc = _random_conc(np.random.default_rng(9), 50)
    t = np.arange(50) * 0.25
    a = syn.spectra(t, conc, np.random.default_rng(42))
    b = syn.spectra(t, conc, np.random.default_rng(42))
    c = syn.spectra(t, conc, np.random.default_rng(43))
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


def test_noise_is_shot_noise_plus_read_noise() -> None:
    t = np.arange(400) * 0.25
    conc = {k: np.full(t.size, 0.5 * (lo + hi)) for k, (lo, hi) in RANGES.items()}
    noisy = RamanSynthesizer(read_noise_counts=15.0)
    clean = RamanSynthesizer(noise=False)
    # the per-batch draws come before the noise, so the same seed gives the same signal
    resid = noisy.spectra(t, conc, np.random.default_rng(5)).astype(np.float64)
    signal = clean.spectra(t, conc, np.random.default_rng(5)).astype(np.float64)
    z = (resid - signal) / np.sqrt(signal + 15.0**2)
    assert abs(z.std() - 1.0) < 0.02
    assert abs(z.mean()) < 0.01
    # brighter channels are noisier in counts (shot noise), not equally noisy
    bright, dim = np.argmax(signal[0]), np.argmin(signal[0])
    assert (resid - signal)[:, bright].std() > 1.2 * (resid - signal)[:, dim].std()


def test_fluorescence_baseline_rises_over_the_batch_and_differs_between_batches() -> None:
    syn = RamanSynthesizer(noise=False, laser_power_drift=0.0)
    t = np.linspace(0.0, 14 * 24.0, 100)
    conc = {k: np.full(t.size, lo) for k, (lo, _) in RANGES.items()}
    a = syn.spectra(t, conc, np.random.default_rng(1))
    b = syn.spectra(t, conc, np.random.default_rng(2))
    assert a[-1].mean() > 1.1 * a[0].mean()  # concentrations constant: only fluorescence rose
    assert not np.allclose(a, b, rtol=1e-3)
    assert np.all(a > 0)


def test_laser_power_drift_scales_the_whole_spectrum() -> None:
    t = np.linspace(0.0, 96.0, 200)
    conc = {k: np.full(t.size, hi) for k, (_, hi) in RANGES.items()}
    kw = {"noise": False, "fluorescence_counts": 0.0, "media_variability": 0.0}
    drifting = RamanSynthesizer(laser_power_drift=0.02, **kw)
    spec = drifting.spectra(t, conc, np.random.default_rng(4)).astype(np.float64)
    ratio = spec / spec[0]
    assert np.allclose(ratio, ratio[:, :1], rtol=1e-5)  # same factor on every channel
    assert 0.02 < ratio[:, 0].max() - ratio[:, 0].min() <= 0.08


@pytest.mark.parametrize("drop", ["glucose_g_per_l", "vcd_cells_per_ml"])
def test_missing_concentration_is_refused_by_name(drop: str) -> None:
    conc = _random_conc(np.random.default_rng(0), 5)
    del conc[drop]
    with pytest.raises(ValueError, match=drop):
        RamanSynthesizer().spectra(np.arange(5.0), conc, np.random.default_rng(0))


def test_wrong_length_nan_and_negative_concentrations_are_refused() -> None:
    syn, rng = RamanSynthesizer(), np.random.default_rng(0)
    conc = _random_conc(rng, 5)
    with pytest.raises(ValueError, match=r"lactate_g_per_l has shape \(4,\)"):
        syn.spectra(np.arange(5.0), conc | {"lactate_g_per_l": np.ones(4)}, rng)
    bad = conc["titer_g_per_l"].copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="titer_g_per_l holds NaN"):
        syn.spectra(np.arange(5.0), conc | {"titer_g_per_l": bad}, rng)
    with pytest.raises(ValueError, match="glucose_g_per_l holds a negative"):
        syn.spectra(np.arange(5.0), conc | {"glucose_g_per_l": -np.ones(5)}, rng)


def test_bad_axis_is_refused() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        RamanSynthesizer(np.array([400.0, 400.0, 402.0]))


def test_pls_on_15_min_spectra_reaches_a_realistic_glucose_error() -> None:
    """Glucose RMSEP of PLS on held-out batches: a few tenths of a g/L (Abu-Absi 2011)."""
    syn = RamanSynthesizer()
    rng = np.random.default_rng(11)
    xs, ys, batch = [], [], []
    for b in range(8):
        t = np.arange(0.0, 14 * 24.0, 1.0)  # hourly subset of the 15-min grid keeps it fast
        conc = _random_conc(rng, t.size)
        xs.append(syn.spectra(t, conc, rng))
        ys.append(conc["glucose_g_per_l"])
        batch.append(np.full(t.size, b))
    x = savgol_filter(np.concatenate(xs), 15, 2, deriv=1, axis=1)
    y, b = np.concatenate(ys), np.concatenate(batch)
    train, test = b < 6, b >= 6
    model = PLSRegression(n_components=10, scale=False).fit(x[train], y[train])
    rmsep = float(np.sqrt(np.mean((model.predict(x[test]).ravel() - y[test]) ** 2)))
    assert 0.15 < rmsep < 0.8  # not trivially noise-free, not hopeless


def test_a_batch_synthesised_in_pieces_matches_the_whole_batch() -> None:
    """A live twin makes one spectrum every 15 min: pieces with the same batch effects agree."""
    syn = RamanSynthesizer(noise=False, baseline_jitter=0.0)
    t = np.arange(96) * 0.25 + 100.0
    conc = _random_conc(np.random.default_rng(8), t.size)
    fx = syn.draw_batch_effects(np.random.default_rng(8))
    whole = syn.spectra(t, conc, np.random.default_rng(0), batch=fx)
    pieces = [
        syn.spectra(t[i : i + 1], {k: v[i : i + 1] for k, v in conc.items()}, rng, batch=fx)
        for i, rng in enumerate(np.random.default_rng(s) for s in range(t.size))
    ]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
