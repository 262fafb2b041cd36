"""Benchmark of cells from phase: segmentation, classification, dry mass and speed on 4K frames.

Runs the twin's seeded benchmark set (``biopilot.twin.incubator.benchmark_set``) through
``biopilot.imaging``: each frame is analysed twice, from the reconstructed phase (the whole
pipeline, ``analyze_frame``) and from the simulator's true phase degraded like a
reconstruction (blur and noise; what the classifier was trained on), so that a shortfall can
be placed in the reconstruction or in the cell analysis. Prints a markdown table, target
against measured.

    python benchmarks/bench_imaging_qc.py [--n 5] [--size 2748x3840] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from _util import median_time, print_table
from biopilot.imaging import analyze_frame, analyze_phase, load_default_classifier, match_labels
from biopilot.imaging.metrics import score_segmentation
from biopilot.imaging.pipeline import FrameAnalysis
from biopilot.imaging.train import Degradation
from biopilot.twin.incubator import SimulatedFrame, benchmark_set


def main() -> None:
    """Run the benchmark and print one table of targets and one of frames."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5, help="frames (5 covers confluence 0-0.8)")
    ap.add_argument("--size", default="2748x3840", help="ROWSxCOLS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-recon", action="store_true", help="skip the reconstruction path")
    args = ap.parse_args()
    rows_px, cols_px = (int(v) for v in args.size.split("x"))
    torch.set_num_threads(2)
    clf = load_default_classifier()
    per_frame, stats = [], {"recon": _Acc(), "true": _Acc()}
    speed: dict[str, float] = {}
    t_sim = time.perf_counter()
    for frame in benchmark_set(seed=args.seed, n=args.n, size=(rows_px, cols_px)):
        t_sim = time.perf_counter() - t_sim
        optics = frame.optics
        degraded = Degradation().apply(frame.phase_rad, np.random.default_rng(args.seed))
        true_res = analyze_phase(
            degraded,
            wavelength_um=optics.wavelength_um,
            pixel_um=optics.pixel_um,
            classifier=clf,
            background_rad=0.0,
        )
        paths = {"true": true_res}
        if not args.no_recon:
            paths["recon"] = analyze_frame(
                frame.hologram,
                wavelength_um=optics.wavelength_um,
                pixel_um=optics.pixel_um,
                z="auto",
                n_medium=optics.n_medium,
                classifier=clf,
            )
        for name, res in paths.items():
            row = stats[name].add(frame, res)
            per_frame.append(
                {
                    "frame": frame.name,
                    "phase": name,
                    **row,
                    "time_s": res.timings_s["total"],
                    "sim_s": t_sim,
                }
            )
            print(per_frame[-1], file=sys.stderr, flush=True)
        if frame.scene.confluence >= 0.6 and "cells_per_s" not in speed:
            phase = true_res.phase_rad
            t = median_time(
                lambda p=phase, o=optics: analyze_phase(
                    p,
                    wavelength_um=o.wavelength_um,
                    pixel_um=o.pixel_um,
                    classifier=clf,
                    background_rad=0.0,
                ),
                repeat=3,
            )
            speed = {"cells_s": t, "cells_per_s": true_res.n_cells / t, "n_cells": true_res.n_cells}
            if "recon" in paths:
                speed["frame_s"] = paths["recon"].timings_s["total"]
        t_sim = time.perf_counter()
    print_table(per_frame)
    print()
    print_table(_targets(stats, speed))


class _Acc:
    """Pooled scores over frames for one phase source."""

    def __init__(self) -> None:
        self.dense: list[dict[str, float]] = []
        self.alive: list[int] = []
        self.diff: list[int] = []
        self.mass = [0.0, 0.0]

    def add(self, frame: SimulatedFrame, res: FrameAnalysis) -> dict[str, Any]:
        s = score_segmentation(frame.labels, res.labels)
        t, p, _ = match_labels(frame.labels, res.labels)
        truth = frame.cells.set_index("label").loc[t]
        pred = res.cells.set_index("label").loc[p]
        alive_ok = pred["alive"].to_numpy(bool) == truth["alive"].to_numpy(bool)
        self.alive += alive_ok.tolist()
        stem = truth["differentiated"].notna().to_numpy() & truth["alive"].to_numpy(bool)
        d_ok = pred["differentiated"].to_numpy(bool)[stem] == truth["differentiated"][stem]
        self.diff += d_ok.to_numpy(bool).tolist()
        self.mass[0] += float(pred["dry_mass_pg"].sum())
        self.mass[1] += float(truth["dry_mass_pg"].sum())
        if frame.scene.confluence >= 0.8:
            self.dense.append({"f1": s.f1, "count": s.count_error})
        return {
            "confluence": frame.scene.confluence,
            "scenario": frame.scene.scenario,
            "n_true": s.n_true,
            "n_found": s.n_pred,
            "f1": s.f1,
            "count_err": s.count_error,
            "live_dead_acc": float(np.mean(alive_ok)) if alive_ok.size else float("nan"),
        }


def _targets(stats: dict[str, _Acc], speed: dict[str, float]) -> list[dict[str, Any]]:
    def val(acc: _Acc, what: str) -> float:
        if what == "f1":
            return float(np.mean([d["f1"] for d in acc.dense])) if acc.dense else float("nan")
        if what == "count":
            return float(np.mean([d["count"] for d in acc.dense])) if acc.dense else float("nan")
        if what == "alive":
            return float(np.mean(acc.alive)) if acc.alive else float("nan")
        if what == "diff":
            return float(np.mean(acc.diff)) if acc.diff else float("nan")
        return acc.mass[0] / acc.mass[1] - 1 if acc.mass[1] else float("nan")

    rows = []
    for label, target, what in [
        ("segmentation F1 @ IoU 0.5, 80 % confluence", ">= 0.95", "f1"),
        ("count error, 80 % confluence", "<= 0.03", "count"),
        ("live/dead accuracy (matched cells)", ">= 0.95", "alive"),
        ("differentiation accuracy (live stem cells)", ">= 0.90", "diff"),
        ("dry-mass bias (matched cells, pooled)", "abs <= 0.02", "mass"),
    ]:
        rows.append(
            {
                "metric": label,
                "target": target,
                "from reconstruction": val(stats["recon"], what),
                "from true phase + blur/noise": val(stats["true"], what),
            }
        )
    rows.append(
        {
            "metric": "segment + measure + classify, 4K frame (s)",
            "target": "<= ~1",
            "from reconstruction": "-",
            "from true phase + blur/noise": speed.get("cells_s", float("nan")),
        }
    )
    rows.append(
        {
            "metric": "cells/s (segment + measure + classify)",
            "target": ">= 2500",
            "from reconstruction": "-",
            "from true phase + blur/noise": speed.get("cells_per_s", float("nan")),
        }
    )
    rows.append(
        {
            "metric": "whole 4K frame incl. autofocus + phase (s)",
            "target": "<= 3",
            "from reconstruction": speed.get("frame_s", float("nan")),
            "from true phase + blur/noise": "-",
        }
    )
    return rows


if __name__ == "__main__":
    main()
