"""The online monitor's vocabulary: the tags it derives, the samples it reads, what it returns.

Derived tags follow the cockpit's conventions: an estimate of ``X`` is stored as ``X.est``
within ``X.est_low`` and ``X.est_high`` (the state estimator's); the Raman soft sensor's of
``X`` as ``raman_X.est`` (and its bounds); MSPC statistics as ``mspc_t2``, ``mspc_spe`` and
``mspc_t2_checks`` (:data:`~biopilot.monitor.online_mspc.MSPC_TAGS`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from biopilot.monitor.alarms import AlarmTransition
from biopilot.store import NewEvent

__all__ = [
    "BOUNDS",
    "ESTIMATE_SUFFIXES",
    "KEY_STATES",
    "SPECTRUM_TAG",
    "TRUST_TAG",
    "ActiveAlarm",
    "SampleLike",
    "UnitOutputs",
    "UnitStatus",
    "estimate_tag",
    "soft_tag",
]

#: Tag suffixes of an estimate: value, lower and upper bound of its interval.
ESTIMATE_SUFFIXES: tuple[str, str, str] = (".est", ".est_low", ".est_high")
#: The parts of an estimate, as :func:`estimate_tag` takes them: value, low, high.
BOUNDS: tuple[str, str, str] = ("", "low", "high")
#: What the live view and the historian get estimates of (units in the names).
KEY_STATES: tuple[str, ...] = (
    "vcd_cells_per_ml",
    "glucose_g_per_l",
    "lactate_g_per_l",
    "titer_g_per_l",
)
#: The tag of the Raman spectra.
SPECTRUM_TAG = "raman"
#: Share of the last spectra (two hours) whose key predictions were all trusted.
TRUST_TAG = "raman_trusted"


def estimate_tag(state: str, bound: str = "") -> str:
    """Return the tag of the estimator's ``state`` (``bound``: ``low`` or ``high`` of its interval).

    The cockpit's convention: an estimate of ``X`` is ``X.est`` within ``X.est_low`` and
    ``X.est_high`` (so it is drawn over the measured ``X`` where there is one).
    """
    return f"{state}{ESTIMATE_SUFFIXES[BOUNDS.index(bound)]}"


def soft_tag(analyte: str, bound: str = "") -> str:
    """Return the tag of the Raman soft sensor's ``analyte`` (``raman_<analyte>.est``...)."""
    return estimate_tag(f"raman_{analyte}", bound)


class SampleLike(Protocol):
    """What the monitor reads of a sample (:class:`biopilot.line.Sample` has it)."""

    @property
    def tag(self) -> str: ...
    @property
    def time_utc(self) -> datetime: ...
    @property
    def value(self) -> Any: ...
    @property
    def quality(self) -> str: ...


@dataclass(frozen=True)
class ActiveAlarm:
    """An alarm the operator must see: name, severity, ISA-18.2 state, since when, value."""

    alarm: str
    severity: str
    state: str
    since_utc: datetime | None
    value: float | None
    limit: float | None


@dataclass
class UnitOutputs:
    """What one step of a unit's monitor derived: samples ``(tag, time, value)``, alarms."""

    samples: list[tuple[str, datetime, float]] = field(default_factory=list)
    transitions: list[AlarmTransition] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)


@dataclass(frozen=True)
class UnitStatus:
    """A snapshot of a unit's monitor for a display (read-only, safe to share across threads).

    ``estimates`` and ``soft`` map a state of :data:`KEY_STATES` to ``(value, low, high)``;
    ``mspc`` the statistics of the last complete bin (``t2``, ``spe``, ``t2_checks``) and
    ``mspc_limits`` their alarm limits; ``diagnosis`` names the variable behind the latest
    MSPC alarm.
    """

    unit: str
    time_utc: datetime | None = None
    day: float = 0.0
    estimates: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    soft: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    trusted: float = math.nan
    mspc: dict[str, float] = field(default_factory=dict)
    mspc_limits: dict[str, float] = field(default_factory=dict)
    alarms: tuple[ActiveAlarm, ...] = ()
    diagnosis: str | None = None
    samples: int = 0
    spectra: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str | None = None
