"""Benchmark the bioreactor twin: one batch with sensors and Raman, kinetics alone, a campaign."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import median_time, print_table
from biopilot.models.kinetics import KineticParameters
from biopilot.twin.bioreactor import simulate_batch
from biopilot.twin.process import integrate_recipe
from biopilot.twin.recipe import default_recipe

CAMPAIGN = 100


def _one(seed: int) -> float:
    """Simulate one full batch (sensors and Raman) and return its final titer (g/L)."""
    return float(simulate_batch(seed=seed).truth["titer_g_per_l"].iloc[-1])


def _campaign(workers: int) -> float:
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        titers = list(pool.map(_one, range(CAMPAIGN), chunksize=10))
    assert len(titers) == CAMPAIGN
    return time.perf_counter() - t0


def main() -> None:
    """Print target vs measured for the three twin benchmarks."""
    recipe, p = default_recipe(), KineticParameters()
    batch = median_time(lambda: simulate_batch(recipe, seed=1), repeat=5)
    kinetics = median_time(lambda: integrate_recipe(recipe, p), repeat=7)
    workers = min(2, os.cpu_count() or 1)
    campaign = _campaign(workers)
    print_table(
        [
            {
                "benchmark": "one 14-day batch, online 1-min + Raman 15-min",
                "target_s": 1.0,
                "measured_s": batch,
                "ok": batch <= 1.0,
            },
            {
                "benchmark": "kinetics alone (14 days, 1-min grid)",
                "target_s": 0.05,
                "measured_s": kinetics,
                "ok": kinetics <= 0.05,
            },
            {
                "benchmark": f"{CAMPAIGN} batches, {workers} processes",
                "target_s": 60.0,
                "measured_s": campaign,
                "ok": campaign <= 60.0,
            },
        ]
    )


if __name__ == "__main__":
    main()
