"""Lay cells out on the culture surface to a target confluence: colonies, packing, crowding.

The number of cells is drawn from the target confluence and the mean footprint of the state
mix (state fractions are by count and are kept exactly: no rejection sampling, which would
favour small cells). Centres are uniform (undifferentiated stem cells inside colonies), then
pushed apart by a few relaxation steps to a soft hard-core distance (0.75 of the summed
equivalent radii, so neighbours may press against each other). All cells then spread or
contract by one common factor in 0.75-1.1 (volume conserved, :meth:`CellParams.scaled`) found
by regula falsi, so that the confluence lands on the target; when even 1.1 is short, more
cells are added in the gaps (a crowded layer). Cells buried under their neighbours are
removed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from biopilot.twin.cells import CellParams, sample_cells, sample_debris
from biopilot.twin.incubator_render import footprint_coverage, footprint_mask, visible_fraction

__all__ = ["layout_cells", "layout_debris"]

_HARD_CORE = 0.75  # fraction of the summed equivalent radii two centres keep apart
_UNDIFF = 5  # index of "undifferentiated" in STATES
_SPREAD = (0.75, 1.1)  # range of the common spreading factor; beyond it cells are added


def layout_cells(
    states_p: NDArray[np.float64],
    confluence: float,
    shape: tuple[int, int],
    pixel_um: float,
    rng: np.random.Generator,
    *,
    n_medium: float = 1.335,
    thick_fraction: float = 0.0,
    differentiated: bool = False,
    colony_cells: int = 60,
    min_visible: float = 0.35,
) -> CellParams:
    """Cells of random states placed to cover ``confluence`` of the frame.

    Parameters
    ----------
    states_p : (6,) float array
        Probability of each state of :data:`~biopilot.twin.cells.STATES` per cell (by count).
    confluence : float
        Target covered fraction, 0-0.8.
    shape : (int, int)
        Frame (rows, columns).
    pixel_um : float
        Pixel pitch in um.
    rng : numpy.random.Generator
        Random source.
    n_medium : float
        Medium refractive index.
    thick_fraction : float
        Fraction of live round cells drawn thicker than 2 pi of phase.
    differentiated : bool
        A stem-cell scene: set each cell's lineage flag (0/1) and grow colonies.
    colony_cells : int
        Mean number of undifferentiated cells per colony.
    min_visible : float
        Cells that keep less of their footprint than this (buried under neighbours) are
        removed, 0-1.

    Returns
    -------
    CellParams
        Cells with centres in um; every cell lies wholly inside the frame.
    """
    empty = sample_cells(np.zeros(0, np.int8), rng)
    if confluence <= 0.0:
        return empty
    height_um, width_um = shape[0] * pixel_um, shape[1] * pixel_um
    frame_um2 = height_um * width_um
    probe = _draw(states_p, 512, rng, n_medium, thick_fraction, differentiated)
    mean_area = float(probe.area_um2.mean())
    colonies = None
    if differentiated and states_p[_UNDIFF] > 0:
        share = float(probe.area_um2[probe.state == _UNDIFF].sum() / probe.area_um2.sum())
        undiff_area = float(probe.area_um2[probe.state == _UNDIFF].mean())
        radius = np.sqrt(colony_cells * undiff_area / (np.pi * 0.8))
        n_col = max(1, round(confluence * share * frame_um2 / (np.pi * radius**2)))
        colonies = (rng.uniform(0, width_um, n_col), rng.uniform(0, height_um, n_col), radius)
    def more(count: int) -> CellParams:
        batch = _draw(states_p, count, rng, n_medium, thick_fraction, differentiated)
        return _position(batch, colonies, height_um, width_um, rng)

    cells = _relax(more(int(rng.poisson(confluence * frame_um2 / mean_area))), height_um,
                   width_um)
    step = max(1, int(np.sqrt(shape[0] * shape[1] / 1e5)))
    fine = max(1, int(np.sqrt(shape[0] * shape[1] / 2.5e6)))
    checked = False
    for _ in range(8):
        factor, cov = _spread_factor(cells, confluence, shape, pixel_um, step)
        spread = _inside(cells.scaled(factor), height_um, width_um)
        if cov < confluence - 0.01:  # too few cells even when spread: fill the gaps
            missing = max(1, round(2.0 * (confluence - cov) * frame_um2 / mean_area))
            gap_step = max(1, step // 4)  # finer than, and so not locked to, the coverage grid
            gaps = ~footprint_mask(spread, shape, pixel_um=pixel_um, step=gap_step)
            new = _in_gaps(more(missing), gaps, gap_step * pixel_um, rng, height_um, width_um)
            cells = _relax(CellParams.concat([cells, new]), height_um, width_um)
            checked = False
            continue
        if checked:
            break
        hidden = visible_fraction(spread, shape, pixel_um=pixel_um, step=fine) < min_visible
        cells, checked = cells.take(~hidden), True
        if not hidden.any():
            break
    return spread


def layout_debris(
    density_per_mm2: float,
    shape: tuple[int, int],
    pixel_um: float,
    rng: np.random.Generator,
    *,
    n_medium: float = 1.335,
) -> CellParams:
    """Debris particles scattered uniformly, a Poisson number at ``density_per_mm2``.

    Parameters
    ----------
    density_per_mm2 : float
        Mean number of particles per mm^2.
    shape : (int, int)
        Frame (rows, columns).
    pixel_um : float
        Pixel pitch in um.
    rng : numpy.random.Generator
        Random source.
    n_medium : float
        Medium refractive index.

    Returns
    -------
    CellParams
        The particles (``state == -1``), each wholly inside the frame.

    Examples
    --------
    >>> d = layout_debris(100.0, (1000, 1000), 1.0, np.random.default_rng(0))
    >>> 70 < len(d) < 130
    True
    """
    height_um, width_um = shape[0] * pixel_um, shape[1] * pixel_um
    n = int(rng.poisson(density_per_mm2 * height_um * width_um * 1e-6))
    debris = sample_debris(n, rng, n_medium=n_medium)
    return _position(debris, None, height_um, width_um, rng)


# --------------------------------------------------------------------------------- helpers


def _spread_factor(
    cells: CellParams, confluence: float, shape: tuple[int, int], pixel_um: float, step: int
) -> tuple[float, float]:
    """Common spreading factor (in ``_SPREAD``) that brings the coverage to ``confluence`` (within
    0.002, by regula falsi); returns it and the coverage reached."""
    height_um, width_um = shape[0] * pixel_um, shape[1] * pixel_um
    box_y, box_x = cells.box_um

    def coverage(f: float) -> float:
        spread = _inside(cells.scaled(f), height_um, width_um, (f * box_y, f * box_x))
        return footprint_coverage(spread, shape, pixel_um=pixel_um, step=step)

    lo, hi = _SPREAD
    f_lo, f_hi = coverage(lo) - confluence, coverage(hi) - confluence
    if f_hi <= 0 or f_lo >= 0:
        return (hi, f_hi + confluence) if f_hi <= 0 else (lo, f_lo + confluence)
    side = 0
    for _ in range(8):  # regula falsi, Illinois variant
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo)
        f_mid = coverage(mid) - confluence
        if abs(f_mid) < 0.002:
            break
        if f_mid > 0:
            hi, f_hi = mid, f_mid
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
        else:
            lo, f_lo = mid, f_mid
            f_hi = f_hi / 2 if side == -1 else f_hi
            side = -1
    return mid, f_mid + confluence


def _in_gaps(
    cells: CellParams,
    gaps: NDArray[np.bool_],
    step_um: float,
    rng: np.random.Generator,
    height_um: float,
    width_um: float,
) -> CellParams:
    """Move cells' centres to uniform random points that fall in a gap (``gaps`` sampled
    every ``step_um``); points anywhere when the gaps are too rare to find."""
    n = len(cells)
    x, y = rng.uniform(0, width_um, 30 * n), rng.uniform(0, height_um, 30 * n)
    rows = np.minimum(np.rint(y / step_um).astype(np.int64), gaps.shape[0] - 1)
    cols = np.minimum(np.rint(x / step_um).astype(np.int64), gaps.shape[1] - 1)
    order = np.argsort(~gaps[rows, cols], kind="stable")[:n]  # points in gaps first
    return _inside(replace(cells, x_um=x[order], y_um=y[order]), height_um, width_um)


def _draw(
    states_p: NDArray[np.float64],
    n: int,
    rng: np.random.Generator,
    n_medium: float,
    thick_fraction: float,
    differentiated: bool,
) -> CellParams:
    """Sample ``n`` cells' states, lineage and shapes."""
    states = rng.choice(states_p.size, size=n, p=states_p / states_p.sum()).astype(np.int8)
    thick = (states == 0) & (rng.random(n) < thick_fraction)
    lineage = None
    if differentiated:  # dead and dividing cells keep the lineage they came from
        frac = states_p[4] / max(float(states_p[4] + states_p[_UNDIFF]), 1e-12)
        lineage = np.where(states == 4, 1, np.where(states == _UNDIFF, 0, rng.random(n) < frac))
    return sample_cells(states, rng, n_medium=n_medium, thick=thick, differentiated=lineage)


