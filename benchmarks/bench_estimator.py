"""Benchmark the state estimator (UKF) on twin batches: accuracy between samples, time per step.

Targets (issue 3): VCD RMSE <= 10 % and titer RMSE <= 0.15 g/L between daily samples, over
>= 10 twin batches with parameter variability. The estimator runs on nominal parameters.
VCD RMSE is relative: sqrt(mean(((estimate - true) / true)^2)), titer RMSE absolute (g/L),
both pooled over every 15-min point of every batch, from inoculation to harvest. The
"before sample" rows keep only the 6 h before each daily sample (the longest without one).
Coverage is the fraction of points whose truth lies within mean +- 2 sd (VCD, titer,
glucose, lactate averaged; 0.95 expected). The soft sensor is simulated (truth + AR(1) error,
tau 6 h, sd at the soft-sensor targets, 3 % flagged untrusted) until the Raman one is wired.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import median_time, print_table
from biopilot.models.kinetics import KineticParameters
from biopilot.monitor.estimator import StateEstimator
from biopilot.monitor.estimator_inputs import FeedSchedule
from biopilot.monitor.estimator_measure import online_measurements
from biopilot.monitor.estimator_replay import replay_batch, simulated_soft_sensor
from biopilot.twin.bioreactor import simulate_batch

SEEDS = tuple(range(300, 310))
#: A plant whose nominal kinetics differ from the estimator's in parameters it does NOT learn
#: (lactate inhibition, glutamine yield, lysis, temperature effects): structural mismatch.
_P = KineticParameters()
MISMATCHED = dataclasses.replace(
    _P,
    ki_lac_mmol_per_l=35.0,
    y_x_gln_cells_per_mmol=1.15 * _P.y_x_gln_cells_per_mmol,
    k_lysis_per_h=0.015,
    qp_gain_per_c=0.06,
    q10_growth=2.5,
)
#: (label, estimator step in minutes, fuse at-line, fuse the simulated soft sensor, plant)
SCENARIOS: tuple[tuple[str, int, bool, bool, KineticParameters | None], ...] = (
    ("online 5-min + daily at-line", 5, True, False, None),
    ("online 15-min + daily at-line", 15, True, False, None),
    ("online 15-min + at-line + soft sensor 15-min", 15, True, True, None),
    ("online 15-min + soft sensor, no at-line", 15, False, True, None),
    ("online 15-min + at-line, structural mismatch", 15, True, False, MISMATCHED),
)


def _one(args: tuple[int, int, bool, bool, KineticParameters | None]) -> pd.DataFrame:
    """Replay one batch under one scenario; return its table with gating and NIS totals."""
    seed, step_min, atline, soft, plant = args
    batch = simulate_batch(seed=seed, raman=False, parameters=plant)
    extra = simulated_soft_sensor(batch, np.random.default_rng(seed)) if soft else None
    rep = replay_batch(batch, step_min=step_min, atline=atline, extra=extra)
    table = rep.table.copy()
    table["gated"] = sum(r.reason == "gated" for _, r in rep.rejected)
    table["nis"] = sum(n for n, d in rep.nis if d > 0)
    table["nis_dof"] = sum(d for _, d in rep.nis)
    return table


def _metrics(t: pd.DataFrame) -> dict[str, float]:
    v, vt = t["vcd_cells_per_ml"], t["vcd_cells_per_ml_true"]
    out = {"vcd_rel_rmse": float(np.sqrt(np.mean(((v - vt) / vt) ** 2)))}
    for name, key in (
        ("titer_g_per_l", "titer_rmse_g_per_l"),
        ("glucose_g_per_l", "glucose_rmse_g_per_l"),
        ("lactate_g_per_l", "lactate_rmse_g_per_l"),
    ):
        out[key] = float(np.sqrt(np.mean((t[name] - t[f"{name}_true"]) ** 2)))
    cover = [
        np.mean(np.abs(t[n] - t[f"{n}_true"]) <= 2 * t[f"{n}_std"])
        for n in ("vcd_cells_per_ml", "titer_g_per_l", "glucose_g_per_l", "lactate_g_per_l")
    ]
    out["coverage_2sd"] = float(np.mean(cover))
    return out


def _step_times() -> tuple[float, float]:
    """Median wall time (s) of one 1-min and one 15-min step, mid-batch, online readings in."""
    batch = simulate_batch(seed=SEEDS[0], raman=False)
    row = batch.online.iloc[3000].to_dict()
    times = []
    for dt in (1.0 / 60.0, 0.25):
        est = StateEstimator(batch.recipe, schedule=FeedSchedule.from_batch(batch))
        est.step(dt_h=48.0)
        ms = online_measurements(row)
        times.append(median_time(lambda est=est, ms=ms, dt=dt: est.step(ms, dt_h=dt), repeat=50))
    return times[0], times[1]


def main() -> None:
    """Print target vs measured for each measurement set, then the time per step."""
    workers = min(2, os.cpu_count() or 1)
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for label, step_min, atline, soft, plant in SCENARIOS:
            args = [(s, step_min, atline, soft, plant) for s in SEEDS]
            tables = list(pool.map(_one, args))
            every = pd.concat(tables)
            before = every[(every["t_h"] % 24.0 >= 18.0) & (every["t_h"] >= 24.0)]
            firsts = [t.iloc[0] for t in tables]
            dof = sum(int(f["nis_dof"]) for f in firsts)
            for part, t in (("all", every), ("6 h before sample", before)):
                m = _metrics(t)
                rows.append(
                    {
                        "measurements": label,
                        "points": part,
                        "batches": len(tables),
                        "VCD RMSE (target <= 10 %)": f"{100 * m['vcd_rel_rmse']:.2f} %",
                        "titer RMSE (target <= 0.15 g/L)": m["titer_rmse_g_per_l"],
                        "glucose RMSE g/L": m["glucose_rmse_g_per_l"],
                        "lactate RMSE g/L": m["lactate_rmse_g_per_l"],
                        "2-sd coverage": m["coverage_2sd"],
                        "gated": sum(int(f["gated"]) for f in firsts),
                        "at-line NIS/dof": sum(f["nis"] for f in firsts) / dof if dof else "-",
                        "ok": m["vcd_rel_rmse"] <= 0.10 and m["titer_rmse_g_per_l"] <= 0.15,
                    }
                )
    print_table(rows)
    one, fifteen = _step_times()
    print()
    print_table(
        [
            {"step": "1-min step (online in)", "measured_ms": 1e3 * one},
            {"step": "15-min step (online in)", "measured_ms": 1e3 * fifteen},
        ]
    )


if __name__ == "__main__":
    main()
