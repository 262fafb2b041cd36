"""Alarm rules (typed) and their detectors: limits, rate of change, MSPC runs, sanity, trust.

A rule is a pydantic model (a typed boundary: a bad rule is refused naming the field); its
detector keeps O(1) state per tag and, for each sample, says which of its alarms are active.
Each detector returns ``(alarm_name, active, limit, severity)`` conditions; the engine
(:mod:`biopilot.monitor.alarms`) turns changes into ISA-18.2 state transitions.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, Literal

from pydantic import Field, model_validator

from biopilot.config import StrictModel

__all__ = [
    "AlarmRule",
    "Condition",
    "Detector",
    "LimitRule",
    "MspcRule",
    "RateRule",
    "SanityRule",
    "TrustRule",
    "make_detector",
]

Severity = Literal["low", "medium", "high", "critical"]
#: ``(alarm name, active, limit, severity)``; ``active`` None: no judgement on this sample.
Condition = tuple[str, bool | None, float | None, Severity]


class LimitRule(StrictModel):
    """Absolute limits: HI/LO (medium) and HIHI/LOLO (high), cleared inside ``deadband``."""

    kind: Literal["limit"] = "limit"
    tag: str = Field(min_length=1)
    hi: float | None = None
    hihi: float | None = None
    lo: float | None = None
    lolo: float | None = None
    deadband: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LimitRule:
        levels = [v for v in (self.lolo, self.lo, self.hi, self.hihi) if v is not None]
        if levels != sorted(levels):
            raise ValueError("limits must be ordered lolo <= lo <= hi <= hihi")
        if not levels:
            raise ValueError("a limit rule needs at least one of hi, hihi, lo, lolo")
        return self


class RateRule(StrictModel):
    """Rate of change beyond ``max_per_h`` (units per hour) over ``window_min`` minutes."""

    kind: Literal["rate"] = "rate"
    tag: str = Field(min_length=1)
    max_per_h: float = Field(gt=0)
    window_min: float = Field(10.0, gt=0)
    severity: Severity = "medium"


class MspcRule(StrictModel):
    """An MSPC statistic (e.g. SPE) beyond ``limit`` for ``run`` consecutive samples.

    Clears after ``run`` consecutive samples back within the limit (Western Electric-style
    run rule: Western Electric 1956, Statistical Quality Control Handbook).
    """

    kind: Literal["mspc"] = "mspc"
    tag: str = Field(min_length=1)
    limit: float = Field(gt=0)
    run: int = Field(3, ge=1)
    severity: Severity = "high"


class SanityRule(StrictModel):
    """Sensor sanity: NaN/bad quality, out of range, flatline, stuck value, spike.

    ``low``/``high``: physical range; ``flatline_min``: minutes within ``flatline_eps`` of one
    value; ``stuck_samples``: identical consecutive values; ``spike``: a jump between two
    consecutive samples larger than this (cleared by the next normal step).
    """

    kind: Literal["sanity"] = "sanity"
    tag: str = Field(min_length=1)
    low: float | None = None
    high: float | None = None
    flatline_min: float | None = Field(None, gt=0)
    flatline_eps: float = Field(0.0, ge=0)
    stuck_samples: int | None = Field(None, ge=2)
    spike: float | None = Field(None, gt=0)
    severity: Severity = "medium"


class TrustRule(StrictModel):
    """A soft sensor's trust flag (1/True trusted): alarm while trust is lost (0/False/bad)."""

    kind: Literal["trust"] = "trust"
    tag: str = Field(min_length=1)
    severity: Severity = "medium"


AlarmRule = Annotated[
    LimitRule | RateRule | MspcRule | SanityRule | TrustRule, Field(discriminator="kind")
]


class Detector:
    """Base of the detectors: ``check(t_s, value, good)`` returns the rule's conditions."""

    rule: StrictModel

    def __init__(self, rule: StrictModel) -> None:
        self.rule = rule

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        """Return the conditions after a sample at ``t_s`` (seconds, UTC epoch)."""
        raise NotImplementedError


def make_detector(rule: StrictModel) -> Detector:
    """Return a fresh detector for ``rule``."""
    return _DETECTORS[type(rule)](rule)


