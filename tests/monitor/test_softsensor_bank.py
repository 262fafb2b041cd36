"""Soft sensors that co-add spectra per analyte: live co-adds, accuracy gain, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biopilot.monitor.campaign import (
    CalibrationSet,
    calibration_set_from_batches,
    calibration_sets,
    design_campaign,
    run_campaign,
)
from biopilot.monitor.modelio import load_model, save_model
from biopilot.monitor.softsensor import RamanSoftSensor
from biopilot.monitor.softsensor_bank import DEFAULT_COADD, SoftSensorBank, trailing_mean
from biopilot.monitor.softsensor_train import evaluate, train_soft_sensor
from biopilot.twin import BatchResult

PARAMS = {"preprocessing": "detrend", "max_components": 12, "cv_folds": 4}


def _batches(n: int, seed: int) -> tuple[list[BatchResult], list]:
    runs = design_campaign(n, seed=seed)
    return run_campaign(runs), runs


@pytest.fixture(scope="module")
def held_out() -> list[BatchResult]:
    return _batches(3, seed=22)[0]


@pytest.fixture(scope="module")
def trained(held_out: list[BatchResult]) -> tuple[SoftSensorBank, dict, dict[int, CalibrationSet]]:
    """A bank on 8 designed batches (every 6th row), tested on 3 others at full rate."""
    batches, runs = _batches(8, seed=21)
    cal = calibration_sets(batches, DEFAULT_COADD.values(), every=6, runs=runs)
    test = calibration_sets(held_out, DEFAULT_COADD.values())
    bank, meta = train_soft_sensor(cal, test=test, coadd=DEFAULT_COADD, **PARAMS)
    assert isinstance(bank, SoftSensorBank)
    return bank, meta, test


def test_trailing_mean_is_causal_expanding_and_skips_bad_rows() -> None:
    x = np.arange(12.0).reshape(6, 2)
    x[3] = np.nan
    m = trailing_mean(x, 3)
    np.testing.assert_allclose(m[0], x[0])  # fewer rows at the start: what there is
    np.testing.assert_allclose(m[2], x[:3].mean(0))
    np.testing.assert_allclose(m[4], x[[2, 4]].mean(0))  # the NaN row is left out
    np.testing.assert_allclose(m[5], x[[4, 5]].mean(0))
    assert np.all(np.isnan(trailing_mean(np.full((2, 2), np.nan), 3)))


def test_titer_and_vcd_come_from_the_windows_mean_and_beat_single_spectra(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]],
) -> None:
    _, meta, test = trained
    assert meta["coadd"]["titer_g_per_l"] == 8 and meta["coadd"]["glucose_g_per_l"] == 1
    cal = calibration_sets(*_batches(8, seed=21)[:1], (), every=6)[1]
    single = RamanSoftSensor(**PARAMS).fit(cal.spectra, cal.targets, groups=cal.groups)
    one = evaluate(single, test[1])
    both = meta["test"]["figures"]
    # 8 spectra: noise variance / 8; the lag of ~1 h costs far less on these slow analytes.
    assert both["titer_g_per_l"]["rmsep"] < 0.75 * one["titer_g_per_l"]["rmsep"]
    assert both["vcd_cells_per_ml"]["rmsep"] < 0.75 * one["vcd_cells_per_ml"]["rmsep"]
    assert both["glucose_g_per_l"]["rmsep"] == pytest.approx(one["glucose_g_per_l"]["rmsep"])


def test_live_predictions_equal_the_calibration_co_adds(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]], held_out: list[BatchResult]
) -> None:
    bank, _, _ = trained
    raman = held_out[0].raman
    assert raman is not None
    live = bank.predict(raman.spectra[:40]).column("titer_g_per_l")["value"].to_numpy()
    rows = calibration_set_from_batches(held_out[:1], coadd=8)
    offline = bank.sensors[8].predict(rows.spectra[:33]).column("titer_g_per_l")["value"]
    np.testing.assert_allclose(live[7:], offline.to_numpy(), rtol=1e-4, atol=1e-5)


def test_history_makes_a_split_stream_predict_as_one(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]], held_out: list[BatchResult]
) -> None:
    bank, _, _ = trained
    raman = held_out[1].raman
    assert raman is not None
    x = raman.spectra[100:130]
    whole = bank.predict(x).value
    later = bank.predict(x[20:], history=x[:20]).value
    np.testing.assert_allclose(later, whole[20:], rtol=1e-9)
    assert bank.history_needed == 7


def test_a_nan_spectrum_is_untrusted_and_spares_its_neighbours(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]], held_out: list[BatchResult]
) -> None:
    bank, _, _ = trained
    raman = held_out[2].raman
    assert raman is not None
    x = raman.spectra[200:216].astype(float)
    x[10, 5] = np.nan
    pred = bank.predict(x)
    assert not pred.trusted[10].any() and np.all(np.isnan(pred.value[10]))
    assert "NaN/inf" in pred.reason[10, pred.analytes.index("titer_g_per_l")]
    assert np.all(np.isfinite(pred.value[11:]))  # the co-adds after it leave it out
    clean = bank.predict(np.delete(x, 10, axis=0)).value
    np.testing.assert_allclose(pred.value[:10], clean[:10], rtol=1e-9)


def test_model_file_round_trip(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]],
    held_out: list[BatchResult],
    tmp_path: Path,
) -> None:
    bank, meta, _ = trained
    path = save_model(bank, tmp_path / "bank.bpmodel", meta)
    raman = held_out[0].raman
    assert raman is not None
    again = load_model(path, wavenumbers_cm1=raman.wavenumbers_cm1)
    np.testing.assert_array_equal(again.predict(raman.spectra[:20]).value,
                                  bank.predict(raman.spectra[:20]).value)  # fmt: skip


def test_bad_configurations_name_the_problem(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]],
) -> None:
    bank, _, test = trained
    with pytest.raises(ValueError, match="predicted by the 1- and 8-spectrum"):
        SoftSensorBank({1: bank.sensors[1], 8: bank.sensors[1]})
    with pytest.raises(ValueError, match="not predicted"):
        train_soft_sensor(test, coadd={"viability_pct": 8})
    with pytest.raises(ValueError, match=r"window\(s\) \[4\]"):
        train_soft_sensor(test, coadd={"titer_g_per_l": 4})


def test_a_batch_first_spectra_are_judged_as_the_few_they_are(
    trained: tuple[SoftSensorBank, dict, dict[int, CalibrationSet]], held_out: list[BatchResult]
) -> None:
    # At inoculation a co-add holds 1..7 spectra: sqrt(8/k) times the noise of a full one.
    # Its interval widens by that factor and its DModX is referred to a full co-add, so the
    # first spectra are not flagged (a trust alarm at every batch start) nor over-trusted.
    bank, _, _ = trained
    for batch in held_out:
        assert batch.raman is not None
        pred = bank.predict(batch.raman.spectra[:12])
        j = pred.analytes.index("titer_g_per_l")
        assert np.count_nonzero(~pred.trusted[:8, j]) <= 1, pred.reason[:, j]  # 4+ unfixed
        assert pred.trusted[8:, j].all()
        width = pred.high[:, j] - pred.low[:, j]
        np.testing.assert_allclose(width[:8] / width[8], np.sqrt(8 / np.arange(1, 9)), rtol=0.02)
        single = bank.sensors[1].predict(batch.raman.spectra[:12])
        assert np.array_equal(single.trusted, pred.trusted[:, : len(single.analytes)])
