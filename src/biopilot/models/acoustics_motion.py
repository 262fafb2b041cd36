"""Acoustophoretic motion: focusing time and the closed-form particle path across the channel.

Re-exported by :mod:`biopilot.models.acoustics` (see there for the field convention: node on
the channel centre line, ``theta = k (y - w/2)``).

References
----------
.. [1] H. Bruus, "Acoustofluidics 7: The acoustic radiation force on small particles",
   Lab Chip 12, 1014-1021 (2012), eqs. (38)-(39).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from biopilot.models.acoustics_drag import checked_array

__all__ = ["focusing_time_s", "transverse_position_um"]

Array = npt.NDArray[np.float64]
_UM = 1e-6


def focusing_time_s(
    radius_um: npt.ArrayLike,
    contrast: npt.ArrayLike,
    energy_density_j_per_m3: npt.ArrayLike,
    frequency_hz: npt.ArrayLike,
    speed_of_sound_m_per_s: npt.ArrayLike,
    viscosity_pa_s: npt.ArrayLike,
    drag_factor: npt.ArrayLike = 1.0,
) -> Array:
    """Characteristic focusing time ``t* = 3 eta / (4 Phi (k a)^2 E_ac)`` (signed, in s).

    Parameters
    ----------
    radius_um : array_like
        Particle radius, um.
    contrast : array_like
        Contrast factor ``Phi``.
    energy_density_j_per_m3 : array_like
        ``E_ac``, J/m^3 (>= 0).
    frequency_hz, speed_of_sound_m_per_s : array_like
        Drive frequency and medium speed of sound.
    viscosity_pa_s : array_like
        Dynamic viscosity of the medium, Pa s.
    drag_factor : array_like
        Multiplier of the Stokes drag (wall correction, >= 1).

    Returns
    -------
    ndarray
        ``t*``, s: negative for ``Phi < 0`` (motion to the antinodes), ``inf`` for
        ``Phi = 0`` or no field.

    Raises
    ------
    ValueError
        If a radius, energy density, viscosity, frequency or speed is non-physical.

    Examples
    --------
    A 5 um polystyrene bead at E_ac = 10 J/m^3, 2 MHz, in water:

    >>> t = focusing_time_s(2.5, 0.165, 10.0, 2e6, 1497.0, 0.89e-3)
    >>> round(float(t), 3)
    0.919

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eq. (38).
    """
    a = checked_array("radius_um", radius_um) * _UM
    e = checked_array("energy_density_j_per_m3", energy_density_j_per_m3, zero=True)
    eta = checked_array("viscosity_pa_s", viscosity_pa_s)
    k = 2.0 * np.pi * checked_array("frequency_hz", frequency_hz) / checked_array(
        "speed_of_sound_m_per_s", speed_of_sound_m_per_s
    )
    rate = 4.0 * np.asarray(contrast, dtype=float) * (k * a) ** 2 * e / (3.0 * eta)
    rate = rate / checked_array("drag_factor", drag_factor)
    with np.errstate(divide="ignore"):
        return np.where(rate == 0.0, np.inf, 1.0 / np.where(rate == 0.0, 1.0, rate))


def transverse_position_um(
    time_s: npt.ArrayLike,
    start_um: npt.ArrayLike,
    focusing_time: npt.ArrayLike,
    wavenumber: npt.ArrayLike,
    channel_width_um: npt.ArrayLike,
) -> Array:
    """Closed-form particle path across the channel, ``y(t)`` in um.

    With ``theta = k (y - w/2)``: ``tan(theta) = tan(theta_0) exp(-t / t*)`` within the branch
    of the starting node, which solves ``dy/dt = F(y) / (6 pi eta a)`` exactly.

    Parameters
    ----------
    time_s : array_like
        Time since entering the field, s (>= 0).
    start_um : array_like
        Starting distance from the side wall, um.
    focusing_time : array_like
        Signed ``t*`` from :func:`focusing_time_s`, s.
    wavenumber : array_like
        ``k``, 1/m.
    channel_width_um : array_like
        ``w``, um.

    Returns
    -------
    ndarray
        Position ``y(t)`` from the side wall, um (not clipped to the walls).

    Examples
    --------
    After one focusing time a particle has covered ``1 - 1/e`` of its way in ``tan(theta)``:

    >>> k = np.pi / 375e-6
    >>> y = transverse_position_um(0.1, 50.0, 0.1, k, 375.0)
    >>> bool(50.0 < float(y) < 187.5)
    True

    References
    ----------
    Bruus 2012, Lab Chip 12:1014, eq. (39).
    """
    t = np.asarray(time_s, dtype=float)
    k = np.asarray(wavenumber, dtype=float)
    w = np.asarray(channel_width_um, dtype=float)
    theta0 = k * (np.asarray(start_um, dtype=float) - w / 2.0) * _UM
    branch = np.round(theta0 / np.pi)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        decay = np.exp(-t / np.asarray(focusing_time, dtype=float))
        theta = branch * np.pi + np.arctan(np.tan(theta0 - branch * np.pi) * decay)
    return w / 2.0 + theta / k / _UM
