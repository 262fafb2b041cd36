"""Per-state parameter ranges of the cell phantoms, with their literature sources.

Each drawer returns, for ``n`` cells of one state of :data:`biopilot.twin.cells.STATES`,
the shape fields of :class:`~biopilot.twin.cells.CellParams` plus ``roughness`` (rms relative
edge perturbation); ``dn_body`` holds the absolute refractive index (the medium's is
subtracted by :func:`~biopilot.twin.cells.sample_cells`), ``dn_nuc`` the nucleus' step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["DRAWERS", "N_BLEBS"]

N_BLEBS: Final = 5  # blebs per cell at most

_Draw = dict[str, NDArray[np.float64]]
_Bool = NDArray[np.bool_]


def _nucleus(rng: np.random.Generator, a: NDArray, b: NDArray, frac: tuple[float, float]) -> _Draw:
    """Nucleus semi-axes as a fraction of the body's, small random offset."""
    f = rng.uniform(*frac, a.size)
    return {
        "nuc_a_um": f * a,
        "nuc_b_um": f * b * rng.uniform(0.85, 1.0, a.size),
        "nuc_dx_um": rng.uniform(-0.12, 0.12, a.size) * a,
        "nuc_dy_um": rng.uniform(-0.08, 0.08, a.size) * b,
    }


