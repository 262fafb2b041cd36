"""Batch-to-batch variability: seeded lognormal multipliers on the kinetic parameters."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from biopilot.models.kinetics import KineticParameters

__all__ = ["PARAMETER_CVS", "SEEDING_CV", "draw_parameters", "lognormal_multipliers"]

#: Coefficient of variation of each varied parameter between batches of one process. Of the
#: order reported for clone/lot/run variability of CHO fed-batch kinetics (growth 3-5 %,
#: specific productivity 5-10 %, yields 5 %, death 10-20 %); chosen, not fitted.
PARAMETER_CVS: Mapping[str, float] = {
    "mu_max_per_h": 0.04,
    "q_mab_g_per_cell_h": 0.08,
    "y_x_glc_cells_per_mmol": 0.05,
    "y_x_gln_cells_per_mmol": 0.05,
    "m_glc_mmol_per_cell_h": 0.06,
    "y_lac_glc": 0.08,
    "q_lac_cons_mmol_per_cell_h": 0.10,
    "kd_max_per_h": 0.15,
    "kd_basal_per_h": 0.20,
    "q_o2_mmol_per_cell_h": 0.08,
}
#: CV of the actual seeding density around the recipe's (cell count of the seed train).
SEEDING_CV = 0.05


def lognormal_multipliers(rng: np.random.Generator, cvs: Mapping[str, float]) -> dict[str, float]:
    """Draw one mean-1 lognormal multiplier per name, with the given coefficients of variation.

    A multiplier is ``exp(s z - s^2/2)`` with ``s = sqrt(ln(1 + cv^2))`` and ``z ~ N(0, 1)``,
    so its mean is 1 and its CV is ``cv``; names are drawn in sorted order (stable).
    """
    out = {}
    for name in sorted(cvs):
        s = math.sqrt(math.log1p(cvs[name] ** 2))
        out[name] = math.exp(s * float(rng.standard_normal()) - 0.5 * s * s)
    return out


def draw_parameters(
    rng: np.random.Generator,
    nominal: KineticParameters | None = None,
    cvs: Mapping[str, float] = PARAMETER_CVS,
) -> KineticParameters:
    """Return ``nominal`` parameters with each name in ``cvs`` scaled by a lognormal draw."""
    base = KineticParameters() if nominal is None else nominal
    mult = lognormal_multipliers(rng, cvs)
    return dataclasses.replace(base, **{k: getattr(base, k) * m for k, m in mult.items()})
