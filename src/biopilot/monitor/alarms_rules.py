"""Alarm rules (typed) and their detectors: limits, rate, MSPC runs, sanity, trust, probe checks.

A rule is a pydantic model (a typed boundary: a bad rule is refused naming the field); its
detector keeps O(1) state per tag and, for each sample, says which of its alarms are active.
Each detector returns ``(alarm_name, active, limit, severity)`` conditions; the engine
(:mod:`biopilot.monitor.alarms`) turns changes into ISA-18.2 state transitions. A detector
that also reads another tag (a probe check reads the at-line reference) names a reader for
it (:meth:`Detector.readers`), and may word its alarm for the operator (:meth:`Detector.reading`).
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
    "ProbeCheckRule",
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


class ProbeCheckRule(StrictModel):
    """An online probe against its at-line reference, compared at each reference sample.

    The probe's mean over the ``window_min`` minutes up to the sample, minus the reference,
    beyond ``limit`` (either sign) raises ``TAG.CROSSCHECK`` until a later sample agrees again.
    Plants re-standardise a pH probe in place when it and the at-line analyser disagree by
    more than ~0.05-0.1 pH (one-point standardisation: Mettler-Toledo, *A Guide to pH
    Measurement*, 2013); the limit is a Shewhart limit, k standard deviations of the
    differences on good batches (Montgomery, *Introduction to Statistical Quality Control*,
    ch. 6), learned by :meth:`~biopilot.monitor.mspc.BatchEvolutionModel.calibrate`.
    A reference result may arrive up to four hours after its sample.
    """

    kind: Literal["probe_check"] = "probe_check"
    tag: str = Field(min_length=1)
    reference: str = Field(min_length=1)
    limit: float = Field(gt=0)
    window_min: float = Field(10.0, gt=0, le=60)
    label: str = "pH probe vs at-line"
    unit: str = "pH"
    action: str = "re-standardise the probe"
    severity: Severity = "medium"

    @model_validator(mode="after")
    def _two_tags(self) -> ProbeCheckRule:
        if self.reference == self.tag:
            raise ValueError("a probe check compares two tags: reference must differ from tag")
        return self


AlarmRule = Annotated[
    LimitRule | RateRule | MspcRule | SanityRule | TrustRule | ProbeCheckRule,
    Field(discriminator="kind"),
]


class Detector:
    """Base of the detectors: ``check(t_s, value, good)`` returns the rule's conditions."""

    rule: StrictModel

    def __init__(self, rule: StrictModel) -> None:
        self.rule = rule

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        """Return the conditions after a sample at ``t_s`` (seconds, UTC epoch)."""
        raise NotImplementedError

    def readers(self) -> dict[str, Detector]:
        """Return the detectors that feed this one the samples of other tags (none here)."""
        return {}

    def reading(self, name: str, value: float) -> tuple[float, str | None]:
        """Return the value alarm ``name`` reports for the sample ``value``, and its text.

        The text (None: the engine's default wording) tells the operator what is wrong.
        """
        return value, None


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


class _ProbeCheck(Detector):
    """Judges a reference sample once the probe's readings up to its time are in.

    That is on its arrival if the probe has read at or after its time (a result that comes
    late), else at the probe's next reading.
    """

    rule: ProbeCheckRule
    _KEEP_S = 4 * 3600.0  # probe history kept for reference results that come late

    def __init__(self, rule: ProbeCheckRule) -> None:
        self.rule = rule
        self.window_s = rule.window_min * 60.0
        self.probe: deque[tuple[float, float]] = deque()
        self.pending: deque[tuple[float, float]] = deque()
        self.difference = math.nan
        self._reader = _Reference(self)

    def readers(self) -> dict[str, Detector]:
        return {self.rule.reference: self._reader}

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        if not good:
            return []
        self.probe.append((t_s, value))
        while self.probe[0][0] < t_s - self._KEEP_S:
            self.probe.popleft()
        return self.judge(t_s)

    def judge(self, until_s: float) -> list[Condition]:
        """Judge the pending reference samples taken before ``until_s`` (or at, if read)."""
        r = self.rule
        judged: bool | None = None
        last = self.probe[-1][0] if self.probe else -math.inf
        while self.pending and self.pending[0][0] <= min(until_s, last):
            t_ref, ref = self.pending.popleft()
            inside = [v for t, v in self.probe if t_ref - self.window_s < t <= t_ref]
            if inside:
                self.difference = math.fsum(inside) / len(inside) - ref
                judged = abs(self.difference) > r.limit
        return [] if judged is None else [("CROSSCHECK", judged, r.limit, r.severity)]

    def reading(self, name: str, value: float) -> tuple[float, str | None]:
        r, d = self.rule, self.difference
        side = "high" if d > 0 else "low"
        text = f"{r.label} differ by {abs(d):.3f} {r.unit} (> {r.limit:.3f})"
        return d, f"{text}, the probe reads {side}: {r.action}"


class _Reference(Detector):
    """Hands the reference (at-line) samples of a probe check to its detector."""

    def __init__(self, owner: _ProbeCheck) -> None:
        self.rule = owner.rule
        self.owner = owner

    def check(self, t_s: float, value: float, good: bool) -> list[Condition]:
        if not good:
            return []
        self.owner.pending.append((t_s, value))
        return self.owner.judge(t_s)

    def reading(self, name: str, value: float) -> tuple[float, str | None]:
        return self.owner.reading(name, value)


_DETECTORS: dict[type, type[Detector]] = {
    LimitRule: _Limit,
    RateRule: _Rate,
    MspcRule: _Mspc,
    SanityRule: _Sanity,
    TrustRule: _Trust,
    ProbeCheckRule: _ProbeCheck,
}
