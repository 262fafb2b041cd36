"""Per-cell features of a phase map: size, dry mass, phase statistics, shape, texture, crops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from biopilot.imaging.crops import gather_crops
from biopilot.imaging.label_stats import crack_counts, grown_sums
from biopilot.imaging.run_sums import run_phase_sums, run_supports
from biopilot.imaging.segment import background_level
from biopilot.models.qpi import REFRACTION_INCREMENT_UM3_PER_PG, dry_mass_pg

__all__ = [
    "FEATURE_COLUMNS",
    "REFRACTION_INCREMENT_UM3_PER_PG",
    "SCALAR_FEATURES",
    "CellSamples",
    "cell_samples",
    "dry_mass_pg",
    "measure_cells",
]

#: Per-cell features fed to the network beside the crop (columns of ``measure_cells``).
SCALAR_FEATURES = [
    "area_um2",
    "equivalent_diameter_um",
    "dry_mass_pg",
    "phase_mean_rad",
    "phase_max_rad",
    "phase_std_rad",
    "eccentricity",
    "solidity",
    "circularity",
    "gradient_energy_rad2_per_um2",
]
_PHASE_SCALE_RAD = 3.0  # crops are divided by this so that typical cells span about 0..1

FEATURE_COLUMNS = [
    "label",
    "row_px",
    "col_px",
    "area_um2",
    "equivalent_diameter_um",
    "optical_volume_um3",
    "dry_mass_pg",
    "phase_mean_rad",
    "phase_max_rad",
    "phase_std_rad",
    "major_axis_um",
    "minor_axis_um",
    "eccentricity",
    "perimeter_um",
    "circularity",
    "solidity",
    "gradient_energy_rad2_per_um2",
    "touches_border",
]

# Unit normals (x=col, y=row) of the 16-gon hull used for solidity, at 22.5 degree steps.
_N_DIRS = 16
_DIRS = np.array(
    [
        [math.cos(2 * math.pi * k / _N_DIRS), math.sin(2 * math.pi * k / _N_DIRS)]
        for k in range(_N_DIRS)
    ]
)
_VERTEX_INV = np.stack(
    [np.linalg.inv(np.stack([_DIRS[k], _DIRS[(k + 1) % _N_DIRS]])) for k in range(_N_DIRS)]
)


def measure_cells(
    phase_rad: NDArray[np.floating],
    labels: NDArray[np.integer],
    *,
    pixel_um: float,
    wavelength_um: float,
    background_rad: float | None = None,
    mass_margin_px: int = 2,
) -> pd.DataFrame:
    """Measure every labelled cell of a phase map, vectorised over all cells at once.

    The optical volume is the integral of the optical path difference,
    ``OV = lambda / (2 pi) * sum(phi) * pixel_um**2`` (um^3), and the dry mass is
    ``m = OV / alpha`` with ``alpha`` = 0.18 um^3/pg (Barer 1952; Zangle & Teitell 2014).
    Shape comes from central image moments (as ``skimage.measure.regionprops``: axis lengths
    are 4 sqrt of the eigenvalues of the covariance), the perimeter from the length of
    pixel-edge boundary times pi/4 (the crack length of a digital disc overshoots its
    circumference by 4/pi; circularity is capped at 1), and the solidity is the area over the
    area of the 16-gon hull (the convex hull measured in 16 directions: about 0.96 for a
    digital disc, 0.91 for a 3:1 ellipse, against 0.98 and 0.96 for the exact hull), which
    avoids one convex-hull computation per cell. Texture is the mean squared phase gradient
    inside the cell.

    Parameters
    ----------
    phase_rad : (H, W) ndarray of float
        Phase map in radians.
    labels : (H, W) ndarray of int
        Cell labels from :func:`biopilot.imaging.segment_cells`; 0 is background.
    pixel_um : float
        Pixel pitch in the object plane, in micrometres.
    wavelength_um : float
        Illumination wavelength in vacuum, in micrometres.
    background_rad : float, optional
        Phase of the empty medium, subtracted before integrating; estimated with
        :func:`biopilot.imaging.segment.background_level` when not given.
    mass_margin_px : int
        The optical volume and dry mass integrate the phase over the cell grown by this
        many pixels into the background (never into another cell), to collect the mass that
        the blur of the optics spreads past the segmented edge.

    Returns
    -------
    pandas.DataFrame
        One row per cell, columns ``FEATURE_COLUMNS`` (units in the names; ``row_px`` and
        ``col_px`` are the centroid in pixels), sorted by label.

    Raises
    ------
    ValueError
        If the arrays differ in shape, are not 2-D, or a physical parameter is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> phase = np.zeros((32, 32)); labels = np.zeros((32, 32), int)
    >>> labels[8:18, 8:18] = 1; phase[8:18, 8:18] = 1.0      # 100 um^2 at 1 rad
    >>> t = measure_cells(phase, labels, pixel_um=1.0, wavelength_um=0.5, background_rad=0.0)
    >>> round(float(t.dry_mass_pg[0]), 2)      # 0.5 / (2 pi 0.18) * 100
    44.21
    """
    phase = np.asarray(phase_rad, np.float32)
    lab = np.asarray(labels)
    if phase.ndim != 2 or phase.shape != lab.shape:
        raise ValueError(f"phase_rad {phase.shape} and labels {lab.shape} must be 2-D of one shape")
    if not pixel_um > 0 or not wavelength_um > 0:
        raise ValueError(f"pixel_um and wavelength_um must be > 0, got {pixel_um}, {wavelength_um}")
    if background_rad is None:
        background_rad = background_level(phase)
    phase = phase - np.float32(background_rad)
    runs = _Runs.of(lab)
    if runs.length.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FEATURE_COLUMNS})
    n_bins = int(runs.label.max()) + 1

    def total(per_run: NDArray[Any]) -> NDArray[np.float64]:
        # Runs -> cells with bincount: O(runs), no sort of the pixels.
        return np.bincount(runs.label, weights=per_run, minlength=n_bins).astype(
            np.float64, copy=False
        )

    fg_starts = runs.all_starts[runs.foreground]
    sums = run_phase_sums(phase, fg_starts, runs.length, pixel_um)  # rejects under 2 x 2 px
    n_all = total(runs.length.astype(np.float64))
    ids = np.flatnonzero(n_all[1:]) + 1
    n = n_all[ids]
    area_um2 = n * pixel_um**2
    sum_phi = total(sums[0])
    mean_phi = sum_phi[ids] / n
    mean_phi2 = total(sums[1])[ids] / n
    grad_sum = total(sums[2])[ids]
    std_phi = np.sqrt(np.maximum(mean_phi2 - mean_phi**2, 0.0))
    if mass_margin_px > 0:
        mass_sum = sum_phi + grown_sums(phase, lab, mass_margin_px, n_bins)
    else:
        mass_sum = sum_phi
    optical_volume = wavelength_um / (2 * math.pi) * mass_sum[ids] * pixel_um**2

    s_r, s_c, s_rr, s_cc, s_rc = (total(x)[ids] for x in _run_moments(runs))
    mr, mc = s_r / n, s_c / n
    # Central moments as (n sum(xy) - sum(x) sum(y)) / n^2: the sums are integers, exact in
    # float64 (below 2^53 for any real cell), so only the last division rounds.
    mu_rr, mu_cc, mu_rc = (
        (n * sxy - sx * sy) / (n * n)
        for sxy, sx, sy in ((s_rr, s_r, s_r), (s_cc, s_c, s_c), (s_rc, s_r, s_c))
    )
    half_tr = 0.5 * (mu_rr + mu_cc)
    root = np.sqrt(np.maximum(0.25 * (mu_rr - mu_cc) ** 2 + mu_rc**2, 0.0))
    l1, l2 = half_tr + root, np.maximum(half_tr - root, 0.0)
    ecc = np.sqrt(np.where(l1 > 0, 1.0 - l2 / np.where(l1 > 0, l1, 1.0), 0.0))

    perimeter_um = _crack_length(lab, runs, n_bins)[ids] * (math.pi / 4) * pixel_um
    hull = _polygon_hull_area(runs, ids)
    phase_max = np.full(n_bins, -np.inf, np.float32)  # per cell: maximum.at over its runs
    np.maximum.at(phase_max, runs.label, sums[3].astype(np.float32))
    border = np.zeros(n_bins, bool)
    for side in (lab[0], lab[-1], lab[:, 0], lab[:, -1]):
        border[side.astype(np.intp)] = True

    table = {
        "label": ids.astype(np.int64),
        "row_px": mr,
        "col_px": mc,
        "area_um2": area_um2,
        "equivalent_diameter_um": 2.0 * np.sqrt(area_um2 / math.pi),
        "optical_volume_um3": optical_volume,
        "dry_mass_pg": optical_volume / REFRACTION_INCREMENT_UM3_PER_PG,
        "phase_mean_rad": mean_phi,
        "phase_max_rad": phase_max[ids].astype(np.float64),
        "phase_std_rad": std_phi,
        "major_axis_um": 4.0 * np.sqrt(l1) * pixel_um,
        "minor_axis_um": 4.0 * np.sqrt(l2) * pixel_um,
        "eccentricity": ecc,
        "perimeter_um": perimeter_um,
        "circularity": np.minimum(
            4 * math.pi * area_um2 / np.maximum(perimeter_um, 1e-9) ** 2, 1.0
        ),
        "solidity": np.minimum(n / hull, 1.0),
        "gradient_energy_rad2_per_um2": grad_sum / n,
        "touches_border": border[ids],
    }
    return pd.DataFrame(table, columns=FEATURE_COLUMNS)


@dataclass(frozen=True)
class CellSamples:
    """The classifier's input for N cells.

    Attributes
    ----------
    crops : (N, 2, S, S) ndarray of float32
        Channel 0: phase above background divided by 3 rad; channel 1: 1 on the cell's own
        pixels, 0 elsewhere. Sampled at a fixed ``crop_um / S`` micrometres per pixel.
    features : (N, F) ndarray of float32
        The ``SCALAR_FEATURES`` columns of :func:`biopilot.imaging.measure_cells`.
    """

    crops: NDArray[np.float32]
    features: NDArray[np.float32]

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def take(self, index: NDArray[np.integer] | slice) -> CellSamples:
        """The samples at ``index``."""
        return CellSamples(self.crops[index], self.features[index])

    @staticmethod
    def concat(parts: list[CellSamples]) -> CellSamples:
        """All samples of ``parts`` in order."""
        return CellSamples(
            np.concatenate([p.crops for p in parts]), np.concatenate([p.features for p in parts])
        )


def cell_samples(
    phase_rad: NDArray[np.floating],
    labels: NDArray[np.integer],
    cells: pd.DataFrame,
    *,
    pixel_um: float,
    size: int = 16,
    crop_um: float = 28.0,
    background_rad: float = 0.0,
) -> CellSamples:
    """Cut a fixed-size, fixed-scale crop around every cell of ``cells``, in one gather.

    Parameters
    ----------
    phase_rad, labels : (H, W) ndarray
        Phase map (radians) and cell labels.
    cells : pandas.DataFrame
        Output of :func:`biopilot.imaging.measure_cells` (``label``, ``row_px``, ``col_px``
        and the ``SCALAR_FEATURES``).
    pixel_um : float
        Pixel pitch of the maps, in micrometres; crops are resampled (nearest neighbour) to
        ``crop_um / size`` micrometres per pixel so that one network serves every sensor.
    size : int
        Crop side in pixels.
    crop_um : float
        Crop side in micrometres.
    background_rad : float
        Phase of the empty medium, subtracted.

    Returns
    -------
    CellSamples
    """
    n = len(cells)
    step = crop_um / size / pixel_um
    offsets = (np.arange(size) - (size - 1) / 2) * step
    rr = np.rint(cells["row_px"].to_numpy()[:, None] + offsets[None, :]).astype(np.int64)
    cc = np.rint(cells["col_px"].to_numpy()[:, None] + offsets[None, :]).astype(np.int64)
    crops = gather_crops(phase_rad, labels, rr, cc, cells["label"].to_numpy(),
                         background=background_rad, scale=_PHASE_SCALE_RAD)
    features = (
        cells[SCALAR_FEATURES].to_numpy(np.float32)
        if n
        else np.zeros((0, len(SCALAR_FEATURES)), np.float32)
    )
    return CellSamples(crops, features)


@dataclass(frozen=True)
class _Runs:
    """Maximal horizontal runs of one label in a label image (run-length encoding by rows).

    ``all_starts`` are the flat start indices of every run, background included (for
    ``reduceat`` over the raveled image); the other fields describe the ``foreground`` runs.
    """

    all_starts: NDArray[np.intp]
    foreground: NDArray[np.bool_]
    label: NDArray[np.intp]
    length: NDArray[np.int64]
    row: NDArray[np.int64]
    col0: NDArray[np.int64]

    @staticmethod
    def of(labels: NDArray[np.integer]) -> _Runs:
        """Encode ``labels`` (2-D, 0 is background)."""
        flat = labels.ravel()
        width = labels.shape[1]
        new = np.empty(flat.size, bool)
        new[0] = True
        np.not_equal(flat[1:], flat[:-1], out=new[1:])
        new[::width] = True
        starts = np.flatnonzero(new)
        del new
        ends = np.append(starts[1:], flat.size)
        run_label = flat[starts]
        fg = run_label > 0
        fg_starts = starts[fg]
        return _Runs(
            all_starts=starts,
            foreground=fg,
            label=run_label[fg].astype(np.intp),
            length=(ends[fg] - fg_starts).astype(np.int64),
            row=(fg_starts // width).astype(np.int64),
            col0=(fg_starts % width).astype(np.int64),
        )


def _run_moments(runs: _Runs) -> list[NDArray[np.float64]]:
    """Per run: the sums of row, col, row^2, col^2 and row*col over its pixels (integers)."""
    # A run of L pixels in row r covers columns c0 .. c0 + L - 1: closed-form power sums.
    length, row, col0 = runs.length, runs.row, runs.col0
    tri = length * (length - 1) // 2  # sum of 0 .. L-1
    sq = (length - 1) * length * (2 * length - 1) // 6  # sum of squares of 0 .. L-1
    s_c = length * col0 + tri
    s_cc = length * col0**2 + 2 * col0 * tri + sq
    sums = (length * row, s_c, length * row**2, s_cc, row * s_c)
    return [x.astype(np.float64) for x in sums]


def _crack_length(labels: NDArray[np.integer], runs: _Runs, n_bins: int) -> NDArray[np.float64]:
    """Number of pixel edges between each label and anything else, image border included."""
    # Each run has a left and a right crack (a maximal run ends at another label or the border).
    count = 2.0 * np.bincount(runs.label, minlength=n_bins).astype(np.float64)
    return count + crack_counts(labels, n_bins)


def _polygon_hull_area(runs: _Runs, ids: NDArray[np.intp]) -> NDArray[np.float64]:
    """Area (px^2) of the 16-gon bounding the pixel squares of the labels ``ids``."""
    # Support value of a pixel square along a unit normal (c, s): centre projection plus
    # 0.5 (|c| + |s|). Opposite directions come from the minimum of the same projection.
    # Along a run the projection is monotone in the column, so its extremes are at the run's
    # ends (c >= 0: last pixel for the maximum, first for the minimum): run_supports.
    half = _DIRS.shape[0] // 2
    last = runs.col0 + runs.length - 1
    sup = run_supports(runs.label, runs.row, runs.col0, last, _DIRS[:half], int(ids[-1]) + 1)
    ext = 0.5 * (np.abs(_DIRS[:half, 0]) + np.abs(_DIRS[:half, 1]))
    h = sup[ids] + np.concatenate([ext, ext])
    # Vertex k is where support lines k and k+1 meet; every line touches the cell, so the
    # consecutive intersections are the polygon's vertices (some may coincide).
    m = 2 * half
    v = np.stack([h[:, [k, (k + 1) % m]] @ _VERTEX_INV[k].T for k in range(m)], axis=1)
    x, y = v[..., 0], v[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))
