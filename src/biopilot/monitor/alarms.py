"""Alarms of a unit: an incremental engine with the ISA-18.2 state model, stored as events.

Each alarm (``TAG.NAME``, e.g. ``ph.HI``, ``do_pct.FLATLINE``, ``mspc_spe.MSPC``, the probe
check ``ph.CROSSCHECK`` against the at-line pH) moves through the states of ANSI/ISA-18.2-2016
(fig. 5): ``normal`` -> ``unack_active`` when its condition appears; an operator
acknowledgement gives ``ack_active``; a return to normal gives ``unack_rtn`` (cleared, still
to acknowledge) or ``normal``; a shelved alarm is held out of the operator's list until
unshelved. Every transition is an :class:`AlarmTransition`, returned by the call that caused
it and, with a historian, written as an event (kind ``alarm`` or ``acknowledgement``) by
:meth:`AlarmEngine.flush`.

``AlarmEngine.update`` costs O(1) per sample (a few small detectors per tag, no history
scan), so one engine keeps up with thousands of samples per second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import pandas as pd

from biopilot.monitor.alarms_rules import (
    AlarmRule,
    Detector,
    LimitRule,
    MspcRule,
    ProbeCheckRule,
    RateRule,
    SanityRule,
    TrustRule,
    make_detector,
)
from biopilot.store import Historian, NewEvent

__all__ = [
    "AlarmEngine",
    "AlarmRule",
    "AlarmState",
    "AlarmStatus",
    "AlarmTransition",
    "LimitRule",
    "MspcRule",
    "ProbeCheckRule",
    "RateRule",
    "SanityRule",
    "TrustRule",
    "default_rules",
]

AlarmState = Literal["normal", "unack_active", "ack_active", "unack_rtn", "shelved"]
Transition = Literal["raised", "cleared", "acknowledged", "shelved", "unshelved"]
_ACTIVE = ("unack_active", "ack_active")


@dataclass(frozen=True, slots=True)
class AlarmTransition:
    """One change of an alarm's state, at ``time_utc`` (the sample's or the action's time)."""

    time_utc: datetime
    alarm: str
    tag: str
    transition: Transition
    state_before: AlarmState
    state: AlarmState
    severity: str
    value: float | None = None
    limit: float | None = None
    user: str | None = None
    text: str | None = None

    @property
    def message(self) -> str:
        """A one-line text for the operator and the batch journal."""
        what = {"raised": "active", "cleared": "returned to normal"}.get(
            self.transition, self.transition
        )
        if self.text and self.transition == "raised":
            return f"{self.alarm} {what}: {self.text}"
        val = "" if self.value is None or not math.isfinite(self.value) else f" ({self.value:.4g}"
        lim = "" if not val or self.limit is None else f", limit {self.limit:.4g}"
        by = f" by {self.user}" if self.user else ""
        return f"{self.alarm} {what}{by}{val}{lim}{')' if val else ''}"

    def to_event(self) -> NewEvent:
        """Return the historian event: kind ``acknowledgement`` for an ack, else ``alarm``."""
        kind = "acknowledgement" if self.transition == "acknowledged" else "alarm"
        payload = {
            "alarm": self.alarm,
            "tag": self.tag,
            "transition": self.transition,
            "state_before": self.state_before,
            "state": self.state,
            "value": None if self.value is None or not math.isfinite(self.value) else self.value,
            "limit": self.limit,
            "user": self.user,
        }
        sev = "info" if kind == "acknowledgement" else self.severity
        return NewEvent(
            time_utc=self.time_utc, kind=kind, severity=sev, message=self.message, payload=payload
        )


@dataclass(slots=True)
class AlarmStatus:
    """The current state of one alarm."""

    alarm: str
    tag: str
    severity: str
    state: AlarmState = "normal"
    condition: bool = False
    since_utc: datetime | None = None
    value: float | None = None
    limit: float | None = None
    text: str | None = None
    shelved_from: AlarmState | None = field(default=None, repr=False)


