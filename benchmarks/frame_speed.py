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
Redirect the lines to a file and ``--summary FILE`` prints the median per step and tree, and
the median ratio per frame (first tree over the others). ``--cores cellnet`` times the path
without CoreNet (alternate it with the default in one tree to see what CoreNet costs), and
``--merge rule`` the path without MergeNet (the ``h_core`` rule alone).
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
from typing import Any

import numpy as np
import torch

from _util import print_table
from biopilot.imaging import analyze_frame, load_default_classifier
from biopilot.twin.incubator import SimulatedFrame, benchmark_set


def main() -> None:
    """Analyse the frames and print their timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="0,1,2,3,4", help="indices in benchmark_set(seed=0)")
    ap.add_argument("--cache", default="/tmp/biopilot-bench-frames", help="pickled frames")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cores", default="corenet", help="corenet (default) or cellnet")
    ap.add_argument("--merge", default="mergenet", help="mergenet (default) or rule")
    ap.add_argument("--summary", type=Path, default=None, help="summarise these JSON lines")
    args = ap.parse_args()
    if args.summary is not None:
        _summary([json.loads(line) for line in args.summary.read_text().splitlines() if line])
        return
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
                          classifier=clf, cores=args.cores, merge=args.merge)
        wall = time.perf_counter() - t0
        steps = {k: round(v, 2) for k, v in r.timings_s.items() if k != "reconstruct.refine"}
        tree = f"{Path(biopilot.__file__).parents[1]} ({args.cores}, {args.merge})"
        print(json.dumps({"tree": tree, "frame": i,
                          "cells": r.n_cells, "wall_s": round(wall, 2), **steps}), flush=True)


def _summary(rows: list[dict[str, Any]]) -> None:
    """Median seconds per step and tree, then per frame and the ratio to the first tree."""
    trees = list(dict.fromkeys(r["tree"] for r in rows))
    steps = [k for k in rows[0] if k not in ("tree", "frame", "cells", "total")]
    table = []
    for t in trees:
        mine = [r for r in rows if r["tree"] == t]
        table.append({"tree": t, "runs": len(mine),
                      **{k: float(np.median([r.get(k, np.nan) for r in mine])) for k in steps}})
    print_table(table)
    frames = sorted({r["frame"] for r in rows})
    per = []
    for i in frames:
        wall = [float(np.median([r["wall_s"] for r in rows if r["tree"] == t and r["frame"] == i]))
                for t in trees]
        per.append({"frame": i, **dict(zip(trees, wall, strict=True)),
                    **{f"ratio to {t}": wall[0] / w for t, w in zip(trees[1:], wall[1:],
                                                                     strict=True)}})
    print_table(per)


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
