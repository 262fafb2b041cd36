"""Benchmark the feeding NMPC against the default recipe on the twin, under model mismatch.

Each seed draws the plant's kinetic parameters as the nominal ones times uniform(0.8, 1.2)
(:data:`PERTURBED`), on top of the twin's own batch-to-batch variability; the controller keeps
the nominal parameters (and adapts multipliers online). The controller is fed the true
state plus measurement-like noise (:func:`noisy_estimate`), every 12 h; the plant runs in
1-h steps and its true state is checked against the hard limits every hour and right after
every bolus.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from _util import print_table
from biopilot.control import ControlDecision, Controller, make_problem
from biopilot.models.kinetics import STATE_NAMES, KineticParameters, add_bolus
from biopilot.twin import Bioreactor, PlantInputs, default_recipe

#: Parameters left at nominal in the plant: reference points and physical constants.
FIXED = {
    "t_ref_c",
    "osm_death_mosm_per_kg",
    "osm_death_width_mosm_per_kg",
    "base_mmol_per_l",
    "base_osmolality_mosm_per_kg",
    "respiratory_quotient",
}
PERTURBED = tuple(f.name for f in dataclasses.fields(KineticParameters) if f.name not in FIXED)
#: Noise sd of the estimate fed to the controller (relative for cells, absolute otherwise).
_NOISE_REL = {
    "vcd_cells_per_ml": 0.05,
    "dead_cells_per_ml": 0.05,
    "glutamine_mmol_per_l": 0.05,
    "ammonia_mmol_per_l": 0.05,
    "titer_g_per_l": 0.03,
    "volume_l": 0.003,
}
_NOISE_ABS = {"glucose_g_per_l": 0.1, "lactate_g_per_l": 0.05, "osmolality_mosm_per_kg": 3.0}
_I = {n: i for i, n in enumerate(STATE_NAMES)}


@dataclass
class Run:
    """One closed-loop or recipe batch: harvest, violations, step solve times."""

    harvest_kg: float
    violations: list[str]
    solve_times_s: list[float]
    fallbacks: int


def plant_parameters(seed: int) -> KineticParameters:
    """Return the plant's mismatched parameters of ``seed`` (nominal x uniform(0.8, 1.2))."""
    rng = np.random.default_rng(10_000 + seed)
    base = KineticParameters()
    return dataclasses.replace(
        base, **{n: getattr(base, n) * rng.uniform(0.8, 1.2) for n in PERTURBED}
    )


