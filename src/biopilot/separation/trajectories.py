"""Particle trajectories through an acoustophoresis channel, vectorised over many particles.

Each particle keeps its height ``z`` (the force is across the width only), so its wall-corrected
drag is constant and its path across the width is Bruus's closed form
``tan(theta) = tan(theta_0) exp(-s)``, ``theta = k (y - w/2)``, ``s = t / t*``. Along the channel
it is carried by the separable Poiseuille profile ``u = U g(y) h(z)`` of
:mod:`biopilot.separation.flow`; its residence time solves ``integral_0^T u dt = L``, done in
the scaled time ``s`` by a few Newton steps with Gauss-Legendre quadrature of ``g`` along the
known path. Neglected: gravity, acoustic streaming (check the size against
:func:`biopilot.models.acoustics.critical_radius_um`), the side-wall drag correction, particle
interactions, and the entrance and exit of the field.

References
----------
.. [1] H. Bruus, "Acoustofluidics 7", Lab Chip 12, 1014 (2012), eqs. (38)-(39).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from biopilot.models.acoustics import (
    contrast_factor,
    energy_density,
    focusing_time_s,
    wall_correction_factor,
    wavenumber_per_m,
)
from biopilot.separation.config import Chip, MediumSpec, Sample, check_half_wave
from biopilot.separation.flow import ChannelFlow, flux_weighted_height_um, height_profile

__all__ = [
    "ClosedFormPath",
    "Particles",
    "Trajectories",
    "draw_particles",
    "path_position_um",
    "plate_transit_time_s",
    "simulate",
]

Array = npt.NDArray[np.float64]
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)
_UNIT_NODES = 0.5 * (_NODES + 1.0)
_NEWTON_STEPS = 4
_UL_PER_MIN = 1e-9 / 60.0  # m^3/s


@dataclass
class Particles:
    """A drawn set of particles: properties and entry positions, one entry per particle."""

    population: npt.NDArray[np.int64]
    names: list[str]
    radius_um: Array
    contrast: Array
    y0_um: Array
    z_um: Array
    drag_factor: Array

    def __len__(self) -> int:
        return int(self.radius_um.size)


@dataclass
class Trajectories:
    """Where each particle leaves the channel, when, and what acoustic dose it received."""

    particles: Particles
    y_end_um: Array
    residence_time_s: Array
    in_center: npt.NDArray[np.bool_]
    rate_per_s: Array
    pressure_dose_pa2_s: Array
    peak_pressure_pa: Array
    wavenumber_per_m: float
    pressure_amplitude_pa: float
    energy_density_j_per_m3: float
    center_half_width_um: float


def draw_particles(
    chip: Chip, sample: Sample, n_per_population: int, rng: np.random.Generator | int | None = None
) -> Particles:
    """Draw ``n_per_population`` particles of every population, with entry positions.

    Sizes, densities and compressibilities are lognormal with the population's mean and sd.
    A pre-focused chip starts particles at mid-height, ``prefocus_distance_from_wall_um`` from
    either wall (spread ``prefocus_spread_um``); otherwise they enter flux-weighted across the
    wall bands that carry ``sample_flow_fraction`` of the flow.

    Raises
    ------
    ValueError
        If ``n_per_population`` < 1.
    """
    if n_per_population < 1:
        raise ValueError(f"n_per_population must be >= 1, got {n_per_population}")
    gen = np.random.default_rng(rng)
    n = n_per_population
    pops = sample.populations
    med = sample.medium
    diam, rho, kap = [], [], []
    for p in pops:
        diam.append(_lognormal(gen, p.diameter_um, p.diameter_sd_um, n))
        rho.append(_lognormal(gen, p.density_kg_per_m3, p.density_sd_kg_per_m3, n))
        kap.append(_lognormal(gen, p.compressibility_per_pa, p.compressibility_sd_per_pa, n))
    a = np.concatenate(diam) / 2.0
    phi = contrast_factor(
        np.concatenate(rho), np.concatenate(kap), float(med.density_kg_per_m3 or 0),
        med.compressibility_per_pa,
    )
    w, h, total = chip.channel_width_um, chip.channel_height_um, n * len(pops)
    if chip.prefocused:
        spread = chip.prefocus_spread_um
        y0 = float(chip.prefocus_distance_from_wall_um or 0.0) + gen.normal(0.0, spread, total)
        y0 = np.where(gen.random(total) < 0.5, w - y0, y0)
        z = h / 2.0 + gen.normal(0.0, spread, total)
    else:
        flow = ChannelFlow(w, h)
        y0, u = flow.sample_inlet(total, chip.sample_flow_fraction, gen)
        z = flux_weighted_height_um(u, a, h)
    a = np.minimum(a, 0.49 * min(w, h))
    y0 = np.clip(y0, a, w - a)
    z = np.clip(z, a * 1.001, h - a * 1.001)
    drag = wall_correction_factor(a, np.minimum(z, h - z), "parallel")
    return Particles(
        population=np.repeat(np.arange(len(pops)), n),
        names=[p.name for p in pops],
        radius_um=a,
        contrast=phi,
        y0_um=y0,
        z_um=z,
        drag_factor=drag,
    )


def simulate(
    particles: Particles,
    chip: Chip,
    medium: MediumSpec,
    flow_rate_ul_per_min: float,
    frequency_hz: float,
    pressure_amplitude_pa: float,
    flow: ChannelFlow | None = None,
) -> Trajectories:
    """Trajectories of all particles at one operating point.

    Parameters
    ----------
    particles : Particles
        From :func:`draw_particles`.
    chip, medium : Chip, MediumSpec
        The channel and the liquid.
    flow_rate_ul_per_min, frequency_hz, pressure_amplitude_pa : float
        Operating point (pressure amplitude of the standing wave in the channel).
    flow : ChannelFlow, optional
        Cached width profile of ``chip`` (built if not given).

    Returns
    -------
    Trajectories
        Exit position, residence time, outlet and dose of every particle.

    Raises
    ------
    ValueError
        If the flow rate, frequency or pressure amplitude is non-physical, or the channel has
        no half-wave mode at ``frequency_hz`` (see :func:`check_half_wave`).

    Examples
    --------
    See ``tests/separation/test_trajectories.py``; the design entry point is
    :func:`biopilot.separation.design.design_separation`.
    """
    if not flow_rate_ul_per_min > 0:
        raise ValueError(f"flow_rate_ul_per_min must be > 0, got {flow_rate_ul_per_min}")
    check_half_wave(chip, medium, frequency_hz)
    flow = flow or ChannelFlow(chip.channel_width_um, chip.channel_height_um)
    c = float(medium.speed_of_sound_m_per_s or 0)
    k = float(wavenumber_per_m(frequency_hz, c))
    e_ac = float(energy_density(pressure_amplitude_pa, medium.compressibility_per_pa))
    tau = focusing_time_s(
        particles.radius_um, particles.contrast, e_ac, frequency_hz, c,
        float(medium.viscosity_pa_s or 0), particles.drag_factor,
    )
    rate = np.where(np.isfinite(tau), 1.0 / np.where(np.isfinite(tau), tau, 1.0), 0.0)
    x_plate = plate_transit_time_s(particles, chip, flow_rate_ul_per_min)
    s_end, t_end, dose = _transit(particles, chip, flow, k, rate, x_plate)
    y_end = path_position_um(particles, chip, k, s_end, np.sign(rate))
    b = flow.center_band_half_width_um(chip.center_outlet_fraction)
    theta = k * 1e-6 * (np.stack([particles.y0_um, y_end]) - chip.channel_width_um / 2.0)
    return Trajectories(
        particles=particles,
        y_end_um=y_end,
        residence_time_s=t_end,
        in_center=np.abs(y_end - chip.channel_width_um / 2.0) < b,
        rate_per_s=rate,
        pressure_dose_pa2_s=pressure_amplitude_pa**2 * dose,
        peak_pressure_pa=pressure_amplitude_pa * np.abs(np.sin(theta)).max(axis=0),
        wavenumber_per_m=k,
        pressure_amplitude_pa=float(pressure_amplitude_pa),
        energy_density_j_per_m3=e_ac,
        center_half_width_um=b,
    )


def plate_transit_time_s(particles: Particles, chip: Chip, flow_rate_ul_per_min: float) -> Array:
    """Time to traverse the channel at the particle's height if ``g(y)`` were 1, s."""
    area = chip.channel_width_um * chip.channel_height_um * 1e-12
    u_mean = flow_rate_ul_per_min * _UL_PER_MIN / area
    u = u_mean * height_profile(particles.z_um, chip.channel_height_um)
    return np.asarray(chip.channel_length_um * 1e-6 / u, dtype=float)


