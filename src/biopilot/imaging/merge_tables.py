"""Per-cell and per-contact sums of a label image, and how they add up when cells merge.

The learned merge (:mod:`~biopilot.imaging.merge`) scores every pair of touching regions from
these tables and merges in rounds; after the first pass over the image each round works on
the tables alone (sums add, peaks take the maximum), so a dense 4K frame (~30,000 regions,
~80,000 contacts) is read once. The pass over the image is compiled (numba) and run in row
bands because NumPy needs a dozen full-frame temporaries and a ``bincount`` per sum for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

from biopilot.models.bands import in_bands

__all__ = ["Tables", "merge_tables", "tables"]

# Columns of Tables.region: pixel count, sums of y, x, y^2, x^2, xy, highest core, highest
# phase, phase sum.
AREA, SY, SX, SYY, SXX, SXY, CORE_PEAK, PHASE_PEAK, PHASE_SUM = range(9)
_PEAKS = (CORE_PEAK, PHASE_PEAK)
# Columns of Tables.contact: pixel pairs across the border, the saddle (the highest of
# min(core, core') along it), sums along it of min(core), min(foreground), mean phase.
COUNT, SADDLE, CORE_SUM, FG_SUM, PHASE_MEAN_SUM = range(5)


@dataclass
class Tables:
    """Regions 1..n (row 0 is the medium) and the contacts ``a < b`` between them."""

    region: NDArray[np.float64]  # (n + 1, 9)
    a: NDArray[np.int64]
    b: NDArray[np.int64]
    contact: NDArray[np.float64]  # (len(a), 5)

    @property
    def n(self) -> int:
        """Number of regions."""
        return self.region.shape[0] - 1


def tables(
    labels: NDArray[np.integer], core: NDArray[np.floating], foreground: NDArray[np.floating],
    phase: NDArray[np.floating], n: int,
) -> Tables:
    """One pass over the label image and the three maps (4-neighbour contacts)."""
    lab = np.ascontiguousarray(labels, np.int32)
    c, f, p = (np.ascontiguousarray(m, np.float32) for m in (core, foreground, phase))
    parts = in_bands(lambda lo, hi: _band(lab, c, f, p, n, lo, hi), lab.shape[0])
    region = np.sum([p[0] for p in parts], axis=0)
    region[:, _PEAKS] = np.max([p[0][:, _PEAKS] for p in parts], axis=0)
    a, b, v = (np.concatenate([p[k] for p in parts]) for k in (1, 2, 3))
    return Tables(region, *_group(a, b, v, n))


def merge_tables(t: Tables, into: NDArray[np.int64], n_new: int) -> Tables:
    """The tables after region ``i`` became region ``into[i]`` (``into[0] == 0``)."""
    region = np.zeros((n_new + 1, t.region.shape[1]))
    np.add.at(region, into, t.region)
    peaks = np.zeros((n_new + 1, len(_PEAKS)))
    np.maximum.at(peaks, into, t.region[:, _PEAKS])
    region[:, _PEAKS] = peaks
    a, b = into[t.a], into[t.b]
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    return Tables(region, *_group(lo, hi, t.contact[keep], n_new))


def _group(
    a: NDArray[np.int64], b: NDArray[np.int64], v: NDArray[np.float64], n: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Contact entries of the same pair added up (the saddle: their maximum)."""
    if a.size == 0:
        return a, b, np.zeros((0, 5))
    key = a * (n + 1) + b
    order = np.argsort(key)  # any order within a pair: the sums are the same up to rounding
    key, v = key[order], v[order]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    out = np.add.reduceat(v, start, axis=0)
    out[:, SADDLE] = np.maximum.reduceat(v[:, SADDLE], start)
    return key[start] // (n + 1), key[start] % (n + 1), out


def _band(
    lab: NDArray[np.int32], core: NDArray[np.float32], fg: NDArray[np.float32],
    phase: NDArray[np.float32], n: int, lo: int, hi: int,
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Rows ``lo:hi`` (each with the row below): region sums and contact entries."""
    region = np.zeros((n + 1, 9))
    count = _pass(lab, core, fg, phase, lo, hi, region, np.zeros(0, np.int64),
                  np.zeros(0, np.int64), np.zeros((0, 5)))
    a, b, v = np.empty(count, np.int64), np.empty(count, np.int64), np.zeros((count, 5))
    _pass(lab, core, fg, phase, lo, hi, region, a, b, v)  # the regions were summed already
    return region, a, b, v


@numba.njit(cache=True, nogil=True)
def _pass(
    lab: NDArray[np.int32], core: NDArray[np.float32], fg: NDArray[np.float32],
    phase: NDArray[np.float32], lo: int, hi: int, region: NDArray[np.float64],
    a: NDArray[np.int64], b: NDArray[np.int64], v: NDArray[np.float64],
) -> int:  # pragma: no cover - compiled; covered through tables
    """Count the contact entries of rows ``lo:hi`` and sum the regions (arrays empty), or
    write the entries. Pixel pairs of the same two regions met one after another (a border along the
    row) add up in one entry: about half as many entries to sort."""
    ny, nx = lab.shape
    fill = a.size > 0
    k = 0
    last_p = last_q = -1
    for y in range(lo, hi):
        for x in range(nx):
            la = lab[y, x]
            if la > 0 and not fill:  # the regions in the counting pass only
                r = region[la]
                r[0] += 1.0
                r[1] += y
                r[2] += x
                r[3] += y * y
                r[4] += x * x
                r[5] += x * y
                r[6] = max(r[6], core[y, x])
                r[7] = max(r[7], phase[y, x])
                r[8] += phase[y, x]
            for dy, dx in ((0, 1), (1, 0)):
                yb, xb = y + dy, x + dx
                if yb >= ny or xb >= nx:
                    continue
                lb = lab[yb, xb]
                if la == 0 or lb == 0 or la == lb:
                    continue
                p, q = min(la, lb), max(la, lb)
                if p != last_p or q != last_q:
                    k += 1
                    last_p, last_q = p, q
                if fill:
                    e = v[k - 1]
                    sad = min(core[y, x], core[yb, xb])
                    a[k - 1], b[k - 1] = p, q
                    e[0] += 1.0
                    e[1] = max(e[1], sad)
                    e[2] += sad
                    e[3] += min(fg[y, x], fg[yb, xb])
                    e[4] += 0.5 * (phase[y, x] + phase[yb, xb])
    return k