class AlarmEngine:
    """Evaluate alarm rules on samples as they arrive and keep each alarm's ISA-18.2 state.

    Parameters
    ----------
    rules : sequence of AlarmRule
        The rules (several per tag allowed).
    historian : Historian, optional
        Where :meth:`flush` writes the transitions as events (with ``unit``, ``batch_id``).
    unit : str, optional
        The unit the alarms belong to (required with a historian).
    batch_id : int, optional
        The running batch, if any.
    """

    def __init__(
        self,
        rules: Sequence[AlarmRule],
        historian: Historian | None = None,
        unit: str | None = None,
        batch_id: int | None = None,
    ) -> None:
        if historian is not None and not unit:
            raise ValueError("an AlarmEngine that stores events needs its unit")
        self.historian, self.unit, self.batch_id = historian, unit, batch_id
        # per tag read: (detector, the tag its alarms are named after)
        self._detectors: dict[str, list[tuple[Detector, str]]] = {}
        for rule in rules:
            det = make_detector(rule)
            self._detectors.setdefault(rule.tag, []).append((det, rule.tag))
            for tag, reader in det.readers().items():  # e.g. a probe check's at-line tag
                self._detectors.setdefault(tag, []).append((reader, rule.tag))
        self._alarms: dict[str, AlarmStatus] = {}
        self._pending: list[AlarmTransition] = []

    def update(
        self, tag: str, time: datetime, value: float | None, quality: str = "good"
    ) -> list[AlarmTransition]:
        """Feed one sample; return the transitions it caused (usually none).

        A NaN/inf/None value or a quality other than ``good`` is a bad sample: it never
        raises an exception; sanity rules raise their ``BAD`` alarm, other rules skip it.
        Tags without a rule are ignored. A naive ``time`` is a ValueError.
        """
        detectors = self._detectors.get(tag)
        if not detectors:
            return []
        if time.tzinfo is None:
            raise ValueError(f"sample of {tag!r} at {time}: time must be timezone-aware (UTC)")
        v = math.nan if value is None else float(value)
        good = quality == "good" and math.isfinite(v)
        t_s = time.timestamp()
        out: list[AlarmTransition] = []
        for det, owner in detectors:
            for name, active, limit, severity in det.check(t_s, v, good):
                if active is None:
                    continue
                st = self._status(f"{owner}.{name}", owner, severity)
                if active != st.condition:
                    st.condition, st.limit = active, limit
                    st.value, st.text = det.reading(name, v)
                    self._condition(st, time, out)
        self._pending.extend(out)
        return out

    def update_many(self, samples: pd.DataFrame) -> list[AlarmTransition]:
        """Feed long samples (``time_utc``, ``tag``, ``value``, optional ``quality``) in order."""
        q = samples["quality"] if "quality" in samples else ["good"] * len(samples)
        out: list[AlarmTransition] = []
        for t, tag, v, qual in zip(
            samples["time_utc"], samples["tag"], samples["value"], q, strict=True
        ):
            out.extend(self.update(str(tag), pd.Timestamp(t).to_pydatetime(), v, str(qual)))
        return out

    def acknowledge(
        self, alarm: str, time: datetime, user: str | None = None
    ) -> list[AlarmTransition]:
        """Acknowledge ``alarm``; KeyError if unknown. Acknowledging a normal alarm does nothing."""
        st = self._get(alarm)
        new: AlarmState | None = {"unack_active": "ack_active", "unack_rtn": "normal"}.get(
            st.state  # type: ignore[assignment]
        )
        if new is None:
            return []
        return self._move(st, new, "acknowledged", time, user)

    def shelve(self, alarm: str, time: datetime, user: str | None = None) -> list[AlarmTransition]:
        """Shelve ``alarm`` (held out of the active list until :meth:`unshelve`)."""
        st = self._get(alarm)
        if st.state == "shelved":
            return []
        st.shelved_from = st.state
        return self._move(st, "shelved", "shelved", time, user)

    def unshelve(
        self, alarm: str, time: datetime, user: str | None = None
    ) -> list[AlarmTransition]:
        """Return a shelved alarm to service: active (unacknowledged) if its condition holds."""
        st = self._get(alarm)
        if st.state != "shelved":
            return []
        return self._move(st, "unack_active" if st.condition else "normal", "unshelved", time, user)

    def status(self, alarm: str) -> AlarmStatus:
        """Return the status of ``alarm`` (KeyError if it never had a condition)."""
        return self._get(alarm)

    def active(self) -> list[AlarmStatus]:
        """Return the alarms an operator must see: active or unacknowledged, not shelved."""
        return [s for s in self._alarms.values() if s.state not in ("normal", "shelved")]

    def flush(self) -> int:
        """Write the transitions not yet stored as historian events; return how many."""
        pending, self._pending = self._pending, []
        if self.historian is None or not pending:
            return 0
        assert self.unit is not None
        return self.historian.write_events(
            self.batch_id, self.unit, [p.to_event() for p in pending]
        )

    # -- helpers ---------------------------------------------------------------------------

    def _status(self, alarm: str, tag: str, severity: str) -> AlarmStatus:
        st = self._alarms.get(alarm)
        if st is None:
            st = self._alarms[alarm] = AlarmStatus(alarm, tag, severity)
        return st

    def _get(self, alarm: str) -> AlarmStatus:
        try:
            return self._alarms[alarm]
        except KeyError:
            known = ", ".join(sorted(self._alarms)) or "none yet"
            raise KeyError(f"unknown alarm {alarm!r}; known: {known}") from None

    def _condition(self, st: AlarmStatus, time: datetime, out: list[AlarmTransition]) -> None:
        if st.state == "shelved":
            return
        if st.condition and st.state in ("normal", "unack_rtn"):
            out.extend(self._move(st, "unack_active", "raised", time, None, pending=False))
        elif not st.condition and st.state in _ACTIVE:
            new: AlarmState = "unack_rtn" if st.state == "unack_active" else "normal"
            out.extend(self._move(st, new, "cleared", time, None, pending=False))

    def _move(
        self,
        st: AlarmStatus,
        new: AlarmState,
        what: Transition,
        time: datetime,
        user: str | None,
        *,
        pending: bool = True,
    ) -> list[AlarmTransition]:
        tr = AlarmTransition(
            time,
            st.alarm,
            st.tag,
            what,
            st.state,
            new,
            st.severity,
            st.value,
            st.limit,
            user,
            st.text,
        )
        st.state, st.since_utc = new, time
        if pending:
            self._pending.append(tr)
        return [tr]


