"""Process and sensor faults of the bioreactor twin, after the IndPenSim fault library.

Modelled on the faults of IndPenSim (Goldrick et al. 2015, J. Biotechnol. 193:70): each fault
is a typed model with an onset day, a magnitude (units per fault, below) and, where it fits,
a duration. A fault exposes its effect as functions of time (hours, scalar or array): the
twin multiplies or adds them into the feeds, the temperature, the gassing, the probes and the
oxygen demand. ``parse_fault("NAME@DAY[:MAGNITUDE]")`` reads the command-line form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from biopilot.config import ConfigError, StrictModel, parse_model

__all__ = [
    "FAULT_NAMES",
    "AerationFailure",
    "Contamination",
    "DoProbeDrift",
    "Fault",
    "FeedPumpFailure",
    "PhProbeDrift",
    "TemperatureExcursion",
    "do_drift_pct",
    "extra_our_mmol_per_l_h",
    "feed_factor",
    "kla_factor",
    "parse_fault",
    "ph_drift",
    "temperature_offset_c",
]

Time = Any  # float or ndarray of hours


class _FaultBase(StrictModel):
    """Common fields and neutral effects; subclasses override the effects they have."""

    onset_day: float = Field(ge=0, le=60)

    @property
    def onset_h(self) -> float:
        """Onset time, hours after inoculation."""
        return self.onset_day * 24.0

    def breakpoints_h(self) -> list[float]:
        """Times (h) at which the fault changes the process inputs (feeds, temperature)."""
        return []

    def _since(self, t_h: Time) -> Any:
        return np.maximum(np.asarray(t_h, dtype=float) - self.onset_h, 0.0)

    def _window(self, t_h: Time, duration_days: float) -> Any:
        t = np.asarray(t_h, dtype=float)
        return (t >= self.onset_h) & (t < self.onset_h + duration_days * 24.0)

    def feed_factor(self, t_h: Time) -> Any:
        """Fraction of the planned feed the pumps deliver."""
        return np.ones_like(np.asarray(t_h, dtype=float))

    def temperature_offset_c(self, t_h: Time) -> Any:
        """Deviation of the culture temperature from its setpoint, degC."""
        return np.zeros_like(np.asarray(t_h, dtype=float))

    def kla_factor(self, t_h: Time) -> Any:
        """Fraction of the nominal oxygen transfer coefficient available."""
        return np.ones_like(np.asarray(t_h, dtype=float))

    def do_drift_pct(self, t_h: Time) -> Any:
        """Error of the DO probe reading, % air saturation."""
        return np.zeros_like(np.asarray(t_h, dtype=float))

    def ph_drift(self, t_h: Time) -> Any:
        """Error of the pH probe reading, pH units."""
        return np.zeros_like(np.asarray(t_h, dtype=float))

    def extra_our_mmol_per_l_h(self, t_h: Time) -> Any:
        """Oxygen uptake of something other than the culture (a contaminant), mmol/L/h."""
        return np.zeros_like(np.asarray(t_h, dtype=float))


class FeedPumpFailure(_FaultBase):
    """Feed pumps deliver ``1 - magnitude`` of their flow for ``duration_days`` (fraction)."""

    kind: Literal["feed_pump_failure"] = "feed_pump_failure"
    magnitude: float = Field(1.0, gt=0, le=1)
    duration_days: float = Field(3.0, gt=0, le=30)

    def breakpoints_h(self) -> list[float]:
        return [self.onset_h, self.onset_h + self.duration_days * 24.0]

    def feed_factor(self, t_h: Time) -> Any:
        return np.where(self._window(t_h, self.duration_days), 1.0 - self.magnitude, 1.0)


class DoProbeDrift(_FaultBase):
    """The DO probe drifts by ``magnitude`` % air saturation per day after onset."""

    kind: Literal["do_probe_drift"] = "do_probe_drift"
    magnitude: float = Field(-4.0, ge=-20, le=20)

    def do_drift_pct(self, t_h: Time) -> Any:
        return self.magnitude * self._since(t_h) / 24.0


class PhProbeDrift(_FaultBase):
    """The pH probe drifts by ``magnitude`` pH units per day after onset."""

    kind: Literal["ph_probe_drift"] = "ph_probe_drift"
    magnitude: float = Field(-0.04, ge=-0.5, le=0.5)

    def ph_drift(self, t_h: Time) -> Any:
        return self.magnitude * self._since(t_h) / 24.0


class TemperatureExcursion(_FaultBase):
    """The culture runs ``magnitude`` degC off its setpoint for ``duration_days`` (chiller)."""

    kind: Literal["temperature_excursion"] = "temperature_excursion"
    magnitude: float = Field(2.5, ge=-8, le=8)
    duration_days: float = Field(0.5, gt=0, le=30)

    def breakpoints_h(self) -> list[float]:
        return [self.onset_h, self.onset_h + self.duration_days * 24.0]

    def temperature_offset_c(self, t_h: Time) -> Any:
        return np.where(self._window(t_h, self.duration_days), self.magnitude, 0.0)


class AerationFailure(_FaultBase):
    """Sparger/gas supply loses ``magnitude`` of its oxygen transfer (fraction of kLa)."""

    kind: Literal["aeration_failure"] = "aeration_failure"
    magnitude: float = Field(0.8, gt=0, le=1)
    duration_days: float = Field(1.0, gt=0, le=30)

    def kla_factor(self, t_h: Time) -> Any:
        return np.where(self._window(t_h, self.duration_days), 1.0 - self.magnitude, 1.0)


class Contamination(_FaultBase):
    """A bacterial contaminant: extra OUR rising to ``magnitude`` mmol/L/h within hours."""

    kind: Literal["contamination"] = "contamination"
    magnitude: float = Field(8.0, gt=0, le=100)
    growth_rate_per_h: float = Field(0.7, gt=0, le=5)  # E. coli-like doubling ~1 h

    def extra_our_mmol_per_l_h(self, t_h: Time) -> Any:
        since = self._since(t_h)
        # Logistic rise from 0.1 % of the plateau at onset.
        z = np.exp(np.minimum(self.growth_rate_per_h * since, 50.0)) * 1e-3
        return np.where(since > 0, self.magnitude * z / (1.0 + z), 0.0)


Fault = Annotated[
    FeedPumpFailure
    | DoProbeDrift
    | PhProbeDrift
    | TemperatureExcursion
    | AerationFailure
    | Contamination,
    Field(discriminator="kind"),
]

_TYPES: dict[str, type[_FaultBase]] = {
    "feed_pump_failure": FeedPumpFailure,
    "do_probe_drift": DoProbeDrift,
    "ph_probe_drift": PhProbeDrift,
    "temperature_excursion": TemperatureExcursion,
    "aeration_failure": AerationFailure,
    "contamination": Contamination,
}
#: Names accepted by :func:`parse_fault`.
FAULT_NAMES: tuple[str, ...] = tuple(_TYPES)


def parse_fault(text: str) -> Fault:
    """Parse ``"NAME@DAY"`` or ``"NAME@DAY:MAGNITUDE"`` into a fault.

    Raises
    ------
    ConfigError
        If the name is unknown (the message lists the known faults), or the day or the
        magnitude is not a number or lies outside its allowed range.

    Examples
    --------
    >>> parse_fault("do_probe_drift@6:-5").magnitude
    -5.0
    """
    name, at, rest = text.strip().partition("@")
    if name not in _TYPES:
        raise ConfigError(
            f"fault {text!r}: unknown fault {name!r}; known faults: {', '.join(FAULT_NAMES)}"
        )
    if not at or not rest:
        raise ConfigError(f"fault {text!r}: expected NAME@DAY or NAME@DAY:MAGNITUDE")
    day_text, _, mag_text = rest.partition(":")
    data: dict[str, Any] = {"onset_day": _number(text, "onset_day", day_text)}
    if mag_text:
        data["magnitude"] = _number(text, "magnitude", mag_text)
    return parse_model(_TYPES[name], data, source=f"fault {text!r}")  # type: ignore[return-value]


def feed_factor(faults: Sequence[Any], t_h: Time) -> Any:
    """Fraction of the planned feed delivered at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "feed_factor", np.multiply, 1.0)


