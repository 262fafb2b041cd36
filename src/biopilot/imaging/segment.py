"""Cell segmentation of quantitative phase maps: threshold, phase-maximum markers, watershed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from biopilot.imaging.flood import flood_levels
from biopilot.imaging.label_stats import label_saddles
from biopilot.imaging.seeds import flood_pieces, label_pair, piece_marks, renumber, split_seeds

__all__ = ["background_level", "segment_cells", "segment_maps"]

# Largest cell the tiled watershed must see whole across a tile seam (differentiated cells
# reach ~40 um); the seam margin is this length in pixels.
_SEAM_UM = 60.0
# Smallest core (area above half the peak) of a cell, as a fraction of the minimum area.
_CORE_FRACTION = 0.4


def segment_cells(
    phase_rad: NDArray[np.floating],
    *,
    pixel_um: float,
    smooth_um: float = 0.6,
    threshold_rad: float | None = None,
    marker_smooth_um: float = 1.0,
    min_distance_um: float = 2.0,
    h_rad: float = 0.1,
    min_area_um2: float = 20.0,
    min_peak_rad: float = 0.3,
    edge_fraction: float = 0.25,
    workers: int = 1,
) -> NDArray[np.int32]:
    """Label the cells of a phase map, separating touching cells.

    The phase (background removed, see :func:`background_level`) is smoothed with a Gaussian;
    the foreground is the smoothed phase above ``threshold_rad``. Each cell is a dome of phase
    (phase is proportional to thickness times refractive-index excess), so local maxima of a
    more strongly smoothed phase, at least ``min_distance_um`` apart, mark the cells. A
    marker-controlled watershed of the negated phase inside the foreground splits touching
    cells along their phase valleys (Beucher & Meyer 1993). Neighbouring regions whose lower
    peak rises less than ``h_rad`` above their common saddle are merged, which is the
    h-maxima (dynamics) criterion of Soille 2003 (ch. 6) evaluated on the region adjacency
    graph. Regions smaller than ``min_area_um2`` or flatter than ``min_peak_rad`` are debris.

    Parameters
    ----------
    phase_rad : (H, W) ndarray of float
        Unwrapped phase map in radians.
    pixel_um : float
        Pixel pitch in the object plane, in micrometres.
    smooth_um : float
        Gaussian sigma of the denoising before thresholding and watershed, in micrometres.
    threshold_rad : float, optional
        Foreground threshold above background, in radians. By default four standard
        deviations of the smoothed background noise, and at least 0.03 rad.
    marker_smooth_um : float
        Gaussian sigma of the image whose local maxima are the markers, in micrometres.
    min_distance_um : float
        Minimum distance between two markers, in micrometres.
    h_rad : float
        Minimum dynamics (peak height above the saddle to a neighbour) of a cell, in radians.
    min_area_um2 : float
        Smallest cell area, in square micrometres; smaller regions are removed as debris.
    min_peak_rad : float
        Smallest peak phase of a cell above background, in radians.
    edge_fraction : float
        A cell's edge is where its smoothed phase falls below this fraction of its mean
        phase (0 keeps everything above ``threshold_rad``).
    workers : int
        Threads for the watershed (the frame is split into row bands with overlapping seams).

    Returns
    -------
    labels : (H, W) ndarray of int32
        0 for background, 1..N for cells, numbered consecutively.

    Raises
    ------
    ValueError
        If the phase is not a finite 2-D array of at least 8 x 8 pixels, or a parameter is
        not positive.

    References
    ----------
    .. [1] S. Beucher and F. Meyer, "The morphological approach to segmentation: the
           watershed transformation", in Mathematical Morphology in Image Processing, 1993.
    .. [2] P. Soille, Morphological Image Analysis, 2nd ed., Springer 2003.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:64, :96] * 1.0
    >>> dome = lambda cy, cx: np.sqrt(np.clip(1 - ((yy - cy)**2 + (xx - cx)**2) / 81, 0, 1))
    >>> phase = 2.0 * (dome(32, 30) + dome(32, 47))     # two touching cells, 2 rad high
    >>> labels = segment_cells(phase, pixel_um=1.0)
    >>> int(labels.max())
    2
    """
    phase = _validate(phase_rad, pixel_um)
    for name, value in (
        ("smooth_um", smooth_um),
        ("marker_smooth_um", marker_smooth_um),
        ("min_distance_um", min_distance_um),
        ("workers", workers),
    ):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
    phase = phase - np.float32(background_level(phase))
    smooth_px = smooth_um / pixel_um
    smoothed = ndi.gaussian_filter(phase, smooth_px, mode="nearest")
    if threshold_rad is None:
        # White noise of std s is reduced to s / (2 sqrt(pi) sigma) by a Gaussian of sigma px.
        sigma_n = _noise_std(phase) / (2.0 * math.sqrt(math.pi) * max(smooth_px, 0.5))
        threshold_rad = max(4.0 * sigma_n, 0.03)
    foreground = smoothed > threshold_rad
    if not foreground.any():
        return np.zeros(phase.shape, np.int32)

    extra = math.sqrt(max(marker_smooth_um**2 - smooth_um**2, 0.0)) / pixel_um
    peaks_img = ndi.gaussian_filter(smoothed, extra, mode="nearest") if extra > 0 else smoothed
    size = 2 * max(1, round(min_distance_um / pixel_um)) + 1
    peaks = (peaks_img == ndi.maximum_filter(peaks_img, size=size)) & foreground
    markers, n_markers = ndi.label(peaks, structure=np.ones((3, 3), bool))
    # A region's highest phase is at (or next to) its marker: read it there, not by a scan.
    at = np.flatnonzero(peaks)
    peak = np.zeros(n_markers + 1, np.float32)
    np.maximum.at(peak, markers.ravel()[at], smoothed.ravel()[at])

    labels = _flood(smoothed, markers, at, foreground, workers, _SEAM_UM / pixel_um)
    labels, peak = _merge_shallow(labels, smoothed, peak, h_rad)
    if edge_fraction > 0:
        # Blur spreads each cell into a faint skirt; its edge is where the phase falls to a
        # fraction of the cell's mean phase (the mean, not the peak, so that the thin
        # cytoplasm of a spread cell around its thick nucleus is kept).
        flat = labels.ravel()
        area = np.maximum(np.bincount(flat, minlength=peak.size), 1)
        mean = np.bincount(flat, weights=smoothed.ravel(), minlength=peak.size) / area
        cut = (edge_fraction * mean).astype(np.float32)
        labels = np.where(smoothed >= cut[labels], labels, 0).astype(np.int32)
    return _remove_debris(labels, smoothed, peak, min_area_um2 / pixel_um**2, min_peak_rad)


def segment_maps(
    foreground: NDArray[np.floating],
    core: NDArray[np.floating],
    *,
    pixel_um: float,
    foreground_threshold: float = 0.5,
    core_threshold: float = 0.4,
    h_core: float = 0.05,
    min_area_um2: float = 35.0,
    workers: int = 1,
) -> NDArray[np.int32]:
    """Label cells from CellNet's foreground and core maps (a marker watershed on the cores).

    Each connected region of ``core >= core_threshold`` inside the foreground is one cell's
    marker; the watershed of ``-core`` from the markers, inside the foreground, splits
    touching cells where their cores fall to their shared border (Bai & Urtasun 2017's deep
    watershed). Two neighbouring regions whose lower core peak rises less than ``h_core``
    above the saddle between them are one cell (the waist of a dividing cell, the lobes of
    an elongated one: between two cells the core falls to 0). A foreground region with no
    marker is a cell of its own; regions under ``min_area_um2`` are dropped.

    Parameters
    ----------
    foreground, core : (H, W) arrays in 0-1
        Maps from :func:`~biopilot.imaging.cellnet.predict_maps`.
    pixel_um : float
        Pixel pitch in the object plane, in micrometres.
    foreground_threshold, core_threshold : float
        Probability cut of the foreground and normalised-distance cut of the markers.
    h_core : float
        Smallest dynamics of a cell's core; 0 keeps every marker's region apart. On perfect
        maps 0.3-0.5 mends the over-split lobed cells (F1 0.955 -> 0.984 at 80 % confluence),
        but the shipped network's cores do not fall to 0 between touching cells and merging
        at 0.3 costs more than it mends. 0.05 (session 11; 0 before) mends the shallowest
        splits: mean F1 0.6506 -> 0.6552 on ``benchmarks/tune_segment_maps.py``'s 15 frames,
        and on 24 other tuning frames (768 px) higher or equal on all 16 stem-cell and
        adherent frames (+0.000 to +0.017). Chosen, like core_threshold 0.4, on frames apart
        from the training and benchmark sets.
    min_area_um2 : float
        Smallest cell area, in square micrometres. 35 lies between the largest debris
        particle of the twin (6 um across, 28 um^2) and its smallest cell (a shrunken dead
        cell of 8 um, 50 um^2); on the tuning frames it cut the false cells on debris-only
        frames from 3.7 to 0.4 per mm^2 (20 um^2 before) and raised F1 in every scenario
        (``benchmarks/tune_segment_maps.py``, session 6).
    workers : int
        Threads for the watershed.

    Returns
    -------
    labels : (H, W) ndarray of int32
        0 for background, 1..N for cells.

    Raises
    ------
    ValueError
        If the maps differ in shape or hold NaN, or a threshold is outside (0, 1).
    """
    fg_map = np.ascontiguousarray(_validate(foreground, pixel_um, "foreground", finite=False))
    core_map = np.ascontiguousarray(core, np.float32)
    if core_map.shape != fg_map.shape:
        raise ValueError(f"core map must be finite and of shape {fg_map.shape}")
    for name, v in (("foreground_threshold", foreground_threshold),
                    ("core_threshold", core_threshold)):
        if not 0.0 < v < 1.0:
            raise ValueError(f"{name} must be in (0, 1), got {v}")
    # Fused compiled passes in row bands (seeds.py) with the NumPy/SciPy steps they replace
    # in the comments (tests/imaging/test_segment_fast.py: the same labels, pixel for pixel).
    # seeds = mask & (core >= core_threshold); todo = mask & ~ndi.binary_erosion(seeds)
    seeds, todo, bad_fg, bad_core = split_seeds(
        fg_map, core_map, foreground_threshold, core_threshold, workers)
    if bad_fg:
        raise ValueError("foreground contains NaN or infinite values")
    if bad_core:
        raise ValueError(f"core map must be finite and of shape {fg_map.shape}")
    # A seed's interior is its own already: only the rest (the seeds' rings and the rims
    # between them, ``todo``) is flooded, and only its pieces that hold several markers.
    (markers, n_markers), (pieces, n_pieces) = label_pair(seeds, todo, workers)
    # pieces with one / several markers: np.unique of (piece, marker) over the seeds in todo
    first, crowded, core_range = piece_marks(pieces, n_pieces, markers, core_map, workers)
    # A piece with no marker is a cell of its own, numbered after the markers in raster
    # order, as ndi.label(mask & (labels == 0)) numbers it (a piece is a whole component).
    owner = np.where(crowded, 0, first).astype(np.int32)
    lonely = np.flatnonzero(first == 0)[1:]
    owner[lonely] = n_markers + np.arange(1, lonely.size + 1, dtype=np.int32)
    # np.where(inner, markers, np.where(crowded, flood_levels(-core, ...), owner[pieces]))
    labels, missed = flood_pieces(core_map, markers, pieces, crowded, owner, core_range,
                                  workers, _SEAM_UM / pixel_um)
    top = n_markers + lonely.size
    if missed:  # crowded pixels cut off from every marker in their band are cells too
        orphan = (pieces > 0) & ((labels == 0) | (labels > n_markers))
        orphans, n_orphans = ndi.label(orphan)
        labels = np.where(orphan, orphans + n_markers, labels).astype(np.int32)
        top = n_markers + n_orphans
    if h_core > 0:
        peak, lo, hi, saddle = label_saddles(labels, core_map, top)
        labels = _merge_shallow(labels, core_map, peak, h_core, (lo, hi, saddle))[0]
        top = int(labels.max())
    # renumber: area = np.bincount(labels); lut[labels] keeping areas >= min_area
    return renumber(labels, top, min_area_um2 / pixel_um**2, workers)


def background_level(phase_rad: NDArray[np.floating]) -> float:
    """Estimate the phase of the empty medium, in radians.

    The background is flat while cells spread over many phase values, so the most frequent
    phase value (the histogram mode, refined by the median within two noise deviations of
    it) is the background even at 80 % confluence, where the plain median is inside a cell.

    Parameters
    ----------
    phase_rad : (H, W) ndarray of float
        Phase map in radians.

    Returns
    -------
    float
        Background phase in radians.
    """
    sample = np.asarray(phase_rad, np.float32)[::2, ::2].ravel()
    lo, hi = np.percentile(sample, [0.5, 99.5])
    if not hi > lo:
        return float(lo)
    counts, edges = np.histogram(sample, bins=256, range=(float(lo), float(hi)))
    mode = 0.5 * (edges[counts.argmax()] + edges[counts.argmax() + 1])
    width = max(2.0 * _noise_std(np.asarray(phase_rad, np.float32)), float(edges[1] - edges[0]))
    near = sample[np.abs(sample - mode) <= width]
    return float(np.median(near)) if near.size else float(mode)


def _validate(
    phase_rad: NDArray[np.floating], pixel_um: float, name: str = "phase_rad",
    finite: bool = True,
) -> NDArray[np.float32]:
    """The phase as float32, checked (``finite=False``: the caller checks NaN and infinities)."""
    phase = np.asarray(phase_rad)
    if phase.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {phase.shape}")
    if min(phase.shape) < 8:
        raise ValueError(f"{name} must be at least 8 x 8 pixels, got {phase.shape}")
    if not np.issubdtype(phase.dtype, np.number) or np.iscomplexobj(phase):
        raise ValueError(f"{name} must be real-valued, got dtype {phase.dtype}")
    phase = phase.astype(np.float32, copy=False)
    if finite and not np.isfinite(phase).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if not pixel_um > 0:
        raise ValueError(f"pixel_um must be > 0, got {pixel_um}")
    return phase


def _noise_std(phase: NDArray[np.float32]) -> float:
    """Per-pixel white-noise deviation from the MAD of the high-pass residual (cells are smooth)."""
    sub = phase[: min(phase.shape[0], 1024), : min(phase.shape[1], 1024)]
    resid = sub - ndi.uniform_filter(sub, 3, mode="nearest")
    # A 3x3 mean leaves sqrt(1 - 1/9) of white noise in the residual; 1.4826 turns MAD into std.
    mad = float(np.median(np.abs(resid - np.median(resid))))
    return 1.4826 * mad / math.sqrt(8.0 / 9.0)


def _flood(
    height: NDArray[np.float32],
    markers: NDArray[np.int32],
    at: NDArray[np.intp],
    mask: NDArray[np.bool_],
    workers: int,
    seam_px: float,
) -> NDArray[np.int32]:
    """Watershed of ``-height`` from ``markers`` in ``mask``, only where it has work to do.

    A connected piece of foreground with one marker is that marker's region whole (what the
    watershed would return); only pieces with several markers are flooded, which saves
    most of the time on sparse frames.
    """
    pieces, n_pieces = ndi.label(mask)
    # Distinct (piece, marker) pairs as one int64 key: a 1-D unique is ~15x faster than
    # np.unique(axis=1) on the ~1 M seed-rim pixels of a dense 4K frame.
    n_mark = int(markers.max()) + 1
    key = np.unique(pieces.ravel()[at].astype(np.int64) * n_mark + markers.ravel()[at])
    piece_of, marker_of = key // n_mark, (key % n_mark).astype(np.int32)
    n_marks = np.bincount(piece_of, minlength=n_pieces + 1)
    owner = np.zeros(n_pieces + 1, np.int32)
    single = n_marks[piece_of] == 1
    owner[piece_of[single]] = marker_of[single]
    owner[0] = 0
    labels = owner[pieces]
    crowded = (n_marks > 1)[pieces]
    if crowded.any():
        flooded = flood_levels(-height, markers, crowded, workers=workers, seam_px=seam_px)
        labels = np.where(crowded, flooded, labels).astype(np.int32)
    return labels


def _merge_shallow(
    labels: NDArray[np.int32], height: NDArray[np.float32], peak: NDArray[np.float32], h: float,
    edges: tuple[NDArray[Any], NDArray[Any], NDArray[Any]] | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float32]]:
    """Merge neighbouring regions whose lower peak is less than ``h`` above their saddle.

    ``edges`` are :func:`~biopilot.imaging.label_stats.label_saddles`' pairs and saddles
    when the caller has them already.
    """
    n = peak.size - 1
    if n < 2 or h <= 0:
        return labels, peak
    lo, hi, s = edges if edges is not None else label_saddles(labels, height, n)[1:]
    if lo.size == 0:
        return labels, peak
    key = lo * (n + 1) + hi
    order = np.argsort(key, kind="stable")
    key, s = key[order], s[order]
    first = np.r_[True, key[1:] != key[:-1]]
    saddle = np.maximum.reduceat(s, np.flatnonzero(first))
    pa, pb = key[first] // (n + 1), key[first] % (n + 1)
    shallow = np.minimum(peak[pa], peak[pb]) - saddle < h
    if not shallow.any():
        return labels, peak
    graph = sparse.coo_matrix(
        (np.ones(int(shallow.sum())), (pa[shallow], pb[shallow])), shape=(n + 1, n + 1)
    )
    _, comp = connected_components(graph, directed=False)
    lut = (comp + 1).astype(np.int32)
    lut[0] = 0
    merged = np.zeros(int(lut.max()) + 1, np.float32)
    np.maximum.at(merged, lut, peak)
    return lut[labels], merged


def _remove_debris(
    labels: NDArray[np.int32],
    height: NDArray[np.float32],
    peak: NDArray[np.float32],
    min_area_px: float,
    min_peak: float,
) -> NDArray[np.int32]:
    """Drop regions too small or too flat to be cells and renumber the rest 1..N.

    Size is judged twice: the whole region, and its core above half its own peak (at least
    ``_CORE_FRACTION`` of the minimum area), so that a small bright particle spread by the
    blur of the optics and of the smoothing into a wide faint skirt is still debris. A
    cell's dome keeps about 3/4 of its area above half its peak.
    """
    n = peak.size - 1
    if n == 0:
        return labels.astype(np.int32)
    flat = labels.ravel()
    area = np.bincount(flat, minlength=n + 1)
    core = np.bincount(flat, weights=height.ravel() >= 0.5 * peak[flat], minlength=n + 1)
    keep = (area >= min_area_px) & (core >= _CORE_FRACTION * min_area_px) & (peak >= min_peak)
    keep[0] = False
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lut[labels]
