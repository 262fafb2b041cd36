"""Train and evaluate Raman soft sensors end to end: calibrate, test, and record how.

Shared by ``biopilot model train softsensor`` and the benchmark, so both report the same
figures: RMSEP per analyte on held-out batches, VCD also relative (RMSEP divided by the mean
reference VCD of the test spectra), interval coverage and the share of untrusted spectra.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np

from biopilot.monitor.campaign import ANALYTES, CalibrationSet
from biopilot.monitor.softsensor import RamanSoftSensor
from biopilot.monitor.softsensor_bank import SoftSensorBank

__all__ = ["evaluate", "train_soft_sensor"]

#: Calibration or test data: one set, or one set per co-add window (spectra averaged).
Data = CalibrationSet | Mapping[int, CalibrationSet]


def train_soft_sensor(
    calibration: Data,
    *,
    test: Data | None = None,
    source: dict[str, Any] | None = None,
    coadd: Mapping[str, int] | None = None,
    **params: Any,
) -> tuple[RamanSoftSensor | SoftSensorBank, dict[str, Any]]:
    """Fit Raman soft sensors on ``calibration`` and describe them for the model file.

    Parameters
    ----------
    calibration : CalibrationSet or mapping of int to CalibrationSet
        Spectra, references and batch groups; with ``coadd``, one set per window, each
        built with that co-add (``calibration_set_from_batches(..., coadd=w)``).
    test : same as ``calibration``, optional
        Held-out batches (other seeds); their figures go into the metadata.
    source : dict, optional
        Where the data came from (historian URL, campaign size and seed...).
    coadd : mapping of str to int, optional
        Spectra co-added per analyte (others: 1); gives a :class:`SoftSensorBank`.
        None: one :class:`RamanSoftSensor` on single spectra.
    **params
        Hyper-parameters of :class:`RamanSoftSensor`.

    Returns
    -------
    model, metadata
        The fitted sensor(s) and JSON-ready training metadata: date (UTC), source, batches
        with their seeds (and DoE factors), per-analyte preprocessing, latent variables,
        RMSECV and RMSEC-candidates, co-add windows, and test figures when ``test`` is given.

    Raises
    ------
    ValueError
        If ``coadd`` names an unknown analyte or a window has no calibration set.
    """
    model: RamanSoftSensor | SoftSensorBank
    sets = _by_window(calibration, coadd)
    analytes = tuple(params.pop("analytes", ANALYTES))
    if coadd is None:
        model = _fit(sets[1], analytes, params)
    else:
        unknown = sorted(set(coadd) - set(analytes))
        if unknown:
            raise ValueError(f"coadd names analytes not predicted: {unknown}")
        windows: dict[int, list[str]] = {}
        for a in analytes:
            windows.setdefault(int(coadd.get(a, 1)), []).append(a)
        model = SoftSensorBank({w: _fit(sets[w], tuple(a), params) for w, a in windows.items()})
    first = sets[min(sets)]
    meta: dict[str, Any] = {
        "trained_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "chemotools_version": version("chemotools"),
        "source": source or {},
        "n_spectra": len(first),
        "batches": first.batches,
        "coadd": {a: int((coadd or {}).get(a, 1)) for a in model.analytes},
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
        held = _by_window(test, coadd)
        meta["test"] = {"batches": held[min(held)].batches, "figures": evaluate(model, held)}
    return model, meta


def _by_window(data: Data, coadd: Mapping[str, int] | None) -> dict[int, CalibrationSet]:
    """Data per co-add window; raises if a window of ``coadd`` has no set."""
    sets = {1: data} if isinstance(data, CalibrationSet) else dict(data)
    need = {1} if coadd is None else {1, *map(int, coadd.values())}
    missing = sorted(need - set(sets))
    if missing:
        raise ValueError(f"no calibration set for co-add window(s) {missing}")
    return sets


def _fit(
    data: CalibrationSet, analytes: tuple[str, ...], params: dict[str, Any]
) -> RamanSoftSensor:
    model = RamanSoftSensor(analytes, wavenumbers_cm1=data.wavenumbers_cm1, **params)
    return model.fit(data.spectra, data.targets, groups=data.groups)


def evaluate(model: RamanSoftSensor | SoftSensorBank, data: Data) -> dict[str, dict[str, float]]:
    """Return per-analyte figures of ``model`` on ``data`` (held-out batches).

    A :class:`SoftSensorBank` is scored sensor by sensor, each on the set of its window
    (``data`` then maps windows to sets), as its live co-adds would give.

    Returns
    -------
    dict of analyte to dict
        ``rmsep`` (analyte units, over every spectrum with a reference), ``relative``
        (rmsep / mean reference), ``rmsep_trusted`` (over trusted predictions only),
        ``coverage`` (share of references inside the interval), ``untrusted`` (share of
        spectra flagged) and ``n``.
    """
    if isinstance(model, SoftSensorBank):
        sets = _by_window(data, model.coadd)
        return {
            a: f
            for w, sensor in model.sensors.items()
            for a, f in evaluate(sensor, sets[w]).items()
        }
    if not isinstance(data, CalibrationSet):
        data = data[1]
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
