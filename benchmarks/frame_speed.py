"""Whole-frame speed of ``analyze_frame`` per step, for side-by-side runs of two revisions.

Times the default (CellNet) path on frames of the seeded 4K benchmark set and prints one JSON
line per frame with the step timings. To compare revisions on a shared machine, run the same
command alternately against each source tree, e.g.::

    git worktree add /tmp/old REV
    for rep in 1 2; do
        PYTHONPATH=/tmp/old/src python benchmarks/frame_speed.py --frames 0,1,2,3,4
        python benchmarks/frame_speed.py --frames 0,1,2,3,4
    done

Frames are simulated once and kept in ``--cache`` (pickles) so that both trees see the
same holograms. Each process first analyses a 512 px crop (numba compilation, MKL set-up).
"""

from __future__ import annotations

# isort: off
import biopilot  # first: sets OpenMP's wait policy before torch loads
# isort: on

import argparse
import json
import pickle
import time
from pathlib import Path

import torch

from biopilot.imaging import analyze_frame, load_default_classifier
from biopilot.twin.incubator import SimulatedFrame, benchmark_set


def main() -> None:
    """Analyse the frames and print their timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="0,1,2,3,4", help="indices in benchmark_set(seed=0)")
    ap.add_argument("--cache", default="/tmp/biopilot-bench-frames", help="pickled frames")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wanted = [int(i) for i in args.frames.split(",")]
    clf = load_default_classifier()
    warm = False
    for i in wanted:
        f = _frame(i, Path(args.cache))
        o = f.optics
        if not warm:
            analyze_frame(f.hologram[:512, :512], wavelength_um=o.wavelength_um,
                          pixel_um=o.pixel_um, classifier=clf, z=f.z_mm)
            warm = True
        t0 = time.perf_counter()
        r = analyze_frame(f.hologram, wavelength_um=o.wavelength_um, pixel_um=o.pixel_um,
                          classifier=clf)
        wall = time.perf_counter() - t0
        steps = {k: round(v, 2) for k, v in r.timings_s.items() if k != "reconstruct.refine"}
        print(json.dumps({"tree": str(Path(biopilot.__file__).parents[1]), "frame": i,
                          "cells": r.n_cells, "wall_s": round(wall, 2), **steps}), flush=True)


def _frame(i: int, cache: Path) -> SimulatedFrame:
    """Frame ``i`` of the benchmark set, simulated once (with the frames before it) and kept."""
    path = cache / f"bench_0_{i}.pkl"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        for j, frame in enumerate(benchmark_set(seed=0, n=i + 1)):
            other = cache / f"bench_0_{j}.pkl"
            if not other.is_file():
                with other.open("wb") as fh:
                    pickle.dump(frame, fh, protocol=5)
    with path.open("rb") as fh:
        kept: SimulatedFrame = pickle.load(fh)
    return kept


if __name__ == "__main__":
    main()