def path_position_um(
    particles: Particles, chip: Chip, k: float, s: npt.ArrayLike, direction: npt.ArrayLike
) -> Array:
    """Position on the closed-form path after scaled time ``s = t/|t*|``, clipped to the walls.

    ``direction`` is +1 towards the node (``Phi > 0``), -1 away from it, 0 for no motion.
    """
    return ClosedFormPath(particles, chip, k, np.asarray(direction, dtype=float)).at(s)


class ClosedFormPath:
    """Per-particle constants of the closed-form path, so that ``at(s)`` is a few ufuncs."""

    def __init__(self, particles: Particles, chip: Chip, k: float, direction: Array) -> None:
        w = chip.channel_width_um
        theta0 = k * 1e-6 * (particles.y0_um - w / 2.0)
        branch = np.round(theta0 / np.pi)
        self.tan0 = np.tan(theta0 - branch * np.pi)
        self.offset = w / 2.0 + branch * np.pi / k * 1e6
        self.scale = 1e6 / k
        self.minus_dir = -direction
        self.lo, self.hi = particles.radius_um, w - particles.radius_um

    def at(self, s: npt.ArrayLike) -> Array:
        with np.errstate(over="ignore"):
            decay = np.minimum(np.exp(self.minus_dir * np.asarray(s)), 1e300)
        y = self.offset + self.scale * np.arctan(self.tan0 * decay)
        return np.clip(y, self.lo, self.hi)