def default_rules(tags: Iterable[str] | None = None) -> list[AlarmRule]:
    """Return sensible rules for the twin's online tags (CHO fed-batch at 2000 L).

    Limits: pH 6.8-7.2 (HI/LO) and 6.7-7.3 (HIHI/LOLO); DO 20-60 % (LO at 20, LOLO at 10);
    temperature 31-38 degC; physical ranges for sanity; a 15-min flatline on the noisy probes.
    """
    rules: list[AlarmRule] = [
        LimitRule(tag="ph", lo=6.8, hi=7.2, lolo=6.7, hihi=7.3, deadband=0.02),
        LimitRule(tag="do_pct", lolo=10.0, lo=20.0, hi=60.0, deadband=1.0),
        LimitRule(tag="temperature_c", lolo=30.0, lo=31.0, hi=37.5, hihi=38.0, deadband=0.1),
        RateRule(tag="temperature_c", max_per_h=3.0, window_min=10.0),
        SanityRule(tag="ph", low=5.5, high=8.5, flatline_min=15.0, spike=0.3),
        SanityRule(tag="do_pct", low=0.0, high=150.0, flatline_min=15.0, spike=20.0),
        SanityRule(tag="temperature_c", low=0.0, high=60.0, stuck_samples=30, spike=3.0),
        SanityRule(tag="capacitance_pf_per_cm", low=-1.0, high=200.0, spike=10.0),
        SanityRule(tag="volume_l", low=0.0, high=2200.0, spike=100.0),
    ]
    wanted = None if tags is None else set(tags)
    return [r for r in rules if wanted is None or r.tag in wanted]
