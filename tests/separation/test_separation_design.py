"""Design optimiser and the published case (Augustsson et al., Anal. Chem. 84:7954, 2012)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biopilot.config import load_yaml
from biopilot.models.acoustics import half_wave_resonance_hz
from biopilot.separation import (
    Chip,
    Sample,
    design_separation,
    draw_particles,
    evaluate,
    simulate,
    threshold_doses,
)
from biopilot.separation.flow import ChannelFlow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "separation"

# Augustsson et al. 2012, abstract, paraformaldehyde-fixed cancer cells (DU145, PC3, LNCaP):
# recovery 93.6-97.9 %, purity 97.4-98.4 %. We compare with the middle of each range.
PAPER_RECOVERY = (0.936 + 0.979) / 2
PAPER_PURITY = (0.974 + 0.984) / 2


def _load(stem: str) -> tuple[Chip, Sample]:
    return (load_yaml(EXAMPLES / f"{stem}_chip.yaml", Chip),
            load_yaml(EXAMPLES / f"{stem}_populations.yaml", Sample))


@pytest.fixture(scope="module")
def augustsson():
    chip, sample = _load("augustsson2012")
    # The experimenters set the drive for their best separation; the design does the same
    # at a recovery inside the published range (93.6-97.9 %).
    return chip, sample, design_separation(chip, sample, required_recovery=0.95,
                                           n_per_population=6000, seed=0)


def test_published_case_recovery_and_purity_within_10_points(augustsson):
    _, _, design = augustsson
    assert design.met
    assert abs(design.outcome.recovery - PAPER_RECOVERY) <= 0.10
    assert abs(design.outcome.purity - PAPER_PURITY) <= 0.10


def test_published_case_runs_at_the_half_wave_resonance_within_limits(augustsson):
    chip, sample, design = augustsson
    f0 = float(half_wave_resonance_hz(375.0, sample.medium.speed_of_sound_m_per_s))
    point = design.operating_point
    assert point.frequency_hz == pytest.approx(f0, rel=0.01)
    assert 0 < point.voltage_v <= chip.transducer.max_voltage_v + 1e-9
    lo, hi = chip.flow_rate_range_ul_per_min
    assert lo <= point.flow_rate_ul_per_min <= hi
    assert design.outcome.exposure.mechanical_index <= chip.max_mechanical_index + 1e-9


def test_dose_is_reported_per_population(augustsson):
    _, _, design = augustsson
    for row in design.outcome.populations:
        assert row.residence_time_s_median > 0
        assert row.pressure_dose_pa2_s_p95 >= row.pressure_dose_pa2_s_median > 0
    e = design.outcome.exposure
    assert e.energy_density_j_per_m3 > 0 and e.pressure_amplitude_pa > 0


def test_threshold_doses_predict_the_simulated_outlets():
    chip, sample = _load("generic")
    parts = draw_particles(chip, sample, 1500, rng=5)
    flow = ChannelFlow(chip.channel_width_um, chip.channel_height_um)
    f = 2.0e6
    d_star, inside0 = threshold_doses(parts, chip, sample, flow, f)
    q, p_a = 80.0, 4e5
    traj = simulate(parts, chip, sample.medium, q, f, p_a, flow)
    dose = sample.medium.compressibility_per_pa * p_a**2 / 4 / q
    predicted = inside0 ^ (dose >= d_star)
    clear = np.abs(np.log(d_star / dose)) > 1e-3  # skip particles sitting on the boundary
    assert np.mean(predicted[clear] == traj.in_center[clear]) == 1.0


def test_higher_required_recovery_costs_purity():
    chip, sample = _load("generic")
    designs = [design_separation(chip, sample, r, n_per_population=1500) for r in (0.7, 0.95)]
    assert all(d.met for d in designs)
    assert designs[1].outcome.recovery >= 0.95 - 1e-3
    assert designs[0].outcome.purity >= designs[1].outcome.purity


def test_unreachable_recovery_is_reported_not_hidden():
    chip, sample = _load("generic")
    chip = chip.model_copy(update={"transducer": chip.transducer.model_copy(
        update={"max_voltage_v": 0.05})})
    design = design_separation(chip, sample, 0.99, n_per_population=800)
    assert not design.met
    assert any("not reachable" in n for n in design.outcome.notes)


def test_mechanical_index_cap_is_respected():
    chip, sample = _load("generic")
    design = design_separation(chip, sample, 0.8, n_per_population=800,
                               max_mechanical_index=0.2)
    assert design.outcome.exposure.mechanical_index <= 0.2 + 1e-9


def test_bad_required_recovery_is_refused():
    chip, sample = _load("generic")
    with pytest.raises(ValueError, match="required_recovery"):
        design_separation(chip, sample, 1.5)


def test_design_outcome_is_what_a_fresh_simulation_gives(augustsson):
    chip, sample, design = augustsson
    point = design.operating_point
    parts = draw_particles(chip, sample, 6000, rng=0)
    traj = simulate(parts, chip, sample.medium, point.flow_rate_ul_per_min, point.frequency_hz,
                    point.pressure_pa(chip, design.resonance_hz))
    again = evaluate(traj, sample, chip, point.frequency_hz)
    assert again.recovery == pytest.approx(design.outcome.recovery)
    assert again.purity == pytest.approx(design.outcome.purity)


def test_small_weakly_contrasted_debris_gets_a_streaming_warning():
    chip, sample = _load("generic")
    design = design_separation(chip, sample, 0.8, n_per_population=500)
    notes = " ".join(design.outcome.notes)
    assert "'debris'" in notes and "streaming" in notes
    assert "'viable'" not in notes
