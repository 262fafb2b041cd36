"""Rasterise cell phantoms into a phase map and a label mask, vectorised over local patches.

Each cell is evaluated only on a rectangular patch around it (cells of similar size are batched
into one array of patches), giving per pixel a *priority* ``1 - rho`` (rho the cell's
normalised radius, 1 on its edge) and the phase the cell alone would impart. Overlapping
footprints are resolved as in a pressed monolayer: the pixel belongs to the cell of highest
priority (a weighted Voronoi border between touching cells) and that cell's thickness tapers
to zero where the runner-up's priority reaches its own, so touching cells meet in a thin
valley instead of stacking. Every pixel therefore carries the phase of exactly its label.
(Optionally, cells stack instead: their phases add, the pixel keeps one label.)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from biopilot.twin.cells import CellParams

__all__ = ["footprint_coverage", "footprint_mask", "render_cells", "visible_fraction"]

_TAPER: float = 0.12  # priority margin over which a pressed cell's edge rises from 0
_CHUNK_PX: int = 1 << 21  # patch pixels evaluated per batch (memory bound, ~8 MB per array)


def render_cells(
    cells: CellParams,
    shape: tuple[int, int],
    *,
    pixel_um: float,
    wavelength_um: float,
    overlap: Literal["press", "stack"] = "press",
) -> tuple[NDArray[np.float32], NDArray[np.int32]]:
    """Phase map (rad) and label mask of cells; label ``i + 1`` is ``cells`` row ``i``.

    Parameters
    ----------
    cells : CellParams
        The cells, positions in um from the centre of pixel (0, 0).
    shape : (int, int)
        Frame (rows, columns).
    pixel_um : float
        Pixel pitch in um.
    wavelength_um : float
        Vacuum wavelength in um.
    overlap : {"press", "stack"}
        Where footprints overlap: ``press`` (a monolayer, cells deform: each pixel carries
        the phase of its own cell only, tapering to 0 at shared borders) or ``stack`` (cells
        lie on one another: the phases add; the pixel still has one label, the cell of
        highest priority).

    Returns
    -------
    phase : (H, W) float32
        Unwrapped phase in radians, 0 in the medium.
    labels : (H, W) int32
        0 for the medium, ``i + 1`` where cell ``i`` wins the pixel. A cell wholly covered by
        others has no pixel.

    Examples
    --------
    >>> from biopilot.twin.cells import sample_cells
    >>> from dataclasses import replace
    >>> c = sample_cells(np.array([0]), np.random.default_rng(0))
    >>> c = replace(c, x_um=np.array([20.0]), y_um=np.array([20.0]))
    >>> phase, labels = render_cells(c, (40, 40), pixel_um=1.0, wavelength_um=0.5)
    >>> int(labels.max()), bool(phase[20, 20] > 2 * np.pi)
    (1, True)
    """
    entries = _entries(cells, shape, pixel_um, 2.0 * np.pi / wavelength_um, footprint_only=False)
    pix, lab, pri, ph = entries
    npx = shape[0] * shape[1]
    win = _winners(pix, pri, npx)
    labels = np.zeros(npx, np.int32)
    labels[pix[win]] = lab[win]
    if overlap == "stack":
        phase = np.bincount(pix, weights=ph, minlength=npx).astype(np.float32)
        return phase.reshape(shape), labels.reshape(shape)
    loser = np.ones(pix.size, bool)
    loser[win] = False
    second = np.zeros(npx, np.float32)
    np.maximum.at(second, pix[loser], pri[loser])
    wp = pix[win]
    margin = np.where(second[wp] > 0, (pri[win] - second[wp]) / _TAPER, 1.0)
    phase = np.zeros(npx, np.float32)
    phase[wp] = ph[win] * np.sqrt(np.clip(margin, 0.0, 1.0))
    return phase.reshape(shape), labels.reshape(shape)


def footprint_coverage(
    cells: CellParams, shape: tuple[int, int], *, pixel_um: float, step: int = 1
) -> float:
    """Fraction of the frame covered by the union of the cells' footprints.

    Parameters
    ----------
    cells : CellParams
        The cells.
    shape : (int, int)
        Frame (rows, columns) at ``pixel_um``.
    pixel_um : float
        Pixel pitch in um.
    step : int
        Sample every ``step``-th pixel in each direction (a cheaper, unbiased estimate).

    Returns
    -------
    float
        Covered fraction, 0-1.

    Examples
    --------
    >>> from biopilot.twin.cells import sample_cells
    >>> footprint_coverage(sample_cells(np.array([], int), np.random.default_rng(0)), (8, 8),
    ...                    pixel_um=1.0)
    0.0
    """
    return float(footprint_mask(cells, shape, pixel_um=pixel_um, step=step).mean())


def footprint_mask(
    cells: CellParams, shape: tuple[int, int], *, pixel_um: float, step: int = 1
) -> NDArray[np.bool_]:
    """Pixels (every ``step``-th in each direction) covered by some cell's footprint.

    Returns
    -------
    (ceil(H / step), ceil(W / step)) ndarray of bool
        True where a cell covers the sample point.

    Examples
    --------
    >>> from biopilot.twin.cells import sample_cells
    >>> empty = sample_cells(np.array([], int), np.random.default_rng(0))
    >>> footprint_mask(empty, (10, 10), pixel_um=1.0, step=3).shape
    (4, 4)
    """
    coarse = (-(-shape[0] // step), -(-shape[1] // step))
    pix = _entries(cells, coarse, pixel_um * step, 1.0, footprint_only=True)[0]
    covered = np.zeros(coarse[0] * coarse[1], bool)
    covered[pix] = True
    return covered.reshape(coarse)


def visible_fraction(
    cells: CellParams, shape: tuple[int, int], *, pixel_um: float, step: int = 1
) -> NDArray[np.float64]:
    """Fraction of each cell's footprint that it wins against its neighbours (0-1).

    Parameters
    ----------
    cells : CellParams
        The cells.
    shape : (int, int)
        Frame (rows, columns) at ``pixel_um``.
    pixel_um : float
        Pixel pitch in um.
    step : int
        Sample every ``step``-th pixel in each direction.

    Returns
    -------
    (N,) ndarray of float64
        1 for a cell that touches no other; 0 for one wholly buried (or too small to be hit
        by the sampling grid).
    """
    coarse = (-(-shape[0] // step), -(-shape[1] // step))
    pix, lab, pri, _ = _entries(cells, coarse, pixel_um * step, 1.0, footprint_only=True)
    return _shown(pix, lab, pri, coarse[0] * coarse[1], len(cells))


# --------------------------------------------------------------------------------- helpers


def _shown(
    pix: NDArray[np.int64], lab: NDArray[np.int32], pri: NDArray[np.float32], npx: int, n: int
) -> NDArray[np.float64]:
    """Fraction of each of the ``n`` cells' footprint entries that win their pixel."""
    shown = np.bincount(lab[_winners(pix, pri, npx)], minlength=n + 1)
    total = np.bincount(lab, minlength=n + 1)
    return (shown / np.maximum(total, 1))[1:]


