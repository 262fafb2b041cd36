"""Measurements the state estimator fuses: their type, their models from the shared kinetics.

A measurement is a tag, a value and its variance. The tag names the measured quantity
(``glucose_g_per_l``, ``capacitance_pf_per_cm``...) optionally behind a source prefix
(``raman/glucose_g_per_l``), so an at-line assay and a soft sensor of the same quantity can
arrive together. Each quantity has a measurement function ``h(x, u, p, multipliers)``
evaluated on all sigma points at once and written from :mod:`biopilot.models.kinetics`
(OUR and CER are its :func:`~biopilot.models.kinetics.rates`; capacitance is proportional to
the viable cells, with a calibration factor the filter estimates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from biopilot.models.kinetics import NUMPY_OPS, STATE_NAMES, KineticParameters, rates
from biopilot.twin.plant import CAPACITANCE_PF_PER_CM_PER_MILLION
from biopilot.twin.sensors import ASSAYS, ONLINE_SENSORS

__all__ = [
    "ATLINE_TAGS",
    "MEASUREMENT_MODELS",
    "ONLINE_TAGS",
    "Measurement",
    "MeasurementFn",
    "MeasurementsLike",
    "PredictionLike",
    "Rejection",
    "RejectionReason",
    "as_measurements",
    "atline_measurements",
    "default_variance",
    "measurement_from_interval",
    "online_measurements",
    "quantity",
    "screen",
    "soft_sensor_measurements",
]

#: h(x (n_states, N), u (n_inputs,), parameters with (N,) fields, multipliers) -> (N,)
MeasurementFn = Callable[[np.ndarray, np.ndarray, KineticParameters, Mapping[str, Any]], Any]
RejectionReason = Literal["missing", "untrusted", "no model", "bad variance", "gated"]


@dataclass(frozen=True)
class Measurement:
    """One measured value with its variance (units of the tag, squared).

    ``trusted=False`` (a soft sensor outside its calibration space) makes the estimator skip
    it and report it as rejected; a None or NaN value is skipped the same way.
    """

    tag: str
    value: float | None
    variance: float
    trusted: bool = True


@dataclass(frozen=True)
class Rejection:
    """A measurement the estimator did not use, and why (``nis``: its innovation test)."""

    tag: str
    value: float | None
    reason: RejectionReason
    nis: float | None = None


#: What :meth:`StateEstimator.step` accepts: ``{tag: (value, variance)}``, ``{tag:
#: Measurement}`` or a sequence of :class:`Measurement` (None: nothing measured).
MeasurementsLike = (
    Mapping[str, "Measurement | tuple[float | None, float]"] | Sequence[Measurement] | None
)


def quantity(tag: str) -> str:
    """Return the measured quantity of a tag: ``"raman/titer_g_per_l"`` -> ``"titer_g_per_l"``."""
    return tag.rsplit("/", 1)[-1]


def _state(name: str) -> MeasurementFn:
    i = STATE_NAMES.index(name)
    return lambda x, u, p, m: x[i]


def _viability(x: np.ndarray, u: np.ndarray, p: KineticParameters, m: Mapping[str, Any]) -> Any:
    return 100.0 * x[0] / np.maximum(x[0] + x[1], 1.0)


def _our(x: np.ndarray, u: np.ndarray, p: KineticParameters, m: Mapping[str, Any]) -> Any:
    return rates(x, u, p, NUMPY_OPS).our_mmol_per_l_h


def _cer(x: np.ndarray, u: np.ndarray, p: KineticParameters, m: Mapping[str, Any]) -> Any:
    return rates(x, u, p, NUMPY_OPS).cer_mmol_per_l_h


def _capacitance(x: np.ndarray, u: np.ndarray, p: KineticParameters, m: Mapping[str, Any]) -> Any:
    # Permittivity ~ viable biovolume (Opel et al. 2010, Biotechnol. Prog. 26:1187): the
    # per-cell factor drifts as cells swell, so it is an estimated multiplier.
    return m["capacitance"] * CAPACITANCE_PF_PER_CM_PER_MILLION * x[0] / 1e6


def _base_ml(x: np.ndarray, u: np.ndarray, p: KineticParameters, m: Mapping[str, Any]) -> Any:
    return 1e3 * x[STATE_NAMES.index("base_added_l")]


#: Measurement function of each quantity the estimator can fuse.
MEASUREMENT_MODELS: Mapping[str, MeasurementFn] = {
    **{n: _state(n) for n in STATE_NAMES[:9]},
    "viability_pct": _viability,
    "our_mmol_per_l_h": _our,
    "cer_mmol_per_l_h": _cer,
    "capacitance_pf_per_cm": _capacitance,
    "base_added_ml": _base_ml,
}
#: Online tags fused by default (pH, DO, temperature and gassing are controlled, not states).
ONLINE_TAGS: tuple[str, ...] = (
    "our_mmol_per_l_h",
    "cer_mmol_per_l_h",
    "capacitance_pf_per_cm",
    "volume_l",
    "base_added_ml",
)
#: At-line assays fused by default.
ATLINE_TAGS: tuple[str, ...] = tuple(a.tag for a in ASSAYS if a.tag in MEASUREMENT_MODELS)

# What the measurement functions leave out, as (relative sd, absolute sd), added to the
# sensor's own noise: the base pump's pH loop doses with a deadband and lag, not exactly the
# model's base (twin: within ~5 % and 0.5 L over a batch); the load cell then sees that base.
_MODEL_ERROR: Mapping[str, tuple[float, float]] = {
    "our_mmol_per_l_h": (0.02, 0.0),
    "cer_mmol_per_l_h": (0.02, 0.0),
    "capacitance_pf_per_cm": (0.02, 0.0),
    "base_added_ml": (0.05, 300.0),
    "volume_l": (0.0, 1.0),
}
_SENSOR_SD: Mapping[str, tuple[float, float]] = {
    **{s.tag: (s.noise_cv, s.noise_sd) for s in ONLINE_SENSORS},
    **{a.tag: (a.cv, a.sd) for a in ASSAYS},
}


def default_variance(tag: str, value: float) -> float:
    """Return the variance of a reading of ``tag``: data-sheet noise plus model error.

    Sensor precisions are the data-sheet values kept once in :mod:`biopilot.twin.sensors`
    (probe repeatability, assay CVs); the model-error part covers what the measurement
    function leaves out.

    Raises
    ------
    KeyError
        If no precision is known for the tag's quantity.
    """
    q = quantity(tag)
    cv, sd = _SENSOR_SD[q]
    mcv, msd = _MODEL_ERROR.get(q, (0.0, 0.0))
    v = abs(value)
    return (cv * v + sd) ** 2 + (mcv * v) ** 2 + msd**2


def online_measurements(
    row: Mapping[str, float], tags: Iterable[str] = ONLINE_TAGS
) -> list[Measurement]:
    """Return the online readings in ``row`` (tag -> value) as measurements, NaN kept."""
    return [_default(t, row.get(t)) for t in tags if t in row]


def atline_measurements(
    row: Mapping[str, float], tags: Iterable[str] = ATLINE_TAGS
) -> list[Measurement]:
    """Return the at-line assays in ``row`` (tag -> value) as measurements, NaN kept."""
    return [_default(t, row.get(t)) for t in tags if t in row]


def measurement_from_interval(
    tag: str,
    value: float | None,
    lower: float,
    upper: float,
    *,
    trusted: bool = True,
    coverage: float = 0.95,
) -> Measurement:
    """Return a soft-sensor prediction with a central ``coverage`` interval as a measurement.

    The variance is that of a normal distribution with that interval:
    ``sd = (upper - lower) / (2 z)``, ``z`` the normal quantile of ``(1 + coverage) / 2``.
    """
    from scipy.stats import norm

    z = float(norm.ppf(0.5 * (1.0 + coverage)))
    sd = (float(upper) - float(lower)) / (2.0 * z)
    return Measurement(tag, value, sd * sd, trusted)


def as_measurements(measurements: MeasurementsLike) -> list[Measurement]:
    """Return the accepted measurement forms (see :data:`MeasurementsLike`) as a list."""
    if measurements is None:
        return []
    if isinstance(measurements, Mapping):
        out = []
        for tag, v in measurements.items():
            out.append(v if isinstance(v, Measurement) else Measurement(tag, v[0], float(v[1])))
        return out
    return list(measurements)


def screen(m: Measurement) -> RejectionReason | None:
    """Return why a measurement cannot be used before any innovation test, or None."""
    if m.value is None or not math.isfinite(float(m.value)):
        return "missing"
    if not m.trusted:
        return "untrusted"
    if quantity(m.tag) not in MEASUREMENT_MODELS:
        return "no model"
    if not (math.isfinite(m.variance) and m.variance > 0):
        return "bad variance"
    return None


class PredictionLike(Protocol):
    """What :func:`soft_sensor_measurements` reads of a soft-sensor prediction (n x k arrays).

    :class:`biopilot.monitor.softsensor.SoftSensorPrediction` has this shape.
    """

    @property
    def analytes(self) -> tuple[str, ...]: ...
    @property
    def value(self) -> np.ndarray: ...
    @property
    def low(self) -> np.ndarray: ...
    @property
    def high(self) -> np.ndarray: ...
    @property
    def trusted(self) -> np.ndarray: ...


def soft_sensor_measurements(
    prediction: PredictionLike, row: int = -1, *, coverage: float = 0.95, source: str = "raman"
) -> list[Measurement]:
    """Return one spectrum's soft-sensor predictions as measurements ``"<source>/<analyte>"``.

    Each interval (of ``coverage``, the soft sensor's ``interval_level``) gives the variance
    (:func:`measurement_from_interval`); an untrusted prediction stays in the list, flagged,
    so the estimator reports it as skipped.
    """
    return [
        measurement_from_interval(
            f"{source}/{name}",
            float(prediction.value[row, j]),
            float(prediction.low[row, j]),
            float(prediction.high[row, j]),
            trusted=bool(prediction.trusted[row, j]),
            coverage=coverage,
        )
        for j, name in enumerate(prediction.analytes)
    ]


def _default(tag: str, value: float | None) -> Measurement:
    v = math.nan if value is None else float(value)
    return Measurement(tag, v, default_variance(tag, 0.0 if math.isnan(v) else v))
