"""Tests of the pH probe check alarm: online pH against the daily at-line pH, on the twin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from biopilot.config import ConfigError, parse_model
from biopilot.monitor.alarms import AlarmEngine, AlarmTransition, MspcRule, ProbeCheckRule
from biopilot.monitor.mspc import BatchEvolutionModel, load
from biopilot.monitor.mspc_features import (
    PROBE_CHECKS,
    PROBE_STANDARDS,
    probe_differences,
    probe_limit,
)
from biopilot.monitor.online_mspc import alarm_rules
from biopilot.store import Historian
from biopilot.twin import parse_fault, simulate_batch

PH = PROBE_STANDARDS["ph_online_minus_offline"]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _frame(seed: int, *faults: str) -> pd.DataFrame:
    """A batch as the historian holds it: online tags and the at-line pH (NaN in between)."""
    b = simulate_batch(seed=seed, raman=False, faults=[parse_fault(f) for f in faults])
    return b.online.join(b.atline[["ph_offline"]])


def _run(engine: AlarmEngine, batch: pd.DataFrame) -> list[AlarmTransition]:
    """Feed the batch's online and at-line pH in time order (at-line after its minute's pH)."""
    rows = [(t, 0, "ph", v) for t, v in batch["ph"].items()]
    rows += [(t, 1, "ph_offline", v) for t, v in batch["ph_offline"].dropna().items()]
    out = []
    for t, _, tag, v in sorted(rows, key=lambda r: (r[0], r[1])):
        out += engine.update(tag, t.to_pydatetime(), v)
    return out


@pytest.fixture(scope="module")
def model() -> BatchEvolutionModel:
    """Fitted with the probe checks on six good batches, calibrated on three others."""
    m = BatchEvolutionModel(period_min=30.0, features=PROBE_CHECKS)
    return m.fit([_frame(s) for s in range(300, 306)]).calibrate([_frame(s) for s in (310, 311)])


def test_probe_limit_is_k_rms_differences_of_good_batches(model) -> None:
    good = [_frame(s) for s in (310, 311)]
    d = np.concatenate([probe_differences(b, PH, 30.0).to_numpy() for b in good])
    assert len(d) == 30  # 15 daily samples each
    assert model.probe_limits_["ph_online_minus_offline"] == pytest.approx(
        4.0 * np.sqrt(np.mean(d**2))
    )
    # the at-line analyser's +-0.02 pH dominates: the limit is where plants re-standardise
    assert 0.05 < model.probe_limits_["ph_online_minus_offline"] < 0.11
    with pytest.raises(ValueError, match=">= 30 reference samples"):
        probe_limit(good[:1], PH, 4.0)
    kept = BatchEvolutionModel(period_min=30.0, features=PROBE_CHECKS)
    kept.fit([_frame(s) for s in range(300, 306)])
    fitted = dict(kept.probe_limits_)
    kept.calibrate(good[:1])  # too few reference samples: the fitted batches' limit stays
    assert kept.probe_limits_ == fitted


def test_alarm_rules_hold_the_run_rules_and_the_probe_check(model, tmp_path) -> None:
    rules = alarm_rules(model)
    assert {r.tag for r in rules if isinstance(r, MspcRule)} == {
        "mspc_t2",
        "mspc_spe",
        "mspc_t2_checks",
    }
    (check,) = [r for r in rules if isinstance(r, ProbeCheckRule)]
    assert (check.tag, check.reference) == ("ph", "ph_offline")
    assert check.limit == model.probe_limits_["ph_online_minus_offline"]
    again = load(model.save(tmp_path / "m.json"))
    assert alarm_rules(again) == rules
    assert not any(
        isinstance(r, ProbeCheckRule)
        for r in alarm_rules(BatchEvolutionModel().fit([_frame(s) for s in range(300, 303)]))
    )


def test_ph_probe_drift_raises_the_crosscheck_with_its_numbers(model, tmp_path) -> None:
    batch = _frame(999, "ph_probe_drift@5:0.06")  # +0.06 pH/day from day 5
    hist = Historian(tmp_path / "line.db")
    hist.ensure_unit("Basel", "USP", "BR-01")
    hist.ensure_product("mAb-1")
    bid = hist.start_batch("B1", "BR-01", "mAb-1", None, batch.index[0].to_pydatetime())
    engine = AlarmEngine(alarm_rules(model), hist, "BR-01", bid)
    raised = [t for t in _run(engine, batch) if t.transition == "raised"]
    assert raised, "a 0.06 pH/day drift must raise the probe check before harvest"
    first = raised[0]
    assert first.alarm == "ph.CROSSCHECK"
    day = (first.time_utc - batch.index[0]).total_seconds() / 86400.0
    assert 5.0 < day < 14.0
    truth = probe_differences(batch, PH, 30.0)
    assert first.value == pytest.approx(truth[first.time_utc])  # the difference, not the pH
    assert first.value > first.limit  # probe reads high: it drifts up, the loop follows
    limit = model.probe_limits_["ph_online_minus_offline"]
    expected = (
        f"ph.CROSSCHECK active: pH probe vs at-line differ by {first.value:.3f} pH "
        f"(> {limit:.3f}), the probe reads high: re-standardise the probe"
    )
    assert first.message == expected
    assert engine.flush() >= 1
    (event, *_) = hist.read_events(batch_id=bid, kinds=["alarm"])
    assert event.message == expected and event.payload["limit"] == pytest.approx(limit)


def test_normal_batches_raise_no_crosscheck(model) -> None:
    for seed in (4242, 4243, 4244):
        engine = AlarmEngine([r for r in alarm_rules(model) if isinstance(r, ProbeCheckRule)])
        assert _run(engine, _frame(seed)) == []


def test_streamed_differences_match_the_batch_computation(model) -> None:
    batch = _frame(998, "ph_probe_drift@3:-0.08")
    rule = ProbeCheckRule(tag="ph", reference="ph_offline", limit=1e-6, window_min=30.0)
    engine = AlarmEngine([rule])
    got = {}
    rows = [(t, 0, "ph", v) for t, v in batch["ph"].items()]
    rows += [(t, 1, "ph_offline", v) for t, v in batch["ph_offline"].dropna().items()]
    for t, _, tag, v in sorted(rows, key=lambda r: (r[0], r[1])):
        for tr in engine.update(tag, t.to_pydatetime(), v):
            got[tr.time_utc] = tr.value
        # a limit of ~0 flips on each sample's sign: record every judgement
        det = engine._detectors["ph"][0][0]
        if tag == "ph_offline":
            got[t] = det.difference  # type: ignore[attr-defined]
    truth = probe_differences(batch, PH, 30.0)
    pd.testing.assert_series_equal(
        pd.Series(got).reindex(truth.index), truth, check_names=False, check_freq=False
    )
    assert truth.iloc[-1] < -0.5  # the probe reads low by ~0.09 pH/day x 11 days


def test_late_and_early_at_line_results_and_bad_samples() -> None:
    eng = AlarmEngine([ProbeCheckRule(tag="ph", reference="ph_offline", limit=0.08)])
    for i in range(30):  # the probe reads 7.10 from minute 0 to 29
        eng.update("ph", T0 + timedelta(minutes=i), 7.10)
    # a sample drawn at minute 5, reported at minute 30: compared with minutes -4..5
    (tr,) = eng.update("ph_offline", T0 + timedelta(minutes=5), 7.00)
    assert (tr.alarm, tr.transition, tr.time_utc) == (
        "ph.CROSSCHECK",
        "raised",
        T0 + timedelta(minutes=5),
    )
    assert tr.value == pytest.approx(0.10) and "reads high" in tr.message
    assert eng.update("ph_offline", T0 + timedelta(minutes=31), float("nan"), "bad") == []
    for i in range(30, 40):
        eng.update("ph", T0 + timedelta(minutes=i), 7.10)
    # drawn at minute 40, before the probe's reading of that minute: judged at that reading
    assert eng.update("ph_offline", T0 + timedelta(minutes=40), 7.08) == []
    (tr,) = eng.update("ph", T0 + timedelta(minutes=40), 7.10)
    assert tr.transition == "cleared" and tr.value == pytest.approx(0.02)
    assert "returned to normal" in tr.message
    assert eng.status("ph.CROSSCHECK").state == "unack_rtn"


def test_probe_check_rule_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="reference"):
        parse_model(ProbeCheckRule, {"tag": "ph", "reference": "ph", "limit": 0.08})
    with pytest.raises(ConfigError, match="limit"):
        parse_model(ProbeCheckRule, {"tag": "ph", "reference": "ph_offline", "limit": 0})