def _winners(pix: NDArray[np.int64], pri: NDArray[np.float32], npx: int) -> NDArray[np.int64]:
    """Index of one entry of highest priority per covered pixel (ties: any one of them)."""
    first = np.zeros(npx, np.float32)
    np.maximum.at(first, pix, pri)
    owner = np.full(npx, -1, np.int64)
    tied = np.flatnonzero(pri >= first[pix])
    owner[pix[tied]] = tied
    return owner[owner >= 0]


def _entries(
    cells: CellParams, shape: tuple[int, int], pixel_um: float, k0: float, *, footprint_only: bool
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float32], NDArray[np.float32]]:
    """(flat pixel, label, priority, own phase) of every pixel inside some cell's footprint."""
    if len(cells) == 0:
        return (np.zeros(0, np.int64), np.zeros(0, np.int32),
                np.zeros(0, np.float32), np.zeros(0, np.float32))
    box_y, box_x = cells.box_um
    # half sizes cover the box from the nearest pixel centre; large ones binned coarser
    halves = [np.ceil(b / pixel_um + 0.5).astype(np.int64) for b in (box_y, box_x)]
    sizes = [2 * np.where(h <= 24, h, -(-h // 8) * 8) + 1 for h in halves]
    blebbed = np.asarray((cells.bleb_r_um > 0).any(axis=1), bool)
    rough = np.asarray(np.abs(cells.harm).max(axis=(1, 2), initial=0.0) > 0.0, bool)
    p_outline = np.rint(cells.p_outline).astype(np.int64)
    if not np.isin(p_outline, (2, 3, 4)).all():
        raise ValueError("p_outline must be 2, 3 or 4")
    key = (((sizes[0] * 4096 + sizes[1]) * 2 + blebbed) * 2 + rough) * 8 + p_outline
    out: list[tuple[NDArray, ...]] = []
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for idx in np.split(order, bounds):
        i0 = idx[0]
        patch = (int(sizes[0][i0]), int(sizes[1][i0]))
        per = max(1, _CHUNK_PX // (patch[0] * patch[1]))
        flags = (bool(blebbed[i0]), bool(rough[i0]), int(p_outline[i0]), footprint_only)
        for start in range(0, idx.size, per):
            sub = idx[start : start + per]
            out.append(_patch(cells, sub, patch, shape, pixel_um, k0, *flags))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))  # type: ignore[return-value]


def _patch(
    c: CellParams,
    idx: NDArray[np.intp],
    patch: tuple[int, int],
    shape: tuple[int, int],
    pixel_um: float,
    k0: float,
    blebs: bool,
    rough: bool,
    p_outline: int,
    footprint_only: bool,
) -> tuple[NDArray, ...]:
    """Evaluate cells ``idx`` on patches of ``patch`` (odd) pixels centred on their centres.

    A cheap test on the whole patch (the outline without its edge perturbation, grown by the
    largest perturbation) keeps candidate pixels; the exact outline, the thickness and the
    phase are then computed on the candidates only.
    """
    f32 = np.float32
    ci = np.rint(c.y_um[idx] / pixel_um).astype(np.int64)
    cj = np.rint(c.x_um[idx] / pixel_um).astype(np.int64)
    rows = ci[:, None] + np.arange(-(patch[0] // 2), patch[0] // 2 + 1)[None, :]  # (n, ph)
    cols = cj[:, None] + np.arange(-(patch[1] // 2), patch[1] // 2 + 1)[None, :]  # (n, pw)
    dy = (rows * pixel_um - c.y_um[idx, None]).astype(f32)
    dx = (cols * pixel_um - c.x_um[idx, None]).astype(f32)
    cos, sin = np.cos(c.theta[idx]).astype(f32), np.sin(c.theta[idx]).astype(f32)
    a, b = c.a_um[idx].astype(f32), c.b_um[idx].astype(f32)
    lobe = (c.lobe_um[idx] / c.a_um[idx]).astype(f32)
    lobed = bool(lobe.any())
    grow = np.ones(idx.size, f32)
    if rough:
        grow = (1.0 + np.abs(c.harm[idx]).sum(axis=(1, 2))).astype(f32)  # largest edge

    def e3(v: NDArray) -> NDArray:
        return v[:, None, None]

    # stage 1, whole patch: normalised coordinates along the axes, coarse outline test
    x = e3(cos / a) * dx[:, None, :] + e3(sin / a) * dy[:, :, None]
    y = e3(cos / b) * dy[:, :, None] - e3(sin / b) * dx[:, None, :]
    if lobed:  # two mirrored lobes of a dividing cell
        x = np.abs(x) - e3(lobe)
    cand = _outline_rho(x, y, p_outline, None) < e3(grow)
    if blebs:  # dying cells are small: keep their whole patch
        cand[:] = True
    cand &= ((rows >= 0) & (rows < shape[0]))[:, :, None]
    cand &= ((cols >= 0) & (cols < shape[1]))[:, None, :]
    k, r_i, c_i = np.nonzero(cand)
    # stage 2, candidates only
    ex, ey = dx[k, c_i], dy[k, r_i]
    u, v = cos[k] * ex + sin[k] * ey, cos[k] * ey - sin[k] * ex
    xk = u / a[k] if not lobed else np.abs(u / a[k]) - lobe[k]
    harm = c.harm[idx].astype(f32)[k] if rough else None
    rho = _outline_rho(xk, v / b[k], p_outline, harm)
    rho_all = rho
    hb: NDArray[np.floating] | None = None
    if blebs:
        rho_b = np.full_like(rho, np.inf)
        hb = np.zeros_like(rho)
        for j in range(c.bleb_r_um.shape[1]):
            r_b = c.bleb_r_um[idx, j].astype(f32)[k]
            ang = c.bleb_angle[idx, j][k]
            bu = (np.cos(ang) * c.bleb_dist_um[idx, j][k]).astype(f32)
            bv = (np.sin(ang) * c.bleb_dist_um[idx, j][k]).astype(f32)
            rb = np.sqrt((u - bu) ** 2 + (v - bv) ** 2) / np.maximum(r_b, f32(1e-6))
            rb = np.where(r_b > 0, rb, f32(np.inf))
            rho_b = np.minimum(rho_b, rb)
            hb = np.maximum(hb, 2.0 * r_b * np.sqrt(np.maximum(1.0 - rb * rb, 0.0)))
        rho_all = np.minimum(rho, rho_b)
    keep = rho_all < 1.0
    k = k[keep]
    flat = rows[k, r_i[keep]] * shape[1] + cols[k, c_i[keep]]
    lab = (idx[k] + 1).astype(np.int32)
    pri = (1.0 - rho_all[keep]).astype(f32)
    if footprint_only:
        return flat, lab, pri, pri

    def per(name: str) -> NDArray[np.float32]:
        return getattr(c, name)[idx].astype(f32)[k]

    # thickness on the footprint: body dome, nucleus ellipsoid, blebs (spheres)
    rr, u, v = rho[keep], u[keep], v[keep]
    h = per("height_um") * np.maximum(1.0 - rr * rr, 0.0) ** per("profile_s")
    if hb is not None:
        h = np.maximum(h, hb[keep])
    tiny = f32(1e-6)
    rn = ((u - per("nuc_dx_um")) / np.maximum(per("nuc_a_um"), tiny)) ** 2
    rn += ((v - per("nuc_dy_um")) / np.maximum(per("nuc_b_um"), tiny)) ** 2
    hn = per("nuc_height_um") * np.sqrt(np.maximum(1.0 - rn, 0.0))
    opd = per("dn_body") * h + per("dn_nuc") * hn
    phase = (f32(k0) * np.maximum(opd, 0.0)).astype(f32)
    return flat, lab, pri, phase


def _outline_rho(
    x: NDArray[np.floating], y: NDArray[np.floating], p: int, harm: NDArray | None
) -> NDArray[np.float32]:
    """Normalised radius of a superellipse of exponent 2, 3 or 4 with a Fourier-perturbed
    edge (1 on the edge)."""
    x2, y2 = x * x, y * y
    r = np.sqrt(x2 + y2)
    if p == 2:
        gauge = r
    elif p == 3:
        gauge = np.cbrt(x2 * np.abs(x) + y2 * np.abs(y))
    else:
        gauge = np.sqrt(np.sqrt(x2 * x2 + y2 * y2))
    if harm is None:
        return gauge.astype(np.float32, copy=False)
    safe = np.maximum(r, np.float32(1e-9))
    c1, s1 = x / safe, y / safe  # cos and sin of the polar angle
    ck, sk = c1 * c1 - s1 * s1, 2.0 * c1 * s1  # k = 2
    edge = np.ones_like(x)
    for k in range(harm.shape[1]):  # harm: (n, K, 2), one row per element of x
        edge += harm[:, k, 0] * ck + harm[:, k, 1] * sk
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
    return (gauge / np.maximum(edge, np.float32(0.3))).astype(np.float32)
