"""Per-run phase sums of a label image's row runs (for the cell measures), compiled, in bands.

Written by hand (numba) because the NumPy route makes a full-frame pass per quantity (the
gradient, its squared norm, three casts to float64 and four ``reduceat``): ~0.35 s of the
0.5-0.7 s of :func:`~biopilot.imaging.measure_cells` on a dense 4K frame with 2 cores.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from biopilot.models.bands import in_bands

__all__ = ["run_phase_sums", "run_supports"]


def run_phase_sums(
    phase: NDArray[np.float32], start: NDArray[np.integer], length: NDArray[np.integer],
    pixel_um: float,
) -> NDArray[np.float64]:
    """Sums over each run of ``phi``, ``phi^2``, ``|grad phi|^2``, and the maximum of ``phi``.

    Parameters
    ----------
    phase : (H, W) float32
        Phase map (at least 2 x 2 px).
    start, length : (R,) int arrays
        Flat index of each run's first pixel and its length (runs stay within a row).
    pixel_um : float
        Pixel pitch: the gradient is ``numpy.gradient(phase, pixel_um)``'s (central
        differences inside, one-sided at the edges, in float32).

    Returns
    -------
    (4, R) float64
        Rows: sum of ``phi``, of ``phi^2``, of the squared gradient norm (float64
        accumulators), and the maximum of ``phi``.
    """
    p = np.ascontiguousarray(phase, np.float32)
    if p.ndim != 2 or min(p.shape) < 2:
        raise ValueError(f"phase must be 2-D, at least 2 x 2 px, got shape {p.shape}")
    s = np.ascontiguousarray(start, np.int64)
    n = np.ascontiguousarray(length, np.int64)
    out = np.empty((4, s.size))
    in_bands(lambda lo, hi: _sums(p, s, n, float(pixel_um), out, lo, hi), s.size)
    return out


@numba.njit(cache=True, nogil=True)
def _sums(
    p: NDArray[np.float32], start: NDArray[np.int64], length: NDArray[np.int64], d: float,
    out: NDArray[np.float64], lo: int, hi: int,
) -> None:  # pragma: no cover - compiled; covered through run_phase_sums
    """Columns ``lo:hi`` of ``out`` (one per run)."""
    ny, nx = p.shape
    one, two = np.float32(d), np.float32(2.0 * d)
    for r in range(lo, hi):
        y, x0 = start[r] // nx, start[r] % nx
        s1 = s2 = g2 = 0.0
        top = -math.inf
        for x in range(x0, x0 + length[r]):
            v = np.float64(p[y, x])
            s1 += v
            s2 += v * v
            top = max(top, v)
            if y == 0:
                gy = (p[1, x] - p[0, x]) / one
            elif y == ny - 1:
                gy = (p[y, x] - p[y - 1, x]) / one
            else:
                gy = (p[y + 1, x] - p[y - 1, x]) / two
            if x == 0:
                gx = (p[y, 1] - p[y, 0]) / one
            elif x == nx - 1:
                gx = (p[y, x] - p[y, x - 1]) / one
            else:
                gx = (p[y, x + 1] - p[y, x - 1]) / two
            g2 += gx * gx + gy * gy
        out[0, r], out[1, r], out[2, r], out[3, r] = s1, s2, g2, top



def run_supports(
    label: NDArray[np.integer], row: NDArray[np.integer], first: NDArray[np.integer],
    last: NDArray[np.integer], directions: NDArray[np.float64], n_bins: int,
) -> NDArray[np.float64]:
    """Per label, the extreme projections of its runs' pixel centres on ``directions``.

    Parameters
    ----------
    label, row, first, last : (R,) int arrays
        Each run's label, row and first and last column.
    directions : (D, 2) float64
        Unit vectors ``(c, s)``: the projection of pixel ``(row, col)`` is ``col c + row s``.
    n_bins : int
        Labels are below this.

    Returns
    -------
    (n_bins, 2 D) float64
        Column k: the largest projection on direction k; column D + k: minus the smallest
        (the support along the opposite direction). -inf for labels without runs.

    One pass over the runs (a run's extremes lie at its ends, the projection being monotone
    along it) instead of two ``ufunc.at`` calls per direction (~8x faster on a dense 4K frame).
    """
    d = np.ascontiguousarray(directions, np.float64)
    return _supports(np.ascontiguousarray(label, np.int64), np.ascontiguousarray(row, np.int64),
                     np.ascontiguousarray(first, np.int64), np.ascontiguousarray(last, np.int64),
                     d, int(n_bins))


@numba.njit(cache=True, nogil=True)
def _supports(
    label: NDArray[np.int64], row: NDArray[np.int64], first: NDArray[np.int64],
    last: NDArray[np.int64], d: NDArray[np.float64], n_bins: int,
) -> NDArray[np.float64]:  # pragma: no cover - compiled; covered through run_supports
    """:func:`run_supports`."""
    n_dir = d.shape[0]
    out = np.full((n_bins, 2 * n_dir), -np.inf)
    for r in range(label.size):
        lab, y = label[r], np.float64(row[r])
        a, b = np.float64(first[r]), np.float64(last[r])
        for k in range(n_dir):
            c, s = d[k, 0], d[k, 1]
            hi = (b if c >= 0 else a) * c + y * s
            lo = (a if c >= 0 else b) * c + y * s
            out[lab, k] = max(out[lab, k], hi)
            out[lab, n_dir + k] = max(out[lab, n_dir + k], -lo)
    return out
