"""Mechanistic CHO fed-batch mAb kinetics, written once for numpy, plain floats and CasADi.

The model is of the Xing et al. (2010, Biotechnol. Prog. 26:208) type: Monod growth on
glucose and glutamine with lactate and ammonia inhibition, death driven by by-products,
osmolality and starvation, maintenance, growth-coupled lactate production switching to
lactate consumption when growth slows or glucose runs low (the metabolic shift of Nolan &
Lee 2011, Metab. Eng. 13:108), non-growth-associated mAb production, and a temperature
effect (a shift to ~33 degC slows growth and metabolism and raises specific productivity).
The vessel is pH-controlled: base is added in proportion to the lactic acid produced.

Time is in hours. States are rows of ``x`` (see :data:`STATE_NAMES`), inputs rows of ``u``
(see :data:`INPUT_NAMES`); ``x`` may be shaped ``(n_states,)`` or ``(n_states, N)`` (many
particles / sigma points), or be a CasADi ``SX``/``MX`` column. The backend's functions come
in through ``ops`` (:data:`NUMPY_OPS`, :data:`FLOAT_OPS` or :func:`casadi_ops`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "FLOAT_OPS",
    "INPUT_NAMES",
    "NUMPY_OPS",
    "STATE_NAMES",
    "FeedComposition",
    "KineticParameters",
    "Ops",
    "Rates",
    "add_bolus",
    "casadi_ops",
    "derivatives",
    "initial_state",
    "parameter_names",
    "rates",
]

#: State vector rows, units in the names. The last three are bookkeeping (cumulative).
STATE_NAMES: tuple[str, ...] = (
    "vcd_cells_per_ml",
    "dead_cells_per_ml",
    "glucose_g_per_l",
    "glutamine_mmol_per_l",
    "lactate_g_per_l",
    "ammonia_mmol_per_l",
    "titer_g_per_l",
    "volume_l",
    "osmolality_mosm_per_kg",
    "glucose_consumed_g",
    "glucose_fed_g",
    "base_added_l",
)
#: Input vector rows: continuous feed (rate and its composition), temperature.
INPUT_NAMES: tuple[str, ...] = (
    "feed_l_per_h",
    "feed_glucose_g_per_l",
    "feed_glutamine_mmol_per_l",
    "feed_osmolality_mosm_per_kg",
    "temperature_c",
)

GLUCOSE_G_PER_MMOL = 180.156e-3
LACTATE_G_PER_MMOL = 90.08e-3
_ML_PER_L = 1.0e3


@dataclass(frozen=True)
class Ops:
    """The few backend functions the equations need (numpy, math or CasADi)."""

    exp: Callable[[Any], Any]
    fmax: Callable[[Any, Any], Any]
    stack: Callable[[Sequence[Any]], Any]


def _np_stack(items: Sequence[Any]) -> np.ndarray:
    return np.stack(np.broadcast_arrays(*items))


#: numpy backend: states ``(n_states,)`` or ``(n_states, N)``; returns an array of that shape.
NUMPY_OPS = Ops(exp=np.exp, fmax=np.maximum, stack=_np_stack)
#: Plain-float backend (fastest for one trajectory in an ODE solver); returns a list.
FLOAT_OPS = Ops(exp=math.exp, fmax=max, stack=list)


def casadi_ops() -> Ops:
    """Return the CasADi backend (``SX``/``MX`` columns in, a ``vertcat`` column out)."""
    import casadi as ca

    return Ops(exp=ca.exp, fmax=ca.fmax, stack=lambda items: ca.vertcat(*items))


@dataclass(frozen=True)
class KineticParameters:
    """Named kinetic parameters of the CHO model; defaults are the nominal values.

    Per-cell rates are per cell and per hour; concentrations in inhibition constants are mmol/L.
    Values marked "Xing et al. 2010" are quoted as tabulated (with that source) in
    Bioengineering 2018, 5:25, Table 2; "tuned" values were set so the default recipe meets
    the industrial targets (peak VCD 1-3e7 cells/mL, titer 3-7 g/L, lactate shift).
    """

    # Growth. 0.039 h-1 measured for a CHO fed-batch (Bioengineering 2018, 5:25, Table 2,
    # "exp"); raised to 0.044 (tuned) so the platform recipe peaks at 2-3e7 cells/mL.
    mu_max_per_h: float = 0.044
    k_glc_mmol_per_l: float = 1.0  # Bioengineering 2018 5:25 Table 2 (after Kontoravdi 2010)
    k_gln_mmol_per_l: float = 0.047  # Xing et al. 2010
    ki_lac_mmol_per_l: float = 43.0  # Xing et al. 2010
    ki_amm_mmol_per_l: float = 6.51  # Xing et al. 2010
    # Death: 0.004 h-1 maximum (Bioengineering 2018 5:25 Table 2); by-product constants of
    # Xing et al. 2010; basal, osmotic and starvation terms assumed/tuned (late-culture
    # decline from ~day 10 as in industrial platforms, Kim & Lee 2002 for osmotic stress).
    kd_max_per_h: float = 0.004
    kd_lac_mmol_per_l: float = 45.8  # Xing et al. 2010
    kd_amm_mmol_per_l: float = 6.51  # Xing et al. 2010
    kd_basal_per_h: float = 2.0e-4  # tuned
    kd_osm_per_h: float = 0.01  # tuned
    osm_death_mosm_per_kg: float = 425.0  # tuned: half-effect osmolality
    osm_death_width_mosm_per_kg: float = 12.0  # tuned
    kd_starve_per_h: float = 0.02  # tuned: death when glucose or glutamine is exhausted
    k_starve_mmol_per_l: float = 0.1  # tuned (glucose)
    k_starve_gln_mmol_per_l: float = 0.02  # tuned (glutamine, proxy of the amino acids)
    k_lysis_per_h: float = 0.01  # dead-cell lysis, assumed
    # Yields and maintenance.
    y_x_glc_cells_per_mmol: float = 0.357e9  # Bioengineering 2018 5:25 Table 2
    y_x_gln_cells_per_mmol: float = 0.974e9  # Xing et al. 2010
    m_glc_mmol_per_cell_h: float = 69.2e-12  # Xing et al. 2010
    a1_gln_mmol_per_cell_h: float = 3.2e-12  # Xing et al. 2010 (m_gln = a1 Q/(a2+Q))
    a2_gln_mmol_per_l: float = 2.1  # Xing et al. 2010
    y_amm_gln: float = 0.67  # mmol/mmol, Xing et al. 2010
    r_amm_mmol_per_cell_h: float = 6.3e-12  # ammonia removal, Xing et al. 2010
    k_amm_removal_mmol_per_l: float = 2.0  # assumed: removal saturates in ammonia
    k_gln_degradation_per_h: float = 0.0036  # half-life ~8 d at 37 degC (Tritsch & Moore 1962)
    # Lactate: growth-coupled production (0.70 mmol/mmol, Bioengineering 2018 5:25 Table 2)
    # and consumption once growth slows or glucose is low (Nolan & Lee 2011; rate tuned).
    y_lac_glc: float = 0.70
    q_lac_cons_mmol_per_cell_h: float = 2.5e-11  # tuned
    k_lac_cons_mmol_per_l: float = 5.0  # tuned
    shift_mu_fraction: float = 0.35  # tuned: growth fraction of mu_max at the shift
    shift_width: float = 0.08  # tuned
    k_shift_glc_mmol_per_l: float = 1.5  # tuned: low-glucose trigger
    # Product: 1.51 pg/cell/h (Bioengineering 2018 5:25 Table 2); 1.0 tuned for 3-7 g/L titers.
    q_mab_g_per_cell_h: float = 1.0e-12
    # Temperature: growth Q10 ~3 and metabolism Q10 ~2 between 37 and 32 degC; specific
    # productivity +8 %/degC below 37 degC (Trummer et al. 2006 Biotechnol. Bioeng. 94:1033;
    # Kou et al. 2011 report 1.3-1.8x qp at 33 degC); Q10 values assumed in that light.
    t_ref_c: float = 37.0
    q10_growth: float = 3.0
    q10_metabolism: float = 2.0
    qp_gain_per_c: float = 0.08
    # Oxygen: 0.25 pmol/cell/h, mid of the 0.1-0.4 reported for CHO (e.g. Goudar et al.).
    q_o2_mmol_per_cell_h: float = 2.5e-10
    respiratory_quotient: float = 0.95  # CHO RQ ~0.9-1.0, assumed
    # pH control: base (1 M Na2CO3 equivalent, Na+ counted) neutralises a fraction of the
    # lactic acid; the rest is buffered by bicarbonate and stripped as CO2 (assumed).
    base_mmol_per_l: float = 1000.0
    base_per_lactate: float = 0.6
    base_osmolality_mosm_per_kg: float = 2000.0


class Rates(NamedTuple):
    """Specific and volumetric rates at a state (per hour); shapes follow the state's."""

    mu_per_h: Any
    death_per_h: Any
    q_glc_mmol_per_cell_h: Any
    q_gln_mmol_per_cell_h: Any
    q_lac_mmol_per_cell_h: Any
    q_amm_mmol_per_cell_h: Any
    q_mab_g_per_cell_h: Any
    our_mmol_per_l_h: Any
    cer_mmol_per_l_h: Any
    base_l_per_h: Any


