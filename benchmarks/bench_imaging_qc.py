"""Benchmark of cells from phase: segmentation, classification, dry mass and speed on 4K frames.

Runs the twin's seeded benchmark set (``biopilot.twin.incubator.benchmark_set``) through
``biopilot.imaging``: each frame is analysed along several paths: the whole pipeline from
the hologram with CellNet, CoreNet and MergeNet (``net``), cut on the sensor's own grid even
where it is coarser than 1.3 um (``net-sensor``), without MergeNet (``net-rule``: the
``h_core`` rule), with CellNet's cores uncorrected (``net-cellnet``, side by side) or with
iterative retrieval (``iterative``), and the
simulator's true phase degraded like a reconstruction (``true``: blur and noise; what the
classifier was trained on), so that a shortfall can be placed in the reconstruction or in
the cell analysis. Prints markdown tables, target against measured.

    python benchmarks/bench_imaging_qc.py [--n 9] [--size 2748x3840] [--seed 0]
        [--paths net,true] [--device cpu|cuda] [--cellnet PATH] [--refine N]
        [--only 2,3] [--calibrated-tilt] [--views 4] [--second-wavelength]

``--second-wavelength`` (with ``--refine``) gives the net path a second hologram of each frame
(``twin.incubator.at_wavelength``, at the far end of the 405-650 nm range from the frame's own
wavelength), as a two-LED sensor records it, combined with the first by ``imaging.dualwave``.
"""

from __future__ import annotations

# isort: off
import biopilot  # noqa: F401  (first: sets OpenMP's wait policy before torch loads)
# isort: on

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

from _util import machine, median_time, print_table
from biopilot.cli.qc_report import spec_default
from biopilot.imaging import analyze_frame, analyze_phase, load_default_classifier, match_labels
from biopilot.imaging.cellnet import load_cellnet, load_default_cellnet
from biopilot.imaging.frame_result import FrameAnalysis
from biopilot.imaging.metrics import score_segmentation
from biopilot.imaging.resample import ANALYSIS_PIXEL_UM
from biopilot.imaging.train import Degradation
from biopilot.twin.incubator import SimulatedFrame, at_wavelength, benchmark_set

# the analyze_frame paths; "true" is apart
#: The release spec's default: frames under it go to review (their phase is not the sample's).
_VOUCHED = spec_default("min_hologram_agreement")
_PATHS = ("net", "net-sensor", "net-rule", "net-cellnet", "iterative")


