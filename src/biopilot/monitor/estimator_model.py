"""The estimator's view of the process: augmented parameters, process noise, prior spread.

The culture's equations are :mod:`biopilot.models.kinetics`, used as they are; this module
only says which of their parameters the filter is allowed to learn (as log-multipliers
following random walks, the augmented-state approach of Dochain 2003, J. Process Control
13:801) and how uncertain the states are, at inoculation and per hour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from biopilot.models.kinetics import STATE_NAMES, KineticParameters

__all__ = [
    "DEFAULT_PARAMETERS",
    "DEFAULT_PRIOR_SD",
    "DEFAULT_STATE_NOISE",
    "STATE_SCALE",
    "UncertainParameter",
    "apply_multipliers",
    "state_noise_sd",
]


@dataclass(frozen=True)
class UncertainParameter:
    """A log-multiplier the filter estimates, with its prior sd and random-walk sd per sqrt(h).

    ``fields`` are the :class:`KineticParameters` it scales, each with an exponent (+1
    multiplies, -1 divides); no field means a sensor factor used by a measurement function.
    """

    name: str
    fields: tuple[tuple[str, float], ...]
    prior_sd: float
    walk_sd_per_sqrt_h: float


#: Parameters learned on line. Prior sds are about 1.5x the batch-to-batch CVs of CHO kinetics
#: (growth 3-5 %, productivity 5-10 %, yields 5 %, death 10-20 %; see twin.variability);
#: random walks let them follow slow drifts (chosen, then checked on twin batches).
DEFAULT_PARAMETERS: tuple[UncertainParameter, ...] = (
    UncertainParameter("mu_max", (("mu_max_per_h", 1.0),), 0.06, 0.002),
    UncertainParameter("q_mab", (("q_mab_g_per_cell_h", 1.0),), 0.12, 0.004),
    UncertainParameter("q_o2", (("q_o2_mmol_per_cell_h", 1.0),), 0.12, 0.002),
    UncertainParameter("death", (("kd_basal_per_h", 1.0), ("kd_max_per_h", 1.0)), 0.25, 0.01),
    UncertainParameter(
        "q_glc", (("m_glc_mmol_per_cell_h", 1.0), ("y_x_glc_cells_per_mmol", -1.0)), 0.08, 0.003
    ),
    UncertainParameter("lac_prod", (("y_lac_glc", 1.0),), 0.12, 0.003),
    UncertainParameter("lac_cons", (("q_lac_cons_mmol_per_cell_h", 1.0),), 0.15, 0.004),
    # Capacitance per viable cell: cells swell ~2 %/day (Opel et al. 2010), so it drifts.
    UncertainParameter("capacitance", (), 0.10, 0.012),
)

#: Scale of each state in the filter's internal coordinates (keeps the covariance well
#: conditioned: cells/mL ~1e6-1e7 next to g/L ~1).
STATE_SCALE: np.ndarray = np.array([1e6, 1e6, 1.0, 1.0, 1.0, 1.0, 1.0, 1e3, 1e2, 1e3, 1e3, 1.0])

#: Spread of the state at inoculation, (relative sd, absolute sd) per state: seeding count
#: CV ~5 % plus the inoculum's cell count error; media made up within a few percent.
DEFAULT_PRIOR_SD: Mapping[str, tuple[float, float]] = {
    "vcd_cells_per_ml": (0.10, 0.0),
    "dead_cells_per_ml": (0.30, 1e4),
    "glucose_g_per_l": (0.05, 0.0),
    "glutamine_mmol_per_l": (0.05, 0.0),
    "lactate_g_per_l": (0.0, 0.02),
    "ammonia_mmol_per_l": (0.0, 0.05),
    "titer_g_per_l": (0.0, 0.002),
    "volume_l": (0.0, 2.0),
    "osmolality_mosm_per_kg": (0.0, 5.0),
    "glucose_consumed_g": (0.0, 1.0),
    "glucose_fed_g": (0.0, 1.0),
    "base_added_l": (0.0, 0.01),
}

#: Process noise, (relative, absolute) sd per sqrt(hour): what the equations miss beyond the
#: learned parameters (unmodelled metabolism, mixing, sampling of the feeds).
DEFAULT_STATE_NOISE: Mapping[str, tuple[float, float]] = {
    "vcd_cells_per_ml": (0.004, 1e3),
    "dead_cells_per_ml": (0.01, 1e3),
    "glucose_g_per_l": (0.004, 0.005),
    "glutamine_mmol_per_l": (0.005, 0.005),
    "lactate_g_per_l": (0.004, 0.004),
    "ammonia_mmol_per_l": (0.005, 0.005),
    "titer_g_per_l": (0.002, 0.0005),
    "volume_l": (0.0, 0.3),
    "osmolality_mosm_per_kg": (0.0, 0.5),
    "glucose_consumed_g": (0.001, 0.1),
    "glucose_fed_g": (0.0, 0.01),
    "base_added_l": (0.005, 0.005),
}


def state_noise_sd(x: np.ndarray, table: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """Return the sd of each state (natural units) as ``rel * |x| + abs`` from ``table``."""
    rel = np.array([table[n][0] for n in STATE_NAMES])
    ab = np.array([table[n][1] for n in STATE_NAMES])
    return rel * np.abs(x) + ab


def apply_multipliers(
    p: KineticParameters,
    uncertain: tuple[UncertainParameter, ...],
    log_multipliers: np.ndarray,
) -> tuple[KineticParameters, dict[str, Any]]:
    """Return ``p`` with each uncertain parameter scaled by ``exp(log_multipliers)``.

    ``log_multipliers`` has one row per uncertain parameter and one column per sigma point;
    the returned parameters hold arrays (one value per sigma point), which the kinetics
    broadcast against the states. The second value maps each name to its multipliers.
    """
    mult = {u.name: np.exp(log_multipliers[i]) for i, u in enumerate(uncertain)}
    changes: dict[str, Any] = {}
    for u in uncertain:
        for name, power in u.fields:
            base = changes.get(name, getattr(p, name))
            changes[name] = base * mult[u.name] ** power
    return dataclasses.replace(p, **changes), mult
