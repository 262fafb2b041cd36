"""Soft-sensor model files: round trip, versions, axis and integrity checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from biopilot import __version__
from biopilot.monitor.campaign import (
    CalibrationSet,
    calibration_set_from_batches,
    design_campaign,
    run_campaign,
)
from biopilot.monitor.modelio import ModelFileError, load_model, read_header, save_model
from biopilot.monitor.softsensor_train import train_soft_sensor


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CalibrationSet]:
    runs = design_campaign(3, seed=21)
    cal = calibration_set_from_batches(run_campaign(runs), every=12, runs=runs)
    model, meta = train_soft_sensor(
        cal, source={"campaign": 3, "seed": 21}, preprocessing="detrend"
    )
    path = save_model(model, tmp_path_factory.mktemp("models") / "ss.bpmodel", meta)
    return path, cal


def _rewrite_header(src: Path, dst: Path, **changes: str) -> Path:
    head, payload = src.read_bytes().split(b"\n", 1)
    header = json.loads(head)
    header.update(changes)
    dst.write_bytes(json.dumps(header).encode() + b"\n" + payload)
    return dst


def test_round_trip_gives_equal_predictions(trained: tuple[Path, CalibrationSet]) -> None:
    path, cal = trained
    first, second = load_model(path), load_model(path, wavenumbers_cm1=cal.wavenumbers_cm1)
    a, b = first.predict(cal.spectra[:40]), second.predict(cal.spectra[:40])
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.trusted, b.trusted)


def test_header_carries_the_training_metadata(trained: tuple[Path, CalibrationSet]) -> None:
    path, cal = trained
    header = read_header(path)
    assert header["biopilot_version"] == __version__ and header["sklearn_version"]
    assert header["created_utc"].endswith("+00:00")
    meta = header["metadata"]
    assert [b["seed"] for b in meta["batches"]] == [int(b["seed"]) for b in cal.batches]
    assert set(meta["batches"][0]["factors"]) and meta["source"]["seed"] == 21
    assert meta["cv"]["glucose_g_per_l"]["rmsecv"] > 0
    assert header["wavenumbers"]["n_points"] == 701
    assert header["wavenumbers"]["first_cm1"] == 400.0


def test_another_major_version_is_refused(
    trained: tuple[Path, CalibrationSet], tmp_path: Path
) -> None:
    other = _rewrite_header(trained[0], tmp_path / "old.bpmodel", biopilot_version="7.0.0")
    with pytest.raises(ModelFileError, match=r"biopilot 7\.0\.0.*incompatible"):
        load_model(other)


def test_another_scikit_learn_is_refused(
    trained: tuple[Path, CalibrationSet], tmp_path: Path
) -> None:
    other = _rewrite_header(trained[0], tmp_path / "sk.bpmodel", sklearn_version="0.24.2")
    with pytest.raises(ModelFileError, match=r"scikit-learn 0\.24\.2"):
        load_model(other)


def test_another_axis_is_refused_naming_both(trained: tuple[Path, CalibrationSet]) -> None:
    axis = np.arange(400.0, 1800.0, 4.0)
    with pytest.raises(ValueError, match=r"701 points \(400.0-1800.0 cm-1\).*350 points"):
        load_model(trained[0], wavenumbers_cm1=axis)


def test_an_altered_payload_is_refused(
    trained: tuple[Path, CalibrationSet], tmp_path: Path
) -> None:
    data = bytearray(trained[0].read_bytes())
    data[-20] ^= 0xFF
    bad = tmp_path / "bad.bpmodel"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(bad)


def test_a_foreign_file_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x80\x04not a model")
    with pytest.raises(ModelFileError, match="not a biopilot model file"):
        read_header(junk)
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.bpmodel")
