"""Angular-spectrum transfer functions filled by a compiled loop, in row bands.

Written by hand (numba) because NumPy's version makes eight passes and as many temporaries
over the grid (axial frequency, phase in float64, reduction by whole cycles, cast, cos, sin,
the mirrored copy of the negative frequencies): ~10 ms per plane of an 832 px focus scan on
2 cores and 0.2 s for a 4K frame, against ~2.6 ms and 0.06 s for this one pass in two threads
(RESULTS.md, session 6).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from biopilot.models.bands import in_bands

__all__ = ["fill_kernel"]


def fill_kernel(
    k2: float, fy2: NDArray[np.float64], fx2: NDArray[np.float64], z_um: float, nx: int,
    half: bool = False,
) -> NDArray[np.complex64]:
    """``exp(2 i pi z w)`` with ``w = sqrt(k2 - fx^2 - fy^2)`` on an rfft2 grid (0: evanescent).

    Parameters
    ----------
    k2 : float
        ``(n / lambda)^2`` in (cycles/um)^2.
    fy2, fx2 : 1-D float64 arrays
        Squared frequencies of the rows (``ny``) and of the rfft columns (``nx // 2 + 1``);
        the kernel is 0 where ``k2 - fx^2 - fy^2 <= 0`` (evanescent waves).
    z_um : float
        Distance in micrometres.
    nx : int
        Columns of the full grid.
    half : bool
        Return the half plane only; otherwise the full plane, the negative-fx columns
        mirroring the positive ones (the kernel depends on ``fx^2``).

    Returns
    -------
    complex64 ndarray, (ny, nx // 2 + 1) or (ny, nx)
    """
    fy = np.ascontiguousarray(fy2, np.float64)
    fx = np.ascontiguousarray(fx2, np.float64)
    ny, nh = fy.size, fx.size
    if nh != nx // 2 + 1:
        raise ValueError(f"fx2 has {nh} columns, an rfft2 grid of {nx} has {nx // 2 + 1}")
    out = np.empty((ny, nh if half else nx), np.complex64)
    mirrored = bool(np.array_equal(fy[1:], fy[:0:-1]))  # fftfreq rows: fy^2[y] = fy^2[ny - y]
    rows = ny // 2 + 1 if mirrored else ny
    in_bands(lambda lo, hi: _fill(float(k2), fy, fx, float(z_um), out, mirrored, lo, hi), rows)
    return out


@numba.njit(cache=True, nogil=True)
def _fill(
    k2: float, fy2: NDArray[np.float64], fx2: NDArray[np.float64], z_um: float,
    out: NDArray[np.complex64], mirrored: bool, lo: int, hi: int,
) -> None:  # pragma: no cover - compiled; covered through fill_kernel
    """Rows ``lo:hi`` of the kernel: phase in float64 (up to ~6e4 rad at 3 mm), reduced by
    whole cycles, then cos and sin in float32; mirrored columns where ``out`` is full, and
    row ``y`` copied to row ``ny - y`` when the rows are ``mirrored`` (half the sines)."""
    nh = fx2.size
    ny, nx = out.shape
    mirror = nx > nh
    for y in range(lo, hi):
        if mirrored and 0 < y < ny - y:
            _fill_row(k2, fy2[y], fx2, z_um, out, y, ny - y, mirror)
        else:
            _fill_row(k2, fy2[y], fx2, z_um, out, y, y, mirror)


@numba.njit(cache=True, nogil=True)
def _fill_row(
    k2: float, fy2: float, fx2: NDArray[np.float64], z_um: float, out: NDArray[np.complex64],
    y: int, y2: int, mirror: bool,
) -> None:  # pragma: no cover - compiled; covered through fill_kernel
    """Row ``y`` of the kernel, also written to row ``y2``."""
    nh = fx2.size
    nx = out.shape[1]
    for x in range(nh):
        arg = k2 - fx2[x] - fy2  # in NumPy's order: bit for bit its axial frequency
        if arg > 0.0:
            c = z_um * math.sqrt(arg)
            c -= math.floor(c + 0.5)
            ph = np.float32(2.0 * math.pi * c)
            v = np.complex64(complex(math.cos(ph), math.sin(ph)))
        else:
            v = np.complex64(0.0)
        out[y, x] = v
        out[y2, x] = v
        if mirror and 0 < x <= nx - nh:
            out[y, nx - x] = v
            out[y2, nx - x] = v
