"""The bioreactor's basic control loops: DO on gassing, pH on base/CO2, temperature on jacket.

Each loop is a velocity-form PI controller with output limits acting, once a minute, on a
small process model: DO by oxygen transfer (kLa cascade: gas flow, then O2 enrichment) against
the culture's OUR, pH by a buffer capacity against the lactic-acid load, temperature by a
jacket with a first-order lag. The controllers read the probes (true value plus any probe
drift); sensor noise is added afterwards by :mod:`biopilot.twin.sensors`.

The controller outputs are logged as a real controller (Sartorius BIOSTAT / Biobrain, Getinge
Applikon) logs them: the flows of the air, O2 and CO2 mass-flow controllers and the base pump
rate (:func:`controller_outputs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["LoopInputs", "LoopState", "LoopTuning", "controller_outputs", "run_loops"]

# Air-saturated dissolved O2 at 37 degC in culture medium, mmol/L (~0.19-0.21; Ozturk 1996).
_O2_SAT_MMOL_PER_L = 0.20
_AIR_O2 = 0.2095


@dataclass(frozen=True)
class LoopTuning:
    """Plant and controller constants of the three loops (a 2000 L single-use vessel)."""

    kla_min_per_h: float = 0.5  # headspace / minimum sparge
    kla_max_per_h: float = 12.0  # full sparge (SUB kLa 5-20 1/h, Xing et al. 2009 BB 103:733)
    do_kp: float = 0.01  # controller output per % air saturation
    do_ti_min: float = 20.0
    buffer_mmol_per_l_ph: float = 15.0  # bicarbonate-buffered CD medium, assumed
    base_max_l_per_h: float = 3.0
    co2_max_mmol_per_l_h: float = 2.0  # acidifying CO2 sparge at full output
    ph_kp: float = 2.0  # output per pH unit
    ph_ti_min: float = 30.0
    jacket_tau_min: float = 25.0
    t_kp: float = 4.0  # degC of jacket offset per degC error
    t_ti_min: float = 30.0
    jacket_range_c: tuple[float, float] = (4.0, 45.0)
    # Sparge flows of a 2000 L SUB, 0.001-0.05 vvm (SUB sparging 0.01-0.1 vvm, Xing et al.
    # 2009); kLa is taken linear in the flow over that range (kLa ~ vs^0.5-0.7 in reality).
    gas_flow_min_slpm: float = 2.0  # at cascade output 0 (kla_min_per_h)
    gas_flow_max_slpm: float = 100.0  # at cascade output 1 (kla_max_per_h), then O2 replaces air
    co2_max_slpm: float = 10.0  # CO2 sparge at full acidifying output (co2_max_mmol_per_l_h)


@dataclass
class LoopState:
    """Controller and process states carried from one minute to the next."""

    do_pct: float
    ph: float
    temperature_c: float
    do_out: float = 0.1  # near the gassing a fresh culture needs
    ph_out: float = 0.0
    jacket_c: float = 36.5
    base_added_ml: float = 0.0
    errors: tuple[float, float, float] = (0.0, 0.0, 0.0)  # last DO, pH, temperature errors


@dataclass(frozen=True)
class LoopInputs:
    """Per-minute drivers of the loops (arrays of equal length)."""

    our_mmol_per_l_h: np.ndarray
    acid_mmol_per_l_h: np.ndarray  # net H+ load the base must neutralise (negative = alkaline)
    volume_l: np.ndarray
    temperature_sp_c: np.ndarray
    ph_sp: np.ndarray
    do_sp_pct: np.ndarray
    kla_factor: np.ndarray
    do_drift_pct: np.ndarray
    ph_drift: np.ndarray


def run_loops(
    state: LoopState, inputs: LoopInputs, tuning: LoopTuning, deadband: float
) -> dict[str, np.ndarray]:
    """Advance the loops one minute per input row; update ``state`` in place.

    Returns
    -------
    dict of ndarray
        True ``do_pct``, ``ph`` and ``temperature_c``, the probe readings ``do_read_pct`` and
        ``ph_read``, the gassing output ``o2_fraction`` (0.21-1), ``kla_per_h``, the cumulative
        ``base_added_ml``, the ``jacket_c`` temperature and the controller outputs ``do_out``
        (0-2: gas flow, then O2 enrichment) and ``ph_out`` (-1 full CO2 to 1 full base), one
        value per minute (after it).
    """
    g = tuning
    n = len(inputs.our_mmol_per_l_h)
    dt_h = 1.0 / 60.0
    keys = (
        "do_pct",
        "ph",
        "temperature_c",
        "o2_fraction",
        "kla_per_h",
        "base_added_ml",
        "jacket_c",
        "do_out",
        "ph_out",
    )
    rec: list[tuple[float, ...]] = []
    cols = [
        np.asarray(a, dtype=float).tolist()
        for a in (
            inputs.our_mmol_per_l_h,
            inputs.acid_mmol_per_l_h,
            inputs.volume_l,
            inputs.temperature_sp_c,
            inputs.ph_sp,
            inputs.do_sp_pct,
            inputs.kla_factor,
            inputs.do_drift_pct,
            inputs.ph_drift,
        )
    ]
    do, ph, temp = state.do_pct, state.ph, state.temperature_c
    c_do, c_ph, jacket, base_ml = state.do_out, state.ph_out, state.jacket_c, state.base_added_ml
    e_do_prev, e_ph_prev, e_t_prev = state.errors
    jlo, jhi = g.jacket_range_c
    lag = 1.0 - math.exp(-1.0 / g.jacket_tau_min)
    sat_pct = _O2_SAT_MMOL_PER_L / 100.0
    half_band = 0.5 * deadband
    # Loop constants as locals: this loop runs 20,000 times a batch.
    do_kp, do_ki = g.do_kp, g.do_kp / g.do_ti_min
    ph_kp, ph_ki = g.ph_kp, g.ph_kp / g.ph_ti_min
    t_kp, t_ki = g.t_kp, g.t_kp / g.t_ti_min
    kla_min, kla_span = g.kla_min_per_h, g.kla_max_per_h - g.kla_min_per_h
    base_max, co2_max, buffer = g.base_max_l_per_h, g.co2_max_mmol_per_l_h, g.buffer_mmol_per_l_ph
    enrich = 1.0 - _AIR_O2
    exp = math.exp
    rows = zip(*cols, strict=True)
    for our, acid, vol, t_sp, ph_sp, do_sp, kla_f, do_dr, ph_dr in rows:
        # DO: cascade output 0-1 raises gas flow (kLa), 1-2 enriches with O2.
        e = do_sp - (do + do_dr)
        c_do += do_kp * (e - e_do_prev) + do_ki * e
        c_do = 0.0 if c_do < 0.0 else (2.0 if c_do > 2.0 else c_do)
        e_do_prev = e
        if c_do <= 1.0:
            kla, y_o2 = (kla_min + c_do * kla_span) * kla_f, _AIR_O2
        else:
            kla, y_o2 = (kla_min + kla_span) * kla_f, _AIR_O2 + (c_do - 1.0) * enrich
        do_eq = 100.0 * y_o2 / _AIR_O2 - our / ((kla if kla > 1e-6 else 1e-6) * sat_pct)
        do = do_eq + (do - do_eq) * exp(-kla * dt_h)
        do = do if do > 0.0 else 0.0
        # pH: two-sided, base above the deadband's lower edge, CO2 below its upper edge.
        e = ph_sp - (ph + ph_dr)
        e = e - half_band if e > half_band else (e + half_band if e < -half_band else 0.0)
        c_ph += ph_kp * (e - e_ph_prev) + ph_ki * e
        c_ph = -1.0 if c_ph < -1.0 else (1.0 if c_ph > 1.0 else c_ph)
        e_ph_prev = e
        base_l_per_h = base_max * c_ph if c_ph > 0.0 else 0.0
        co2 = -co2_max * c_ph if c_ph < 0.0 else 0.0
        base_ml += base_l_per_h * dt_h * 1000.0
        ph += (base_l_per_h * 1000.0 / vol - acid - co2) * dt_h / buffer
        # Temperature: PI sets the jacket, the broth follows with a first-order lag.
        e = t_sp - temp
        jacket += t_kp * (e - e_t_prev) + t_ki * e
        jacket = jlo if jacket < jlo else (jhi if jacket > jhi else jacket)
        e_t_prev = e
        temp += (jacket - temp) * lag
        rec.append((do, ph, temp, y_o2, kla, base_ml, jacket, c_do, c_ph))
    state.do_pct, state.ph, state.temperature_c = do, ph, temp
    state.do_out, state.ph_out, state.jacket_c, state.base_added_ml = c_do, c_ph, jacket, base_ml
    state.errors = (e_do_prev, e_ph_prev, e_t_prev)
    table = np.array(rec).reshape(n, len(keys))
    return {k: table[:, j] for j, k in enumerate(keys)}


def controller_outputs(
    do_out: np.ndarray, ph_out: np.ndarray, tuning: LoopTuning
) -> dict[str, np.ndarray]:
    """Return the flows the controller outputs command, as its data log records them.

    Parameters
    ----------
    do_out, ph_out : ndarray
        DO cascade output (0-1 total sparge flow from minimum to maximum, 1-2 O2 replaces
        air at maximum flow) and pH output (-1 full CO2 to 1 full base), per minute.
    tuning : LoopTuning
        Flow ranges of the mass-flow controllers and the base pump.

    Returns
    -------
    dict of ndarray
        ``air_flow_slpm``, ``o2_flow_slpm`` and ``co2_flow_slpm`` (standard L/min) and
        ``base_pump_ml_per_h``: the mixture of air and O2 has the O2 fraction of
        :func:`run_loops` (``y = 0.2095 + o2_flow / total * (1 - 0.2095)``).
    """
    g = tuning
    c_do = np.asarray(do_out, dtype=float)
    c_ph = np.asarray(ph_out, dtype=float)
    total = g.gas_flow_min_slpm + np.minimum(c_do, 1.0) * (
        g.gas_flow_max_slpm - g.gas_flow_min_slpm
    )
    o2 = g.gas_flow_max_slpm * np.clip(c_do - 1.0, 0.0, 1.0)
    return {
        "air_flow_slpm": total - o2,
        "o2_flow_slpm": o2,
        "co2_flow_slpm": g.co2_max_slpm * np.maximum(-c_ph, 0.0),
        "base_pump_ml_per_h": 1000.0 * g.base_max_l_per_h * np.maximum(c_ph, 0.0),
    }