def main() -> None:
    """Run the benchmark and print one table of targets and one of frames."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=9,
                    help="frames (9 cover pitch 1.12-1.67 um, 405-650 nm, confluence 0-0.8)")
    ap.add_argument("--size", default="2748x3840", help="ROWSxCOLS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", default="net,true",
                    help="net, net-sensor (no resampling to 1.3 um), net-rule (CoreNet, no "
                    "MergeNet), net-cellnet (CellNet's cores "
                    "uncorrected, no MergeNet), iterative, true")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (network and FFTs)")
    ap.add_argument("--cellnet", default=None, help="CellNet weights (default: shipped)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--refine", type=int, default=0, help="net path: phase-fit iterations")
    ap.add_argument("--views", type=int, default=1, help="net path: CellNet test-time views")
    ap.add_argument("--only", default=None, help="frame indices to run, e.g. 2,3")
    ap.add_argument("--calibrated-tilt", action="store_true",
                    help="give the analysis the frame's true tilt, as an instrument calibration")
    ap.add_argument("--second-wavelength", action="store_true",
                    help="net path: a second hologram at 405 or 650 nm, the farther")
    args = ap.parse_args()
    if args.second_wavelength and args.refine == 0:
        ap.error("--second-wavelength needs --refine N (the two fits are combined)")
    rows_px, cols_px = (int(v) for v in args.size.split("x"))
    wanted = args.paths.split(",")
    torch.set_num_threads(args.threads)
    dev = "cuda" if args.device == "cuda" else "cpu"
    clf = load_default_classifier(dev)
    net = load_cellnet(args.cellnet, device=dev) if args.cellnet else load_default_cellnet(dev)
    net = net.fused()
    per_frame: list[dict[str, Any]] = []
    stats = {name: _Acc() for name in wanted}
    speed: dict[str, float] = {}
    t_sim = time.perf_counter()
    only = {int(i) for i in args.only.split(",")} if args.only else None
    n = max(only) + 1 if only else args.n
    for i, frame in enumerate(benchmark_set(seed=args.seed, n=n, size=(rows_px, cols_px))):
        t_sim = time.perf_counter() - t_sim
        if only is not None and i not in only:
            t_sim = time.perf_counter()
            continue
        optics = frame.optics
        paths: dict[str, FrameAnalysis] = {}
        if "true" in wanted:
            degraded = Degradation().apply(frame.phase_rad, np.random.default_rng(args.seed))
            paths["true"] = true_res = analyze_phase(
                degraded,
                wavelength_um=optics.wavelength_um,
                pixel_um=optics.pixel_um,
                classifier=clf,
                background_rad=0.0,
            )
        second: dict[str, Any] = {}
        if args.second_wavelength:
            far = 650.0 if 650.0 - optics.wavelength_nm > optics.wavelength_nm - 405.0 else 405.0
            other = at_wavelength(frame, far, rng=np.random.default_rng([args.seed, i, 2]))
            second = {"second_hologram": other.hologram,
                      "second_wavelength_um": other.optics.wavelength_um}
        for path in _PATHS:
            if path in wanted:
                method = "iterative" if path == "iterative" else "net"
                paths[path] = analyze_frame(
                    frame.hologram,
                    wavelength_um=optics.wavelength_um,
                    pixel_um=optics.pixel_um,
                    z="auto",
                    n_medium=optics.n_medium,
                    classifier=clf,
                    device=args.device,
                    method=method,  # type: ignore[arg-type]
                    cellnet=net,
                    tilt_mrad=frame.scene.tilt_mrad if args.calibrated_tilt else (0.0, 0.0),
                    refine=args.refine,
                    views=args.views,
                    cores="cellnet" if path == "net-cellnet" else "corenet",
                    merge="rule" if path == "net-rule" else "mergenet",
                    analysis_pixel_um=None if path == "net-sensor" else ANALYSIS_PIXEL_UM,
                    **(second if method == "net" else {}),
                )
        for name, res in paths.items():
            row = stats[name].add(frame, res)
            per_frame.append(
                {
                    "frame": frame.name,
                    "phase": name,
                    **row,
                    **res.reconstruction.get("two_wavelengths", {}),
                    "agreement": res.hologram_agreement,
                    "time_s": res.timings_s["total"],
                    **{k: round(v, 2) for k, v in res.timings_s.items() if k != "total"},
                    "sim_s": t_sim,
                }
            )
            print(per_frame[-1], file=sys.stderr, flush=True)
        if "true" in paths and frame.scene.confluence >= 0.6 and "cells_per_s" not in speed:
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
        t_sim = time.perf_counter()
    for method in _PATHS:
        totals = [r["time_s"] for r in per_frame if r["phase"] == method]
        if totals:
            speed[f"frame_s.{method}"] = float(np.median(totals))
    print_table(per_frame)
    print()
    print_table(_targets(stats, speed))
    print(f"\ndevice: {args.device}; torch threads: {args.threads}; {machine()}")


class _Acc:
    """Pooled scores over frames for one phase source."""

    def __init__(self) -> None:
        self.dense: list[dict[str, float]] = []
        self.alive: list[int] = []
        self.diff: list[int] = []
        self.mass = [0.0, 0.0]
        self.vouched = [0.0, 0.0]  # frames whose phase explains their hologram (release spec)
        self.phase_sq = [0.0, 0.0]

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
        mass = (float(pred["dry_mass_pg"].sum()), float(truth["dry_mass_pg"].sum()))
        self.mass[0] += mass[0]
        self.mass[1] += mass[1]
        if not res.hologram_agreement < _VOUCHED:  # NaN (true phase: no hologram) counts
            self.vouched[0] += mass[0]
            self.vouched[1] += mass[1]
        if frame.scene.confluence >= 0.8:
            self.dense.append({"f1": s.f1, "count": s.count_error})
        on_cells = frame.labels > 0
        err = (res.phase_rad - frame.phase_rad)[on_cells]
        thick = (frame.phase_rad > 2 * np.pi)[on_cells]
        self.phase_sq[0] += float(np.sum(err.astype(np.float64) ** 2))
        self.phase_sq[1] += float(err.size)
        return {
            "phase_rmse": float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
            "phase_rmse_thick": float(np.sqrt(np.mean(err[thick] ** 2)))
            if thick.any() else float("nan"),
            "z_err_um": 1e3 * (res.z_mm - frame.z_mm),
            "mass_bias": mass[0] / mass[1] - 1 if mass[1] > 0 else float("nan"),
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
        if what in ("f1", "count"):
            return float(np.mean([d[what] for d in acc.dense])) if acc.dense else float("nan")
        if what in ("alive", "diff"):
            got = getattr(acc, what)
            return float(np.mean(got)) if got else float("nan")
        if what == "phase":
            sq, n = acc.phase_sq
            return float(np.sqrt(sq / n)) if n else float("nan")
        pooled = acc.vouched if what == "vouched" else acc.mass
        return pooled[0] / pooled[1] - 1 if pooled[1] else float("nan")

    rows = []
    for label, target, what in [
        ("segmentation F1 @ IoU 0.5, 80 % confluence", ">= 0.95", "f1"),
        ("count error, 80 % confluence", "<= 0.03", "count"),
        ("live/dead accuracy (matched cells)", ">= 0.95", "alive"),
        ("differentiation accuracy (live stem cells)", ">= 0.90", "diff"),
        ("dry-mass bias (matched cells, pooled)", "abs <= 0.02", "mass"),
        (f"dry-mass bias, frames with hologram agreement >= {_VOUCHED}", "-", "vouched"),
        ("phase RMSE on cells, pooled (rad)", "<= 0.1", "phase"),
    ]:
        rows.append({"metric": label, "target": target,
                     **{name: val(acc, what) for name, acc in stats.items()}})
    rows.append({"metric": "segment + measure + classify from true phase, 4K (s)",
                 "target": "<= ~1", "value": speed.get("cells_s", float("nan"))})
    rows.append({"metric": "cells/s (segment + measure + classify)", "target": ">= 2500",
                 "value": speed.get("cells_per_s", float("nan"))})
    for method in _PATHS:
        if f"frame_s.{method}" in speed:
            rows.append({"metric": f"whole 4K frame, {method}, median (s)", "target": "<= 3",
                         "value": speed[f"frame_s.{method}"]})
    return rows


if __name__ == "__main__":
    main()
