"""Batch MSPC of a running batch, bin by bin: the batch-evolution model scored as data arrive.

:class:`OnlineMspc` keeps the running batch's readings of the model's tags and, when asked,
scores the maturity bins completed since the last time. A bin is complete once the last
one-minute reading of every tag in it has been read (good or bad); the model is causal, so a
complete bin's T2, SPE and probe-check T2 never change afterwards, and scoring the batch so
far (tens of ms late in a 14-day batch) only needs to happen as often as results are wanted.
:func:`alarm_rules` gives the alarm rules of a model: the run rule of each statistic, and the
probe check of each probe with an at-line reference (``ph.CROSSCHECK``), judged by the alarm
engine on the probe and at-line samples themselves.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from biopilot.monitor.alarms_rules import AlarmRule, MspcRule, ProbeCheckRule
from biopilot.monitor.mspc import BatchEvolutionModel
from biopilot.monitor.mspc_features import PROBE_STANDARDS, required_tags

__all__ = ["MSPC_TAGS", "OnlineMspc", "alarm_rules"]

#: MSPC statistic -> the tag it is stored (and alarmed) as.
MSPC_TAGS: dict[str, str] = {"t2": "mspc_t2", "spe": "mspc_spe", "t2_checks": "mspc_t2_checks"}


def alarm_rules(model: BatchEvolutionModel) -> list[AlarmRule]:
    """Return the rules an :class:`~biopilot.monitor.alarms.AlarmEngine` needs for ``model``.

    One :class:`MspcRule` per statistic (on the tags of :data:`MSPC_TAGS`, fed by
    :meth:`OnlineMspc.score`) and one :class:`ProbeCheckRule` per probe-standard feature
    (``probe_limits_``: the engine needs the probe's and the at-line samples, e.g. ``ph`` and
    ``ph_offline``). A model saved before the probe checks existed has none.
    """
    rules: list[AlarmRule] = [
        MspcRule(tag=MSPC_TAGS[k], limit=float(v), run=model.alarm_run)
        for k, v in model.alarm_limits_.items()
    ]
    for feature, limit in getattr(model, "probe_limits_", {}).items():
        std = PROBE_STANDARDS[feature]
        rules.append(
            ProbeCheckRule(
                tag=std.probe,
                reference=std.reference,
                limit=float(limit),
                window_min=model.period_min,
                label=std.label,
                unit=std.unit,
            )
        )
    return rules


class OnlineMspc:
    """Score a running batch on a :class:`BatchEvolutionModel` as its bins complete.

    Parameters
    ----------
    model : BatchEvolutionModel
        Fitted (and calibrated); only read.
    """

    def __init__(self, model: BatchEvolutionModel) -> None:
        self.model = model
        self.tags = tuple(dict.fromkeys([*model.variables, *required_tags(model.features)]))
        self._series: dict[str, tuple[list[datetime], list[float]]] = {
            t: ([], []) for t in self.tags
        }
        self._seen: dict[str, datetime | None] = dict.fromkeys(self.tags)
        self._done = 0
        #: The statistics of the last scored bin (``t2``, ``spe``, ``t2_checks``).
        self.latest: dict[str, float] = {}

    @property
    def first_utc(self) -> datetime | None:
        """Time of the batch's first good reading of a model tag (the maturity origin)."""
        firsts = [times[0] for times, _ in self._series.values() if times]
        return min(firsts) if firsts else None

    def take(self, tag: str, when: datetime, value: float | None) -> None:
        """Keep a reading of ``tag`` (``value`` None: a bad one, read but not kept)."""
        if tag not in self._seen:
            return
        seen = self._seen[tag]
        self._seen[tag] = when if seen is None or when > seen else seen
        times, values = self._series[tag]
        if value is not None and (not times or when > times[-1]):
            times.append(when)
            values.append(value)

    def score(self) -> pd.DataFrame:
        """Return the bins completed since the last call: index bin start, one column a statistic.

        Raises ValueError if the readings cannot be scored (e.g. a model tag never served).
        """
        stats = ["t2", "spe"] + (["t2_checks"] if self.model.checks_ is not None else [])
        empty = pd.DataFrame(columns=stats)
        if any(not times for times, _ in self._series.values()):
            return empty
        t0 = min(times[0] for times, _ in self._series.values())
        last = min(t for t in self._seen.values() if t is not None)
        period = pd.Timedelta(minutes=self.model.period_min)
        n_done = int((pd.Timestamp(last) - pd.Timestamp(t0) + pd.Timedelta(minutes=1)) // period)
        if n_done <= self._done:
            return empty
        mon = self.model.monitor(self.frame()).iloc[self._done : n_done]
        self._done = n_done
        out = mon[stats].astype(float)
        if len(out):
            self.latest = {k: float(out[k].iloc[-1]) for k in stats}
        return out

    def diagnose(self, when: datetime) -> pd.Series:
        """Return the contributions behind an alarm at ``when``, largest first (see the model)."""
        return self.model.diagnose(self.frame(), pd.Timestamp(when))

    def frame(self) -> pd.DataFrame:
        """Return the batch so far: one column per model tag, good readings only."""
        cols = {
            tag: pd.Series(values, index=pd.DatetimeIndex(times))
            for tag, (times, values) in self._series.items()
        }
        return pd.DataFrame(cols).sort_index()
