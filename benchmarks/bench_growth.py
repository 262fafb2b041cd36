"""Benchmark of culture growth from holograms: doubling time and time to passage, vs the twin.

Simulates time-lapses of growing cultures (``biopilot.twin.incubator_culture``: logistic
growth from 5 % confluence, a new field of view every ``--every-h`` hours), analyses every
hologram with the default pipeline (autofocus, CellNet, cells, classes), fits
:func:`biopilot.quality.growth.fit_growth` to the viable cell density and to the confluence,
and compares with the twin's truth: the doubling time it was given, the same fit on the true
counts, and the hour the true confluence curve reaches 70 % (a passage point) against the one
predicted from the imaged confluence with the plateau known (the twin's 80 %).

    python benchmarks/bench_growth.py [--size 1024] [--hours 96] [--every-h 8] [--seed 0]
"""

from __future__ import annotations

# isort: off
import biopilot  # noqa: F401  (first: sets OpenMP's wait policy before torch loads)
# isort: on

import argparse
import math
import time

import numpy as np
import torch

from _util import print_table
from biopilot.imaging import analyze_frame
from biopilot.quality import frame_attributes
from biopilot.quality.growth import GrowthFit, fit_growth
from biopilot.twin.incubator import OpticalSetup, SceneSpec
from biopilot.twin.incubator_culture import MAX_CONFLUENCE, culture_timelapse

#: (scenario, doubling time h): MSC-like adherent 30 h, iPSC-like stem cells 20 h, T cells
#: in suspension 24 h (orders of magnitude from cell-therapy practice; the twin is the truth).
CASES = (("adherent", 30.0), ("stem_cell", 20.0), ("suspension", 24.0))
_PASSAGE = 0.7


def main() -> None:
    """Simulate, analyse and fit each case; print one table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024, help="frame side, px")
    ap.add_argument("--hours", type=float, default=96.0)
    ap.add_argument("--every-h", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for k, (scenario, doubling) in enumerate(CASES):
        optics = OpticalSetup(wavelength_nm=488.0, pixel_um=1.12, z_mm=1.5,
                              shape_px=(args.size, args.size))
        scene = SceneSpec(scenario=scenario, confluence=0.05, viability=0.92)
        t0 = time.perf_counter()
        times, dens, conf, true_dens = [], [], [], []
        for t, frame in culture_timelapse(optics, scene, hours=args.hours, every_h=args.every_h,
                                          doubling_h=doubling, seed=args.seed * 100 + k):
            res = analyze_frame(frame.hologram, wavelength_um=optics.wavelength_um,
                                pixel_um=optics.pixel_um)
            qc = frame_attributes(res)
            times.append(t)
            dens.append(qc.viable_cells_per_cm2)
            conf.append(qc.confluence)
            true_dens.append(int(frame.cells["alive"].sum()) / (qc.field_area_mm2 * 1e-2))
        fit = fit_growth(times, dens)
        truth = fit_growth(times, true_dens)
        cfit = fit_growth(times, conf, capacity=MAX_CONFLUENCE)  # the vessel's known plateau
        passage_true = _hour_of(_PASSAGE, 0.05, doubling)
        lo, hi = fit.doubling_ci95_h
        rows.append({
            "culture": f"{scenario} ({len(times)} frames)",
            "doubling, twin (h)": doubling,
            "fit on true counts (h)": round(truth.doubling_h, 1),
            "fit on imaging (h)": round(fit.doubling_h, 1),
            "95 % CI (h)": f"{lo:.1f}-{hi:.1f}",
            "error vs twin": f"{100 * (fit.doubling_h / doubling - 1):+.1f} %",
            f"hours to {_PASSAGE:.0%}, twin": round(passage_true, 1),
            "predicted": round(cfit.time_to(_PASSAGE), 1),
            "s": round(time.perf_counter() - t0, 1),
        })
        print(rows[-1], flush=True)
    print_table(rows)


def _hour_of(level: float, start: float, doubling: float) -> float:
    """Hour at which the twin's confluence curve (capacity 0.8) reaches ``level``."""
    rate = math.log(2.0) / doubling
    return GrowthFit("logistic", rate, (rate, rate), start, MAX_CONFLUENCE, 0, 0.0).time_to(level)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