class _Limit(Detector):
    rule: LimitRule

    def __init__(self, rule: LimitRule) -> None:
        self.rule = rule
        levels: tuple[tuple[str, float | None, int, Severity], ...] = (
            ("HIHI", rule.hihi, 1, "high"),
            ("HI", rule.hi, 1, "medium"),
            ("LO", rule.lo, -1, "medium"),
            ("LOLO", rule.lolo, -1, "high"),
        )
        self.levels = [(n, lim, sign, sev) for n, lim, sign, sev in levels if lim is not None]
        self.active = {name: False for name, *_ in self.levels}

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        out: list[Condition] = []
        for name, lim, sign, sev in self.levels:
            if not good:
                out.append((name, None, lim, sev))
                continue
            excess = sign * (value - lim)
            on = excess > 0 if not self.active[name] else excess > -self.rule.deadband
            self.active[name] = on
            out.append((name, on, lim, sev))
        return out


class _Rate(Detector):
    rule: RateRule

    def __init__(self, rule: RateRule) -> None:
        self.rule = rule
        self.window_s = rule.window_min * 60.0
        self.past: deque[tuple[float, float]] = deque()

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        r = self.rule
        if not good:
            return [("ROC", None, r.max_per_h, r.severity)]
        self.past.append((t_s, value))
        while len(self.past) > 2 and t_s - self.past[1][0] >= self.window_s:
            self.past.popleft()
        t0, v0 = self.past[0]
        if t_s - t0 < self.window_s or t_s <= t0:
            return [("ROC", None, r.max_per_h, r.severity)]
        rate = abs(value - v0) / ((t_s - t0) / 3600.0)
        return [("ROC", rate > r.max_per_h, r.max_per_h, r.severity)]


class _Mspc(Detector):
    rule: MspcRule

    def __init__(self, rule: MspcRule) -> None:
        self.rule = rule
        self.beyond = 0
        self.within = 0
        self.active = False

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        r = self.rule
        if not good:
            return [("MSPC", None, r.limit, r.severity)]
        if value > r.limit:
            self.beyond, self.within = self.beyond + 1, 0
        else:
            self.beyond, self.within = 0, self.within + 1
        if self.beyond >= r.run:
            self.active = True
        elif self.within >= r.run:
            self.active = False
        return [("MSPC", self.active, r.limit, r.severity)]


class _Sanity(Detector):
    rule: SanityRule

    def __init__(self, rule: SanityRule) -> None:
        self.rule = rule
        self.ref: float | None = None
        self.ref_t = 0.0
        self.last: float | None = None
        self.same = 0

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        r = self.rule
        sev = r.severity
        bad = not good or not math.isfinite(value)
        out: list[Condition] = [("BAD", bad, None, sev)]
        if bad:
            return out
        if r.low is not None or r.high is not None:
            lo = -math.inf if r.low is None else r.low
            hi = math.inf if r.high is None else r.high
            out.append(("RANGE", not lo <= value <= hi, None, sev))
        if r.flatline_min is not None:
            if self.ref is None or abs(value - self.ref) > r.flatline_eps:
                self.ref, self.ref_t = value, t_s
            out.append(("FLATLINE", t_s - self.ref_t >= r.flatline_min * 60.0, None, sev))
        if r.stuck_samples is not None:
            self.same = self.same + 1 if value == self.last else 1
            out.append(("STUCK", self.same >= r.stuck_samples, None, sev))
        if r.spike is not None:
            jump = self.last is not None and abs(value - self.last) > r.spike
            out.append(("SPIKE", jump, r.spike, sev))
        self.last = value
        return out


class _Trust(Detector):
    rule: TrustRule

    def __init__(self, rule: TrustRule) -> None:
        self.rule = rule

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        lost = not good or not math.isfinite(value) or value < 0.5
        return [("TRUST", lost, None, self.rule.severity)]


_DETECTORS: dict[type, type[Detector]] = {
    LimitRule: _Limit,
    RateRule: _Rate,
    MspcRule: _Mspc,
    SanityRule: _Sanity,
    TrustRule: _Trust,
}
