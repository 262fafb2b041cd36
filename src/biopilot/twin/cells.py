"""Cell phantoms of the imaging incubator: shapes, refractive indices and states of cells.

A cell is a phase object made of a body (a superellipse outline with a Fourier-perturbed
edge, extruded into a dome of thickness ``H (1 - rho^2)^s``), an optional second lobe (a
dividing cell), a nucleus (an ellipsoid whose refractive index differs from the cytoplasm's,
or, in a spread cell, a bump above the thin cytoplasm) and optional blebs (small spheres on
the edge of a dying cell). The phase it imparts is ``2 pi / lambda * dn * h``; its dry mass
follows from the refraction increment ``alpha = 0.18 um^3/pg`` (0.18 mL/g).

:class:`CellParams` holds N cells as arrays (one row per cell); :func:`sample_cells` draws them
for a list of states from literature-based ranges; :func:`dry_mass_pg` is the QPI mass formula
shared by the ground truth and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from biopilot.models.qpi import REFRACTION_INCREMENT_UM3_PER_PG, dry_mass_pg
from biopilot.twin.incubator_cellstates import DRAWERS, N_BLEBS

__all__ = [
    "ALIVE",
    "N_BLEBS",
    "N_HARMONICS",
    "REFRACTION_INCREMENT_UM3_PER_PG",
    "STATES",
    "CellParams",
    "dry_mass_pg",
    "sample_cells",
    "sample_debris",
]


#: Cell states; ``CellParams.state`` holds indices into this tuple.
STATES: Final = (
    "live_round",  # suspension cells, or adherent cells that have not spread
    "live_spread",  # adherent cells spread on the substrate
    "dead",  # shrunken, lower dry-mass density, blebbed
    "dividing",  # mitotic, two lobes
    "differentiated",  # flat, elongated, large (stem-cell scenes)
    "undifferentiated",  # small, compact, in colonies (stem-cell scenes)
)
#: Whether each state in :data:`STATES` is alive.
ALIVE: Final = (True, True, False, True, True, True)
N_HARMONICS: Final = 4  # edge perturbation harmonics k = 2..5


@dataclass(frozen=True)
class CellParams:
    """N cells as parallel arrays (lengths in micrometres, angles in radians).

    Attributes
    ----------
    state : (N,) int8
        Index into :data:`STATES`.
    differentiated : (N,) int8
        1 differentiated, 0 undifferentiated, -1 not applicable (not a stem-cell scene).
    x_um, y_um : (N,) float64
        Centre (x along columns, y along rows) from the centre of pixel (0, 0).
    theta : (N,) float64
        Orientation of the major axis.
    a_um, b_um : (N,) float64
        Semi-axes of the body outline (of one lobe for a dividing cell).
    p_outline : (N,) float64
        Superellipse exponent of the outline: 2 (ellipse), 3 or 4 (squarer).
    harm : (N, N_HARMONICS, 2) float64
        Cosine and sine amplitudes of the relative edge perturbation, harmonics 2..5.
    height_um : (N,) float64
        Body thickness at the centre.
    profile_s : (N,) float64
        Thickness profile exponent: ``h = H (1 - rho^2)^s`` (0.5 = ellipsoid).
    dn_body : (N,) float64
        Refractive index of the body minus that of the medium.
    lobe_um : (N,) float64
        Half distance between the two lobes of a dividing cell (0 otherwise).
    nuc_dx_um, nuc_dy_um, nuc_a_um, nuc_b_um, nuc_height_um, dn_nuc : (N,) float64
        Nucleus offset (cell frame), semi-axes, thickness and index step over the body.
    bleb_angle, bleb_dist_um, bleb_r_um : (N, N_BLEBS) float64
        Blebs: direction and distance from the centre (cell frame), radius (0 = none).
    """

    state: NDArray[np.int8]
    differentiated: NDArray[np.int8]
    x_um: NDArray[np.float64]
    y_um: NDArray[np.float64]
    theta: NDArray[np.float64]
    a_um: NDArray[np.float64]
    b_um: NDArray[np.float64]
    p_outline: NDArray[np.float64]
    harm: NDArray[np.float64]
    height_um: NDArray[np.float64]
    profile_s: NDArray[np.float64]
    dn_body: NDArray[np.float64]
    lobe_um: NDArray[np.float64]
    nuc_dx_um: NDArray[np.float64]
    nuc_dy_um: NDArray[np.float64]
    nuc_a_um: NDArray[np.float64]
    nuc_b_um: NDArray[np.float64]
    nuc_height_um: NDArray[np.float64]
    dn_nuc: NDArray[np.float64]
    bleb_angle: NDArray[np.float64]
    bleb_dist_um: NDArray[np.float64]
    bleb_r_um: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.state.shape[0])

    def take(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> CellParams:
        """The cells selected by an index or boolean mask, in that order."""
        return CellParams(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[CellParams]) -> CellParams:
        """Cells of several sets, one after the other."""
        names = [f.name for f in fields(cls)]
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def scaled(self, factor: float) -> CellParams:
        """Cells spread (or contracted) laterally by ``factor`` about their centres.

        Lateral sizes and offsets scale by ``factor``, thicknesses by ``1 / factor**2``, so
        the volume and the dry mass of each cell are conserved (cells flatten as they spread
        to fill a confluent layer).
        """
        lat, ax = factor, 1.0 / factor**2
        return replace(
            self,
            a_um=self.a_um * lat, b_um=self.b_um * lat, lobe_um=self.lobe_um * lat,
            nuc_dx_um=self.nuc_dx_um * lat, nuc_dy_um=self.nuc_dy_um * lat,
            nuc_a_um=self.nuc_a_um * lat, nuc_b_um=self.nuc_b_um * lat,
            bleb_dist_um=self.bleb_dist_um * lat, bleb_r_um=self.bleb_r_um * lat,
            height_um=self.height_um * ax, nuc_height_um=self.nuc_height_um * ax,
        )

    @property
    def box_um(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Half-height and half-width (rows, columns) of a box that contains the whole cell."""
        edge = 1.0 + np.abs(self.harm).sum(axis=(1, 2))
        # a superellipse of exponent p lies inside its ellipse scaled by 2**(1/2 - 1/p)
        grow = edge * 2.0 ** (0.5 - 1.0 / np.maximum(self.p_outline, 2.0))
        ca, sa = np.abs(np.cos(self.theta)), np.abs(np.sin(self.theta))
        big, small = self.a_um * grow, self.b_um * grow
        half_x = np.hypot(big * ca, small * sa) + self.lobe_um * ca
        half_y = np.hypot(big * sa, small * ca) + self.lobe_um * sa
        blebs = (self.bleb_dist_um + self.bleb_r_um).max(axis=1)
        return np.maximum(half_y, blebs), np.maximum(half_x, blebs)

    @property
    def area_um2(self) -> NDArray[np.float64]:
        """Nominal footprint area of the body (ellipse approximation, lobes not merged)."""
        return np.pi * self.a_um * self.b_um * np.where(self.lobe_um > 0, 2.0, 1.0)