def _transit(
    particles: Particles, chip: Chip, flow: ChannelFlow, k: float, rate: Array, x_plate: Array
) -> tuple[Array, Array, Array]:
    """Solve ``integral_0^S g(y(s)) ds = X |rate|`` for ``S``; return S, T and int sin^2 dt."""
    direction = np.sign(rate)
    speed = np.abs(rate)
    path = ClosedFormPath(particles, chip, k, direction)
    g0 = flow.velocity_factor(particles.y0_um)
    g_low = flow.velocity_factor(particles.radius_um)
    still = speed == 0.0
    target = x_plate * speed
    s = np.where(still, 0.0, target / g0)
    s_min, s_max = target / flow.g.max(), target / np.maximum(g_low, 1e-6)
    half_weights = 0.5 * _WEIGHTS[:, None]
    for _ in range(_NEWTON_STEPS):
        g_path = flow.velocity_factor(path.at(s * _UNIT_NODES[:, None]))
        integral = s * (half_weights * g_path).sum(axis=0)
        g_end = flow.velocity_factor(path.at(s))
        s = np.clip(s - (integral - target) / np.maximum(g_end, 1e-9), s_min, s_max)
    y_nodes = path.at(s * _UNIT_NODES[:, None])
    sin2 = np.sin(k * 1e-6 * (y_nodes - chip.channel_width_um / 2.0)) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t_end = np.where(still, x_plate / g0, s / np.where(still, 1.0, speed))
    dose = np.where(still, sin2[0] * t_end, t_end * (half_weights * sin2).sum(axis=0))
    return s, t_end, dose


def _lognormal(gen: np.random.Generator, mean: float | None, sd: float | None, n: int) -> Array:
    """Lognormal draws with the given mean and standard deviation (constant if sd is 0)."""
    m, s = float(mean or 0.0), float(sd or 0.0)
    if s == 0.0 or m == 0.0:
        return np.full(n, m)
    sigma2 = np.log1p((s / m) ** 2)
    return gen.lognormal(np.log(m) - sigma2 / 2.0, np.sqrt(sigma2), n)