def _position(
    cells: CellParams,
    colonies: tuple[NDArray, NDArray, float] | None,
    height_um: float,
    width_um: float,
    rng: np.random.Generator,
) -> CellParams:
    """Uniform centres (undifferentiated cells inside colonies), kept off the borders."""
    n = len(cells)
    x, y = rng.uniform(0, width_um, n), rng.uniform(0, height_um, n)
    if colonies is not None:
        cx, cy, radius = colonies
        k = rng.integers(0, cx.size, n)
        r, a = radius * np.sqrt(rng.random(n)), rng.uniform(0, 2 * np.pi, n)
        in_col = cells.state == _UNDIFF
        x = np.where(in_col, cx[k] + r * np.cos(a), x)
        y = np.where(in_col, cy[k] + r * np.sin(a), y)
    return _inside(replace(cells, x_um=x, y_um=y), height_um, width_um)


def _inside(
    cells: CellParams,
    height_um: float,
    width_um: float,
    box: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> CellParams:
    """Move cells inward so each lies 2 um inside every border (``box``: ``cells.box_um``)."""
    box_y, box_x = cells.box_um if box is None else box
    ey = np.minimum(box_y + 2.0, 0.5 * height_um - 1e-3)
    ex = np.minimum(box_x + 2.0, 0.5 * width_um - 1e-3)
    return replace(
        cells,
        x_um=np.clip(cells.x_um, ex, width_um - ex),
        y_um=np.clip(cells.y_um, ey, height_um - ey),
    )


def _relax(cells: CellParams, height_um: float, width_um: float, iters: int = 8) -> CellParams:
    """Push apart centres closer than the hard-core distance (large cells move less)."""
    n = len(cells)
    if n < 2:
        return cells
    x, y = cells.x_um.copy(), cells.y_um.copy()
    r = _HARD_CORE * np.sqrt(cells.area_um2 / np.pi)
    w = r**2
    reach = 2.0 * float(r.max())
    box = cells.box_um
    for _ in range(iters):
        pts = np.column_stack([x, y])
        pairs = cKDTree(pts).query_pairs(reach, output_type="ndarray")
        if pairs.size == 0:
            break
        i, j = pairs[:, 0], pairs[:, 1]
        dx, dy = x[j] - x[i], y[j] - y[i]
        d = np.hypot(dx, dy)
        gap = r[i] + r[j] - d
        hit = gap > 0.02 * (r[i] + r[j])
        if not hit.any():
            break
        i, j, dx, dy, d, gap = i[hit], j[hit], dx[hit], dy[hit], d[hit], gap[hit]
        d = np.maximum(d, 1e-6)
        ux, uy = dx / d, dy / d
        share_i = w[j] / (w[i] + w[j])  # the lighter cell moves more
        mx = np.bincount(i, -ux * gap * share_i, n) + np.bincount(j, ux * gap * (1 - share_i), n)
        my = np.bincount(i, -uy * gap * share_i, n) + np.bincount(j, uy * gap * (1 - share_i), n)
        x, y = x + 0.6 * mx, y + 0.6 * my
        moved = _inside(replace(cells, x_um=x, y_um=y), height_um, width_um, box)
        x, y = moved.x_um, moved.y_um
    return replace(cells, x_um=x, y_um=y)
