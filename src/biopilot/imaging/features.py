"""Per-cell features of a phase map: size, dry mass, phase statistics, shape, texture, crops."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import ndimage as ndi

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
    height, width = lab.shape
    idx = np.flatnonzero(lab.ravel() > 0)
    if idx.size == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in FEATURE_COLUMNS})
    ids_all = lab.ravel()[idx]
    order = np.argsort(ids_all, kind="stable")
    idx, ids_all = idx[order], ids_all[order]
    starts = np.flatnonzero(np.r_[True, ids_all[1:] != ids_all[:-1]])
    ids = ids_all[starts]

    def total(values: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.add.reduceat(values.astype(np.float64), starts)

    rows = (idx // width).astype(np.float64)
    cols = (idx % width).astype(np.float64)
    phi = phase.ravel()[idx]
    n = np.diff(np.r_[starts, idx.size]).astype(np.float64)
    area_um2 = n * pixel_um**2
    sum_phi = total(phi)
    mean_phi = sum_phi / n
    std_phi = np.sqrt(np.maximum(total(phi.astype(np.float64) ** 2) / n - mean_phi**2, 0.0))
    mass_sum = _grown_sums(phase, lab, mass_margin_px, ids) if mass_margin_px > 0 else sum_phi
    optical_volume = wavelength_um / (2 * math.pi) * mass_sum * pixel_um**2

    mr, mc = total(rows) / n, total(cols) / n
    dr, dc = rows - np.repeat(mr, n.astype(int)), cols - np.repeat(mc, n.astype(int))
    mu_rr, mu_cc, mu_rc = total(dr * dr) / n, total(dc * dc) / n, total(dr * dc) / n
    half_tr = 0.5 * (mu_rr + mu_cc)
    root = np.sqrt(np.maximum(0.25 * (mu_rr - mu_cc) ** 2 + mu_rc**2, 0.0))
    l1, l2 = half_tr + root, np.maximum(half_tr - root, 0.0)
    ecc = np.sqrt(np.where(l1 > 0, 1.0 - l2 / np.where(l1 > 0, l1, 1.0), 0.0))

    perimeter_um = _crack_length(lab, ids) * (math.pi / 4) * pixel_um
    # The hull only depends on the cells' outer pixels: project those alone.
    edge = _inner_edge(lab).ravel()[idx]
    edge_ids = ids_all[edge]
    edge_starts = np.flatnonzero(np.r_[True, edge_ids[1:] != edge_ids[:-1]])
    hull = _polygon_hull_area(rows[edge], cols[edge], edge_starts)
    gy, gx = np.gradient(phase, pixel_um)
    grad2 = (gx * gx + gy * gy).ravel()[idx]
    border = (rows == 0) | (rows == height - 1) | (cols == 0) | (cols == width - 1)

    table = {
        "label": ids.astype(np.int64),
        "row_px": mr,
        "col_px": mc,
        "area_um2": area_um2,
        "equivalent_diameter_um": 2.0 * np.sqrt(area_um2 / math.pi),
        "optical_volume_um3": optical_volume,
        "dry_mass_pg": optical_volume / REFRACTION_INCREMENT_UM3_PER_PG,
        "phase_mean_rad": mean_phi,
        "phase_max_rad": np.maximum.reduceat(phi, starts).astype(np.float64),
        "phase_std_rad": std_phi,
        "major_axis_um": 4.0 * np.sqrt(l1) * pixel_um,
        "minor_axis_um": 4.0 * np.sqrt(l2) * pixel_um,
        "eccentricity": ecc,
        "perimeter_um": perimeter_um,
        "circularity": np.minimum(
            4 * math.pi * area_um2 / np.maximum(perimeter_um, 1e-9) ** 2, 1.0
        ),
        "solidity": np.minimum(n / hull, 1.0),
        "gradient_energy_rad2_per_um2": total(grad2) / n,
        "touches_border": np.maximum.reduceat(border, starts).astype(bool),
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
    height, width = labels.shape
    step = crop_um / size / pixel_um
    offsets = (np.arange(size) - (size - 1) / 2) * step
    rr = np.rint(cells["row_px"].to_numpy()[:, None] + offsets[None, :]).astype(np.int64)
    cc = np.rint(cells["col_px"].to_numpy()[:, None] + offsets[None, :]).astype(np.int64)
    inside = ((rr >= 0) & (rr < height))[:, :, None] & ((cc >= 0) & (cc < width))[:, None, :]
    flat = np.clip(rr, 0, height - 1)[:, :, None] * width + np.clip(cc, 0, width - 1)[:, None, :]
    crops = np.empty((n, 2, size, size), np.float32)
    phase = np.asarray(phase_rad, np.float32).ravel()
    crops[:, 0] = (phase[flat] - np.float32(background_rad)) / np.float32(_PHASE_SCALE_RAD) * inside
    own = cells["label"].to_numpy()[:, None, None]
    crops[:, 1] = (np.asarray(labels).ravel()[flat] == own) & inside
    features = (
        cells[SCALAR_FEATURES].to_numpy(np.float32)
        if n
        else np.zeros((0, len(SCALAR_FEATURES)), np.float32)
    )
    return CellSamples(crops, features)


def _grown_sums(
    phase: NDArray[np.float32], labels: NDArray[np.integer], margin_px: int, ids: NDArray[Any]
) -> NDArray[np.float64]:
    """Sum of the phase over each label grown ``margin_px`` pixels into the background."""
    grown = np.asarray(labels)
    for _ in range(margin_px):
        grown = np.where(grown == 0, ndi.grey_dilation(grown, size=(3, 3)), grown)
    sums = np.bincount(grown.ravel(), weights=phase.ravel(), minlength=int(grown.max()) + 1)
    return sums[ids]


def _inner_edge(labels: NDArray[np.integer]) -> NDArray[np.bool_]:
    """Pixels of a label with a 4-neighbour of another label (or on the image border)."""
    edge = np.zeros(labels.shape, bool)
    edge[0, :] = edge[-1, :] = edge[:, 0] = edge[:, -1] = True
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        diff = a != b
        if a.shape[1] != labels.shape[1]:
            edge[:, :-1] |= diff
            edge[:, 1:] |= diff
        else:
            edge[:-1, :] |= diff
            edge[1:, :] |= diff
    return edge


def _crack_length(labels: NDArray[np.integer], ids: NDArray[np.integer]) -> NDArray[np.float64]:
    """Number of pixel edges between each label and anything else, image border included."""
    n = int(labels.max()) + 1
    count = np.zeros(n, np.float64)
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        edge = a != b
        count += np.bincount(a[edge].ravel(), minlength=n) + np.bincount(
            b[edge].ravel(), minlength=n
        )
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        count += np.bincount(side.ravel(), minlength=n)
    return count[ids]


def _polygon_hull_area(
    rows: NDArray[np.float64], cols: NDArray[np.float64], starts: NDArray[np.intp]
) -> NDArray[np.float64]:
    """Area (px^2) of the 16-gon bounding each cell's pixel squares in 16 directions."""
    # Support value of a pixel square along a unit normal (c, s): centre projection plus
    # 0.5 (|c| + |s|). Opposite directions come from the minimum of the same projection.
    half = _DIRS.shape[0] // 2
    h = np.empty((starts.size, 2 * half))
    for k in range(half):
        c, s = _DIRS[k]
        proj = cols * c + rows * s
        ext = 0.5 * (abs(c) + abs(s))
        h[:, k] = np.maximum.reduceat(proj, starts) + ext
        h[:, k + half] = -np.minimum.reduceat(proj, starts) + ext
    # Vertex k is where support lines k and k+1 meet; every line touches the cell, so the
    # consecutive intersections are the polygon's vertices (some may coincide).
    m = 2 * half
    v = np.stack([h[:, [k, (k + 1) % m]] @ _VERTEX_INV[k].T for k in range(m)], axis=1)
    x, y = v[..., 0], v[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1))
