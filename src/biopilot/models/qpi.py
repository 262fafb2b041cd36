"""Quantitative phase imaging physics: cell dry mass from integrated phase."""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["REFRACTION_INCREMENT_UM3_PER_PG", "dry_mass_pg"]

#: Specific refraction increment of cell dry mass, 0.18 mL/g = 0.18 um^3/pg
#: (Barer 1952, Nature 169:366; Zangle & Teitell 2014, Nat. Methods 11:1221).
REFRACTION_INCREMENT_UM3_PER_PG: Final = 0.18


def dry_mass_pg(phase_sum_rad_um2: float | NDArray[np.floating], wavelength_um: float) -> NDArray:
    """Dry mass from integrated phase, ``m = lambda / (2 pi alpha) * integral(phi dA)``.

    Parameters
    ----------
    phase_sum_rad_um2 : float or ndarray
        Integral of the phase over the cell, in rad um^2 (sum of pixels times pixel area).
    wavelength_um : float
        Vacuum wavelength in micrometres.

    Returns
    -------
    ndarray
        Dry mass in picograms.

    Examples
    --------
    A 10-um sphere of index step 0.036 (0.2 pg/um^3) holds 0.2 * 523.6 = 104.7 pg:

    >>> import numpy as np
    >>> lam = 0.532
    >>> opd_volume = 0.036 * 4 / 3 * np.pi * 5.0**3  # integral of dn * h, um^3
    >>> round(float(dry_mass_pg(2 * np.pi / lam * opd_volume, lam)), 1)
    104.7

    References
    ----------
    .. [1] Barer, R. (1952). Interference microscopy and mass determination. Nature 169, 366.
    .. [2] Zangle, T. A. & Teitell, M. A. (2014). Live-cell mass profiling: an emerging
       approach in quantitative biophysics. Nat. Methods 11, 1221-1228.
    """
    factor = wavelength_um / (2.0 * np.pi * REFRACTION_INCREMENT_UM3_PER_PG)
    return np.asarray(phase_sum_rad_um2, dtype=np.float64) * factor
