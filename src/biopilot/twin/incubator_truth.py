"""Ground truth of a simulated frame: the per-cell table measured on the rendered maps."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from biopilot.twin.cells import ALIVE, STATES, CellParams, dry_mass_pg
from biopilot.twin.hologram import OpticalSetup

__all__ = ["cell_table"]


def cell_table(
    cells: CellParams,
    labels: NDArray[np.int32],
    phase_rad: NDArray[np.float32],
    optics: OpticalSetup,
) -> tuple[pd.DataFrame, NDArray[np.int32]]:
    """Per-cell ground truth measured on the rendered maps; labels renumbered 1..N.

    Columns: ``label``, ``state`` (a name of :data:`~biopilot.twin.cells.STATES`), ``alive``
    (bool), ``differentiated`` (nullable boolean, NA outside stem-cell scenes),
    ``centroid_x_um``, ``centroid_y_um`` (from the centre of pixel (0, 0); x along columns),
    ``area_um2``, ``equivalent_diameter_um``, ``dry_mass_pg`` (:func:`dry_mass_pg` of the
    phase summed over the label's pixels), ``max_phase_rad``, ``refractive_index`` (of the
    body) and ``touching`` (shares a border with another cell).

    Parameters
    ----------
    cells : CellParams
        The rendered cells; label ``i + 1`` is row ``i``.
    labels : (H, W) int32
        Label mask from :func:`~biopilot.twin.incubator_render.render_cells`.
    phase_rad : (H, W) float32
        Final phase map.
    optics : OpticalSetup
        Pixel pitch, wavelength, medium index.

    Returns
    -------
    table : pandas.DataFrame
        One row per cell with at least one pixel, ordered by label.
    labels : (H, W) int32
        The mask renumbered so that labels are 1..len(table).
    """
    n = len(cells)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = np.flatnonzero(area > 0)
    lut = np.zeros(n + 1, np.int32)
    lut[keep + 1] = np.arange(1, keep.size + 1, dtype=np.int32)
    new = lut[labels]
    nz = np.flatnonzero(new)
    f = new.ravel()[nz]
    m = keep.size + 1
    ph = phase_rad.ravel()[nz]
    cnt = np.bincount(f, minlength=m)[1:].astype(np.float64)
    phi = np.bincount(f, weights=ph, minlength=m)[1:]
    cy = np.bincount(f, weights=nz // labels.shape[1], minlength=m)[1:]
    cx = np.bincount(f, weights=nz % labels.shape[1], minlength=m)[1:]
    peak = np.zeros(m, np.float32)
    np.maximum.at(peak, f, ph)
    touching = np.zeros(m, bool)
    for a, b in ((new[:, :-1], new[:, 1:]), (new[:-1, :], new[1:, :])):
        edge = (a > 0) & (b > 0) & (a != b)
        touching[a[edge]] = touching[b[edge]] = True
    px2 = optics.pixel_um**2
    diff = cells.differentiated[keep]
    table = pd.DataFrame({
        "label": np.arange(1, keep.size + 1, dtype=np.int32),
        "state": pd.Categorical([STATES[s] for s in cells.state[keep]], categories=STATES),
        "alive": np.array([ALIVE[s] for s in cells.state[keep]], bool),
        "differentiated": pd.array([None if d < 0 else bool(d) for d in diff], dtype="boolean"),
        "centroid_x_um": cx / np.maximum(cnt, 1) * optics.pixel_um,
        "centroid_y_um": cy / np.maximum(cnt, 1) * optics.pixel_um,
        "area_um2": cnt * px2,
        "equivalent_diameter_um": 2.0 * np.sqrt(cnt * px2 / np.pi),
        "dry_mass_pg": dry_mass_pg(phi * px2, optics.wavelength_um),
        "max_phase_rad": peak[1:].astype(np.float64),
        "refractive_index": optics.n_medium + cells.dn_body[keep],
        "touching": touching[1:],
    })
    return table, new
