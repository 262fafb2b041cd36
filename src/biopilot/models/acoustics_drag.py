"""Viscous side of acoustophoresis: Stokes drag near walls and the streaming-dominated size limit.

Re-exported by :mod:`biopilot.models.acoustics`; see there for the field convention.

References
----------
.. [1] J. Happel, H. Brenner, Low Reynolds Number Hydrodynamics (1983), sec. 7-4: Faxen's
   series for motion parallel to a wall and Brenner's (1961, Chem. Eng. Sci. 16:242) exact
   series for motion towards it.
.. [2] R. Barnkob, P. Augustsson, T. Laurell, H. Bruus, Phys. Rev. E 86, 056307 (2012).
.. [3] P. B. Muller, R. Barnkob, M. J. H. Jensen, H. Bruus, Lab Chip 12, 4617 (2012).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "STREAMING_GEOMETRY_FACTOR",
    "checked_array",
    "critical_radius_um",
    "stokes_drag_coefficient",
    "wall_correction_factor",
]

Array = npt.NDArray[np.float64]

#: Streaming geometry factor of a planar wall (Rayleigh streaming), Barnkob et al. 2012.
STREAMING_GEOMETRY_FACTOR = 3.0 / 8.0
_UM = 1e-6


def wall_correction_factor(
    radius_um: npt.ArrayLike,
    wall_distance_um: npt.ArrayLike,
    direction: Literal["parallel", "perpendicular"] = "parallel",
) -> Array:
    """Factor (>= 1) by which a plane wall raises the Stokes drag on a sphere.

    Parameters
    ----------
    radius_um : array_like
        Sphere radius ``a``, um.
    wall_distance_um : array_like
        Distance ``h`` from the sphere centre to the wall, um (``h > a``; values closer than
        ``1.05 a`` are evaluated at ``1.05 a``, where the series stop being useful).
    direction : {"parallel", "perpendicular"}
        Motion parallel to the wall (Faxén's series) or towards it (Brenner's exact series).

    Returns
    -------
    ndarray
        Drag correction factor; tends to ``1 + 9/16 a/h`` (parallel) and ``1 + 9/8 a/h``
        (perpendicular) far from the wall.

    Raises
    ------
    ValueError
        If a length is non-positive, ``h < a``, or ``direction`` is unknown.

    Examples
    --------
    >>> round(float(wall_correction_factor(1.0, 100.0, "perpendicular")), 4)
    1.0114

    References
    ----------
    Happel & Brenner 1983, eqs. 7-4.28 (Faxén) and 7-4.39 (Brenner 1961).
    """
    a = checked_array("radius_um", radius_um)
    h = checked_array("wall_distance_um", wall_distance_um)
    if np.any(h < a):
        raise ValueError("wall_distance_um must be at least radius_um (sphere inside the fluid)")
    s = np.minimum(a / h, 1.0 / 1.05)
    if direction == "parallel":
        return 1.0 / (1.0 - 9.0 / 16.0 * s + s**3 / 8.0 - 45.0 / 256.0 * s**4 - s**5 / 16.0)
    if direction == "perpendicular":
        return _brenner(1.0 / s)
    raise ValueError(f"direction must be 'parallel' or 'perpendicular', got {direction!r}")


def stokes_drag_coefficient(
    radius_um: npt.ArrayLike,
    viscosity_pa_s: npt.ArrayLike,
    wall_distance_um: npt.ArrayLike | None = None,
    direction: Literal["parallel", "perpendicular"] = "parallel",
) -> Array:
    """Stokes drag coefficient ``6 pi eta a`` (N s/m), wall-corrected if a distance is given.

    Parameters
    ----------
    radius_um : array_like
        Sphere radius, um.
    viscosity_pa_s : array_like
        Dynamic viscosity, Pa s.
    wall_distance_um : array_like, optional
        Centre-to-wall distance, um; if given, :func:`wall_correction_factor` applies.
    direction : {"parallel", "perpendicular"}
        Motion relative to that wall.

    Returns
    -------
    ndarray
        Drag coefficient, N s/m (force = coefficient x velocity).

    Raises
    ------
    ValueError
        If a radius, viscosity or distance is non-physical.

    Examples
    --------
    >>> round(float(stokes_drag_coefficient(5.0, 1e-3)) * 1e8, 3)
    9.425

    References
    ----------
    Happel & Brenner 1983; see :func:`wall_correction_factor`.
    """
    a = checked_array("radius_um", radius_um)
    eta = checked_array("viscosity_pa_s", viscosity_pa_s)
    drag = 6.0 * np.pi * eta * a * _UM
    if wall_distance_um is not None:
        drag = drag * wall_correction_factor(a, wall_distance_um, direction)
    return drag


def critical_radius_um(
    contrast: npt.ArrayLike,
    frequency_hz: npt.ArrayLike,
    viscosity_pa_s: npt.ArrayLike,
    density_medium_kg_per_m3: npt.ArrayLike,
    geometry_factor: float = STREAMING_GEOMETRY_FACTOR,
) -> Array:
    """Radius below which boundary-driven acoustic streaming outruns the radiation force, um.

    Equating the radiation-induced velocity ``(4/3) Phi (a/delta)^2 E_ac/(rho c)`` with the
    Rayleigh streaming velocity ``4 Psi E_ac/(rho c)`` gives ``a_c = sqrt(3 Psi / Phi) delta``,
    with ``delta = sqrt(2 nu / omega)`` the viscous boundary-layer thickness and ``Psi`` the
    streaming geometry factor (3/8 for a planar wall).

    Parameters
    ----------
    contrast : array_like
        Contrast factor ``Phi``.
    frequency_hz : array_like
        Drive frequency, Hz.
    viscosity_pa_s, density_medium_kg_per_m3 : array_like
        Medium viscosity and density (kinematic viscosity ``nu = eta / rho``).
    geometry_factor : float
        Streaming geometry factor ``Psi`` (3/8: planar wall, Rayleigh streaming).

    Returns
    -------
    ndarray
        Critical radius, um (``inf`` where ``Phi <= 0``).

    Raises
    ------
    ValueError
        If frequency, viscosity or density is not positive.

    Examples
    --------
    Polystyrene in water at 2 MHz: about 1 um radius, i.e. 2 um diameter:

    >>> round(float(critical_radius_um(0.165, 2e6, 0.89e-3, 997.0)), 2)
    0.98

    References
    ----------
    Barnkob et al. 2012, Phys. Rev. E 86:056307, sec. II (same scaling
    ``a_c ~ sqrt(Psi nu / (Phi f))``); Muller et al. 2012, Lab Chip 12:4617.
    """
    phi = np.asarray(contrast, dtype=float)
    f = checked_array("frequency_hz", frequency_hz)
    nu = checked_array("viscosity_pa_s", viscosity_pa_s) / checked_array(
        "density_medium_kg_per_m3", density_medium_kg_per_m3
    )
    delta = np.sqrt(2.0 * nu / (2.0 * np.pi * f))
    with np.errstate(divide="ignore", invalid="ignore"):
        safe = np.where(phi > 0, phi, 1.0)
        a_c = np.where(phi > 0, np.sqrt(3.0 * geometry_factor / safe), np.inf)
    return a_c * delta / _UM


def checked_array(name: str, value: npt.ArrayLike, zero: bool = False) -> Array:
    """Return ``value`` as a float array; raise ValueError naming ``name`` if non-physical."""
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    bad = arr < 0 if zero else arr <= 0
    if np.any(bad):
        rule = ">= 0" if zero else "> 0"
        shown = arr[bad].flat[0] if arr.ndim else float(arr)
        raise ValueError(f"{name} must be {rule}, got {shown!r}")
    return arr


def _brenner(h_over_a: Array, terms: int = 200) -> Array:
    """Brenner's (1961) exact series for a sphere moving towards a plane wall."""
    alpha = np.arccosh(np.asarray(h_over_a, dtype=float))[..., None]
    n = np.arange(1, terms + 1, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        num = 2.0 * np.sinh((2 * n + 1) * alpha) + (2 * n + 1) * np.sinh(2 * alpha)
        den = 4.0 * np.sinh((n + 0.5) * alpha) ** 2 - (2 * n + 1) ** 2 * np.sinh(alpha) ** 2
        term = n * (n + 1) / ((2 * n - 1) * (2 * n + 3)) * (num / den - 1.0)
    term = np.where(np.isfinite(term), term, 0.0)
    return np.asarray(4.0 / 3.0 * np.sinh(alpha[..., 0]) * term.sum(axis=-1), dtype=float)