def sample_cells(
    states: NDArray[np.integer],
    rng: np.random.Generator,
    *,
    n_medium: float = 1.335,
    thick: NDArray[np.bool_] | None = None,
    differentiated: NDArray[np.integer] | None = None,
) -> CellParams:
    """Draw shapes and refractive indices for cells of the given states (centres at 0).

    Parameters
    ----------
    states : (N,) int array
        Index into :data:`STATES` of each cell.
    rng : numpy.random.Generator
        Random source.
    n_medium : float
        Refractive index of the medium; the cells' absolute indices are drawn, the steps
        ``dn`` stored.
    thick : (N,) bool array, optional
        Draw these live round cells large and dense (16-20 um, n 1.385-1.40), so their phase
        exceeds 2 pi at every wavelength of 405-650 nm.
    differentiated : (N,) int array, optional
        Lineage flag stored in the result (-1 = not applicable, the default).

    Returns
    -------
    CellParams
        The cells, centred at (0, 0) with random orientations.

    Examples
    --------
    >>> cells = sample_cells(np.array([0, 2, 3]), np.random.default_rng(1))
    >>> [STATES[s] for s in cells.state], bool((cells.dn_body > 0).all())
    (['live_round', 'dead', 'dividing'], True)

    References
    ----------
    .. [1] Park, Y., Depeursinge, C. & Popescu, G. (2018). Quantitative phase imaging in
       biomedicine. Nat. Photonics 12, 578-589 (cell refractive indices 1.36-1.40).
    """
    states = np.asarray(states, dtype=np.int8)
    n = states.shape[0]
    u = rng.uniform
    z = np.zeros(n)
    out: dict[str, Any] = {f.name: z.copy() for f in fields(CellParams)}
    out["roughness"] = z.copy()
    for key in ("bleb_angle", "bleb_dist_um", "bleb_r_um"):
        out[key] = np.zeros((n, N_BLEBS))
    out["state"] = states
    out["differentiated"] = (
        np.full(n, -1, np.int8) if differentiated is None else np.asarray(differentiated, np.int8)
    )
    out["theta"] = u(0.0, np.pi, n)
    out["p_outline"] = np.full(n, 2.0)
    thick = np.zeros(n, bool) if thick is None else np.asarray(thick, bool)
    for code, drawer in enumerate(DRAWERS):
        sel = np.flatnonzero(states == code)
        if sel.size:
            values = drawer(rng, sel.size, thick[sel], n_medium)
            for key, val in values.items():
                out[key][sel] = val
    out["dn_body"] = out["dn_body"] - n_medium  # drawers give absolute indices
    roughness = out.pop("roughness")
    out["harm"] = rng.normal(0.0, 1.0, (n, N_HARMONICS, 2)) * roughness[:, None, None] / np.arange(
        2, 2 + N_HARMONICS
    )[None, :, None]
    return CellParams(**out)


