"""Tests of the online monitor: a twin batch fed sample by sample, as the line client gives it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from biopilot.config import parse_model
from biopilot.monitor.online import OnlineMonitor, derived_units
from biopilot.monitor.online_models import OnlineModels, available_checks, build_online_models
from biopilot.monitor.online_mspc import MSPC_TAGS
from biopilot.monitor.online_types import TRUST_TAG, estimate_tag, soft_tag
from biopilot.store import Historian
from biopilot.twin import default_recipe, parse_fault, simulate_batch
from biopilot.twin.batch import BatchResult
from biopilot.twin.recipe import Recipe

DAYS = 2


@dataclass(frozen=True)
class Smp:
    """A sample as the line client hands it over (the fields the monitor reads)."""

    unit: str
    tag: str
    time_utc: datetime
    value: Any
    quality: str = "good"


@pytest.fixture(scope="module")
def models() -> OnlineModels:
    """Small models: soft sensors on 4 designed batches, MSPC on 5 (+3 to calibrate)."""
    return build_online_models(seed=1, soft_sensor_batches=4, mspc_batches=5,
                               calibration_batches=3)


@pytest.fixture(scope="module")
def drifting() -> BatchResult:
    """A batch whose DO probe drifts from day 0.3 (-20 %/day), read by a loop at setpoint."""
    return simulate_batch(seed=7, unit="BR-03", faults=[parse_fault("do_probe_drift@0.3:-20")])


def _samples(batch: BatchResult, unit: str, days: float) -> list[Smp]:
    """The batch's online readings and spectra of its first ``days``, in time order."""
    end = batch.start_utc + pd.Timedelta(days=days)
    on = batch.online[batch.online.index < end]
    out = [Smp(unit, tag, ts.to_pydatetime(), v)
           for ts, row in on.iterrows() for tag, v in row.items()]
    assert batch.raman is not None
    keep = batch.raman.time_utc < end
    out += [Smp(unit, "raman", ts.to_pydatetime(), s)
            for ts, s in zip(batch.raman.time_utc[keep], batch.raman.spectra[keep], strict=True)]
    return sorted(out, key=lambda s: s.time_utc)


def _store(batch: BatchResult, unit: str) -> tuple[Historian, int]:
    h = Historian("sqlite://")
    h.ensure_unit("Site", "Area", unit)
    h.ensure_product("mAb")
    return h, h.start_batch("B1", unit, "mAb", None, batch.start_utc.to_pydatetime())


def test_a_drifting_probe_is_monitored_estimated_and_alarmed(
    models: OnlineModels, drifting: BatchResult
) -> None:
    hist, bid = _store(drifting, "BR-03")
    mon = OnlineMonitor(models, ["BR-03"], historian=hist, batch_of=lambda u: bid,
                        start_utc=drifting.start_utc)
    samples = _samples(drifting, "BR-03", DAYS)
    for k in range(0, len(samples), 2000):  # in pieces, as the client's batches come
        mon.feed(samples[k : k + 2000])
        mon.process()
    mon.process(final=True)
    st = mon.status()["BR-03"]
    assert st.errors == 0 and st.spectra == DAYS * 96 and round(st.day, 2) == DAYS
    truth = drifting.truth.loc[st.time_utc]
    for name in ("vcd_cells_per_ml", "glucose_g_per_l", "lactate_g_per_l", "titer_g_per_l"):
        mean, lo, hi = st.estimates[name]
        assert lo < mean < hi and abs(mean - truth[name]) <= max(0.15 * truth[name], 0.1), name
    # The oxygen balance of the probe checks catches the drift; the loop hides it from limits.
    assert "o2_balance_residual_frac" in models.mspc.features
    raised = [e for e in hist.read_events(bid, kinds=["alarm"])
              if e.payload["transition"] == "raised"]
    assert "mspc_t2_checks.MSPC" in {e.payload["alarm"] for e in raised}
    assert st.diagnosis == "o2_balance_residual_frac"
    assert not any(e.payload["alarm"].startswith("do_pct.") for e in raised)
    tags = hist.batch_tags(bid)
    assert tags[estimate_tag("titer_g_per_l", "high")] == "g/L"
    assert tags[soft_tag("vcd_cells_per_ml")] == "cells/mL"
    t2 = hist.read_tag(bid, MSPC_TAGS["t2"])
    assert len(t2) == DAYS * 24 * 6  # every 10-min bin, each once
    assert t2.index.is_monotonic_increasing and (t2["quality"] == "good").all()
    deployed = hist.read_events(bid, kinds=["info"])[0]
    assert deployed.payload["models"]["mspc"]["limits"]["t2"]["99"] > 0


