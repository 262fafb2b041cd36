"""Raman soft sensors: accuracy on held-out twin batches, intervals, trust flags, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.exceptions import NotFittedError

from biopilot.monitor.campaign import (
    ANALYTES,
    FACTORS,
    CalibrationSet,
    calibration_set_from_batches,
    design_campaign,
    run_campaign,
)
from biopilot.monitor.softsensor import RamanSoftSensor
from biopilot.monitor.softsensor_stats import FoldStats, kernel_pls1_path
from biopilot.monitor.softsensor_train import evaluate
from biopilot.twin.raman import RamanSynthesizer


def _campaign(n: int, seed: int) -> CalibrationSet:
    runs = design_campaign(n, seed=seed)
    return calibration_set_from_batches(run_campaign(runs), every=6, runs=runs)


@pytest.fixture(scope="module")
def data() -> tuple[CalibrationSet, CalibrationSet]:
    """8 designed calibration batches and 3 held-out batches of another seed (90-min spectra)."""
    return _campaign(8, seed=11), _campaign(3, seed=12)


@pytest.fixture(scope="module")
def sensor(data: tuple[CalibrationSet, CalibrationSet]) -> RamanSoftSensor:
    cal, _ = data
    return RamanSoftSensor(preprocessing="detrend").fit(cal.spectra, cal.targets, groups=cal.groups)


def _band(axis: np.ndarray, centre: float, fwhm: float, height: float) -> np.ndarray:
    return height / (1.0 + ((axis - centre) / (0.5 * fwhm)) ** 2)


def test_held_out_batches_meet_loose_rmsep_bounds(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    # The benchmark's targets are for >= 10 held-out batches and a large campaign; these
    # bounds are looser but far below the spread of the references (R2 >= 0.8).
    _, test = data
    fig = evaluate(sensor, test)
    assert fig["glucose_g_per_l"]["rmsep"] <= 0.6
    assert fig["lactate_g_per_l"]["rmsep"] <= 0.45
    assert fig["titer_g_per_l"]["rmsep"] <= 0.6
    assert fig["vcd_cells_per_ml"]["relative"] <= 0.2
    pred = sensor.predict(test.spectra)
    # Lactate varies little within these 3 batches (sd ~0.5 g/L), hence its lower R2 bound.
    bounds = {"glucose_g_per_l": 0.8, "lactate_g_per_l": 0.6, "titer_g_per_l": 0.8}
    bounds["vcd_cells_per_ml"] = 0.8
    for analyte, bound in bounds.items():
        y = test.targets[analyte].to_numpy()
        k = pred.analytes.index(analyte)
        r2 = 1 - np.mean((pred.value[:, k] - y) ** 2) / np.var(y)
        assert r2 >= bound, (analyte, r2)


def test_interval_covers_about_95_percent(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    # Glutamine and ammonia are read mostly through their correlation with the other species
    # (their own bands are weak), so their residuals are far from homoscedastic: only >= 85 %.
    fig = evaluate(sensor, data[1])
    for analyte in ANALYTES:
        assert fig[analyte]["coverage"] >= 0.85, (analyte, fig[analyte])
    for analyte in ("glucose_g_per_l", "lactate_g_per_l", "titer_g_per_l", "vcd_cells_per_ml"):
        assert fig[analyte]["coverage"] <= 0.995, (analyte, fig[analyte])


def test_in_space_spectra_exceed_the_95_limits_about_5_percent_of_the_time(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    pred = sensor.predict(data[1].spectra)
    for j, analyte in enumerate(pred.analytes):
        fit = sensor.fits_[analyte]
        t2_rate = np.mean(pred.t2[:, j] > fit.t2_limit(0.95))
        dx_rate = np.mean(pred.dmodx[:, j] > fit.spe.dmodx_limit(0.95))
        assert 0.0 < t2_rate <= 0.12 and 0.0 < dx_rate <= 0.12, (analyte, t2_rate, dx_rate)
        assert np.mean(pred.trusted[:, j]) >= 0.93  # 99 % limits on both statistics


def test_antifoam_contaminated_spectra_are_flagged_with_the_reason(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    # PDMS antifoam bands (Si-C 710, Si-O-Si 490 cm-1) strong enough to bias glucose ~1 g/L.
    axis = sensor.wavenumbers_cm1_
    clean = data[1].spectra[100:140].astype(float)
    pdms = _band(axis, 710.0, 20.0, 2000.0) + _band(axis, 490.0, 20.0, 800.0)
    before, after = sensor.predict(clean), sensor.predict(clean + pdms)
    assert np.all(after.trusted == 0)
    assert all("DModX" in r for r in after.reason.ravel())
    assert np.mean(before.trusted) >= 0.95
    assert np.all(before.reason[before.trusted] == "")


def test_concentrations_outside_the_campaign_are_flagged_by_t2(sensor: RamanSoftSensor) -> None:
    synth = RamanSynthesizer()
    n = 20
    conc = {
        "glucose_g_per_l": np.full(n, 30.0),
        "lactate_g_per_l": np.full(n, 8.0),
        "glutamine_mmol_per_l": np.full(n, 5.0),
        "ammonium_mmol_per_l": np.full(n, 5.0),
        "titer_g_per_l": np.full(n, 15.0),
        "vcd_cells_per_ml": np.full(n, 8e7),
    }
    spectra = synth.spectra(np.linspace(100, 110, n), conc, np.random.default_rng(5))
    pred = sensor.predict(spectra)
    assert not pred.trusted.any()
    assert all("T2" in r for r in pred.reason.ravel())


def test_nan_spectrum_is_untrusted_with_the_reason_and_others_unchanged(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    spectra = data[1].spectra[:5].astype(float)
    spectra[2, 10:13] = np.nan
    pred, ref = sensor.predict(spectra), sensor.predict(data[1].spectra[:5])
    assert np.all(np.isnan(pred.value[2])) and not pred.trusted[2].any()
    assert "NaN/inf in 3 of 701 points" in pred.reason[2, 0]
    np.testing.assert_allclose(pred.value[[0, 1, 3, 4]], ref.value[[0, 1, 3, 4]])
    rows = pred.frame()
    assert list(rows.columns[2:]) == ["value", "low", "high", "t2", "dmodx", "trusted", "reason"]
    assert len(rows) == 5 * len(ANALYTES)


@pytest.mark.parametrize("preprocessing", ["detrend_snv", "sg1"])
def test_a_nan_spectrum_spares_the_others_whatever_the_preprocessing(
    data: tuple[CalibrationSet, CalibrationSet], preprocessing: str
) -> None:
    # SNV divides each spectrum by its own sd: the bad row's stand-in must not be constant.
    cal, test = data
    model = RamanSoftSensor(["titer_g_per_l"], preprocessing=preprocessing, max_components=6)
    model.fit(cal.spectra, cal.targets, groups=cal.groups)
    spectra = test.spectra[:4].astype(float)
    spectra[1, 100] = np.inf
    pred = model.predict(spectra)
    assert not pred.trusted[1, 0] and np.isnan(pred.value[1, 0])
    np.testing.assert_allclose(pred.value[[0, 2, 3]], model.predict(test.spectra[[0, 2, 3]]).value)


def test_a_spectrum_of_the_wrong_length_names_both_lengths(sensor: RamanSoftSensor) -> None:
    with pytest.raises(ValueError, match=r"700 points.*has 701"):
        sensor.predict(np.ones(700))


def test_one_spectrum_gives_one_row(
    sensor: RamanSoftSensor, data: tuple[CalibrationSet, CalibrationSet]
) -> None:
    pred = sensor.predict(data[1].spectra[7])
    assert pred.value.shape == (1, len(ANALYTES))
    assert np.all(pred.low < pred.value) and np.all(pred.value < pred.high)
    assert np.asarray(pred).shape == (1, len(ANALYTES))


def test_estimator_contract(sensor: RamanSoftSensor) -> None:
    fresh = clone(sensor)
    assert fresh.get_params()["preprocessing"] == "detrend"
    assert not hasattr(fresh, "models_")
    with pytest.raises(NotFittedError):
        fresh.predict(np.ones(701))
    learned = [k for k in vars(sensor) if k not in fresh.get_params()]
    assert learned and all(k.endswith("_") for k in learned)


def test_auto_preprocessing_keeps_the_lowest_rmsecv(
    data: tuple[CalibrationSet, CalibrationSet],
) -> None:
    cal, _ = data
    rows = slice(None, None, 3)
    model = RamanSoftSensor(analytes=("glucose_g_per_l",), candidates=("detrend", "sg1"))
    model.fit(cal.spectra[rows], cal.targets[["glucose_g_per_l"]][rows], groups=cal.groups[rows])
    fit = model.fits_["glucose_g_per_l"]
    assert set(fit.rmsecv_by_preprocessing) == {"detrend", "sg1"}
    assert fit.preprocessing == min(
        fit.rmsecv_by_preprocessing, key=fit.rmsecv_by_preprocessing.get
    )
    assert model.score(cal.spectra[rows], cal.targets[["glucose_g_per_l"]][rows]) > 0.9


def test_kernel_cv_path_matches_scikit_learn_pls() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 30)) @ rng.normal(size=(30, 40)) + rng.normal(size=(120, 40))
    y = x[:, :5].sum(axis=1) + rng.normal(size=120)
    xc, yc = x - x.mean(0), y - y.mean()
    path = kernel_pls1_path(xc.T @ xc, xc.T @ yc, 6)
    for a in range(1, 7):
        pls = PLSRegression(n_components=a, scale=False).fit(x, y)
        np.testing.assert_allclose(xc @ path[:, a - 1] + y.mean(), pls.predict(x), rtol=1e-8)
    folds = np.repeat(np.arange(4), 30)
    cv = FoldStats(x, folds).cv_path(y, 6)
    train = folds != 0
    pls = PLSRegression(n_components=4, scale=False).fit(x[train], y[train])
    np.testing.assert_allclose(cv.predictions[~train, 3], pls.predict(x[~train]), rtol=1e-8)


def test_fit_refuses_nan_spectra_and_a_single_batch(
    data: tuple[CalibrationSet, CalibrationSet],
) -> None:
    cal, _ = data
    x = cal.spectra[:50].astype(float)
    with pytest.raises(ValueError, match="2 batches"):
        RamanSoftSensor(preprocessing="detrend").fit(x, cal.targets[:50], groups=np.zeros(50))
    x[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RamanSoftSensor(preprocessing="detrend").fit(x, cal.targets[:50])


def test_campaign_design_is_seeded_and_stratified() -> None:
    a, b, c = (design_campaign(6, seed=s) for s in (4, 4, 5))
    assert [r.factors for r in a] == [r.factors for r in b]
    assert [r.seed for r in a] != [r.seed for r in c]
    for name, (lo, hi) in FACTORS.items():
        strata = sorted(int((r.factors[name] - lo) / (hi - lo) * 6) for r in a)
        assert strata == list(range(6)), name  # Latin hypercube: one point per stratum
    assert a[0].recipe.glucose_feed is not None
    assert a[0].recipe.glucose_feed.target_g_per_l == pytest.approx(
        a[0].factors["glucose_target_g_per_l"]
    )


def test_coadded_rows_are_trailing_means_paired_with_the_latest_truth() -> None:
    runs = design_campaign(1, seed=9)
    (batch,) = run_campaign(runs)
    assert batch.raman is not None
    single = calibration_set_from_batches([batch])
    coadded = calibration_set_from_batches([batch], coadd=4)
    assert len(coadded) == len(single) - 3
    np.testing.assert_allclose(coadded.spectra[0], batch.raman.spectra[:4].mean(0), rtol=1e-5)
    assert coadded.targets.iloc[0].equals(single.targets.iloc[3])
    assert coadded.time_h[0] == pytest.approx(0.75)