def _live_round(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Production cells in suspension: 8-20 um, CHO ~13-17 um (Milo & Phillips 2015, Cell
    # Biology by the Numbers); integral index 1.365-1.385 (Rappaz et al. 2005, Opt. Express
    # 13:9361; Park et al. 2018, Nat. Photonics 12:578).
    d = np.where(thick, rng.uniform(16.0, 20.0, n), np.clip(rng.normal(13.0, 2.0, n), 8.0, 20.0))
    aspect = rng.uniform(1.0, 1.15, n)
    a, b = 0.5 * d * np.sqrt(aspect), 0.5 * d / np.sqrt(aspect)
    out = {
        "a_um": a, "b_um": b, "height_um": 2.0 * b * rng.uniform(0.85, 1.0, n),
        "profile_s": np.full(n, 0.5), "roughness": np.zeros(n),  # smooth: shape by aspect
        "dn_body": np.where(thick, rng.uniform(1.385, 1.40, n), rng.uniform(1.365, 1.385, n)),
        # nuclei are slightly less dense than cytoplasm (Schuermann et al. 2016,
        # J. Biophotonics 9:1068)
        "dn_nuc": rng.uniform(-0.008, 0.002, n),
    }
    out.update(_nucleus(rng, a, b, (0.5, 0.65)))
    out["nuc_height_um"] = 2.0 * out["nuc_b_um"] * 0.9
    return out


def _live_spread(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Adherent production cells spread to 400-1,300 um^2 (equivalent diameter 22-40 um),
    # lamellae 1.5-3 um thick, the nucleus a 2.5-4 um bump (Milo & Phillips 2015).
    d = rng.uniform(22.0, 40.0, n)
    aspect = rng.uniform(1.2, 2.5, n)
    a, b = 0.5 * d * np.sqrt(aspect), 0.5 * d / np.sqrt(aspect)
    out = {
        "a_um": a, "b_um": b, "height_um": rng.uniform(1.5, 3.0, n),
        "profile_s": np.full(n, 1.0), "roughness": np.full(n, 0.10),
        "dn_body": rng.uniform(1.36, 1.375, n),
        "nuc_height_um": rng.uniform(2.5, 4.0, n),
    }
    out.update(_nucleus(rng, np.minimum(a, 6.5), np.minimum(b, 5.5), (0.8, 1.0)))
    out["dn_nuc"] = out["dn_body"] - n_med + rng.uniform(-0.005, 0.005, n)
    return out


def _dead(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Apoptotic cells shrink, bleb and condense their chromatin (Kerr, Wyllie & Currie 1972,
    # Br. J. Cancer 26:239); their phase (dry-mass density) drops (Pavillon et al. 2012,
    # PLoS ONE 7:e30912): 8-13 um, index 1.350-1.362 (about half the live dry-mass density).
    d = rng.uniform(8.0, 13.0, n)
    aspect = rng.uniform(1.0, 1.3, n)
    a, b = 0.5 * d * np.sqrt(aspect), 0.5 * d / np.sqrt(aspect)
    r = 0.5 * d
    n_blebs = rng.integers(2, N_BLEBS + 1, n)
    has = np.arange(N_BLEBS)[None, :] < n_blebs[:, None]
    out = {
        "a_um": a, "b_um": b, "height_um": 2.0 * b * rng.uniform(0.7, 0.9, n),
        "profile_s": np.full(n, 0.5), "roughness": np.full(n, 0.08),
        "dn_body": rng.uniform(1.350, 1.362, n), "dn_nuc": rng.uniform(0.005, 0.015, n),
        "bleb_angle": rng.uniform(0.0, 2.0 * np.pi, (n, N_BLEBS)),
        "bleb_dist_um": r[:, None] * rng.uniform(0.85, 1.05, (n, N_BLEBS)),
        "bleb_r_um": np.where(has, r[:, None] * rng.uniform(0.15, 0.3, (n, N_BLEBS)), 0.0),
    }
    out.update(_nucleus(rng, a, b, (0.3, 0.4)))
    out["nuc_height_um"] = 2.0 * out["nuc_b_um"]
    return out


def _dividing(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Mitotic cells round up (Stewart et al. 2011, Nature 469:226) and split into two
    # daughters of ~0.8 the parent diameter; the nuclear envelope is gone (no nucleus).
    r = rng.uniform(5.5, 8.0, n)
    return {
        "a_um": r, "b_um": r, "height_um": 2.0 * r * rng.uniform(0.9, 1.0, n),
        "profile_s": np.full(n, 0.5), "roughness": np.zeros(n),
        "dn_body": rng.uniform(1.37, 1.39, n), "lobe_um": r * rng.uniform(0.6, 0.95, n),
    }


def _differentiated(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Differentiated progeny of stem cells (fibroblast- or MSC-like): flat, 45-110 um long,
    # aspect 2.5-5, 1.5-3 um thick with a 2-3.5 um nuclear bump.
    length = rng.uniform(45.0, 110.0, n)
    aspect = rng.uniform(2.5, 5.0, n)
    out = {
        "a_um": 0.5 * length, "b_um": 0.5 * length / aspect, "height_um": rng.uniform(1.5, 3.0, n),
        "profile_s": np.full(n, 0.8), "roughness": np.full(n, 0.08),
        "p_outline": np.full(n, 3.0), "dn_body": rng.uniform(1.36, 1.375, n),
        "nuc_height_um": rng.uniform(2.0, 3.5, n),
    }
    na = rng.uniform(7.0, 11.0, n)
    out.update({
        "nuc_a_um": na, "nuc_b_um": np.minimum(na / rng.uniform(1.3, 2.0, n), out["b_um"] * 0.8),
        "nuc_dx_um": rng.uniform(-0.1, 0.1, n) * out["a_um"], "nuc_dy_um": np.zeros(n),
    })
    out["dn_nuc"] = out["dn_body"] - n_med + rng.uniform(-0.005, 0.005, n)
    return out


def _undifferentiated(rng: np.random.Generator, n: int, thick: _Bool, n_med: float) -> _Draw:
    # Pluripotent stem cells: small (9-13 um), compact, tall in colonies, with a high
    # nucleus-to-cytoplasm ratio (Thomson et al. 1998, Science 282:1145).
    d = rng.uniform(9.0, 13.0, n)
    aspect = rng.uniform(1.0, 1.2, n)
    a, b = 0.5 * d * np.sqrt(aspect), 0.5 * d / np.sqrt(aspect)
    out = {
        "a_um": a, "b_um": b, "height_um": rng.uniform(7.0, 11.0, n),
        "profile_s": np.full(n, 0.6), "roughness": np.full(n, 0.04),
        "dn_body": rng.uniform(1.37, 1.385, n), "dn_nuc": rng.uniform(-0.006, 0.0, n),
    }
    out.update(_nucleus(rng, a, b, (0.65, 0.75)))
    out["nuc_height_um"] = 0.8 * out["height_um"]
    return out


#: One drawer per state, in the order of ``STATES``.
DRAWERS: Final[tuple[Callable[[np.random.Generator, int, _Bool, float], _Draw], ...]] = (
    _live_round, _live_spread, _dead, _dividing, _differentiated, _undifferentiated,
)