def test_bad_samples_are_counted_never_fatal(models: OnlineModels, drifting: BatchResult) -> None:
    mon = OnlineMonitor(models, ["BR-03"])
    good = _samples(drifting, "BR-03", 0.25)
    when = good[-1].time_utc
    bad = [
        Smp("BR-03", "raman", when, np.ones(17)),  # a spectrum of another instrument
        Smp("BR-03", "raman", when, np.full(models.soft_sensor.n_features_in_, np.nan)),
        Smp("BR-03", "ph", when, None, "bad"),
        Smp("BR-03", "do_pct", when, float("inf")),
        Smp("BR-99", "ph", when, 7.0),  # a unit not monitored: ignored
    ]
    mon.feed(good + bad)
    assert mon.process() == len(good) + len(bad)
    st = mon.status()["BR-03"]
    assert st.errors == 1 and "17 points" in (st.last_error or "")
    assert st.skipped >= 3 and st.trusted < 1.0  # the NaN spectrum is not trusted
    assert "ph.BAD" in {a.alarm for a in st.alarms}
    assert st.estimates  # the estimator went on with what was usable


def test_outputs_wait_for_the_batch_then_are_written(
    models: OnlineModels, drifting: BatchResult
) -> None:
    hist, bid = _store(drifting, "BR-03")
    batch: dict[str, int] = {}
    mon = OnlineMonitor(models, ["BR-03"], historian=hist, batch_of=batch.get)
    mon.feed(_samples(drifting, "BR-03", 0.1))
    mon.process()
    assert hist.batch(bid).n_samples == 0 and mon.stats.written == 0
    batch["BR-03"] = bid
    mon.process()
    assert mon.stats.written == hist.batch(bid).n_samples > 0
    assert TRUST_TAG in hist.batch_tags(bid)


def test_probe_checks_follow_what_the_line_serves() -> None:
    assert available_checks(["ph", "ph_offline"]) == ("ph_online_minus_offline",)
    served = ["our_mmol_per_l_h", "do_pct", "o2_fraction_pct", "air_flow_slpm", "o2_flow_slpm"]
    assert available_checks(served) == ("o2_balance_residual_frac",)
    assert derived_units("lactate_g_per_l.est_low") == "g/L"
    assert derived_units("mspc_spe") == "-"


def test_the_estimator_follows_the_glucose_top_ups_the_plant_does_not_report(
    models: OnlineModels,
) -> None:
    """From day 3 the plant tops glucose up daily; the monitor applies the recipe's rule."""
    batch = simulate_batch(seed=12, unit="BR-02")
    errors = {}
    for rule in (True, False):
        mon = OnlineMonitor(models, ["BR-02"], start_utc=batch.start_utc)
        mon.units["BR-02"].glucose_rule = rule
        samples = _samples(batch, "BR-02", 4.5)
        err = []
        for k in range(0, len(samples), 6000):
            mon.feed(samples[k : k + 3000])
            mon.process()
            st = mon.status()["BR-02"]
            if st.day > 3.2:
                truth = batch.truth.loc[pd.Timestamp(st.time_utc), "glucose_g_per_l"]
                err.append(abs(st.estimates["glucose_g_per_l"][0] - truth))
        errors[rule] = float(np.mean(err))
    assert errors[True] < 0.4 and errors[False] > 1.0, errors  # g/L, mean abs error


def test_a_fed_unit_keeps_the_probe_check_alarms_only(models: OnlineModels) -> None:
    # 1.6 x the recipe's feed boluses: the process block (trained on recipe batches) sees a
    # batch unlike them; a unit a controller feeds is meant to differ, so only its probe
    # checks alarm. The same batch on an unrestricted unit raises the process-block alarm.
    data = default_recipe().model_dump()
    for feed in data["bolus_feeds"]:
        feed["volume_l"] *= 1.6
    fed = simulate_batch(parse_model(Recipe, data, source="test"), seed=5, unit="BR-02")
    samples = _samples(fed, "BR-02", 6)
    raised: dict[str, set[str]] = {}
    for restricted in (False, True):
        hist, bid = _store(fed, "BR-02")
        mon = OnlineMonitor(models, ["BR-02"], historian=hist, batch_of=lambda u, b=bid: b,
                            start_utc=fed.start_utc)
        if restricted:
            mon.units["BR-02"].restrict_mspc(["t2_checks"])
        mon.feed(samples)
        mon.process(final=True)
        events = hist.read_events(bid, kinds=["alarm"])
        raised[str(restricted)] = {e.payload["alarm"] for e in events
                                   if e.payload["transition"] == "raised"}
        if restricted:
            assert set(mon.status()["BR-02"].mspc_limits) == {"t2_checks"}
            info = hist.read_events(bid, kinds=["info"])
            (told,) = [e for e in info if "mspc_alarms" in e.payload]
            assert told.payload["mspc_alarms"] == ["t2_checks"] and "controller" in told.message
            assert len(hist.read_tag(bid, MSPC_TAGS["t2"])) == 6 * 24 * 6  # still scored
    process = {"mspc_t2.MSPC", "mspc_spe.MSPC"}
    assert raised["False"] & process
    assert not raised["True"] & process
    with pytest.raises(ValueError, match="unknown MSPC statistics"):
        OnlineMonitor(models, ["BR-02"]).units["BR-02"].restrict_mspc(["t3"])