def sample_debris(n: int, rng: np.random.Generator, *, n_medium: float = 1.335) -> CellParams:
    """Draw debris: small (1-6 um), irregular, flat, dense particles that are not cells.

    Cell fragments, precipitates and dust in a culture: equivalent diameter 1-6 um, strongly
    perturbed outlines, 0.4-2.5 um thick, index 1.39-1.50. ``state`` is -1.

    Parameters
    ----------
    n : int
        Number of particles.
    rng : numpy.random.Generator
        Random source.
    n_medium : float
        Refractive index of the medium.

    Returns
    -------
    CellParams
        The particles, centred at (0, 0).

    Examples
    --------
    >>> d = sample_debris(3, np.random.default_rng(0))
    >>> len(d), bool((d.state == -1).all()), bool((2 * d.a_um <= 12).all())
    (3, True, True)
    """
    cells = sample_cells(np.zeros(n, np.int8), rng, n_medium=n_medium)
    d = rng.uniform(1.0, 6.0, n)
    aspect = rng.uniform(1.0, 2.5, n)
    harm = rng.normal(0.0, 0.25, (n, N_HARMONICS, 2)) / np.arange(2, 2 + N_HARMONICS)[:, None]
    return replace(
        cells,
        state=np.full(n, -1, np.int8),
        a_um=0.5 * d * np.sqrt(aspect), b_um=0.5 * d / np.sqrt(aspect), harm=harm,
        height_um=rng.uniform(0.4, 2.5, n), profile_s=np.full(n, 0.3),
        dn_body=rng.uniform(1.39, 1.50, n) - n_medium,
        nuc_height_um=np.zeros(n), dn_nuc=np.zeros(n),
    )
