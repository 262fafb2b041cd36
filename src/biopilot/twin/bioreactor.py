"""The bioreactor twin: simulate a whole fed-batch, or step a live plant minute by minute."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from biopilot.models.kinetics import INPUT_NAMES, FeedComposition, KineticParameters, add_bolus
from biopilot.twin import faults as fx
from biopilot.twin.batch import BatchResult, RamanSpectra, batch_events, batch_phases
from biopilot.twin.plant import initial_loop_state, plant_signals, truth_columns
from biopilot.twin.process import (
    Trajectory,
    bolus_plan,
    deliver,
    integrate,
    integrate_recipe,
    recipe_state0,
    segment_inputs,
    temperature_setpoint_c,
)
from biopilot.twin.raman import RamanSynthesizer
from biopilot.twin.recipe import Recipe, default_recipe
from biopilot.twin.sensors import (
    ONLINE_SENSORS,
    QUALITY_LABELS,
    assay_readings,
    draw_assay_errors,
    glucose_factors,
    online_readings,
)
from biopilot.twin.variability import SEEDING_CV, draw_parameters, lognormal_multipliers

__all__ = ["DEFAULT_START_UTC", "RAMAN_PERIOD_MIN", "Bioreactor", "PlantInputs", "simulate_batch"]

#: Simulated inoculation time used when none is given (fixed, so a seed fixes the batch).
DEFAULT_START_UTC = pd.Timestamp("2026-01-05T08:00:00Z")
#: Minutes between Raman acquisitions.
RAMAN_PERIOD_MIN = 15
ONLINE_TAGS: tuple[str, ...] = tuple(s.tag for s in ONLINE_SENSORS)

FaultLike = Any  # a Fault model or its "NAME@DAY[:MAGNITUDE]" text


def simulate_batch(
    recipe: Recipe | None = None,
    *,
    seed: int,
    unit: str = "BR-01",
    start_utc: pd.Timestamp | str = DEFAULT_START_UTC,
    faults: Sequence[FaultLike] = (),
    raman: bool = True,
    variability: bool = True,
    parameters: KineticParameters | None = None,
) -> BatchResult:
    """Simulate one fed-batch of ``recipe`` from inoculation to harvest.

    Parameters
    ----------
    recipe : Recipe, optional
        What the process engineer set; :func:`~biopilot.twin.recipe.default_recipe` if None.
    seed : int
        Seeds every random draw (parameters, sensors, assays, Raman): same seed, same batch.
    unit : str
        Name of the bioreactor.
    start_utc : Timestamp or str
        Simulated inoculation time; converted to UTC (naive times are taken as UTC).
    faults : sequence of Fault or str
        Faults to inject (models of :mod:`biopilot.twin.faults` or ``"NAME@DAY[:MAG]"``).
    raman : bool
        Synthesise a Raman spectrum every 15 min.
    variability : bool
        Draw this batch's kinetic parameters and seeding density around the nominal ones.
    parameters : KineticParameters, optional
        Nominal parameters (default :class:`KineticParameters`).

    Returns
    -------
    BatchResult

    Raises
    ------
    biopilot.config.ConfigError
        If a fault text is malformed or names an unknown fault.
    """
    recipe = default_recipe() if recipe is None else recipe
    fault_list = _faults(faults)
    start = _utc(start_utc)
    streams = _streams(seed)
    p, seed_factor = _draw(streams[0], parameters, variability)
    n_samples = _n_samples(recipe)
    errors = draw_assay_errors(streams[1], n_samples)
    traj = integrate_recipe(
        recipe,
        p,
        x0=recipe_state0(recipe, seed_factor),
        glucose_assay_factors=glucose_factors(errors),
        faults=fault_list,
    )
    t = traj.t_h
    t_sp = traj.inputs[INPUT_NAMES.index("temperature_c")]
    signals = plant_signals(
        t, traj.states, traj.inputs, p, recipe, fault_list, initial_loop_state(recipe), t_sp
    )
    values, codes = online_readings(signals, streams[2])
    index = pd.DatetimeIndex(
        start + pd.to_timedelta(np.round(t * 60.0), unit="min"), name="time_utc"
    )
    online = pd.DataFrame({k: values[k] for k in ONLINE_TAGS}, index=index)
    quality = pd.DataFrame(
        {
            k: pd.Categorical.from_codes(codes[k], categories=list(QUALITY_LABELS))
            for k in ONLINE_TAGS
        },
        index=index,
    )
    truth = pd.DataFrame(truth_columns(traj.states, signals), index=index)
    sample_h = recipe.sample_hour_of_day + 24.0 * np.arange(n_samples)
    atline = _atline(traj, truth, sample_h, errors, start)
    spectra = _raman(truth, t, index, streams[3]) if raman else None
    return BatchResult(
        unit=unit,
        seed=seed,
        recipe=recipe,
        parameters=p,
        online=online,
        quality=quality,
        atline=atline,
        truth=truth,
        raman=spectra,
        events=batch_events(recipe, traj, fault_list, start),
        phases=batch_phases(recipe, start),
        faults=tuple(fault_list),
    )


@dataclass(frozen=True)
class PlantInputs:
    """What a controller sends the plant for the next step (None = the recipe's value).

    ``feed_l_per_h`` of ``feed_medium`` is held over the step; ``bolus_l`` of
    ``bolus_medium`` and ``glucose_bolus_l`` of the recipe's glucose stock are added at its
    start. ``temperature_setpoint_c`` in degC (pH and DO follow the recipe).
    """

    feed_l_per_h: float = 0.0
    feed_medium: str | None = None
    bolus_l: float = 0.0
    bolus_medium: str | None = None
    glucose_bolus_l: float = 0.0
    temperature_setpoint_c: float | None = None


class Bioreactor:
    """A steppable bioreactor twin (a do-mpc style plant): ``plant.step(inputs, dt_h)``.

    The culture follows the same kinetics and loops as :func:`simulate_batch`, drawn with the
    same seed the same parameters; its sensor noise comes from its own stream, so readings
    are not bit-identical to a batch simulated in one go.

    Parameters
    ----------
    recipe, seed, unit, start_utc, faults, variability, parameters
        As for :func:`simulate_batch`.
    """

    def __init__(
        self,
        recipe: Recipe | None = None,
        *,
        seed: int = 0,
        unit: str = "BR-01",
        start_utc: pd.Timestamp | str = DEFAULT_START_UTC,
        faults: Sequence[FaultLike] = (),
        variability: bool = True,
        parameters: KineticParameters | None = None,
    ) -> None:
        self.recipe = default_recipe() if recipe is None else recipe
        self.unit = unit
        self.start_utc = _utc(start_utc)
        self.faults = _faults(faults)
        streams = _streams(seed)
        self.parameters, seed_factor = _draw(streams[0], parameters, variability)
        errors = draw_assay_errors(streams[1], _n_samples(self.recipe))
        self._glucose_factors = glucose_factors(errors)
        self._rng = streams[2]
        self._plan = bolus_plan(self.recipe, self.faults)
        self._loops = initial_loop_state(self.recipe)
        self.state = recipe_state0(self.recipe, seed_factor)
        self.t_h = 0.0

    @property
    def time_utc(self) -> pd.Timestamp:
        """Simulated time now (UTC)."""
        return self.start_utc + pd.Timedelta(minutes=round(self.t_h * 60.0))

    def step(self, inputs: PlantInputs | None = None, dt_h: float = 1.0 / 60.0) -> dict[str, float]:
        """Advance the plant by ``dt_h`` hours and return the online readings at its end.

        Parameters
        ----------
        inputs : PlantInputs, optional
            Feeds and setpoints for this step; None follows the recipe (its feeds, boluses,
            glucose top-ups and temperature profile).
        dt_h : float
            Step length in hours; the loops run once a minute inside it.

        Returns
        -------
        dict of str to float
            One value per online tag (NaN while a probe drops out).
        """
        n_min = max(1, round(dt_h * 60.0))
        t0, t1 = self.t_h, self.t_h + n_min / 60.0
        x = self.state
        if inputs is None:
            for when in [k for k in self._plan if t0 - 1e-9 <= k < t1 - 1e-9]:
                for kind, medium, planned in self._plan.pop(when):
                    x = deliver(
                        x,
                        self.recipe,
                        self.faults,
                        when,
                        kind,
                        medium,
                        planned,
                        self._glucose_factors,
                        [],
                    )
            u = segment_inputs(self.recipe, self.faults, t0, t1)
        else:
            x, u = self._apply(x, inputs, t0, t1)
        grid = t0 + np.arange(n_min + 1) / 60.0
        sol = integrate(x, u, self.parameters, grid)
        states = sol[1:].T
        u_rows = np.repeat(np.asarray(u, dtype=float)[:, None], n_min, axis=1)
        t_sp = np.full(n_min, u[INPUT_NAMES.index("temperature_c")])
        signals = plant_signals(
            grid[1:], states, u_rows, self.parameters, self.recipe, self.faults, self._loops, t_sp
        )
        values, _ = online_readings(signals, self._rng)
        self.state, self.t_h = sol[-1], t1
        return {k: float(values[k][-1]) for k in ONLINE_TAGS}

    def _apply(
        self, x: np.ndarray, inputs: PlantInputs, t0: float, t1: float
    ) -> tuple[np.ndarray, list[float]]:
        """Add the requested boluses and return the state and the held kinetic inputs."""
        media = self.recipe.media
        pump = float(fx.feed_factor(self.faults, t0))
        if inputs.bolus_l > 0 and inputs.bolus_medium is not None:
            x = np.asarray(
                add_bolus(x, inputs.bolus_l * pump, media[inputs.bolus_medium].composition())
            )
        g = self.recipe.glucose_feed
        if inputs.glucose_bolus_l > 0 and g is not None:
            x = np.asarray(add_bolus(x, inputs.glucose_bolus_l * pump, g.composition()))
        comp = media[inputs.feed_medium].composition() if inputs.feed_medium else FeedComposition()
        t_sp = inputs.temperature_setpoint_c
        t_sp = temperature_setpoint_c(self.recipe, t0) if t_sp is None else t_sp
        temp = t_sp + float(fx.temperature_offset_c(self.faults, 0.5 * (t0 + t1)))
        return x, [
            inputs.feed_l_per_h * pump,
            comp.glucose_g_per_l,
            comp.glutamine_mmol_per_l,
            comp.osmolality_mosm_per_kg,
            temp,
        ]


def _n_samples(recipe: Recipe) -> int:
    """Number of daily at-line samples from inoculation to harvest."""
    return int(np.floor((recipe.harvest_h - recipe.sample_hour_of_day) / 24.0)) + 1


def _faults(faults: Sequence[FaultLike]) -> list[Any]:
    return [fx.parse_fault(f) if isinstance(f, str) else f for f in faults]


def _utc(when: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _streams(seed: int) -> list[np.random.Generator]:
    """Independent generators: parameters, assays, online sensors, Raman."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]


def _draw(
    rng: np.random.Generator, nominal: KineticParameters | None, variability: bool
) -> tuple[KineticParameters, float]:
    """Return this batch's parameters and its seeding-density factor."""
    base = KineticParameters() if nominal is None else nominal
    if not variability:
        return base, 1.0
    p = draw_parameters(rng, base)
    return p, lognormal_multipliers(rng, {"seed": SEEDING_CV})["seed"]


def _atline(
    traj: Trajectory,
    truth: pd.DataFrame,
    sample_h: np.ndarray,
    errors: Mapping[str, np.ndarray],
    start: pd.Timestamp,
) -> pd.DataFrame:
    """Daily samples, drawn before that time's feeds, read with assay error."""
    idx = np.clip(np.round(sample_h * 60.0).astype(int), 0, len(traj.t_h) - 1)
    rows = np.stack(
        [
            traj.pre_event.get(float(h), traj.states[:, i])
            for h, i in zip(sample_h, idx, strict=True)
        ],
        axis=1,
    )
    true = truth_columns(
        rows,
        {
            "true_ph": truth["ph"].to_numpy()[idx],
            "true_do_pct": idx * 0.0,
            "true_temperature_c": idx * 0.0,
            "our_mmol_per_l_h": idx * 0.0,
            "cer_mmol_per_l_h": idx * 0.0,
        },
    )
    true["ph_offline"] = true["ph"]
    readings = assay_readings(true, errors)
    index = pd.DatetimeIndex(
        start + pd.to_timedelta(np.round(sample_h * 60.0), unit="min"), name="time_utc"
    )
    return pd.DataFrame(readings, index=index)


def _raman(
    truth: pd.DataFrame, t_h: np.ndarray, index: pd.DatetimeIndex, rng: np.random.Generator
) -> RamanSpectra:
    rows = np.arange(0, len(t_h), RAMAN_PERIOD_MIN)
    cols = {
        "glucose_g_per_l": "glucose_g_per_l",
        "lactate_g_per_l": "lactate_g_per_l",
        "glutamine_mmol_per_l": "glutamine_mmol_per_l",
        "ammonium_mmol_per_l": "ammonia_mmol_per_l",
        "titer_g_per_l": "titer_g_per_l",
        "vcd_cells_per_ml": "vcd_cells_per_ml",
    }
    conc = {k: np.maximum(truth[v].to_numpy()[rows], 0.0) for k, v in cols.items()}
    synth = RamanSynthesizer()
    return RamanSpectra(index[rows], synth.wavenumbers_cm1, synth.spectra(t_h[rows], conc, rng))