@dataclass(frozen=True)
class FeedComposition:
    """What a feed medium brings in: glucose g/L, glutamine mmol/L, osmolality mOsm/kg."""

    glucose_g_per_l: float = 0.0
    glutamine_mmol_per_l: float = 0.0
    osmolality_mosm_per_kg: float = 300.0


def initial_state(
    vcd_cells_per_ml: float,
    volume_l: float,
    glucose_g_per_l: float,
    glutamine_mmol_per_l: float,
    osmolality_mosm_per_kg: float = 300.0,
    viability: float = 0.97,
) -> np.ndarray:
    """Return the state vector at inoculation (no lactate, ammonia, product or history)."""
    dead = vcd_cells_per_ml * (1.0 - viability) / viability
    x = dict.fromkeys(STATE_NAMES, 0.0)
    x.update(
        vcd_cells_per_ml=vcd_cells_per_ml,
        dead_cells_per_ml=dead,
        glucose_g_per_l=glucose_g_per_l,
        glutamine_mmol_per_l=glutamine_mmol_per_l,
        volume_l=volume_l,
        osmolality_mosm_per_kg=osmolality_mosm_per_kg,
    )
    return np.array([x[n] for n in STATE_NAMES])


def rates(x: Any, u: Any, p: KineticParameters, ops: Ops = NUMPY_OPS) -> Rates:
    """Evaluate the specific rates of the model at states ``x`` and inputs ``u``.

    Parameters
    ----------
    x : array-like or casadi column
        States, rows in the order of :data:`STATE_NAMES`.
    u : array-like or casadi column
        Inputs, rows in the order of :data:`INPUT_NAMES` (broadcast against ``x``).
    p : KineticParameters
        Parameter values.
    ops : Ops
        Backend functions.

    Returns
    -------
    Rates
        Growth and death rates (1/h), per-cell uptake/production (mmol or g per cell per h;
        positive = produced for lactate and ammonia, positive = consumed for glucose and
        glutamine), OUR/CER (mmol/L/h) and the pH-control base flow (L/h).
    """
    xv = ops.fmax(x[0], 0.0) * _ML_PER_L  # cells/L
    glc = ops.fmax(x[2], 0.0) / GLUCOSE_G_PER_MMOL  # mmol/L
    gln = ops.fmax(x[3], 0.0)
    lac = ops.fmax(x[4], 0.0) / LACTATE_G_PER_MMOL
    amm = ops.fmax(x[5], 0.0)
    vol, osm = x[7], x[8]
    dt_c = u[4] - p.t_ref_c
    f_growth = ops.exp(math.log(p.q10_growth) * dt_c / 10.0)
    f_met = ops.exp(math.log(p.q10_metabolism) * dt_c / 10.0)

    mu = (
        p.mu_max_per_h
        * f_growth
        * glc
        / (p.k_glc_mmol_per_l + glc)
        * gln
        / (p.k_gln_mmol_per_l + gln)
        * p.ki_lac_mmol_per_l
        / (p.ki_lac_mmol_per_l + lac)
        * p.ki_amm_mmol_per_l
        / (p.ki_amm_mmol_per_l + amm)
    )
    osm_stress = 1.0 / (
        1.0 + ops.exp(-(osm - p.osm_death_mosm_per_kg) / p.osm_death_width_mosm_per_kg)
    )
    death = (
        p.kd_basal_per_h
        + p.kd_max_per_h * lac / (p.kd_lac_mmol_per_l + lac) * amm / (p.kd_amm_mmol_per_l + amm)
        + p.kd_osm_per_h * osm_stress
        + p.kd_starve_per_h
        * (1.0 - glc / (p.k_starve_mmol_per_l + glc) * gln / (p.k_starve_gln_mmol_per_l + gln))
    )
    glc_sat = glc / (glc + 0.1)
    q_glc = (mu / p.y_x_glc_cells_per_mmol + p.m_glc_mmol_per_cell_h * f_met) * glc_sat
    m_gln = p.a1_gln_mmol_per_cell_h * gln / (p.a2_gln_mmol_per_l + gln)
    q_gln = mu / p.y_x_gln_cells_per_mmol + m_gln * f_met
    # Metabolic shift: production while growing on plenty of glucose, consumption after.
    growing = 1.0 / (1.0 + ops.exp(-(mu / p.mu_max_per_h - p.shift_mu_fraction) / p.shift_width))
    producing = growing * glc / (p.k_shift_glc_mmol_per_l + glc)
    q_lac = p.y_lac_glc * q_glc * producing - (1.0 - producing) * f_met * (
        p.q_lac_cons_mmol_per_cell_h * lac / (p.k_lac_cons_mmol_per_l + lac)
    )
    q_amm = p.y_amm_gln * q_gln - p.r_amm_mmol_per_cell_h * amm / (p.k_amm_removal_mmol_per_l + amm)
    q_mab = p.q_mab_g_per_cell_h * (1.0 + p.qp_gain_per_c * ops.fmax(-dt_c, 0.0))
    our = p.q_o2_mmol_per_cell_h * f_met * xv
    acid = ops.fmax(q_lac * xv, 0.0)  # mmol/L/h of lactic acid
    base = p.base_per_lactate * acid * vol / p.base_mmol_per_l
    return Rates(
        mu, death, q_glc, q_gln, q_lac, q_amm, q_mab, our, p.respiratory_quotient * our, base
    )


