"""Train and evaluate Raman soft sensors end to end: calibrate, test, and record how.

Shared by ``biopilot model train softsensor`` and the benchmark, so both report the same
figures: RMSEP per analyte on held-out batches, VCD also relative (RMSEP divided by the mean
reference VCD of the test spectra), interval coverage and the share of untrusted spectra.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np

from biopilot.monitor.campaign import CalibrationSet
from biopilot.monitor.softsensor import RamanSoftSensor

__all__ = ["evaluate", "train_soft_sensor"]


def train_soft_sensor(
    calibration: CalibrationSet,
    *,
    test: CalibrationSet | None = None,
    source: dict[str, Any] | None = None,
    **params: Any,
) -> tuple[RamanSoftSensor, dict[str, Any]]:
    """Fit a :class:`RamanSoftSensor` on ``calibration`` and describe it for the model file.

    Parameters
    ----------
    calibration : CalibrationSet
        Spectra, references and batch groups.
    test : CalibrationSet, optional
        Held-out batches (other seeds); their figures go into the metadata.
    source : dict, optional
        Where the data came from (historian URL, campaign size and seed...).
    **params
        Hyper-parameters of :class:`RamanSoftSensor`.

    Returns
    -------
    model, metadata
        The fitted sensor and JSON-ready training metadata: date (UTC), source, batches
        with their seeds (and DoE factors), per-analyte preprocessing, latent variables,
        RMSECV and RMSEC-candidates, and test figures when ``test`` is given.
    """
    model = RamanSoftSensor(wavenumbers_cm1=calibration.wavenumbers_cm1, **params)
    model.fit(calibration.spectra, calibration.targets, groups=calibration.groups)
    meta: dict[str, Any] = {
        "trained_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "chemotools_version": version("chemotools"),
        "source": source or {},
        "n_spectra": len(calibration),
        "batches": calibration.batches,
        "params": {k: v for k, v in model.get_params().items() if k != "wavenumbers_cm1"},
        "cv": {
            a: {
                "preprocessing": f.preprocessing,
                "n_components": f.n_components,
                "rmsecv": f.rmsecv,
                "rmsecv_by_preprocessing": f.rmsecv_by_preprocessing,
                "interval_half_width": f.interval_q,
            }
            for a, f in model.fits_.items()
        },
    }
    if test is not None:
        meta["test"] = {"batches": test.batches, "figures": evaluate(model, test)}
    return model, meta


def evaluate(model: RamanSoftSensor, data: CalibrationSet) -> dict[str, dict[str, float]]:
    """Return per-analyte figures of ``model`` on ``data`` (held-out batches).

    Returns
    -------
    dict of analyte to dict
        ``rmsep`` (analyte units, over every spectrum with a reference), ``relative``
        (rmsep / mean reference), ``rmsep_trusted`` (over trusted predictions only),
        ``coverage`` (share of references inside the interval), ``untrusted`` (share of
        spectra flagged) and ``n``.
    """
    pred = model.predict(data.spectra)
    out = {}
    for j, analyte in enumerate(pred.analytes):
        y = data.targets[analyte].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(pred.value[:, j])
        err = pred.value[ok, j] - y[ok]
        trusted = pred.trusted[ok, j]
        inside = (y[ok] >= pred.low[ok, j]) & (y[ok] <= pred.high[ok, j])
        rmsep = float(np.sqrt(np.mean(err**2)))
        out[analyte] = {
            "n": int(ok.sum()),
            "rmsep": rmsep,
            "relative": rmsep / float(np.mean(y[ok])),
            "rmsep_trusted": _rms(err[trusted]),
            "coverage": float(np.mean(inside)),
            "untrusted": float(1.0 - np.mean(pred.trusted[:, j])),
        }
    return out


def _rms(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(err**2))) if err.size else float("nan")
