"""Tests of batch MSPC: agreement with pyphi-mvda, contributions, alarms, save/load, bad data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biopilot.config import ConfigError
from biopilot.monitor.mspc import BatchEvolutionModel, BatchLevelModel, first_run, load
from biopilot.monitor.mspc_features import PROBE_CHECKS, derive
from biopilot.monitor.mspc_pca import PCAMonitor, spe_limit_box, spe_limit_jackson_mudholkar
from biopilot.twin import parse_fault, simulate_batch
from biopilot.twin.loops import LoopTuning

with contextlib.redirect_stdout(io.StringIO()):  # pyphi greets on import
    import pyphi.calc as phi

TRAIN_SEEDS = range(100, 112)
CALIBRATION_SEEDS = range(150, 154)


def _frame(seed: int, *faults: str) -> pd.DataFrame:
    """A batch as the historian holds it: online tags and the at-line pH (NaN in between)."""
    b = simulate_batch(seed=seed, raman=False, faults=[parse_fault(f) for f in faults])
    return b.online.join(b.atline[["ph_offline"]])


@pytest.fixture(scope="session")
def campaign() -> list[pd.DataFrame]:
    """Twelve good batches."""
    return [_frame(s) for s in TRAIN_SEEDS]


@pytest.fixture(scope="session")
def others() -> list[pd.DataFrame]:
    """Four good batches to calibrate the alarm limits."""
    return [_frame(s) for s in CALIBRATION_SEEDS]


@pytest.fixture(scope="session")
def model(campaign: list[pd.DataFrame], others: list[pd.DataFrame]) -> BatchEvolutionModel:
    """Fitted on the campaign, alarm limits calibrated on four other good batches."""
    return BatchEvolutionModel(period_min=30.0).fit(campaign).calibrate(others)


@pytest.fixture(scope="session")
def checked(campaign: list[pd.DataFrame], others: list[pd.DataFrame]) -> BatchEvolutionModel:
    """The same with the probe cross-checks as a second block."""
    m = BatchEvolutionModel(period_min=30.0, features=PROBE_CHECKS)
    return m.fit(campaign).calibrate(others)


def _quiet(fn, *args, **kw):  # type: ignore[no-untyped-def]
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kw)


def _same(ours: np.ndarray, ref: np.ndarray, rtol: float = 0.01) -> None:
    """Elementwise within ``rtol``, tolerance floor at 1 % of the reference spread."""
    ours, ref = np.ravel(ours), np.ravel(ref)
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * float(np.std(ref)))


def _aligned(scores: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return scores * np.sign(np.sum(scores * ref, axis=0))  # PCs are defined up to sign


def test_observation_level_limits_and_scores_agree_with_pyphi(model, campaign) -> None:
    Z = np.vstack([model.normalise(b)[: model.n_bins_] for b in campaign])
    ours = PCAMonitor(3).fit(Z)
    ref = _quiet(phi.pca, Z.copy(), 3)
    for a, tag in ((0.95, "95"), (0.99, "99")):
        assert ours.t2_limits_[a] == pytest.approx(ref[f"T2_lim{tag}"], rel=0.01)
        assert ours.spe_limits_[a] == pytest.approx(ref[f"speX_lim{tag}"], rel=0.01)
    s = ours.score_samples(Z)
    _same(_aligned(s["scores"], ref["T"]), ref["T"])
    _same(s["t2"], ref["T2"])
    _same(s["spe"], ref["speX"])
    # New observations with missing values: pyphi's projection to the model plane.
    new = Z[:200].copy()
    new[::7, 2] = np.nan
    pred = _quiet(phi.pca_pred, new, ref)
    s = ours.score_samples(new)
    _same(_aligned(s["scores"], pred["Tnew"]), pred["Tnew"])
    _same(s["t2"], pred["T2"])
    _same(s["spe"], pred["speX"])
    # SPE contributions are pyphi's squared residuals (it keeps their sign).
    rows = [3, 50]
    c = ours.contributions(Z[rows])["spe"]
    for i, r in enumerate(rows):
        ref_c = _quiet(phi.contributions, ref, Z, "spe", to_obs=[r])
        _same(c[i], np.abs(ref_c))


def test_batch_level_limits_and_scores_agree_with_pyphi(campaign) -> None:
    quality = pd.DataFrame({"titer_g_per_l": np.linspace(4.0, 5.0, len(campaign))})
    bl = BatchLevelModel(n_components=2, period_min=120.0).fit(campaign, quality)
    X = bl.unfold(campaign, quality)
    # pyphi's mpca drops constant columns first (clean_low_variances); they score 0 in ours.
    X = X[:, X.std(axis=0) > 1e-9]
    # pyphi's SVD path: with 12 batches PC 2 and 3 are close and NIPALS stops on a norm test.
    ref = _quiet(phi.pca, X.copy(), 2, force_nipals=False)
    for a, tag in ((0.95, "95"), (0.99, "99")):
        assert bl.pca_.t2_limits_[a] == pytest.approx(ref[f"T2_lim{tag}"], rel=0.01)
        assert bl.pca_.spe_limits_[a] == pytest.approx(ref[f"speX_lim{tag}"], rel=0.01)
    mon = bl.monitor(campaign, quality)
    _same(_aligned(mon[["score_1", "score_2"]].to_numpy(), ref["T"]), ref["T"])
    _same(mon["t2"].to_numpy(), ref["T2"])
    _same(mon["spe"].to_numpy(), ref["speX"])
    assert list(bl.contributions(campaign[:1], quality[:1]).columns)[-1] == "titer_g_per_l"


def test_spe_limits_of_box_and_jackson_mudholkar_agree_on_gaussian_data() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 6)) @ np.diag([5, 3, 1, 1, 1, 1])
    m = PCAMonitor(2).fit(X)
    box = spe_limit_box(m.spe_train_, 0.99)
    jm = spe_limit_jackson_mudholkar(m.residual_eigenvalues_, 0.99)
    assert jm == pytest.approx(box, rel=0.05)
    assert np.mean(m.spe_train_ > box) == pytest.approx(0.01, abs=0.005)


def test_t2_contributions_sum_to_t2(model, campaign) -> None:
    mon = model.monitor(campaign[0])
    c = model.contributions(campaign[0], "t2")
    np.testing.assert_allclose(c.sum(axis=1), mon["t2"], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="statistic"):
        model.contributions(campaign[0], "dmodx")


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("do_probe_drift@3:-10", {"o2_fraction_pct", "do_pct"}),
        ("temperature_excursion@6:3", {"temperature_c"}),
    ],
)
def test_contributions_point_at_the_faulty_variable(model, fault, expected) -> None:
    online = simulate_batch(seed=999, raman=False, faults=[parse_fault(fault)]).online
    mon = model.monitor(online)
    assert mon["alarm"].any()
    first = mon.index[mon["alarm"].to_numpy()][0]
    onset = online.index[0] + pd.Timedelta(days=float(fault.split("@")[1].split(":")[0]))
    assert first >= onset
    top = model.diagnose(online, first)
    assert top.index[0] in expected
    assert top.name in ("t2", "spe")


def test_a_new_good_batch_raises_no_alarm_and_contamination_does(model) -> None:
    good = simulate_batch(seed=4242, raman=False).online
    assert not model.monitor(good)["alarm"].any()
    bad = simulate_batch(seed=4242, raman=False, faults=[parse_fault("contamination@7:10")])
    mon = model.monitor(bad.online)
    assert mon["alarm"].any()
    assert mon["maturity_h"][mon["alarm"]].iloc[0] >= 7 * 24
    assert model.score([good, bad.online]) == 0.5


def test_save_and_load_round_trip_and_refuse_another_version(model, campaign, tmp_path) -> None:
    path = model.save(tmp_path / "m.json", {"batches": list(TRAIN_SEEDS)})
    again = load(path)
    pd.testing.assert_frame_equal(again.monitor(campaign[1]), model.monitor(campaign[1]))
    assert again.training_metadata_["batches"] == list(TRAIN_SEEDS)
    assert again.get_params() == model.get_params()
    body = json.loads(Path(path).read_text())
    body["format_version"] = 99
    (tmp_path / "old.json").write_text(json.dumps(body))
    with pytest.raises(ConfigError, match="version 99"):
        load(tmp_path / "old.json")
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(ConfigError, match="not a biopilot MSPC model"):
        load(tmp_path / "junk.json")


def test_nan_and_inf_samples_do_not_crash(model, campaign) -> None:
    online = campaign[2].copy()
    online.iloc[3000:3300, 1] = np.nan  # 5 h without DO: bins projected on the rest
    online.iloc[4980:5040, :] = np.nan  # 1 h without anything: NaN statistics
    online.iloc[6000, 0] = np.inf
    mon = model.monitor(online)
    assert np.isfinite(mon["t2"].iloc[100:110]).all()
    assert np.isfinite(mon["spe"].iloc[3000 // 30 + 2])
    assert np.isnan(mon["t2"].iloc[4980 // 30 + 1])
    assert not mon["alarm"].any()


def test_bad_training_input_is_refused(campaign) -> None:
    with pytest.raises(ValueError, match=">= 3 good batches"):
        BatchEvolutionModel().fit(campaign[:2])
    with pytest.raises(ValueError, match="lacks the MSPC variables"):
        BatchEvolutionModel().fit([b.drop(columns="ph") for b in campaign[:3]])
    with pytest.raises(ValueError, match="n_components"):
        PCAMonitor(12).fit(np.ones((20, 3)))


def test_calibrated_alarm_limits_sit_above_the_good_batches_peaks(model, campaign) -> None:
    assert model.n_calibration_batches_ == len(CALIBRATION_SEEDS)
    assert model.alarm_limits_["t2"] > model.t2_limits_[0.99]
    assert model.alarm_limits_["spe"] > model.spe_limits_[0.99]
    assert not any(model.monitor(b)["alarm"].any() for b in campaign)
    with pytest.raises(ValueError, match="calibrate needs"):
        model.calibrate([])


def test_first_run_finds_the_end_of_the_first_long_enough_run() -> None:
    flags = np.array([1, 1, 0, 1, 1, 1, 0], dtype=bool)
    assert first_run(flags, 3) == 5
    assert first_run(flags, 4) is None
    assert first_run(flags, 1) == 0


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("do_probe_drift@5:-4", "o2_balance_residual_frac"),
        ("ph_probe_drift@5:0.06", "ph_online_minus_offline"),
    ],
)
def test_probe_checks_catch_a_drifting_probe_and_name_the_check(checked, fault, expected) -> None:
    online = _frame(999, fault)
    mon = checked.monitor(online)
    assert mon["alarm"].any()
    first = mon.index[mon["alarm"].to_numpy()][0]
    assert mon.loc[first, "maturity_h"] >= 5 * 24
    top = checked.diagnose(online, first)
    assert top.name == "t2_checks" and top.index[0] == expected
    assert not checked.monitor(_frame(4242))["alarm"].any()


def test_probe_checks_use_no_future_data(checked, campaign) -> None:
    whole = campaign[3]
    cut = whole.iloc[: 6 * 1440 + 7]  # six days and a few minutes: the last bin incomplete
    args = (PROBE_CHECKS, 30.0)
    params = checked.feature_params_
    early, late = derive(cut, *args, params=params), derive(whole, *args, params=params)
    n = len(early) - 1  # complete bins of the cut batch
    np.testing.assert_array_equal(early[:n], late[:n])
    np.testing.assert_allclose(
        checked.monitor(cut)["t2_checks"].iloc[:n], checked.monitor(whole)["t2_checks"].iloc[:n]
    )


def test_oxygen_balance_recovers_the_vessel_kla_characterisation(checked) -> None:
    a, b = checked.feature_params_["o2_balance_residual_frac"]
    g = LoopTuning()  # the twin's kLa rises linearly over the sparge flow range
    slope = (g.kla_max_per_h - g.kla_min_per_h) / (g.gas_flow_max_slpm - g.gas_flow_min_slpm)
    assert b == pytest.approx(slope, rel=0.05)
    assert a + b * g.gas_flow_min_slpm == pytest.approx(g.kla_min_per_h, abs=0.1)


def test_probe_checks_save_load_and_refuse_bad_input(checked, campaign, tmp_path) -> None:
    again = load(checked.save(tmp_path / "checked.json"))
    pd.testing.assert_frame_equal(again.monitor(campaign[1]), checked.monitor(campaign[1]))
    c = again.contributions(campaign[1], "t2_checks")
    assert list(c.columns) == list(PROBE_CHECKS)
    with pytest.raises(ValueError, match="lacks the MSPC variables"):
        checked.monitor(campaign[1].drop(columns="ph_offline"))
    with pytest.raises(ValueError, match="unknown MSPC features"):
        BatchEvolutionModel(features=("ph_vibes",)).fit(campaign[:3])
