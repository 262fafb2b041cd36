"""Outcome of a separation run: recovery and purity per population, and the acoustic dose per cell.

Recovery of a population is the fraction of it that leaves through the target outlet.
Purity is the abundance-weighted share of target cells among everything in the target outlet
(populations are simulated with equal particle numbers and weighted by their ``count`` or
``fraction``, so rare populations are resolved as well as common ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from biopilot.models.acoustics import critical_radius_um, mechanical_index
from biopilot.separation.config import Chip, Sample
from biopilot.separation.trajectories import Trajectories

#: A population whose median radius is below this multiple of the streaming-critical radius
#: gets a warning: their velocities are within a factor ~2 (u_rad / u_str = (a / a_c)^2).
STREAMING_MARGIN = 1.5

__all__ = [
    "STREAMING_MARGIN",
    "Exposure",
    "Outcome",
    "PopulationOutcome",
    "evaluate",
    "particle_weights",
]


@dataclass
class PopulationOutcome:
    """Where one population went and what acoustic dose its cells received."""

    name: str
    is_target: bool
    amount: float
    to_target_outlet: float
    to_center_outlet: float
    residence_time_s_median: float
    residence_time_s_p95: float
    peak_pressure_pa_median: float
    pressure_dose_pa2_s_median: float
    pressure_dose_pa2_s_p95: float


@dataclass
class Exposure:
    """Field-level sonoporation exposure of a design (the same for every cell in the channel)."""

    pressure_amplitude_pa: float
    energy_density_j_per_m3: float
    mechanical_index: float
    frequency_hz: float


@dataclass
class Outcome:
    """Recovery and purity of the targets, per-population table, and the exposure."""

    recovery: float
    purity: float
    populations: list[PopulationOutcome]
    exposure: Exposure
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON output."""
        return asdict(self)


def particle_weights(traj_population: npt.NDArray[np.int64], sample: Sample) -> npt.NDArray[
    np.float64
]:
    """Weight of each simulated particle: population amount / particles of that population."""
    amounts = np.array([p.amount for p in sample.populations])
    counts = np.bincount(traj_population, minlength=amounts.size).astype(float)
    per = amounts / np.maximum(counts, 1.0) / amounts.sum()
    return np.asarray(per[traj_population], dtype=float)


def evaluate(traj: Trajectories, sample: Sample, chip: Chip, frequency_hz: float) -> Outcome:
    """Recovery, purity and dose from simulated trajectories.

    Examples
    --------
    See ``tests/separation/test_outcome.py``.
    """
    parts = traj.particles
    to_target = traj.in_center if chip.target_outlet == "center" else ~traj.in_center
    weights = particle_weights(parts.population, sample)
    is_target = np.array([p.is_target for p in sample.populations])[parts.population]
    collected = float((weights * to_target).sum())
    target_in = float((weights * to_target * is_target).sum())
    rows = []
    for i, pop in enumerate(sample.populations):
        m = parts.population == i
        rows.append(
            PopulationOutcome(
                name=pop.name,
                is_target=pop.is_target,
                amount=pop.amount,
                to_target_outlet=float(to_target[m].mean()),
                to_center_outlet=float(traj.in_center[m].mean()),
                residence_time_s_median=float(np.median(traj.residence_time_s[m])),
                residence_time_s_p95=float(np.percentile(traj.residence_time_s[m], 95)),
                peak_pressure_pa_median=float(np.median(traj.peak_pressure_pa[m])),
                pressure_dose_pa2_s_median=float(np.median(traj.pressure_dose_pa2_s[m])),
                pressure_dose_pa2_s_p95=float(np.percentile(traj.pressure_dose_pa2_s[m], 95)),
            )
        )
    exposure = Exposure(
        pressure_amplitude_pa=traj.pressure_amplitude_pa,
        energy_density_j_per_m3=traj.energy_density_j_per_m3,
        mechanical_index=float(mechanical_index(traj.pressure_amplitude_pa, frequency_hz)),
        frequency_hz=frequency_hz,
    )
    total_target = float((weights * is_target).sum())
    return Outcome(
        recovery=target_in / total_target if total_target else 0.0,
        purity=target_in / collected if collected else 0.0,
        populations=rows,
        exposure=exposure,
        notes=_streaming_notes(traj, sample, frequency_hz),
    )


def _streaming_notes(traj: Trajectories, sample: Sample, frequency_hz: float) -> list[str]:
    """Warn where acoustic streaming (not modelled) rivals the radiation force."""
    parts, med = traj.particles, sample.medium
    notes = []
    for i, pop in enumerate(sample.populations):
        m = parts.population == i
        radius = float(np.median(parts.radius_um[m]))
        a_c = float(critical_radius_um(float(np.median(parts.contrast[m])), frequency_hz,
                                       float(med.viscosity_pa_s or 0),
                                       float(med.density_kg_per_m3 or 0)))
        if radius < STREAMING_MARGIN * a_c:
            notes.append(
                f"population {pop.name!r}: median radius {radius:.2g} um is below "
                f"{STREAMING_MARGIN:g} x the streaming-critical radius ({a_c:.2g} um); acoustic "
                "streaming (not modelled) moves these particles about as much as the "
                "radiation force, so their outlet is uncertain"
            )
    return notes
