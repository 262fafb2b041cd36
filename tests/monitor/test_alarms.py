"""Tests of the alarm engine: each rule fires and clears, the ISA-18.2 states, stored events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from biopilot.config import ConfigError, parse_model
from biopilot.monitor.alarms import (
    AlarmEngine,
    LimitRule,
    MspcRule,
    RateRule,
    SanityRule,
    TrustRule,
    default_rules,
)
from biopilot.store import Historian

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _feed(engine: AlarmEngine, tag: str, values, quality: str = "good", start: int = 0):  # type: ignore[no-untyped-def]
    """Feed one value a minute from minute ``start``; return (alarm, transition) pairs."""
    out = []
    for i, v in enumerate(values):
        out += engine.update(tag, T0 + timedelta(minutes=start + i), v, quality)
    return [(t.alarm, t.transition) for t in out]


def test_limit_alarms_fire_by_level_and_clear_outside_the_deadband() -> None:
    eng = AlarmEngine([LimitRule(tag="ph", hi=7.2, hihi=7.3, lo=6.8, deadband=0.02)])
    assert _feed(eng, "ph", [7.0, 7.25]) == [("ph.HI", "raised")]
    assert _feed(eng, "ph", [7.35], start=2) == [("ph.HIHI", "raised")]
    assert _feed(eng, "ph", [7.19], start=3) == [("ph.HIHI", "cleared")]  # HI within deadband
    assert _feed(eng, "ph", [7.17], start=4) == [("ph.HI", "cleared")]
    assert _feed(eng, "ph", [6.7], start=5) == [("ph.LO", "raised")]


def test_rate_of_change_fires_on_a_fast_ramp_and_clears_when_flat() -> None:
    eng = AlarmEngine([RateRule(tag="temperature_c", max_per_h=3.0, window_min=10)])
    flat = [36.5] * 15
    ramp = list(36.5 + 0.1 * np.arange(1, 11))  # 6 degC/h
    got = _feed(eng, "temperature_c", flat + ramp + [ramp[-1]] * 15)
    assert got == [("temperature_c.ROC", "raised"), ("temperature_c.ROC", "cleared")]


def test_mspc_alarm_needs_n_consecutive_points_beyond_the_limit() -> None:
    eng = AlarmEngine([MspcRule(tag="mspc_spe", limit=10.0, run=3)])
    assert _feed(eng, "mspc_spe", [12, 12, 5, 12, 12]) == []
    assert _feed(eng, "mspc_spe", [12], start=5) == [("mspc_spe.MSPC", "raised")]
    assert _feed(eng, "mspc_spe", [5, 12, 5, 5], start=6) == []
    assert _feed(eng, "mspc_spe", [5], start=10) == [("mspc_spe.MSPC", "cleared")]


@pytest.mark.parametrize(
    ("rule", "bad", "alarm"),
    [
        (SanityRule(tag="do_pct", low=0, high=150), [40, 180, 40], "do_pct.RANGE"),
        (SanityRule(tag="do_pct", spike=10), [40, 40, 75, 40.2, 40.1], "do_pct.SPIKE"),
        (SanityRule(tag="do_pct", stuck_samples=5), [40.0] * 6 + [40.3], "do_pct.STUCK"),
        (
            SanityRule(tag="do_pct", flatline_min=10, flatline_eps=0.05),
            [40 + 0.01 * (i % 2) for i in range(12)] + [41.0],
            "do_pct.FLATLINE",
        ),
        (SanityRule(tag="do_pct"), [40, float("nan"), 40], "do_pct.BAD"),
        (SanityRule(tag="do_pct"), [40, float("inf"), 40], "do_pct.BAD"),
    ],
)
def test_each_sensor_sanity_alarm_fires_and_clears(rule, bad, alarm) -> None:
    got = _feed(AlarmEngine([rule]), rule.tag, bad)
    assert got == [(alarm, "raised"), (alarm, "cleared")]


def test_bad_quality_sample_raises_bad_and_never_crashes_other_rules() -> None:
    eng = AlarmEngine(
        [SanityRule(tag="ph"), LimitRule(tag="ph", hi=7.2), RateRule(tag="ph", max_per_h=1)]
    )
    assert _feed(eng, "ph", [7.0, 7.0], quality="bad") == [("ph.BAD", "raised")]
    assert eng.update("ph", T0, None) == []  # still bad: no new transition
    assert eng.status("ph.BAD").state == "unack_active"
    assert _feed(eng, "ph", [7.0], start=3) == [("ph.BAD", "cleared")]
    assert eng.update("unknown_tag", T0, float("nan"), "bad") == []


def test_soft_sensor_trust_lost_is_an_alarm_until_trust_returns() -> None:
    eng = AlarmEngine([TrustRule(tag="glucose_trust")])
    got = _feed(eng, "glucose_trust", [1, 1, 0, 0, 1])
    assert got == [("glucose_trust.TRUST", "raised"), ("glucose_trust.TRUST", "cleared")]


def test_state_machine_acknowledged_before_the_return_to_normal() -> None:
    eng = AlarmEngine([LimitRule(tag="ph", hi=7.2)])
    _feed(eng, "ph", [7.3])
    assert eng.status("ph.HI").state == "unack_active"
    (ack,) = eng.acknowledge("ph.HI", T0 + timedelta(minutes=1), user="op1")
    assert (ack.state_before, ack.state, ack.user) == ("unack_active", "ack_active", "op1")
    _feed(eng, "ph", [7.0], start=2)
    assert eng.status("ph.HI").state == "normal"
    assert eng.active() == []


def test_state_machine_acknowledged_after_the_return_to_normal_and_reraised() -> None:
    eng = AlarmEngine([LimitRule(tag="ph", hi=7.2)])
    _feed(eng, "ph", [7.3, 7.0])
    assert eng.status("ph.HI").state == "unack_rtn"
    assert [a.alarm for a in eng.active()] == ["ph.HI"]  # still to acknowledge
    _feed(eng, "ph", [7.3], start=2)  # back before the ack: active, unacknowledged
    assert eng.status("ph.HI").state == "unack_active"
    _feed(eng, "ph", [7.0], start=3)
    eng.acknowledge("ph.HI", T0 + timedelta(minutes=4))
    assert eng.status("ph.HI").state == "normal"
    assert eng.acknowledge("ph.HI", T0 + timedelta(minutes=5)) == []
    with pytest.raises(KeyError, match=r"unknown alarm 'ph\.LO'"):
        eng.acknowledge("ph.LO", T0)


def test_shelved_alarm_is_hidden_and_returns_active_when_unshelved() -> None:
    eng = AlarmEngine([LimitRule(tag="ph", hi=7.2)])
    _feed(eng, "ph", [7.3])
    eng.shelve("ph.HI", T0, user="op1")
    assert eng.active() == []
    assert _feed(eng, "ph", [7.0, 7.4], start=1) == []
    (tr,) = eng.unshelve("ph.HI", T0 + timedelta(minutes=3))
    assert tr.state == "unack_active"


def test_transitions_are_stored_as_historian_events(tmp_path) -> None:
    hist = Historian(tmp_path / "line.db")
    hist.ensure_unit("Basel", "USP", "BR-01")
    hist.ensure_product("mAb-1")
    bid = hist.start_batch("B1", "BR-01", "mAb-1", None, T0)
    eng = AlarmEngine([LimitRule(tag="ph", hi=7.2, hihi=7.5)], hist, "BR-01", bid)
    _feed(eng, "ph", [7.3])
    eng.acknowledge("ph.HI", T0 + timedelta(minutes=1), user="op1")
    _feed(eng, "ph", [7.0], start=2)
    assert eng.flush() == 3
    assert eng.flush() == 0
    events = hist.read_events(batch_id=bid)
    assert [e.kind for e in events] == ["alarm", "acknowledgement", "alarm"]
    assert [e.payload["transition"] for e in events] == ["raised", "acknowledged", "cleared"]
    assert events[0].severity == "medium" and events[0].payload["limit"] == 7.2
    assert "ph.HI active" in events[0].message and events[1].payload["user"] == "op1"


def test_bad_rules_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="ordered"):
        parse_model(LimitRule, {"tag": "ph", "hi": 7.0, "lo": 7.2})
    with pytest.raises(ConfigError, match="run"):
        parse_model(MspcRule, {"tag": "spe", "limit": 1.0, "run": 0})
    with pytest.raises(ValueError, match="unit"):
        AlarmEngine([], historian=Historian("sqlite://"))
    with pytest.raises(ValueError, match="timezone-aware"):
        AlarmEngine([LimitRule(tag="ph", hi=7.2)]).update("ph", datetime(2026, 3, 1), 7.0)


def test_default_rules_flag_only_the_dropouts_of_a_normal_twin_day() -> None:
    from biopilot.twin import simulate_batch

    samples = simulate_batch(seed=3, raman=False).samples()
    day = samples[samples["time_utc"] < samples["time_utc"].min() + timedelta(days=1)]
    eng = AlarmEngine(default_rules())
    raised = [t for t in eng.update_many(day) if t.transition == "raised"]
    dropped = day[day["value"].isna()]
    assert {t.alarm for t in raised} == {f"{tag}.BAD" for tag in dropped["tag"]}
    assert all(np.isnan(t.value) for t in raised)
