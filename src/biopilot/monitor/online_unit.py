"""Monitor one unit online: soft sensors on each spectrum, the state estimator, batch MSPC, alarms.

:class:`UnitMonitor` takes the unit's samples as they arrive (in source-time order per tag,
as the line client hands them over) and returns what it derived from them:

- on each Raman spectrum, the soft sensors' predictions with their 95 % intervals and trust
  flag, then one step of the state estimator (UKF) at the spectrum's time, fusing the online
  signals read within :data:`FRESH_MIN` minutes and the trusted soft-sensor outputs (the
  estimator knows the recipe's planned feeds, and its daily glucose top-ups reconstructed
  with the recipe's rule: the plant does not serve its feed log);
- on each completed MSPC bin (10 simulated minutes), the batch-evolution model's T2, SPE and
  probe-check T2 of that bin (scored on the batch so far: the model is causal, so a bin's
  statistics never change once the bin is complete);
- the alarm transitions of every sample: limits and sensor sanity on the online tags,
  MSPC runs beyond the calibrated alarm limits, and lost soft-sensor trust: lost when less
  than half of the last two hours' spectra were trusted (judged from the fourth spectrum on),
  back when nine in ten are (a hysteresis, so a model at the edge of its calibration space
  does not chatter).

Derived values are returned as samples of their own tags (:func:`estimate_tag`,
:func:`soft_tag`, :data:`TRUST_TAG`, :data:`MSPC_TAGS`) to be stored beside the raw ones. A
sample that cannot be used (bad quality, a spectrum of the wrong length) is skipped and
counted, never an exception: the raw data are stored by the ingest whatever happens here.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from biopilot.models.kinetics import FeedComposition
from biopilot.monitor.alarms import AlarmEngine, AlarmRule, AlarmTransition, default_rules
from biopilot.monitor.alarms_rules import TrustRule
from biopilot.monitor.estimator import Estimate, StateEstimator
from biopilot.monitor.estimator_inputs import StepInputs
from biopilot.monitor.estimator_measure import (
    ONLINE_TAGS as ESTIMATOR_TAGS,
)
from biopilot.monitor.estimator_measure import (
    online_measurements,
    soft_sensor_measurements,
)
from biopilot.monitor.online_models import OnlineModels
from biopilot.monitor.online_mspc import MSPC_TAGS, OnlineMspc, alarm_rules
from biopilot.monitor.online_types import (
    BOUNDS,
    KEY_STATES,
    SPECTRUM_TAG,
    TRUST_TAG,
    ActiveAlarm,
    SampleLike,
    UnitOutputs,
    UnitStatus,
    estimate_tag,
    soft_tag,
)
from biopilot.monitor.softsensor import SoftSensorPrediction
from biopilot.monitor.softsensor_bank import SpectrumStream
from biopilot.store import NewEvent
from biopilot.twin.process import bolus_plan
from biopilot.twin.recipe import Recipe

__all__ = ["FRESH_MIN", "TRUST_WINDOW", "UnitMonitor"]

TRUST_WINDOW = 8  # spectra: two hours at one per 15 min
TRUST_LOST_BELOW, TRUST_BACK_AT = 0.5, 0.9
#: Online readings older than this (minutes) are not fused with a spectrum.
FRESH_MIN = 10.0
_STD_K = 2.0  # estimate intervals: mean +- 2 sd (~95 %)


class UnitMonitor:
    """Soft sensors, state estimator, batch MSPC and alarms of one unit, fed sample by sample.

    Parameters
    ----------
    unit : str
        The unit's name.
    models : OnlineModels
        Soft sensor and MSPC model (shared by every unit; they are only read).
    recipe : Recipe, optional
        The recipe the unit runs (the estimator's feeds and initial state); default recipe.
    start_utc : datetime, optional
        Inoculation time; default the first sample's time.
    rules : sequence of AlarmRule, optional
        Alarm rules of the online tags; default :func:`~biopilot.monitor.alarms.default_rules`.
        MSPC and trust rules are added from the models.
    mspc_interval_s : float
        Least wall time between two MSPC scorings (each scores the whole batch so far, tens
        of ms late in a batch): an accelerated line is scored every few bins, a real-time
        one every bin. The bins and their times are the same either way.
    """

    def __init__(
        self,
        unit: str,
        models: OnlineModels,
        *,
        recipe: Recipe | None = None,
        start_utc: datetime | pd.Timestamp | None = None,
        rules: Sequence[AlarmRule] | None = None,
        mspc_interval_s: float = 1.0,
    ) -> None:
        self.unit, self.models, self.recipe = unit, models, recipe
        #: Reconstruct the recipe's glucose top-ups for the estimator (off when a controller
        #: feeds the unit and tells the estimator what it gave).
        self.glucose_rule = True
        self._top_up_h: list[float] = []
        self._logged: list[tuple[pd.Timestamp, tuple[float, ...], tuple[Any, ...]]] = []
        self._logged_lock = threading.Lock()
        self.mspc_interval_s = mspc_interval_s
        self._mspc_at = -math.inf
        self.start_utc = None if start_utc is None else pd.Timestamp(start_utc).tz_convert("UTC")
        mspc = models.mspc
        self._rules: list[AlarmRule] = list(default_rules() if rules is None else rules)
        self._rules += alarm_rules(mspc)  # MSPC runs and the probe checks
        self._rules.append(TrustRule(tag=TRUST_TAG))
        self.alarms = AlarmEngine(self._rules)
        #: MSPC statistics that raise alarms (see :meth:`restrict_mspc`).
        self.mspc_alarms = frozenset(mspc.alarm_limits_)
        self._scope_told = True
        self.estimator: StateEstimator | None = None
        self.estimate: Estimate | None = None
        self.mspc = OnlineMspc(mspc)
        self._latest: dict[str, tuple[datetime, float]] = {}
        self._trust: deque[float] = deque(maxlen=TRUST_WINDOW)
        self._stream = SpectrumStream(models.soft_sensor)
        self._trust_lost = False
        self._soft: dict[str, tuple[float, float, float]] = {}
        self._diagnosis: str | None = None
        self._last_time: datetime | None = None
        self._n = {"samples": 0, "spectra": 0, "skipped": 0, "errors": 0}
        self._last_error: str | None = None

    def step(self, samples: Sequence[SampleLike], *, final: bool = False) -> UnitOutputs:
        """Take the unit's new samples (time order per tag); return what they gave.

        ``final`` scores every complete MSPC bin now, whatever ``mspc_interval_s`` says.
        """
        out = UnitOutputs()
        ordered = sorted(samples, key=lambda s: s.time_utc)
        if not self._scope_told and ordered:
            self._scope_told = True
            on = sorted(self.mspc_alarms)
            out.events.append(NewEvent(time_utc=ordered[0].time_utc, kind="info", payload={
                "mspc_alarms": on}, message=f"MSPC alarms on {', '.join(on) or 'nothing'} only: "
                "the process block knows recipe-fed batches, this unit is fed by a controller"))
        predictions = self._predict([s for s in ordered if s.tag == SPECTRUM_TAG])
        for smp in ordered:
            try:
                if self._logged:
                    self._apply_inputs(pd.Timestamp(smp.time_utc))
                if smp.tag == SPECTRUM_TAG:
                    self._spectrum(smp, predictions.get(id(smp)), out)
                else:
                    self._take(smp, out)
            except Exception as err:  # a sample the models cannot use never stops the unit
                self._fault(f"{smp.tag} at {smp.time_utc}: {type(err).__name__}: {err}")
        try:
            if final or time.monotonic() - self._mspc_at >= self.mspc_interval_s:
                self._score_bins(out)
        except Exception as err:
            self._fault(f"MSPC: {type(err).__name__}: {err}")
        return out

    def log_inputs(
        self,
        when: datetime,
        u: Sequence[float],
        boluses: Sequence[tuple[float, FeedComposition]] = (),
    ) -> None:
        """Tell the estimator what a controller set at ``when`` (thread-safe).

        ``u`` (feed L/h, its glucose, glutamine, osmolality, temperature: INPUT_NAMES order) is
        held from ``when`` on, in place of the recipe's feeds; ``boluses`` (litres,
        composition) are mixed in at ``when``. Applied when the samples reach ``when`` (the
        monitor runs behind the plant); the recipe's glucose rule stops: the controller feeds.
        """
        with self._logged_lock:
            self._logged.append((pd.Timestamp(when), tuple(float(v) for v in u), tuple(boluses)))
        self.glucose_rule = False

    def restrict_mspc(self, statistics: Sequence[str]) -> None:
        """Raise MSPC alarms on ``statistics`` only (the others are still scored and stored).

        For a unit a controller feeds: the process block compares it with recipe-fed batches,
        which it is not meant to follow; the probe checks (``t2_checks``) hold under any feed.
        """
        known = set(self.models.mspc.alarm_limits_)
        if not set(statistics) <= known:
            raise ValueError(f"unknown MSPC statistics {sorted(set(statistics) - known)}")
        self.mspc_alarms = frozenset(statistics)
        self._scope_told = False  # the batch record says so with the next outputs

    def _apply_inputs(self, until: pd.Timestamp) -> None:
        """Apply the logged controller inputs due by ``until``, in time order."""
        with self._logged_lock:
            due = sorted((x for x in self._logged if x[0] <= until), key=lambda x: x[0])
            self._logged = [x for x in self._logged if x[0] > until]
        for when, u, boluses in due:
            est = self._estimator(when.to_pydatetime())
            if est.start_utc is None:
                continue
            t = max(when, est.start_utc + pd.Timedelta(hours=est.t_h))
            est.step(None, t)  # the previous inputs up to the change
            est.held_u = u
            if boluses:
                est.step(None, t, inputs=StepInputs(u=u, boluses=list(boluses)))

    def status(self) -> UnitStatus:
        """Return a snapshot of the unit's estimates, MSPC statistics and active alarms."""
        est: dict[str, tuple[float, float, float]] = {}
        if self.estimate is not None:
            for name in KEY_STATES:
                lo, hi = self.estimate.interval(name, _STD_K)
                est[name] = (self.estimate.mean[name], lo, hi)
        start = self._start()
        day = 0.0
        if start is not None and self._last_time is not None:
            day = (pd.Timestamp(self._last_time) - start) / pd.Timedelta(days=1)
        alarms = tuple(
            ActiveAlarm(a.alarm, a.severity, a.state, a.since_utc, a.value, a.limit)
            for a in self.alarms.active()
        )
        return UnitStatus(
            unit=self.unit,
            time_utc=self._last_time,
            day=float(day),
            estimates=est,
            soft=dict(self._soft),
            trusted=float(np.mean(self._trust)) if self._trust else math.nan,
            mspc=dict(self.mspc.latest),
            mspc_limits={k: float(v) for k, v in self.models.mspc.alarm_limits_.items()
                         if k in self.mspc_alarms},
            alarms=alarms,
            diagnosis=self._diagnosis,
            samples=self._n["samples"],
            spectra=self._n["spectra"],
            skipped=self._n["skipped"],
            errors=self._n["errors"],
            last_error=self._last_error,
        )

    # -- samples ---------------------------------------------------------------------------

    def _take(self, smp: SampleLike, out: UnitOutputs) -> None:
        when = self._clock(smp.time_utc)
        self._n["samples"] += 1
        good = smp.quality == "good" and _finite(smp.value)
        value = float(smp.value) if good else math.nan
        out.transitions += self.alarms.update(smp.tag, when, value, smp.quality)
        self.mspc.take(smp.tag, when, value if good else None)
        if not good:
            self._n["skipped"] += 1
            return
        self._latest[smp.tag] = (when, value)

    def _predict(self, spectra: list[SampleLike]) -> dict[int, SoftSensorPrediction]:
        """Soft-sensor predictions of the usable spectra (by ``id`` of the sample).

        Usable: not bad, finite, of the calibration's length (else counted, not predicted:
        the spectrum is untrusted). One call for all of them; should it fail, one by one,
        so a spectrum the models cannot read never costs the others their predictions.
        """
        n = self.models.soft_sensor.n_features_in_
        ok: list[tuple[SampleLike, np.ndarray]] = []
        for s in spectra:
            if s.quality == "bad" or s.value is None:
                continue
            x = np.asarray(s.value, dtype=float)
            if x.shape != (n,):
                self._fault(f"spectrum at {s.time_utc}: {x.size} points, the soft sensors "
                            f"were calibrated on {n}")
            elif np.all(np.isfinite(x)):
                ok.append((s, x))
        if not ok:
            return {}
        try:
            pred = self._stream.predict([s.time_utc for s, _ in ok], np.stack([x for _, x in ok]))
            return {id(s): _row(pred, i) for i, (s, _) in enumerate(ok)}
        except ValueError:
            out = {}
            for s, x in ok:
                try:
                    out[id(s)] = self._stream.predict([s.time_utc], x[None, :])
                except ValueError as err:
                    self._fault(f"spectrum at {s.time_utc}: soft sensors: {err}")
            return out

    def _spectrum(
        self, smp: SampleLike, pred: SoftSensorPrediction | None, out: UnitOutputs
    ) -> None:
        """The soft sensors' outputs of one spectrum, then one estimator step at its time."""
        when = self._clock(smp.time_utc)
        self._n["spectra"] += 1
        soft = self.models.soft_sensor
        trusted_key = False
        if pred is not None:
            for j, name in enumerate(pred.analytes):
                if name in KEY_STATES and math.isfinite(pred.value[0, j]):
                    row = (float(pred.value[0, j]), float(pred.low[0, j]), float(pred.high[0, j]))
                    self._soft[name] = row
                    for bound, v in zip(BOUNDS, row, strict=True):
                        out.samples.append((soft_tag(name, bound), when, v))
            key = [j for j, a in enumerate(pred.analytes) if a in KEY_STATES]
            trusted_key = bool(np.all(pred.trusted[0, key]))
        else:
            self._n["skipped"] += 1
        self._trust.append(1.0 if trusted_key else 0.0)
        share = float(np.mean(self._trust))
        out.samples.append((TRUST_TAG, when, share))
        if len(self._trust) >= TRUST_WINDOW // 2:  # one odd spectrum at a batch's start is not
            self._trust_lost = share < (TRUST_BACK_AT if self._trust_lost else TRUST_LOST_BELOW)
        out.transitions += self.alarms.update(TRUST_TAG, when, 0.0 if self._trust_lost else 1.0)
        fresh = {
            tag: v
            for tag, (t, v) in self._latest.items()
            if tag in ESTIMATOR_TAGS and (when - t).total_seconds() <= FRESH_MIN * 60.0
        }
        ms = online_measurements(fresh)
        if pred is not None:
            ms += soft_sensor_measurements(pred, 0, coverage=soft.interval_level)
        est = self._estimator(when)
        if est.start_utc is None or pd.Timestamp(when) < est.start_utc:
            return
        if self.glucose_rule:
            self._top_ups(est, pd.Timestamp(when))
        self.estimate = est.step(ms, pd.Timestamp(when))
        for name in KEY_STATES:
            lo, hi = self.estimate.interval(name, _STD_K)
            row = (self.estimate.mean[name], lo, hi)
            for bound, v in zip(BOUNDS, row, strict=True):
                out.samples.append((estimate_tag(name, bound), when, float(v)))

    def _estimator(self, when: datetime) -> StateEstimator:
        if self.estimator is None:
            start = self._start() or pd.Timestamp(when)
            self.estimator = StateEstimator(self.recipe, start_utc=start)
            plan = bolus_plan(self.estimator.recipe, ())
            self._top_up_h = sorted(t for t, items in plan.items()
                                    if any(kind == "glucose_feed" for kind, _, _ in items))
        return self.estimator

    def _top_ups(self, est: StateEstimator, until: pd.Timestamp) -> None:
        """Tell the estimator the recipe's daily glucose top-ups due by ``until``.

        The plant does not serve its feed log, so each top-up is reconstructed with the
        recipe's rule (back to target if below the trigger, measured after the feeds planned
        at that time, as the twin does), on the estimated glucose and volume, and mixed in
        as a bolus of the stock.
        """
        g = est.recipe.glucose_feed
        assert est.start_utc is not None
        while g is not None and self._top_up_h:
            t_feed = est.start_utc + pd.Timedelta(hours=self._top_up_h[0])
            if t_feed > until:
                return
            self._top_up_h.pop(0)
            if t_feed < est.start_utc + pd.Timedelta(hours=est.t_h):
                continue  # before the monitor started
            est.step(None, t_feed)
            now = est.step(None, t_feed)  # again: the feeds planned then are mixed in first
            glucose, volume = now.mean["glucose_g_per_l"], now.mean["volume_l"]
            if glucose < g.trigger_below_g_per_l:  # the twin's rule (biopilot.twin.process)
                target, stock = g.target_g_per_l, g.stock_g_per_l
                litres = (target - glucose) * volume / (stock - target)
                est.step(None, t_feed, inputs=StepInputs(boluses=[(litres, g.composition())]))

    # -- MSPC ------------------------------------------------------------------------------

    def _score_bins(self, out: UnitOutputs) -> None:
        """Score the MSPC bins completed since the last call; feed their statistics to alarms."""
        self._mspc_at = time.monotonic()
        bins = self.mspc.score()
        raised = None
        for when, row in bins.iterrows():
            t = when.to_pydatetime()
            for key, value in row.items():
                tag = MSPC_TAGS[str(key)]
                out.samples.append((tag, t, float(value)))
                if key not in self.mspc_alarms:
                    continue
                for tr in self.alarms.update(tag, t, float(value)):
                    out.transitions.append(tr)
                    raised = tr if tr.transition == "raised" else raised
        if raised is not None:
            self._diagnose(raised, out)

    def _diagnose(self, tr: AlarmTransition, out: UnitOutputs) -> None:
        """Name the variables behind an MSPC alarm (an info event beside the alarm)."""
        contrib = self.mspc.diagnose(tr.time_utc)
        top = contrib.head(3)
        self._diagnosis = str(top.index[0])
        share = top / max(float(contrib.clip(lower=0).sum()), 1e-300)
        text = ", ".join(f"{k} {100 * v:.0f} %" for k, v in share.items())
        out.events.append(
            NewEvent(
                time_utc=tr.time_utc,
                kind="info",
                message=f"{tr.alarm}: largest contributions to {contrib.name}: {text}",
                payload={"alarm": tr.alarm, "statistic": str(contrib.name),
                         "contributions": {str(k): float(v) for k, v in top.items()}},
            )
        )

    # -- helpers ---------------------------------------------------------------------------

    def _start(self) -> pd.Timestamp | None:
        if self.start_utc is not None:
            return self.start_utc
        first = self.mspc.first_utc
        return None if first is None else pd.Timestamp(first)

    def _clock(self, when: datetime) -> datetime:
        """Advance the unit's latest time to ``when``; return it."""
        if self._last_time is None or when > self._last_time:
            self._last_time = when
        return when

    def _fault(self, text: str) -> None:
        self._n["errors"] += 1
        self._last_error = text


def _row(pred: SoftSensorPrediction, i: int) -> SoftSensorPrediction:
    """Row ``i`` of a prediction, as a one-row prediction."""
    cols = ("value", "low", "high", "t2", "dmodx", "trusted", "reason")
    return SoftSensorPrediction(pred.analytes, **{c: getattr(pred, c)[i : i + 1] for c in cols})


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
