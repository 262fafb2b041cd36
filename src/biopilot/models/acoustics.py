"""Acoustophoresis physics: contrast factor, radiation force, drag and focusing in a standing wave.

Functions on arrays (they broadcast), SI units except lengths in micrometres where the argument
name says ``_um``. The field is the 1-D half-wavelength standing wave across a channel of width
``w`` with its pressure node on the channel centre line::

    p1(y) = p_a sin(k (y - w/2)),   k = 2 pi f / c,   0 <= y <= w.

This module is the public face: it also re-exports the drag, wall-correction and streaming
functions of :mod:`biopilot.models.acoustics_drag` and the focusing time and closed-form path
of :mod:`biopilot.models.acoustics_motion`. Literature property values for cells and media
live in :mod:`biopilot.models.acoustics_properties`.

References
----------
.. [1] H. Bruus, "Acoustofluidics 7: The acoustic radiation force on small particles",
   Lab Chip 12, 1014-1021 (2012).
.. [2] L. P. Gor'kov, "On the forces acting on a small particle in an acoustical field in an
   ideal fluid", Sov. Phys. Dokl. 6, 773-775 (1962).
.. [3] R. Barnkob, P. Augustsson, T. Laurell, H. Bruus, "Acoustic radiation- and
   streaming-induced microparticle velocities determined by microparticle image velocimetry
   in an ultrasound symmetry plane", Phys. Rev. E 86, 056307 (2012).
.. [4] H. Brenner, "The slow motion of a sphere through a viscous fluid towards a plane
   surface", Chem. Eng. Sci. 16, 242-251 (1961); H. Faxén (1923), as quoted in
   J. Happel, H. Brenner, Low Reynolds Number Hydrodynamics (1983), Sec. 7-4.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biopilot.models.acoustics_drag import (
    STREAMING_GEOMETRY_FACTOR,
    critical_radius_um,
    stokes_drag_coefficient,
    wall_correction_factor,
)
from biopilot.models.acoustics_drag import checked_array as _checked
from biopilot.models.acoustics_motion import focusing_time_s, transverse_position_um

__all__ = [
    "STREAMING_GEOMETRY_FACTOR",
    "contrast_factor",
    "critical_radius_um",
    "energy_density",
    "focusing_time_s",
    "half_wave_resonance_hz",
    "mechanical_index",
    "radiation_force",
    "scattering_coefficients",
    "stokes_drag_coefficient",
    "transverse_position_um",
    "wall_correction_factor",
    "wavenumber_per_m",
]

Array = npt.NDArray[np.float64]
_UM = 1e-6


def scattering_coefficients(
    density_particle_kg_per_m3: npt.ArrayLike,
    compressibility_particle_per_pa: npt.ArrayLike,
    density_medium_kg_per_m3: npt.ArrayLike,
    compressibility_medium_per_pa: npt.ArrayLike,
) -> tuple[Array, Array]:
    """Monopole and dipole scattering coefficients ``f1, f2`` of a small sphere (inviscid).

    Parameters
    ----------
    density_particle_kg_per_m3, compressibility_particle_per_pa : array_like
        Particle density (> 0) and compressibility (>= 0; 0 is a rigid sphere).
    density_medium_kg_per_m3, compressibility_medium_per_pa : array_like
        Medium density and compressibility (both > 0).

    Returns
    -------
    f1, f2 : ndarray
        ``f1 = 1 - kappa_p/kappa_m``, ``f2 = 2 (rho_p - rho_m) / (2 rho_p + rho_m)``.

    Raises
    ------
    ValueError
        If a property is negative, zero where it must be positive, or not finite.

    Examples
    --------
    >>> f1, f2 = scattering_coefficients(1050.0, 249e-12, 997.0, 448e-12)
    >>> round(float(f1), 3), round(float(f2), 4)
    (0.444, 0.0342)

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eqs. (21a)-(21b).
    """
    rho_p = _checked("density_particle_kg_per_m3", density_particle_kg_per_m3)
    kap_p = _checked("compressibility_particle_per_pa", compressibility_particle_per_pa, zero=True)
    rho_m = _checked("density_medium_kg_per_m3", density_medium_kg_per_m3)
    kap_m = _checked("compressibility_medium_per_pa", compressibility_medium_per_pa)
    f1 = 1.0 - kap_p / kap_m
    f2 = 2.0 * (rho_p - rho_m) / (2.0 * rho_p + rho_m)
    return f1, f2


def contrast_factor(
    density_particle_kg_per_m3: npt.ArrayLike,
    compressibility_particle_per_pa: npt.ArrayLike,
    density_medium_kg_per_m3: npt.ArrayLike,
    compressibility_medium_per_pa: npt.ArrayLike,
) -> Array:
    """Acoustic contrast factor ``Phi = f1/3 + f2/2`` of a small sphere in a standing wave.

    Positive ``Phi`` sends the particle to the pressure node (channel centre here), negative to
    the antinodes (walls). Parameters and errors as :func:`scattering_coefficients`.

    Returns
    -------
    ndarray
        Dimensionless contrast factor.

    Examples
    --------
    Polystyrene in water (Bruus 2012 quotes 0.165):

    >>> round(float(contrast_factor(1050.0, 249e-12, 997.0, 448e-12)), 3)
    0.165

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eq. (33); Gor'kov 1962.
    """
    f1, f2 = scattering_coefficients(
        density_particle_kg_per_m3,
        compressibility_particle_per_pa,
        density_medium_kg_per_m3,
        compressibility_medium_per_pa,
    )
    return f1 / 3.0 + f2 / 2.0


def energy_density(
    pressure_amplitude_pa: npt.ArrayLike, compressibility_medium_per_pa: npt.ArrayLike
) -> Array:
    """Time-averaged acoustic energy density ``E_ac = kappa_m p_a^2 / 4`` of a 1-D standing wave.

    Parameters
    ----------
    pressure_amplitude_pa : array_like
        Pressure amplitude at the antinode, Pa (>= 0).
    compressibility_medium_per_pa : array_like
        Medium compressibility ``1/(rho c^2)``, 1/Pa (> 0).

    Returns
    -------
    ndarray
        Energy density, J/m^3.

    Raises
    ------
    ValueError
        If an argument is negative or not finite.

    Examples
    --------
    >>> round(float(energy_density(0.5e6, 448e-12)), 1)
    28.0

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eq. (34).
    """
    p = _checked("pressure_amplitude_pa", pressure_amplitude_pa, zero=True)
    kap = _checked("compressibility_medium_per_pa", compressibility_medium_per_pa)
    return kap * p**2 / 4.0


def wavenumber_per_m(frequency_hz: npt.ArrayLike, speed_of_sound_m_per_s: npt.ArrayLike) -> Array:
    """Acoustic wavenumber ``k = 2 pi f / c`` in 1/m.

    Parameters
    ----------
    frequency_hz : array_like
        Frequency, Hz (> 0).
    speed_of_sound_m_per_s : array_like
        Speed of sound of the medium, m/s (> 0).

    Returns
    -------
    ndarray
        Wavenumber, 1/m.

    Raises
    ------
    ValueError
        If an argument is not positive and finite.

    Examples
    --------
    >>> round(float(wavenumber_per_m(2e6, 1497.0)))
    8394
    """
    f = _checked("frequency_hz", frequency_hz)
    c = _checked("speed_of_sound_m_per_s", speed_of_sound_m_per_s)
    return 2.0 * np.pi * f / c


def radiation_force(
    position_um: npt.ArrayLike,
    radius_um: npt.ArrayLike,
    contrast: npt.ArrayLike,
    energy_density_j_per_m3: npt.ArrayLike,
    frequency_hz: npt.ArrayLike,
    speed_of_sound_m_per_s: npt.ArrayLike,
    channel_width_um: npt.ArrayLike,
) -> Array:
    """Primary acoustic radiation force across the channel, in newtons (Gor'kov, small particle).

    ``F = -4 pi Phi a^3 k E_ac sin(2 k (y - w/2))``: towards the centre-line node for ``Phi > 0``.

    Parameters
    ----------
    position_um : array_like
        Particle centre, distance from the side wall ``y``, um.
    radius_um : array_like
        Particle radius ``a``, um (> 0, and ``k a << 1`` for the small-particle limit).
    contrast : array_like
        Contrast factor ``Phi`` (see :func:`contrast_factor`).
    energy_density_j_per_m3 : array_like
        ``E_ac`` (see :func:`energy_density`).
    frequency_hz, speed_of_sound_m_per_s : array_like
        Drive frequency and medium speed of sound.
    channel_width_um : array_like
        Channel width ``w``, um.

    Returns
    -------
    ndarray
        Force along ``y``, N (positive towards larger ``y``).

    Raises
    ------
    ValueError
        If a radius, width, energy density, frequency or speed is non-physical.

    Examples
    --------
    A 5 um polystyrene bead, a quarter wavelength off the node, E_ac = 10 J/m^3, 2 MHz:

    >>> k = float(wavenumber_per_m(2e6, 1497.0))
    >>> y = 187.5 - 0.25 * np.pi / k * 1e6
    >>> f = radiation_force(y, 2.5, 0.165, 10.0, 2e6, 1497.0, 375.0)
    >>> round(float(f) * 1e12, 2)  # pN
    2.72

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eq. (35b).
    """
    y = np.asarray(position_um, dtype=float)
    a = _checked("radius_um", radius_um) * _UM
    phi = np.asarray(contrast, dtype=float)
    e = _checked("energy_density_j_per_m3", energy_density_j_per_m3, zero=True)
    k = wavenumber_per_m(frequency_hz, speed_of_sound_m_per_s)
    w = _checked("channel_width_um", channel_width_um)
    return -4.0 * np.pi * phi * a**3 * k * e * np.sin(2.0 * k * (y - w / 2.0) * _UM)


def half_wave_resonance_hz(
    channel_width_um: npt.ArrayLike, speed_of_sound_m_per_s: npt.ArrayLike
) -> Array:
    """Frequency ``f = c / (2 w)`` of the half-wavelength mode across a hard-walled channel.

    Parameters
    ----------
    channel_width_um : array_like
        Channel width, um (> 0).
    speed_of_sound_m_per_s : array_like
        Speed of sound of the liquid, m/s (> 0).

    Returns
    -------
    ndarray
        Resonance frequency, Hz (the walls are taken as acoustically hard; a real chip
        resonates a few percent away, which the design's frequency search covers).

    Raises
    ------
    ValueError
        If an argument is not positive and finite.

    Examples
    --------
    >>> round(float(half_wave_resonance_hz(375.0, 1497.0)) / 1e6, 3)
    1.996

    References
    ----------
    Bruus 2012, "Acoustofluidics 2", Lab Chip 12:20, sec. 4.
    """
    w = _checked("channel_width_um", channel_width_um) * _UM
    c = _checked("speed_of_sound_m_per_s", speed_of_sound_m_per_s)
    return c / (2.0 * w)


def mechanical_index(
    peak_negative_pressure_pa: npt.ArrayLike, frequency_hz: npt.ArrayLike
) -> Array:
    """Mechanical index ``MI = p_neg[MPa] / sqrt(f[MHz])`` (AIUM/NEMA UD 3 definition).

    Parameters
    ----------
    peak_negative_pressure_pa : array_like
        Peak rarefactional pressure, Pa (>= 0); in a standing wave, the amplitude ``p_a``.
    frequency_hz : array_like
        Frequency, Hz (> 0).

    Returns
    -------
    ndarray
        Mechanical index (dimensionless).

    Raises
    ------
    ValueError
        If the pressure is negative or the frequency not positive.

    Examples
    --------
    >>> round(float(mechanical_index(0.4e6, 2e6)), 3)
    0.283
    """
    p = _checked("peak_negative_pressure_pa", peak_negative_pressure_pa, zero=True)
    f = _checked("frequency_hz", frequency_hz)
    return (p / 1e6) / np.sqrt(f / 1e6)
