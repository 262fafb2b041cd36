"""Acoustophoresis physics against osaft (independent library) and against first principles."""

from __future__ import annotations

import warnings

import numpy as np
import osaft
import pytest
from scipy.integrate import solve_ivp

from biopilot.models.acoustics import (
    contrast_factor,
    critical_radius_um,
    energy_density,
    focusing_time_s,
    half_wave_resonance_hz,
    mechanical_index,
    radiation_force,
    stokes_drag_coefficient,
    transverse_position_um,
    wall_correction_factor,
    wavenumber_per_m,
)
from biopilot.models.acoustics_properties import MEDIA, PARTICLES

FREQ_HZ = 2e6
PRESSURE_PA = 2e5
WIDTH_UM = 375.0

# (particle preset, medium preset, osaft model): >= 5 particle/medium cases, three models.
CASES = [
    ("polystyrene", "water", "gorkov"),
    ("polystyrene", "water", "yosioka"),
    ("rbc", "plasma", "gorkov"),
    ("wbc", "pbs", "yosioka"),
    ("mcf7", "pbs", "gorkov"),
    ("du145", "water", "yosioka"),
    ("dead_cell", "plasma", "gorkov"),
    ("platelet", "pbs", "yosioka"),
]


def _osaft_solution(particle: str, medium: str, model: str, radius_m: float, position: float):
    p, m = PARTICLES[particle], MEDIA[medium]
    c_s = 1.0 / np.sqrt(p.density_kg_per_m3 * p.compressibility_per_pa)
    common = (FREQ_HZ, radius_m, p.density_kg_per_m3, c_s, m.density_kg_per_m3,
              m.speed_of_sound_m_per_s, PRESSURE_PA, osaft.WaveType.STANDING, position)
    if model == "gorkov":
        return osaft.gorkov1962.ARF(*common)
    return osaft.yosioka1955.ARF(*common, small_particle=True)