def derivatives(x: Any, u: Any, p: KineticParameters, ops: Ops = NUMPY_OPS) -> Any:
    """Return dx/dt (per hour) of the fed-batch model, in the backend's stacked form.

    Parameters
    ----------
    x, u, p, ops
        As for :func:`rates`.

    Returns
    -------
    array or list or casadi column
        Time derivatives in the order of :data:`STATE_NAMES`, shaped like ``x``.

    Examples
    --------
    >>> x = initial_state(5e5, 1400.0, 6.0, 4.0)
    >>> u = np.array([0.0, 0.0, 0.0, 300.0, 36.5])
    >>> bool(derivatives(x, u, KineticParameters())[0] > 0)  # cells grow
    True
    """
    r = rates(x, u, p, ops)
    xv = ops.fmax(x[0], 0.0)
    xv_l = xv * _ML_PER_L
    vol = x[7]
    feed, base = u[0], r.base_l_per_h
    d_in = (feed + base) / vol  # dilution, 1/h
    d_feed = feed / vol
    glc_use = r.q_glc_mmol_per_cell_h * xv_l  # mmol/L/h
    gln_use = r.q_gln_mmol_per_cell_h * xv_l + p.k_gln_degradation_per_h * ops.fmax(x[3], 0.0)
    lac_prod = r.q_lac_mmol_per_cell_h * xv_l
    amm_prod = r.q_amm_mmol_per_cell_h * xv_l + p.k_gln_degradation_per_h * ops.fmax(x[3], 0.0)
    solutes = lac_prod + amm_prod - glc_use - gln_use  # mOsm/kg per h from metabolism
    return ops.stack(
        [
            (r.mu_per_h - r.death_per_h) * xv - d_in * x[0],
            r.death_per_h * xv - p.k_lysis_per_h * x[1] - d_in * x[1],
            d_feed * u[1] - glc_use * GLUCOSE_G_PER_MMOL - d_in * x[2],
            d_feed * u[2] - gln_use - d_in * x[3],
            lac_prod * LACTATE_G_PER_MMOL - d_in * x[4],
            amm_prod - d_in * x[5],
            r.q_mab_g_per_cell_h * xv_l - d_in * x[6],
            feed + base,
            d_feed * u[3] + base / vol * p.base_osmolality_mosm_per_kg + solutes - d_in * x[8],
            glc_use * GLUCOSE_G_PER_MMOL * vol,
            feed * u[1],
            base,
        ]
    )


def add_bolus(x: Any, volume_l: float, feed: FeedComposition, ops: Ops = NUMPY_OPS) -> Any:
    """Return the state right after a bolus of ``volume_l`` litres of ``feed`` is mixed in.

    Concentrations are diluted by the added volume and the feed's glucose, glutamine and
    osmolality are mixed in; the fed-glucose bookkeeping grows by the glucose added (g).
    """
    vol = x[7]
    keep = vol / (vol + volume_l)
    add = volume_l / (vol + volume_l)
    mixed = [x[i] * keep for i in range(7)]
    mixed[2] = mixed[2] + feed.glucose_g_per_l * add
    mixed[3] = mixed[3] + feed.glutamine_mmol_per_l * add
    return ops.stack(
        [
            *mixed,
            vol + volume_l,
            x[8] * keep + feed.osmolality_mosm_per_kg * add,
            x[9],
            x[10] + feed.glucose_g_per_l * volume_l,
            x[11],
        ]
    )


def parameter_names() -> tuple[str, ...]:
    """Return the names of the fields of :class:`KineticParameters`, in order."""
    return tuple(f.name for f in fields(KineticParameters))
