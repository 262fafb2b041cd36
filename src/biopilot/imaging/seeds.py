"""segment_maps' full-frame steps as compiled loops in row bands: seeds, pieces, flood, numbers.

Written by hand because NumPy and SciPy took a dozen full-frame passes and temporaries
(thresholds, erosion, masks, ``np.where``, quantisation, ``lut[labels]``) for what these do in
five fused passes run on all cores; the connected-component labelling stays with
``scipy.ndimage.label``.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from biopilot.imaging.flood import band_plan, flood_state, pieces_state, quantiser
from biopilot.models.bands import in_bands, in_threads

__all__ = ["flood_pieces", "label_pair", "piece_marks", "renumber", "split_seeds"]


def split_seeds(
    fg: NDArray[np.float32], core: NDArray[np.float32], fg_cut: float, core_cut: float,
    workers: int,
) -> tuple[NDArray[np.bool_], NDArray[np.bool_], int, int]:
    """Seeds and the pixels left to flood, with the non-finite pixels of each map.

    ``seeds = (fg >= fg_cut) & (core >= core_cut)`` (thresholds in float32, as NumPy compares);
    ``todo`` is the foreground less the seeds' interiors (``ndi.binary_erosion(seeds)``: a
    seed whose four neighbours are seeds, not on the frame's edge).
    """
    seeds = np.empty(fg.shape, np.bool_)
    todo = np.empty(fg.shape, np.bool_)
    f32, c32 = np.float32(fg_cut), np.float32(core_cut)
    bad = in_bands(lambda lo, hi: _split(fg, core, f32, c32, seeds, todo, lo, hi),
                   fg.shape[0], workers)
    return seeds, todo, sum(b[0] for b in bad), sum(b[1] for b in bad)


def label_pair(
    seeds: NDArray[np.bool_], todo: NDArray[np.bool_], workers: int
) -> tuple[tuple[NDArray[np.int32], int], tuple[NDArray[np.int32], int]]:
    """``ndi.label`` of both masks, in two threads when allowed (it releases the GIL)."""
    if workers < 2:
        return ndi.label(seeds), ndi.label(todo)
    first, second = in_threads(ndi.label, [seeds, todo])
    return first, second


def piece_marks(
    pieces: NDArray[np.int32], n_pieces: int, markers: NDArray[np.int32],
    core: NDArray[np.float32], workers: int,
) -> tuple[NDArray[np.int32], NDArray[np.bool_], tuple[float, float]]:
    """Each piece's marker, which pieces hold several, and the core's range over those.

    Returns ``first`` (a marker seen in the piece, 0 if none), ``crowded`` (several markers)
    and the least and greatest core over the crowded pieces ((1, 0) when there are none).
    """
    parts = in_bands(lambda lo, hi: _piece_marks(pieces, n_pieces, markers, core, lo, hi),
                     pieces.shape[0], workers)
    first, crowded, cmin, cmax = parts[0]
    for f, c, lo, hi in parts[1:]:
        crowded |= c | ((first > 0) & (f > 0) & (first != f))
        first = np.where(first > 0, first, f)
        cmin, cmax = np.minimum(cmin, lo), np.maximum(cmax, hi)
    crowded[0] = False
    if not crowded.any():
        return first, crowded, (1.0, 0.0)
    return first, crowded, (float(cmin[crowded].min()), float(cmax[crowded].max()))


def flood_pieces(
    core: NDArray[np.float32], markers: NDArray[np.int32], pieces: NDArray[np.int32],
    crowded: NDArray[np.bool_], owner: NDArray[np.int32], core_range: tuple[float, float],
    workers: int, seam_px: float, n_levels: int = 4096,
) -> tuple[NDArray[np.int32], int]:
    """Labels: markers on the seeds' interiors, ``owner[piece]`` on a piece with one marker,
    the flood of ``-core`` from the markers over the crowded pieces elsewhere.

    The flood is :func:`~biopilot.imaging.flood.flood_levels` of ``-core`` over the crowded
    pieces (same levels, bands and seeds), built and read back band by band in the threads.
    Returns the labels and the number of crowded pixels no marker reached (left 0).
    """
    out = np.empty(core.shape, np.int32)
    lo32, scale32 = quantiser(-core_range[1], -core_range[0], n_levels)

    def run(band: tuple[int, int, int, int]) -> int:
        a, b, c0, c1 = band
        state, seeds, levels = pieces_state(
            core, markers, pieces, crowded, lo32, scale32, n_levels - 1, a, b)
        flood_state(state, seeds, levels, core.shape[1] + 2, n_levels)
        return int(_compose(state, markers, pieces, crowded, owner, a, c0, c1, out))

    return out, sum(in_threads(run, band_plan(core.shape[0], workers, seam_px)))


def renumber(
    labels: NDArray[np.int32], top: int, min_area: float, workers: int
) -> NDArray[np.int32]:
    """Drop the regions of fewer than ``min_area`` pixels and number the rest 1..N in order.

    As ``lut[labels]`` with ``lut`` from ``np.bincount(labels)`` up to the largest label, in
    place. ``top`` must be at least the largest label (the compiled count trusts it).
    """
    area = np.sum(in_bands(lambda lo, hi: _count(labels, top, lo, hi), labels.shape[0],
                           workers), axis=0)
    present = np.flatnonzero(area[1:])
    area = area[: present[-1] + 2 if present.size else 1]
    keep = area >= min_area
    keep[0] = False
    lut = np.zeros(area.size, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    in_bands(lambda lo, hi: _apply(labels, lut, lo, hi), labels.shape[0], workers)
    return labels


@numba.njit(cache=True, nogil=True)
def _seed_row(
    fg: NDArray[np.float32], core: NDArray[np.float32], f32: np.float32, c32: np.float32, y: int
) -> NDArray[np.bool_]:  # pragma: no cover - compiled; covered through split_seeds
    """The seeds of row ``y`` (none outside the frame)."""
    out = np.zeros(fg.shape[1], np.bool_)
    if 0 <= y < fg.shape[0]:
        for x in range(fg.shape[1]):
            out[x] = (fg[y, x] >= f32) & (core[y, x] >= c32)
    return out


@numba.njit(cache=True, nogil=True)
def _split(
    fg: NDArray[np.float32], core: NDArray[np.float32], f32: np.float32, c32: np.float32,
    seeds: NDArray[np.bool_], todo: NDArray[np.bool_], lo: int, hi: int,
) -> tuple[int, int]:  # pragma: no cover - compiled; covered through split_seeds
    """Rows ``lo:hi`` of ``seeds`` and ``todo``; the non-finite pixels of ``fg`` and ``core``.

    A seed test per pixel in a row pass, then the erosion from the seed rows (the neighbour
    bands' edge rows recomputed here, not read); ``&``, not ``and``, keeps the loops free of
    branches (~10 ms for a 4K frame on one core, against ~200 ms with ``and``).
    """
    w = fg.shape[1]
    bad_fg = bad_core = 0
    for y in range(lo, hi):
        for x in range(w):
            f, c = fg[y, x], core[y, x]
            bad_fg += not np.isfinite(f)
            bad_core += not np.isfinite(c)
            seeds[y, x] = (f >= f32) & (c >= c32)
            todo[y, x] = f >= f32
    above = _seed_row(fg, core, f32, c32, lo - 1)
    below = _seed_row(fg, core, f32, c32, hi)
    for y in range(lo, hi):
        up = seeds[y - 1] if y > lo else above
        down = seeds[y + 1] if y < hi - 1 else below
        s, t = seeds[y], todo[y]
        for x in range(1, w - 1):  # the frame's edge is never interior (border_value=0)
            inner = s[x] & up[x] & down[x] & s[x - 1] & s[x + 1]
            t[x] = t[x] & (not inner)
    return bad_fg, bad_core


@numba.njit(cache=True, nogil=True)
def _piece_marks(  # pragma: no cover - compiled; covered through piece_marks
    pieces: NDArray[np.int32], n_pieces: int, markers: NDArray[np.int32],
    core: NDArray[np.float32], lo: int, hi: int,
) -> tuple[NDArray[np.int32], NDArray[np.bool_], NDArray[np.float32], NDArray[np.float32]]:
    """Per piece over rows ``lo:hi``: a marker, several markers, least and greatest core."""
    first = np.zeros(n_pieces + 1, np.int32)
    crowded = np.zeros(n_pieces + 1, np.bool_)
    cmin = np.full(n_pieces + 1, np.inf, np.float32)
    cmax = np.full(n_pieces + 1, -np.inf, np.float32)
    for y in range(lo, hi):
        for x in range(pieces.shape[1]):
            k = pieces[y, x]
            if k == 0:
                continue
            c = core[y, x]
            cmin[k] = min(cmin[k], c)
            cmax[k] = max(cmax[k], c)
            m = markers[y, x]
            if m > 0:
                if first[k] == 0:
                    first[k] = m
                elif first[k] != m:
                    crowded[k] = True
    return first, crowded, cmin, cmax


@numba.njit(cache=True, nogil=True)
def _compose(
    state: NDArray[np.int32], markers: NDArray[np.int32], pieces: NDArray[np.int32],
    crowded: NDArray[np.bool_], owner: NDArray[np.int32], a: int, c0: int, c1: int,
    out: NDArray[np.int32],
) -> int:  # pragma: no cover - compiled; covered through flood_pieces
    """Rows ``c0:c1`` of the labels; returns the crowded pixels left unreached."""
    w = out.shape[1]
    missed = 0
    for y in range(c0, c1):
        row = (y - a + 1) * (w + 2) + 1
        for x in range(w):
            k = pieces[y, x]
            if k == 0:
                out[y, x] = markers[y, x]  # a seed's interior, or 0 outside the foreground
            elif crowded[k]:
                out[y, x] = max(state[row + x], 0)
                missed += state[row + x] <= 0
            else:
                out[y, x] = owner[k]
    return missed


@numba.njit(cache=True, nogil=True)
def _count(
    labels: NDArray[np.int32], top: int, lo: int, hi: int
) -> NDArray[np.int64]:  # pragma: no cover - compiled; covered through renumber
    """Pixels of each label 0..top in rows ``lo:hi``."""
    area = np.zeros(top + 1, np.int64)
    for y in range(lo, hi):
        for x in range(labels.shape[1]):
            area[labels[y, x]] += 1
    return area


@numba.njit(cache=True, nogil=True)
def _apply(
    labels: NDArray[np.int32], lut: NDArray[np.int32], lo: int, hi: int
) -> None:  # pragma: no cover - compiled; covered through renumber
    """``labels[lo:hi] = lut[labels[lo:hi]]``."""
    for y in range(lo, hi):
        for x in range(labels.shape[1]):
            labels[y, x] = lut[labels[y, x]]