@pytest.mark.parametrize(("particle", "medium", "model"), CASES)
def test_contrast_factor_and_force_agree_with_osaft_within_1_percent(particle, medium, model):
    p, m = PARTICLES[particle], MEDIA[medium]
    radius_um = p.diameter_um / 2.0
    phi = contrast_factor(p.density_kg_per_m3, p.compressibility_per_pa, m.density_kg_per_m3,
                          m.compressibility_per_pa)
    k = float(wavenumber_per_m(FREQ_HZ, m.speed_of_sound_m_per_s))
    e_ac = energy_density(PRESSURE_PA, m.compressibility_per_pa)
    for position in (np.pi / 4, np.pi / 8, -np.pi / 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = _osaft_solution(particle, medium, model, radius_um * 1e-6, position)
            ref_force = ref.compute_arf()
            ref_phi = ref.Phi if model == "gorkov" else ref.F
        # osaft's position is k*d with F ~ sin(2 k d); ours puts the node at w/2: y = w/2 - d
        y_um = WIDTH_UM / 2 - position / k * 1e6
        force = radiation_force(y_um, radius_um, phi, e_ac, FREQ_HZ, m.speed_of_sound_m_per_s,
                                WIDTH_UM)
        assert float(phi) == pytest.approx(ref_phi, rel=0.01)
        assert float(force) == pytest.approx(ref_force, rel=0.01)


def test_rigid_sphere_matches_king_small_particle_limit():
    m = MEDIA["water"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = osaft.king1934.ARF(FREQ_HZ, 3e-6, 2200.0, m.density_kg_per_m3,
                                 m.speed_of_sound_m_per_s, PRESSURE_PA,
                                 osaft.WaveType.STANDING, np.pi / 4, small_particle_limit=True)
        ref_force, ref_phi = ref.compute_arf(), ref.Phi
    phi = contrast_factor(2200.0, 0.0, m.density_kg_per_m3, m.compressibility_per_pa)
    k = float(wavenumber_per_m(FREQ_HZ, m.speed_of_sound_m_per_s))
    force = radiation_force(WIDTH_UM / 2 - np.pi / 4 / k * 1e6, 3.0, phi,
                            energy_density(PRESSURE_PA, m.compressibility_per_pa), FREQ_HZ,
                            m.speed_of_sound_m_per_s, WIDTH_UM)
    assert float(phi) == pytest.approx(ref_phi, rel=0.01)
    assert float(force) == pytest.approx(ref_force, rel=0.01)


def test_half_wave_resonance_of_375_um_water_channel_is_near_2_mhz():
    f = float(half_wave_resonance_hz(375.0, MEDIA["water"].speed_of_sound_m_per_s))
    assert f == pytest.approx(2.0e6, rel=0.01)


def test_force_pushes_positive_contrast_to_the_centre_and_negative_to_the_walls():
    y = np.array([60.0, 150.0, 225.0, 320.0])
    toward_centre = np.sign(WIDTH_UM / 2 - y)
    args = (2.5, None, 10.0, FREQ_HZ, 1497.0, WIDTH_UM)
    f_pos = radiation_force(y, args[0], 0.1, *args[2:])
    f_neg = radiation_force(y, args[0], -0.1, *args[2:])
    assert np.all(np.sign(f_pos) == toward_centre)
    assert np.all(np.sign(f_neg) == -toward_centre)
    assert float(radiation_force(WIDTH_UM / 2, 2.5, 0.1, 10.0, FREQ_HZ, 1497.0, WIDTH_UM)) == 0.0


def test_closed_form_path_solves_the_force_balance():
    a_um, phi, e_ac, eta, c = 3.0, 0.1, 20.0, 0.89e-3, 1497.0
    f = float(half_wave_resonance_hz(WIDTH_UM, c))
    k = float(wavenumber_per_m(f, c))
    drag = float(stokes_drag_coefficient(a_um, eta))
    tau = float(focusing_time_s(a_um, phi, e_ac, f, c, eta))

    def rhs(_t, y):
        return [radiation_force(y[0], a_um, phi, e_ac, f, c, WIDTH_UM) / drag * 1e6]

    times = np.linspace(0.0, 3 * tau, 7)
    sol = solve_ivp(rhs, (0.0, times[-1]), [40.0], t_eval=times, rtol=1e-10, atol=1e-9)
    closed = transverse_position_um(times, 40.0, tau, k, WIDTH_UM)
    np.testing.assert_allclose(closed, sol.y[0], atol=1e-3)
    assert closed[-1] > closed[1] > 40.0  # moving to the centre


def test_energy_density_matches_bruus_definition():
    m = MEDIA["water"]
    p = 0.3e6
    expected = p**2 / (4 * m.density_kg_per_m3 * m.speed_of_sound_m_per_s**2)
    assert float(energy_density(p, m.compressibility_per_pa)) == pytest.approx(expected)


def test_wall_corrections_reach_their_far_field_limits_and_grow_near_the_wall():
    h = np.array([1.5, 3.0, 10.0, 1000.0])
    par = wall_correction_factor(1.0, h, "parallel")
    perp = wall_correction_factor(1.0, h, "perpendicular")
    assert par[-1] == pytest.approx(1 + 9 / 16 / 1000, rel=1e-6)
    assert perp[-1] == pytest.approx(1 + 9 / 8 / 1000, rel=1e-5)
    assert np.all(np.diff(par) < 0) and np.all(np.diff(perp) < 0)
    assert np.all(perp > par)
    # Brenner (1961) at h/a = cosh(1) = 1.543: correction 3.036 (his table)
    assert float(wall_correction_factor(1.0, np.cosh(1.0), "perpendicular")) == pytest.approx(
        3.036, rel=2e-3)


def test_critical_radius_balances_radiation_and_streaming_velocities():
    m = MEDIA["water"]
    phi = float(contrast_factor(1050.0, 249e-12, m.density_kg_per_m3, m.compressibility_per_pa))
    a_c = float(critical_radius_um(phi, FREQ_HZ, m.viscosity_pa_s, m.density_kg_per_m3))
    # polystyrene in water at 2 MHz: a_c ~ 1 um (critical diameter ~2 um, Muller et al. 2012)
    assert 0.8 < a_c < 1.6
    e_ac = 10.0
    k = float(wavenumber_per_m(FREQ_HZ, m.speed_of_sound_m_per_s))
    u_rad = (4 * np.pi * phi * (a_c * 1e-6) ** 3 * k * e_ac
             / float(stokes_drag_coefficient(a_c, m.viscosity_pa_s)))
    u_str = 4 * 3 / 8 * e_ac / (m.density_kg_per_m3 * m.speed_of_sound_m_per_s)
    assert u_rad == pytest.approx(u_str, rel=1e-9)
    # a_c scales as 1/sqrt(f): twice the frequency, a_c / sqrt(2)
    a_c2 = float(critical_radius_um(phi, 2 * FREQ_HZ, m.viscosity_pa_s, m.density_kg_per_m3))
    assert a_c2 == pytest.approx(a_c / np.sqrt(2))


def test_mechanical_index_definition():
    assert float(mechanical_index(1e6, 4e6)) == pytest.approx(0.5)


def test_functions_are_vectorised():
    radii = np.linspace(1.0, 10.0, 12).reshape(3, 4)
    t = focusing_time_s(radii, 0.1, 10.0, FREQ_HZ, 1497.0, 1e-3)
    assert t.shape == (3, 4)
    assert np.all(np.diff(t.ravel()) < 0)  # bigger cells focus faster (t* ~ 1/a^2)
    assert t[0, 0] / t[-1, -1] == pytest.approx(100.0)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"compressibility_particle_per_pa": -4e-10}, "compressibility_particle_per_pa"),
    ({"density_medium_kg_per_m3": 0.0}, "density_medium_kg_per_m3"),
    ({"compressibility_medium_per_pa": float("nan")}, "compressibility_medium_per_pa"),
])
def test_non_physical_properties_are_refused_with_the_argument_named(kwargs, name):
    args = {"density_particle_kg_per_m3": 1070.0, "compressibility_particle_per_pa": 4e-10,
            "density_medium_kg_per_m3": 1005.0, "compressibility_medium_per_pa": 4.4e-10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        contrast_factor(**args)


def test_negative_radius_and_pressure_are_refused():
    with pytest.raises(ValueError, match="radius_um"):
        radiation_force(100.0, -1.0, 0.1, 10.0, FREQ_HZ, 1497.0, WIDTH_UM)
    with pytest.raises(ValueError, match="pressure_amplitude_pa"):
        energy_density(-1.0, 4.4e-10)


def test_every_literature_value_carries_a_source():
    for table in (MEDIA, PARTICLES):
        for name, props in table.items():
            assert props.source, name
