"""Benchmark acoustophoresis: 100,000 particle trajectories and a full design optimisation.

Targets (issue 8): 100,000 trajectories <= 1 s; a design optimisation <= 10 s (medians).
Also prints the published case (Augustsson et al., Anal. Chem. 84:7954, 2012, fixed cancer
cells: recovery 93.6-97.9 %, purity 97.4-98.4 %) beside our design of it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _util import median_time, print_table
from biopilot.config import load_yaml
from biopilot.separation import Chip, Sample, design_separation, draw_particles, simulate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "separation"
PARTICLES = 100_000


def _load(stem: str) -> tuple[Chip, Sample]:
    return (load_yaml(EXAMPLES / f"{stem}_chip.yaml", Chip),
            load_yaml(EXAMPLES / f"{stem}_populations.yaml", Sample))


def cpu_time(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median process CPU time of ``fn()``: what the code costs when the machine is shared."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def main() -> None:
    """Print target vs measured, then the published-case comparison."""
    rows = []
    for stem in ("augustsson2012", "generic"):
        chip, sample = _load(stem)
        n = PARTICLES // len(sample.populations)
        parts = draw_particles(chip, sample, n, rng=0)

        def run(parts=parts, chip=chip, sample=sample) -> None:
            simulate(parts, chip, sample.medium, 100.0, 2.0e6, 3e5)

        def draw_and_run(chip=chip, sample=sample, n=n) -> None:
            p = draw_particles(chip, sample, n, rng=1)
            simulate(p, chip, sample.medium, 100.0, 2.0e6, 3e5)

        def design(chip=chip, sample=sample) -> None:
            design_separation(chip, sample, 0.9)

        count = n * len(sample.populations)
        for case, fn, target, repeat in (
            (f"{count:,} trajectories", run, 1.0, 5),
            (f"draw + {count:,} trajectories", draw_and_run, 1.0, 5),
            ("design (4,000 per population, recovery 0.9)", design, 10.0, 3),
        ):
            rows.append({"case": f"{stem}: {case}", "target_s": target,
                         "wall_median_s": median_time(fn, repeat=repeat),
                         "cpu_median_s": cpu_time(fn, repeat=repeat)})
    for r in rows:
        r["met"] = "yes" if r["wall_median_s"] <= r["target_s"] else "NO"
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print_table(rows)

    chip, sample = _load("augustsson2012")
    d = design_separation(chip, sample, 0.95, n_per_population=6000)
    print()
    print_table([
        {"quantity": "recovery (fixed DU145)", "paper": "93.6-97.9 %",
         "ours": f"{100 * d.outcome.recovery:.1f} % (design constraint 95 %)"},
        {"quantity": "purity (centre outlet)", "paper": "97.4-98.4 %",
         "ours": f"{100 * d.outcome.purity:.1f} % (1:1 spike assumed)"},
        {"quantity": "operating point", "paper": "~2 MHz half-wave, 375 um",
         "ours": f"{d.operating_point.frequency_hz / 1e6:.3f} MHz, "
                 f"{d.operating_point.flow_rate_ul_per_min:.0f} uL/min, "
                 f"MI {d.outcome.exposure.mechanical_index:.2f}"},
    ])


if __name__ == "__main__":
    main()
