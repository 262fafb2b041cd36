"""The classifier's fixed-size cell crops gathered by one compiled loop, in bands of cells.

Written by hand (numba) because NumPy's fancy-indexing gather builds an (N, S, S) index
array and reads the phase and the labels through it in separate passes: 0.16 s for the 28k
cells of a dense 4K frame, against ~0.03 s here with 2 cores.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from biopilot.models.bands import in_bands

__all__ = ["gather_crops"]


def gather_crops(
    phase: NDArray[np.float32],
    labels: NDArray[np.integer],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    own: NDArray[np.integer],
    *,
    background: float,
    scale: float,
) -> NDArray[np.float32]:
    """(N, 2, S, S) crops: ``(phase - background) / scale`` and "is cell ``own[i]``".

    ``rows`` (N, S) and ``cols`` (N, S) are the pixel rows and columns of each crop's grid;
    samples outside the image are 0 in both channels.
    """
    p = np.ascontiguousarray(phase, np.float32)
    lab = np.ascontiguousarray(labels)
    r = np.ascontiguousarray(rows, np.int64)
    c = np.ascontiguousarray(cols, np.int64)
    o = np.ascontiguousarray(own, np.int64)
    n, size = r.shape
    out = np.empty((n, 2, size, size), np.float32)
    bg, sc = np.float32(background), np.float32(scale)
    in_bands(lambda lo, hi: _gather(p, lab, r, c, o, bg, sc, out, lo, hi), n)
    return out


@numba.njit(cache=True, nogil=True)
def _gather(
    p: NDArray[np.float32], lab: NDArray[np.integer], rows: NDArray[np.int64],
    cols: NDArray[np.int64], own: NDArray[np.int64], bg: np.float32, scale: np.float32,
    out: NDArray[np.float32], lo: int, hi: int,
) -> None:  # pragma: no cover - compiled; covered through gather_crops
    """Crops ``lo:hi``."""
    h, w = p.shape
    size = rows.shape[1]
    for i in range(lo, hi):
        for a in range(size):
            y = rows[i, a]
            for b in range(size):
                x = cols[i, b]
                if 0 <= y < h and 0 <= x < w:
                    out[i, 0, a, b] = (p[y, x] - bg) / scale
                    out[i, 1, a, b] = 1.0 if lab[y, x] == own[i] else 0.0
                else:
                    out[i, 0, a, b] = 0.0
                    out[i, 1, a, b] = 0.0
