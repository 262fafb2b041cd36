"""What one simulated batch produces: online, at-line, Raman and true data, events, phases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from biopilot.models.kinetics import KineticParameters
from biopilot.twin.process import Trajectory
from biopilot.twin.recipe import Recipe
from biopilot.twin.sensors import QUALITY_LABELS

__all__ = [
    "BatchEvent",
    "BatchResult",
    "EventKind",
    "Phase",
    "RamanSpectra",
    "batch_events",
    "batch_phases",
]

EventKind = Literal[
    "inoculation",
    "bolus_feed",
    "glucose_feed",
    "temperature_shift",
    "fault_onset",
    "phase_change",
    "harvest",
]


@dataclass(frozen=True)
class BatchEvent:
    """Something that happened to the batch at ``time_utc`` (a feed, a shift, a fault...)."""

    time_utc: pd.Timestamp
    kind: EventKind
    message: str
    value: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class Phase:
    """An ISA-88 phase of the batch, ``[start_utc, end_utc)``."""

    name: Literal["inoculation", "growth", "production", "harvest"]
    start_utc: pd.Timestamp
    end_utc: pd.Timestamp


@dataclass(frozen=True)
class RamanSpectra:
    """In-line Raman spectra: one float32 row per acquisition time."""

    time_utc: pd.DatetimeIndex
    wavenumbers_cm1: np.ndarray
    spectra: np.ndarray  # (n_times, n_wavenumbers), float32, counts


@dataclass
class BatchResult:
    """One simulated fed-batch, timestamped in simulated UTC time from ``start_utc``.

    Attributes
    ----------
    online : DataFrame
        One row per minute (index ``time_utc``), one column per online tag; NaN = dropout.
    quality : DataFrame
        Quality of each online value, same shape, categories good/uncertain/bad.
    atline : DataFrame
        Daily at-line samples with assay error (index ``time_utc``); NaN = lost sample.
    raman : RamanSpectra or None
        Spectra every 15 min, or None when simulated without Raman.
    truth : DataFrame
        True states and true pH/DO/temperature per minute, for evaluation.
    events, phases : list
        What happened (feeds, shift, faults, phase changes) and the ISA-88 phases.
    recipe, seed, unit, parameters, faults
        The inputs of the batch; ``parameters`` are the kinetic parameters drawn for it.
    """

    unit: str
    seed: int
    recipe: Recipe
    parameters: KineticParameters
    online: pd.DataFrame
    quality: pd.DataFrame
    atline: pd.DataFrame
    truth: pd.DataFrame
    raman: RamanSpectra | None
    events: list[BatchEvent] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    faults: tuple[Any, ...] = ()

    @property
    def start_utc(self) -> pd.Timestamp:
        """Inoculation time (simulated, UTC)."""
        return pd.Timestamp(self.online.index[0])

    def samples(self) -> pd.DataFrame:
        """Return every online and at-line value as one long table for the historian.

        Returns
        -------
        DataFrame
            Columns ``time_utc`` (tz-aware UTC), ``tag``, ``value`` (float, NaN when bad) and
            ``quality`` (categorical: good, uncertain, bad); online rows first, by tag.
        """
        parts = [_long(self.online, self.quality.apply(lambda c: c.cat.codes).to_numpy())]
        at = self.atline
        parts.append(_long(at, np.where(np.isnan(at.to_numpy(dtype=float)), 2, 0)))
        return pd.concat(parts, ignore_index=True)


def _long(frame: pd.DataFrame, codes: np.ndarray) -> pd.DataFrame:
    """Melt a wide frame (UTC time index x tags) and its quality codes into long rows."""
    n, m = frame.shape
    naive = pd.DatetimeIndex(frame.index).tz_convert("UTC").tz_localize(None).to_numpy()
    q = np.asarray(codes, dtype=np.int8).T.ravel()
    return pd.DataFrame(
        {
            "time_utc": pd.DatetimeIndex(np.tile(naive, m)).tz_localize("UTC"),
            "tag": np.repeat(np.asarray(frame.columns, dtype=object), n),
            "value": frame.to_numpy(dtype=float).T.ravel(),
            "quality": pd.Categorical.from_codes(q, categories=list(QUALITY_LABELS)),
        }
    )


def batch_events(
    recipe: Recipe, traj: Trajectory, faults: Sequence[Any], start: pd.Timestamp
) -> list[BatchEvent]:
    """Return the batch's events in time order: inoculation, feeds, shift, faults, phases."""

    def at(h: float) -> pd.Timestamp:
        return start + pd.Timedelta(minutes=round(h * 60.0))

    events = [
        BatchEvent(
            at(0.0),
            "inoculation",
            f"inoculated at {recipe.seeding_density_cells_per_ml:.3g} cells/mL",
        )
    ]
    for f in traj.feeds:
        what = "glucose stock" if f.kind == "glucose_feed" else f.medium
        short = (
            ""
            if f.volume_l >= f.planned_volume_l - 1e-9
            else f" (planned {f.planned_volume_l:.1f} L)"
        )
        kind: EventKind = "glucose_feed" if f.kind == "glucose_feed" else "bolus_feed"
        text = f"{f.volume_l:.2f} L of {what}{short}"
        events.append(BatchEvent(at(f.t_h), kind, text, float(f.volume_l), "L"))
    if recipe.temperature_shift_day is not None:
        events.append(
            BatchEvent(
                at(recipe.temperature_shift_day * 24.0),
                "temperature_shift",
                f"temperature setpoint to {recipe.shift_temperature_c} degC",
                recipe.shift_temperature_c,
                "degC",
            )
        )
    for f in faults:
        events.append(
            BatchEvent(
                at(f.onset_h),
                "fault_onset",
                f"{f.kind} (magnitude {f.magnitude:g})",
                float(f.magnitude),
            )
        )
    for ph in batch_phases(recipe, start)[1:]:
        events.append(BatchEvent(ph.start_utc, "phase_change", f"phase {ph.name} starts"))
    events.append(BatchEvent(at(recipe.harvest_h), "harvest", "batch harvested"))
    return sorted(events, key=lambda e: e.time_utc)


def batch_phases(recipe: Recipe, start: pd.Timestamp) -> list[Phase]:
    """Return the ISA-88 phases: inoculation (1 h), growth to the shift, production, harvest."""

    def at(h: float) -> pd.Timestamp:
        return start + pd.Timedelta(minutes=round(h * 60.0))

    end = recipe.harvest_h
    harvest = end - recipe.harvest_duration_h
    growth_end = (
        min(recipe.temperature_shift_day * 24.0, harvest)
        if recipe.temperature_shift_day
        else harvest
    )
    phases = [Phase("inoculation", at(0.0), at(min(1.0, growth_end)))]
    phases.append(Phase("growth", at(min(1.0, growth_end)), at(growth_end)))
    if growth_end < harvest:
        phases.append(Phase("production", at(growth_end), at(harvest)))
    phases.append(Phase("harvest", at(harvest), at(end)))
    return phases