def noisy_estimate(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the true state with measurement-like noise (a stand-in for the estimator)."""
    y = x.copy()
    for n, s in _NOISE_REL.items():
        y[_I[n]] *= 1.0 + s * rng.standard_normal()
    for n, s in _NOISE_ABS.items():
        y[_I[n]] += s * rng.standard_normal()
    return np.maximum(y, 0.0)


def violations(x: np.ndarray, t_h: float, working_volume_l: float) -> list[str]:
    """Return the hard limits the true state ``x`` breaks at ``t_h``."""
    v = {n: x[i] for n, i in _I.items()}
    tol = 1e-6
    out = []
    if not 1.0 - tol <= v["glucose_g_per_l"] <= 6.0 + tol:
        out.append(f"t={t_h:.0f} h glucose {v['glucose_g_per_l']:.2f} g/L")
    if v["osmolality_mosm_per_kg"] > 450.0 + tol:
        out.append(f"t={t_h:.0f} h osmolality {v['osmolality_mosm_per_kg']:.0f}")
    if v["volume_l"] > working_volume_l + tol:
        out.append(f"t={t_h:.0f} h volume {v['volume_l']:.0f} L")
    if v["lactate_g_per_l"] > 4.0 + tol:
        out.append(f"t={t_h:.0f} h lactate {v['lactate_g_per_l']:.2f} g/L")
    return out


def run_recipe(seed: int, faults: tuple[str, ...] = ()) -> Run:
    """Run the default recipe on the seed's plant; return its harvest and violations."""
    plant = Bioreactor(seed=seed, parameters=plant_parameters(seed), faults=faults)
    bad: list[str] = []
    for _ in range(round(plant.recipe.harvest_h)):
        plant.step(None, dt_h=1.0)
        bad += violations(plant.state, plant.t_h, plant.recipe.working_volume_l)
    return Run(plant.state[6] * plant.state[7] / 1e3, bad, [], 0)


def run_closed_loop(
    seed: int, controller: Controller, faults: tuple[str, ...] = ()
) -> tuple[Run, list[ControlDecision]]:
    """Run one batch under ``controller``; check the true plant every hour and after boluses."""
    plant = Bioreactor(seed=seed, parameters=plant_parameters(seed), faults=faults)
    rng = np.random.default_rng(seed)
    wv = plant.recipe.working_volume_l
    bad: list[str] = []
    decisions = []
    ih = controller.interval_h
    while plant.t_h < plant.recipe.harvest_h - 1e-9:
        d = controller.step(noisy_estimate(plant.state, rng), plant.t_h)
        decisions.append(d)
        if d.inputs is not None and (d.inputs.bolus_l > 0 or d.inputs.glucose_bolus_l > 0):
            bad += violations(_after_boluses(plant, d.inputs), plant.t_h, wv)
        for h in range(round(ih)):
            u = d.inputs
            if u is not None and h > 0:
                u = dataclasses.replace(u, bolus_l=0.0, glucose_bolus_l=0.0)
            plant.step(u, dt_h=1.0)
            bad += violations(plant.state, plant.t_h, wv)
    times = [d.solve_time_s for d in decisions if d.status not in ("manual", "harvest")]
    fallbacks = sum(d.fallback_reason is not None for d in decisions)
    return Run(plant.state[6] * plant.state[7] / 1e3, bad, times, fallbacks), decisions


def _after_boluses(plant: Bioreactor, u: PlantInputs) -> np.ndarray:
    """The plant's true state right after this interval's boluses (as the twin mixes them)."""
    r = plant.recipe
    x = plant.state
    if u.bolus_l > 0 and u.bolus_medium is not None:
        x = np.asarray(add_bolus(x, u.bolus_l, r.media[u.bolus_medium].composition()))
    g = r.glucose_feed
    if u.glucose_bolus_l > 0 and g is not None:
        x = np.asarray(add_bolus(x, u.glucose_bolus_l, g.composition()))
    return x


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark over ``--seeds`` seeds and print the table against the targets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args(argv)
    recipe = default_recipe()
    t0 = time.perf_counter()
    problem = make_problem(recipe)
    build_s = time.perf_counter() - t0
    gains, times, first_times, worse, n_bad, fallbacks, base_bad = [], [], [], 0, 0, 0, 0
    rows_seed = []
    for seed in range(args.seeds):
        base = run_recipe(seed)
        run, _ = run_closed_loop(seed, Controller(recipe, problem=problem))
        gain = run.harvest_kg / base.harvest_kg - 1.0
        gains.append(gain)
        worse += run.harvest_kg < base.harvest_kg
        n_bad += len(run.violations)
        base_bad += len(base.violations) > 0
        fallbacks += run.fallbacks
        first_times.append(run.solve_times_s[0])
        times += run.solve_times_s[1:]
        rows_seed.append(
            {
                "seed": seed,
                "recipe kg": base.harvest_kg,
                "NMPC kg": run.harvest_kg,
                "gain %": 100 * gain,
                "violations": len(run.violations),
                "fallbacks": run.fallbacks,
            }
        )
        print(rows_seed[-1], run.violations[:3], file=sys.stderr, flush=True)
    print_table(rows_seed)
    print()
    p99 = float(np.percentile(times, 99))
    print_table(
        [
            {
                "metric": "mean harvested mAb gain vs recipe",
                "target": ">= +12 %",
                "measured": f"{100 * statistics.mean(gains):+.1f} %",
            },
            {
                "metric": "seeds worse than the recipe",
                "target": "0",
                "measured": f"{worse} / {args.seeds}",
            },
            {
                "metric": "constraint violations, true plant (hourly + post-bolus)",
                "target": "0",
                "measured": f"{n_bad} (recipe itself: {base_bad}/{args.seeds} seeds violate)",
            },
            {
                "metric": "solve time per step, median (warm)",
                "target": "<= 1 s",
                "measured": f"{statistics.median(times):.3f} s",
            },
            {
                "metric": "solve time per step, p99 (warm)",
                "target": "<= 3 s",
                "measured": f"{p99:.3f} s",
            },
            {
                "metric": "first plan (cold, before inoculation), max",
                "target": "-",
                "measured": f"{max(first_times):.2f} s",
            },
            {"metric": "fallbacks to the recipe", "target": "-", "measured": str(fallbacks)},
            {"metric": "NLP build (once)", "target": "-", "measured": f"{build_s:.2f} s"},
        ]
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
