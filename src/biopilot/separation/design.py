"""Design an acoustophoretic separation: the operating point with the best purity at a recovery.

Why this optimiser. In the trajectory model a particle's exit position depends on the flow rate
``Q`` and the drive only through the dose ``D = E_ac / Q`` (force scales with ``E_ac``, time in
the field with ``1 / Q``). For a fixed frequency every particle therefore has one threshold
dose ``D*`` at which it changes outlet, and ``D*`` has a closed form (Bruus's path plus one
quadrature of the flow profile along it). Sorting the thresholds gives recovery and purity at
*every* dose exactly, so the dose is optimised without search noise. The frequency enters
through the wavenumber and the transducer resonance; it is one bounded variable, searched on a
grid over the band and refined with :func:`scipy.optimize.minimize_scalar` (bounded Brent)
around the best grid point. The order of merit is lexicographic: reach the recovery, keep the
purity within ``PURITY_TOLERANCE`` of the best found, then take the fastest flow the drive
allows (voltage and mechanical-index limits): same separation, most throughput. A generic
3-D search (differential evolution over flow, frequency, voltage) would spend thousands of
noisy Monte-Carlo evaluations on a direction that does not change the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

from biopilot.models.acoustics import focusing_time_s, half_wave_resonance_hz
from biopilot.separation.config import Chip, OperatingPoint, Sample, check_half_wave
from biopilot.separation.flow import ChannelFlow
from biopilot.separation.outcome import Outcome, evaluate, particle_weights
from biopilot.separation.trajectories import (
    ClosedFormPath,
    Particles,
    Trajectories,
    draw_particles,
    plate_transit_time_s,
    simulate,
)

__all__ = ["PURITY_TOLERANCE", "Design", "design_separation", "threshold_doses"]

Array = npt.NDArray[np.float64]
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_GRID = 11
#: Purities closer than this (absolute) count as equal; the faster flow then wins. It is about
#: the sampling resolution of a few thousand simulated particles per population.
PURITY_TOLERANCE = 0.005


@dataclass
class Design:
    """A designed operating point, its simulated outcome and how it was found."""

    operating_point: OperatingPoint
    resonance_hz: float
    required_recovery: float
    met: bool
    outcome: Outcome
    trajectories: Trajectories
    scan: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON output (without the per-particle arrays)."""
        return {
            "operating_point": self.operating_point.model_dump(),
            "resonance_hz": self.resonance_hz,
            "required_recovery": self.required_recovery,
            "met": self.met,
            "outcome": self.outcome.as_dict(),
            "frequency_scan": self.scan,
        }


def design_separation(
    chip: Chip,
    sample: Sample,
    required_recovery: float = 0.9,
    n_per_population: int = 4000,
    seed: int = 0,
    max_mechanical_index: float | None = None,
) -> Design:
    """Find flow rate, frequency and voltage maximising purity at ``required_recovery``.

    Parameters
    ----------
    chip, sample : Chip, Sample
        Validated inputs (see :mod:`biopilot.separation.config`).
    required_recovery : float
        Minimum fraction of the target populations in the target outlet, in (0, 1].
    n_per_population : int
        Particles simulated per population (common random numbers for all candidates).
    seed : int
        Random seed of the particle draw.
    max_mechanical_index : float, optional
        Dose cap; defaults to ``chip.max_mechanical_index`` (no cap if neither is set).

    Returns
    -------
    Design
        Operating point, recovery/purity/exposure from a full simulation at it, and the
        frequency scan. ``met`` is False if no feasible point reaches the recovery; the
        design then maximises recovery.

    Raises
    ------
    ValueError
        If ``required_recovery`` is outside (0, 1] or the channel has no half-wave mode.

    Examples
    --------
    See ``tests/separation/test_design.py`` and ``biopilot separate design --help``.
    """
    if not 0.0 < required_recovery <= 1.0:
        raise ValueError(f"required_recovery must be in (0, 1], got {required_recovery}")
    medium = sample.medium
    c = float(medium.speed_of_sound_m_per_s or 0)
    f0 = float(half_wave_resonance_hz(chip.channel_width_um, c))
    check_half_wave(chip, medium, f0)
    mi_cap = max_mechanical_index or chip.max_mechanical_index
    particles = draw_particles(chip, sample, n_per_population, seed)
    flow = ChannelFlow(chip.channel_width_um, chip.channel_height_um)
    weights = particle_weights(particles.population, sample)
    is_target = np.array([p.is_target for p in sample.populations])[particles.population]
    ctx = _Context(chip, sample, particles, flow, weights, is_target, f0, mi_cap,
                   required_recovery)
    span = chip.transducer.frequency_span_fraction
    grid = f0 * (1.0 + np.linspace(-span, span, _GRID))
    for f in grid:
        ctx.evaluate(f)
    ctx.set_reference()
    scores = [ctx.objective(f) for f in grid]
    best = int(np.argmin(scores))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, _GRID - 1)]
    res = minimize_scalar(ctx.objective, bounds=(lo, hi), method="bounded",
                          options={"xatol": f0 * 1e-5})
    f_best = float(res.x) if res.fun <= scores[best] else float(grid[best])
    point = ctx.operating_point(f_best)
    pressure = point.pressure_pa(chip, f0)
    traj = simulate(particles, chip, medium, point.flow_rate_ul_per_min, f_best, pressure, flow)
    outcome = evaluate(traj, sample, chip, f_best)
    met = outcome.recovery >= required_recovery - 1.0 / n_per_population
    if not met:
        outcome.notes.append(
            f"recovery {required_recovery:.3g} not reachable within the drive, flow and "
            f"mechanical-index limits; best {outcome.recovery:.3g}"
        )
    return Design(point, f0, required_recovery, bool(met), outcome, traj, ctx.scan)


