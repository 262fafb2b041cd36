"""Trajectories: the closed-form + Newton solution against a brute-force ODE integration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from biopilot.config import load_yaml
from biopilot.models.acoustics import energy_density, radiation_force, stokes_drag_coefficient
from biopilot.separation import (
    ChannelFlow,
    Chip,
    Sample,
    draw_particles,
    height_profile,
    simulate,
    width_profile,
)
from biopilot.separation.plots import trajectory_paths

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "separation"


def _load(stem: str) -> tuple[Chip, Sample]:
    return (load_yaml(EXAMPLES / f"{stem}_chip.yaml", Chip),
            load_yaml(EXAMPLES / f"{stem}_populations.yaml", Sample))


@pytest.mark.parametrize("stem", ["generic", "augustsson2012"])
def test_trajectories_match_direct_integration_of_the_equations_of_motion(stem):
    chip, sample = _load(stem)
    med = sample.medium
    parts = draw_particles(chip, sample, 3, rng=3)
    q, f, p_a = 70.0, 1.99e6, 3e5
    traj = simulate(parts, chip, med, q, f, p_a)
    flow = ChannelFlow(chip.channel_width_um, chip.channel_height_um)
    e_ac = float(energy_density(p_a, med.compressibility_per_pa))
    u_mean = q * 1e-9 / 60 / (chip.channel_width_um * chip.channel_height_um * 1e-12)
    for i in range(len(parts)):
        a = parts.radius_um[i]
        hz = float(height_profile(parts.z_um[i], chip.channel_height_um))
        drag = float(stokes_drag_coefficient(a, med.viscosity_pa_s)) * parts.drag_factor[i]

        def rhs(_t, state, a=a, hz=hz, drag=drag, i=i):
            y = min(max(state[1], a), chip.channel_width_um - a)
            force = radiation_force(y, a, parts.contrast[i], e_ac, f,
                                    med.speed_of_sound_m_per_s, chip.channel_width_um)
            return [u_mean * hz * float(flow.velocity_factor(y)) * 1e6, float(force) / drag * 1e6]

        def leave(_t, state):
            return state[0] - chip.channel_length_um

        leave.terminal = True
        sol = solve_ivp(rhs, (0, 100), [0.0, parts.y0_um[i]], events=leave, rtol=1e-9,
                        atol=1e-7, max_step=0.05)
        assert traj.y_end_um[i] == pytest.approx(sol.y_events[0][0][1], abs=0.05)
        assert traj.residence_time_s[i] == pytest.approx(sol.t_events[0][0], rel=1e-3)


def test_without_sound_particles_leave_where_they_entered_after_L_over_u():
    chip, sample = _load("generic")
    parts = draw_particles(chip, sample, 200, rng=1)
    traj = simulate(parts, chip, sample.medium, 100.0, 2e6, 0.0)
    np.testing.assert_allclose(traj.y_end_um, parts.y0_um)
    u_mean = 100.0 * 1e-9 / 60 / (375e-6 * 150e-6)
    u = (u_mean * height_profile(parts.z_um, 150.0)
         * width_profile(parts.y0_um, 375.0, 150.0))
    np.testing.assert_allclose(traj.residence_time_s, 0.04 / u, rtol=2e-3)
    assert np.all(traj.pressure_dose_pa2_s == 0.0)


def test_larger_cells_reach_the_centre_first_and_more_sound_moves_more_cells():
    chip, sample = _load("augustsson2012")
    parts = draw_particles(chip, sample, 2000, rng=2)
    weak = simulate(parts, chip, sample.medium, 100.0, 2.009e6, 1.5e5)
    strong = simulate(parts, chip, sample.medium, 100.0, 2.009e6, 4e5)
    du145, wbc = parts.population == 0, parts.population == 1
    assert weak.in_center[du145].mean() > weak.in_center[wbc].mean()
    assert strong.in_center[du145].mean() >= weak.in_center[du145].mean()
    assert strong.in_center[wbc].mean() >= weak.in_center[wbc].mean()
    # a cell in the centre outlet ends closer to the centre line than it started
    w2 = chip.channel_width_um / 2
    moved = np.abs(strong.y_end_um - w2) <= np.abs(parts.y0_um - w2) + 1e-9
    assert moved.all()


def test_negative_contrast_particles_move_to_the_walls():
    chip, sample = _load("generic")
    data = sample.model_dump()
    data["populations"] = [{"name": "lipid", "count": 1, "is_target": True,
                            "diameter_um": 6.0, "diameter_sd_um": 0.5,
                            "density_kg_per_m3": 920.0, "density_sd_kg_per_m3": 0.0,
                            "compressibility_per_pa": 6.0e-10,
                            "compressibility_sd_per_pa": 0.0}]
    sample = Sample.model_validate(data)
    parts = draw_particles(chip, sample, 500, rng=4)
    assert np.all(parts.contrast < 0)
    traj = simulate(parts, chip, sample.medium, 50.0, 2.009e6, 5e5)
    w2 = chip.channel_width_um / 2
    assert np.all(np.abs(traj.y_end_um - w2) >= np.abs(parts.y0_um - w2) - 1e-9)


def test_plotted_paths_end_at_the_channel_outlet_where_the_simulation_says():
    chip, sample = _load("augustsson2012")
    parts = draw_particles(chip, sample, 50, rng=6)
    traj = simulate(parts, chip, sample.medium, 100.0, 2.009e6, 3e5)
    index = np.arange(0, 100, 7)
    x_mm, y_um = trajectory_paths(traj, chip, 100.0, index)
    np.testing.assert_allclose(x_mm[:, -1], chip.channel_length_um / 1e3, rtol=0.01)
    np.testing.assert_allclose(y_um[:, -1], traj.y_end_um[index], atol=1e-6)
    np.testing.assert_allclose(y_um[:, 0], parts.y0_um[index], atol=1e-6)


def test_simulate_refuses_a_frequency_without_half_wave_mode():
    chip, sample = _load("generic")
    parts = draw_particles(chip, sample, 10, rng=0)
    with pytest.raises(ValueError, match="channel_width_um"):
        simulate(parts, chip, sample.medium, 100.0, 6e6, 3e5)


def test_same_seed_same_particles():
    chip, sample = _load("generic")
    a = draw_particles(chip, sample, 100, rng=7)
    b = draw_particles(chip, sample, 100, rng=7)
    np.testing.assert_array_equal(a.radius_um, b.radius_um)
    np.testing.assert_array_equal(a.y0_um, b.y0_um)


def test_width_profile_has_unit_mean_and_no_slip_walls():
    y = np.linspace(0, 375, 4001)
    g = width_profile(y, 375.0, 150.0)
    assert np.trapezoid(g, y) / 375 == pytest.approx(1.0, abs=1e-4)
    assert g[0] == pytest.approx(0.0, abs=1e-12) and g[-1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(g, g[::-1], atol=1e-12)
    flow = ChannelFlow(375.0, 150.0)
    half = flow.center_band_half_width_um(0.5)
    assert 0 < half < 375 / 4  # the faster centre carries half the flow in less than half width
