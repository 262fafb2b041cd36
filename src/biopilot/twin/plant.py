"""From true culture states to what the vessel's probes see, minute by minute (loops included)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biopilot.models.kinetics import NUMPY_OPS, STATE_NAMES, KineticParameters, rates
from biopilot.twin import faults as fx
from biopilot.twin.loops import (
    LoopInputs,
    LoopState,
    LoopTuning,
    controller_outputs,
    run_loops,
)
from biopilot.twin.recipe import Recipe

__all__ = [
    "CAPACITANCE_PF_PER_CM_PER_MILLION",
    "initial_loop_state",
    "plant_signals",
    "truth_columns",
]

# Permittivity increment per 1e6 viable CHO cells/mL, ~1 pF/cm (Opel et al. 2010 Biotechnol.
# Prog. 26:1187); cells swell ~2 %/day in culture, so the ratio drifts up (Opel et al. 2010).
CAPACITANCE_PF_PER_CM_PER_MILLION = 1.0
_CELL_SWELLING_PER_DAY = 0.02
# Contaminant respiration: RQ ~1 and organic acids ~0.2 mmol per mmol O2 (assumed).
_CONTAMINANT_RQ = 1.0
_CONTAMINANT_ACID_PER_O2 = 0.2


def initial_loop_state(recipe: Recipe) -> LoopState:
    """Return the loops at inoculation: at setpoint, jacket at the culture temperature."""
    return LoopState(
        do_pct=recipe.do_setpoint_pct,
        ph=recipe.ph_setpoint,
        temperature_c=recipe.temperature_c,
        jacket_c=recipe.temperature_c,
    )


def plant_signals(
    t_h: np.ndarray,
    states: np.ndarray,
    inputs: np.ndarray,
    p: KineticParameters,
    recipe: Recipe,
    faults: Sequence[Any],
    loop_state: LoopState,
    temperature_sp_c: np.ndarray,
    tuning: LoopTuning | None = None,
) -> dict[str, np.ndarray]:
    """Run the control loops and derive every online signal's true value, per minute.

    Parameters
    ----------
    t_h : ndarray
        Times of the rows, hours after inoculation (one per minute).
    states, inputs : ndarray
        Kinetic states ``(n_states, n)`` and inputs ``(n_inputs, n)`` at those times.
    p, recipe, faults
        Kinetic parameters, the recipe (setpoints) and the active faults.
    loop_state : LoopState
        Loop states carried in; updated in place.
    temperature_sp_c : ndarray
        Temperature setpoint per row (the recipe's, plus any excursion fault).
    tuning : LoopTuning, optional
        Loop constants.

    Returns
    -------
    dict of ndarray
        Noise-free readings under the online tags (probe readings include probe drift; the
        controller outputs: gas flows and base pump rate) and, under ``true_*`` keys, the
        true pH, DO and temperature.
    """
    r = rates(states, inputs, p, NUMPY_OPS)
    xv_l = np.maximum(states[0], 0.0) * 1e3
    extra_our = fx.extra_our_mmol_per_l_h(faults, t_h)
    our = r.our_mmol_per_l_h + extra_our
    cer = r.cer_mmol_per_l_h + _CONTAMINANT_RQ * extra_our
    acid = (
        p.base_per_lactate * r.q_lac_mmol_per_cell_h * xv_l + _CONTAMINANT_ACID_PER_O2 * extra_our
    )
    n = t_h.size
    do_drift = np.broadcast_to(fx.do_drift_pct(faults, t_h), (n,))
    ph_drift = np.broadcast_to(fx.ph_drift(faults, t_h), (n,))
    tuning = tuning or LoopTuning()
    loops = run_loops(
        loop_state,
        LoopInputs(
            our_mmol_per_l_h=our,
            acid_mmol_per_l_h=acid,
            volume_l=states[7],
            temperature_sp_c=temperature_sp_c,
            ph_sp=np.full(n, recipe.ph_setpoint),
            do_sp_pct=np.full(n, recipe.do_setpoint_pct),
            kla_factor=np.broadcast_to(fx.kla_factor(faults, t_h), (n,)),
            do_drift_pct=do_drift,
            ph_drift=ph_drift,
        ),
        tuning,
        recipe.ph_deadband,
    )
    swelling = 1.0 + _CELL_SWELLING_PER_DAY * t_h / 24.0
    return {
        "ph": loops["ph"] + ph_drift,
        "do_pct": loops["do_pct"] + do_drift,
        "temperature_c": loops["temperature_c"],
        "our_mmol_per_l_h": our,
        "cer_mmol_per_l_h": cer,
        "capacitance_pf_per_cm": CAPACITANCE_PF_PER_CM_PER_MILLION * states[0] / 1e6 * swelling,
        "base_added_ml": loops["base_added_ml"],
        # The load cell sees the base actually pumped, not the model's ideal base.
        "volume_l": states[7] - states[11] + loops["base_added_ml"] / 1e3,
        "o2_fraction_pct": 100.0 * loops["o2_fraction"],
        **controller_outputs(loops["do_out"], loops["ph_out"], tuning),
        "true_ph": loops["ph"],
        "true_do_pct": loops["do_pct"],
        "true_temperature_c": loops["temperature_c"],
    }


def truth_columns(states: np.ndarray, signals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the true values kept for evaluation: states, viability, pH, DO, temperature."""
    cols = dict(zip(STATE_NAMES, states, strict=True))
    live, dead = states[0], states[1]
    cols["viability_pct"] = 100.0 * live / np.maximum(live + dead, 1e-12)
    cols["ph"] = signals["true_ph"]
    cols["do_pct"] = signals["true_do_pct"]
    cols["temperature_c"] = signals["true_temperature_c"]
    cols["our_mmol_per_l_h"] = signals["our_mmol_per_l_h"]
    cols["cer_mmol_per_l_h"] = signals["cer_mmol_per_l_h"]
    return cols