def threshold_doses(
    particles: Particles, chip: Chip, sample: Sample, flow: ChannelFlow, frequency_hz: float
) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Dose ``D* = E_ac / Q`` (J/m^3 per uL/min) at which each particle changes outlet.

    Returns ``(d_star, in_center_at_zero)``; ``d_star`` is ``inf`` for particles that never
    change outlet. A particle is in the centre outlet iff ``in_center_at_zero`` xor
    ``D >= d_star``.
    """
    medium = sample.medium
    c = float(medium.speed_of_sound_m_per_s or 0)
    k = 2.0 * np.pi * frequency_hz / c
    tau_unit = focusing_time_s(particles.radius_um, particles.contrast, 1.0, frequency_hz, c,
                               float(medium.viscosity_pa_s or 0), particles.drag_factor)
    rate = np.where(np.isfinite(tau_unit), 1.0 / np.where(np.isfinite(tau_unit), tau_unit, 1), 0)
    direction = np.sign(rate)
    path = ClosedFormPath(particles, chip, k, direction)
    w2 = chip.channel_width_um / 2.0
    b = flow.center_band_half_width_um(chip.center_outlet_fraction)
    inside0 = np.abs(particles.y0_um - w2) < b
    inside_inf = np.abs(path.at(np.full(len(particles), 1e4)) - w2) < b
    flip = (inside0 != inside_inf) & (direction != 0) & (path.tan0 != 0)
    theta_b = np.sign(particles.y0_um - w2) * k * b * 1e-6
    branch = np.round(k * 1e-6 * (particles.y0_um - w2) / np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_b = np.abs(np.log(np.abs(np.tan(theta_b - branch * np.pi)) / np.abs(path.tan0)))
    s_b = np.where(flip, s_b, 0.0)
    nodes = s_b * (0.5 * (_NODES[:, None] + 1.0))
    g_int = s_b * (0.5 * _WEIGHTS[:, None] * flow.velocity_factor(path.at(nodes))).sum(axis=0)
    x0 = plate_transit_time_s(particles, chip, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d_star = np.where(flip, g_int / (np.abs(rate) * x0), np.inf)
    return d_star, inside0


@dataclass
class _Context:
    """What the frequency objective needs; records the scan."""

    chip: Chip
    sample: Sample
    particles: Particles
    flow: ChannelFlow
    weights: Array
    is_target: npt.NDArray[np.bool_]
    resonance_hz: float
    mi_cap: float | None
    required: float
    scan: list[dict[str, float]] = field(default_factory=list)
    reference_purity: float | None = None
    cache: dict[float, tuple[float, float, float]] = field(default_factory=dict)

    def pressure_limit_pa(self, f: float) -> float:
        """Largest pressure amplitude the voltage and mechanical-index limits allow at ``f``."""
        tr = self.chip.transducer
        p = tr.pressure_amplitude_pa(tr.max_voltage_v, f, self.resonance_hz)
        if self.mi_cap is not None:
            p = min(p, self.mi_cap * np.sqrt(f / 1e6) * 1e6)
        return float(p)

    def best_dose(self, f: float) -> tuple[float, float, float]:
        """(dose, purity, recovery) of the best plateau at frequency ``f``."""
        d_star, inside0 = threshold_doses(self.particles, self.chip, self.sample, self.flow, f)
        to_center = self.chip.target_outlet == "center"
        in_t0 = inside0 if to_center else ~inside0
        q_lo, _ = self.chip.flow_rate_range_ul_per_min
        kappa = self.sample.medium.compressibility_per_pa
        d_max = kappa * self.pressure_limit_pa(f) ** 2 / 4.0 / q_lo
        ev = np.isfinite(d_star) & (d_star <= d_max)
        order = np.argsort(d_star[ev])
        d = d_star[ev][order]
        step = (np.where(in_t0[ev], -1.0, 1.0) * self.weights[ev])[order]
        tgt = np.concatenate([[np.sum(self.weights * in_t0 * self.is_target)],
                              np.cumsum(step * self.is_target[ev][order])])
        tgt[1:] += tgt[0]
        allw = np.concatenate([[np.sum(self.weights * in_t0)], np.cumsum(step)])
        allw[1:] += allw[0]
        lo, hi = np.concatenate([[0.0], d]), np.concatenate([d, [d_max]])
        recovery = tgt / max(float(np.sum(self.weights * self.is_target)), 1e-300)
        purity = np.where(allw > 1e-15, tgt / np.maximum(allw, 1e-300), 0.0)
        ok = (recovery >= self.required - 1e-12) & (hi > lo)
        if ok.any():
            i = int(np.argmax(np.where(ok, purity, -1.0)))
        else:
            i = int(np.argmax(np.where(hi > lo, recovery + 1e-6 * purity, -1.0)))
        dose = float(np.sqrt(lo[i] * hi[i])) if lo[i] > 0 else 0.5 * float(hi[i])
        return dose, float(purity[i]), float(recovery[i])

    def operating_point(self, f: float) -> OperatingPoint:
        """Fastest flow and matching voltage that deliver the best dose at ``f``."""
        dose, _, _ = self.best_dose(f)
        q_lo, q_hi = self.chip.flow_rate_range_ul_per_min
        kappa = self.sample.medium.compressibility_per_pa
        e_lim = kappa * self.pressure_limit_pa(f) ** 2 / 4.0
        q = float(np.clip(e_lim / dose, q_lo, q_hi)) if dose > 0 else q_hi
        pressure = float(np.sqrt(4.0 * dose * q / kappa))
        unit = self.chip.transducer.pressure_amplitude_pa(1.0, f, self.resonance_hz)
        return OperatingPoint(flow_rate_ul_per_min=q, frequency_hz=f, voltage_v=pressure / unit)

    def evaluate(self, f: float) -> tuple[float, float, float]:
        """(purity, recovery, flow rate) of the best dose at ``f``; recorded in the scan."""
        if f in self.cache:
            return self.cache[f]
        dose, purity, recovery = self.best_dose(f)
        q_lo, q_hi = self.chip.flow_rate_range_ul_per_min
        kappa = self.sample.medium.compressibility_per_pa
        e_lim = kappa * self.pressure_limit_pa(f) ** 2 / 4.0
        q = float(np.clip(e_lim / dose, q_lo, q_hi)) if dose > 0 else q_hi
        self.scan.append({"frequency_hz": float(f), "purity": purity, "recovery": recovery,
                          "flow_rate_ul_per_min": q})
        self.cache[f] = (purity, recovery, q)
        return purity, recovery, q

    def set_reference(self) -> None:
        """Best purity among the scanned frequencies that reach the recovery."""
        ok = [r["purity"] for r in self.scan if r["recovery"] >= self.required - 1e-12]
        self.reference_purity = max(ok) if ok else None

    def objective(self, f: float) -> float:
        """Lexicographic: reach the recovery, stay within tolerance of the best purity, then
        maximise the flow rate, then the drive headroom (closest to resonance, lowest voltage);
        negative to minimise, positive where a condition fails."""
        purity, recovery, q = self.evaluate(f)
        if self.reference_purity is None:
            return -recovery
        if recovery < self.required - 1e-12:
            return 2.0 + (self.required - recovery)
        if purity < self.reference_purity - PURITY_TOLERANCE:
            return 1.0 + (self.reference_purity - purity)
        tr = self.chip.transducer
        headroom = tr.pressure_amplitude_pa(1.0, f, self.resonance_hz)
        headroom /= tr.pressure_per_volt_pa_per_v
        return -q / self.chip.flow_rate_range_ul_per_min[1] - 0.01 * headroom