def temperature_offset_c(faults: Sequence[Any], t_h: Time) -> Any:
    """Culture temperature deviation (degC) at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "temperature_offset_c", np.add, 0.0)


def kla_factor(faults: Sequence[Any], t_h: Time) -> Any:
    """Fraction of nominal kLa available at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "kla_factor", np.multiply, 1.0)


def do_drift_pct(faults: Sequence[Any], t_h: Time) -> Any:
    """DO probe error (% air saturation) at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "do_drift_pct", np.add, 0.0)


def ph_drift(faults: Sequence[Any], t_h: Time) -> Any:
    """pH probe error (pH units) at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "ph_drift", np.add, 0.0)


def extra_our_mmol_per_l_h(faults: Sequence[Any], t_h: Time) -> Any:
    """Oxygen uptake of contaminants (mmol/L/h) at ``t_h`` under all ``faults``."""
    return _combine(faults, t_h, "extra_our_mmol_per_l_h", np.add, 0.0)


def _combine(faults: Sequence[Any], t_h: Time, effect: str, op: Any, neutral: float) -> Any:
    out: Any = np.full_like(np.asarray(t_h, dtype=float), neutral)
    for f in faults:
        out = op(out, getattr(f, effect)(t_h))
    return out if np.ndim(out) else float(out)


def _number(text: str, field: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"fault {text!r}: {field} must be a number (got {value!r})") from None
