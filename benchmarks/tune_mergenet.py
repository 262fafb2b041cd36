"""How MergeNet scores: F1, count error and dry-mass bias on 24 tuning frames, against the rule.

The frames are those of ``tune_corenet.py`` (24 of 768 px, seed 97: streams 900-917 over
three scenarios at 80 / 60 / 30 % confluence and 900 + 50-55 at 80 %, random optics, the
autofocus's error drawn), apart from the benchmark (seed 0) and from MergeNet's training
frames. Each frame goes once through the shipped CellNet and CoreNet (``predict_maps``, as in
the pipeline) and is kept in ``--cache``. For each weights file given (default: the shipped
MergeNet) it prints, per scenario and confluence, the mean F1 at IoU 0.5 and mean absolute
count error of the ``h_core`` rule and of MergeNet at each ``--thresholds``, then the 16
adherent and stem-cell frames' pooled dry-mass bias of matched cells (no mass margin, as the
net path measures). Session 14 chose the threshold with it (RESULTS.md)::

    python benchmarks/tune_mergenet.py [WEIGHTS.pt ...] [--thresholds 0.3,0.5]
"""

from __future__ import annotations

# isort: off
import biopilot  # noqa: F401  (first: sets OpenMP's wait policy before torch loads)
# isort: on

import argparse
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _util import print_table, tuning_fields
from biopilot.imaging import (
    load_default_cellnet,
    match_labels,
    measure_cells,
    merge_cells,
    predict_maps,
    score_segmentation,
    segment_maps,
)
from biopilot.imaging.corenet import load_default_corenet
from biopilot.imaging.merge import default_mergenet_path, load_mergenet

SCENARIOS = ("stem_cell", "adherent", "suspension")


def main() -> None:
    """Build or read the frames, cut each with the rule and each MergeNet, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="*", type=Path, help="MergeNet files (default: shipped)")
    ap.add_argument("--thresholds", default="0.3,0.4,0.5")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/biopilot-tune-mergenet.pkl"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    frames = _frames(args.cache)
    cuts: list[tuple[str, Any, float]] = [("rule", None, 0.0)]
    for w in args.weights or [default_mergenet_path()]:
        net = load_mergenet(w)
        cuts += [(f"{w.name} {t}", net, float(t)) for t in args.thresholds.split(",")]
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in cuts}
    mass = {name: [0.0, 0.0] for name, _, _ in cuts}
    for fr in frames:
        m = fr["maps"]
        fine = segment_maps(m.foreground, m.core, pixel_um=fr["px"], h_core=0.0)
        for name, net, t in cuts:
            lab = (segment_maps(m.foreground, m.core, pixel_um=fr["px"]) if net is None else
                   merge_cells(fine, m.foreground, m.core, m.phase_rad, pixel_um=fr["px"],
                               net=net, threshold=t))
            s = score_segmentation(fr["labels"], lab)
            scores[name].append((s.f1, s.count_error))
            if fr["sc"] != "suspension":
                got, want = _matched_mass(fr, lab)
                mass[name][0] += got
                mass[name][1] += want
    table = []
    for sc in SCENARIOS:
        for cf in (0.8, 0.6, 0.3):
            idx = [i for i, fr in enumerate(frames) if fr["sc"] == sc and fr["cf"] == cf]
            table.append({"frames": f"{sc} {cf:.0%} ({len(idx)})",
                          **{name: _mean(rows, idx) for name, rows in scores.items()}})
    dense = [i for i, fr in enumerate(frames) if fr["sc"] != "suspension"]
    table.append({"frames": "adherent + stem (16)",
                  **{name: _mean(rows, dense) for name, rows in scores.items()}})
    table.append({"frames": "all (24)", **{name: _mean(rows, range(len(frames)))
                                           for name, rows in scores.items()}})
    table.append({"frames": "dry-mass bias, matched cells (16)",
                  **{name: f"{a / b - 1:+.1%}" for name, (a, b) in mass.items()}})
    print_table(table)


def _mean(rows: list[tuple[float, float]], idx: Any) -> str:
    f1, err = np.mean([rows[i] for i in idx], axis=0)
    return f"{f1:.4f} / {err:.1%}"


def _matched_mass(fr: dict[str, Any], labels: np.ndarray) -> tuple[float, float]:
    """Dry mass of the found cells matched at IoU 0.5 and of their true cells, pg."""
    t, p, _ = match_labels(fr["labels"], labels)
    cells = measure_cells(fr["maps"].phase_rad, labels, pixel_um=fr["px"],
                          wavelength_um=fr["wl"], background_rad=0.0, mass_margin_px=0)
    got = float(cells.set_index("label").loc[p, "dry_mass_pg"].sum())
    return got, float(fr["cells"].set_index("label").loc[t, "dry_mass_pg"].sum())


def _frames(cache: Path) -> list[dict[str, Any]]:
    """The 24 tuning frames with the default path's maps (built once, then read)."""
    if cache.exists():
        with cache.open("rb") as fh:
            return list(pickle.load(fh))
    net, cores = load_default_cellnet().fused(), load_default_corenet()
    out = []
    for t in tuning_fields():
        f, field = t.pop("frame"), t.pop("field")
        out.append({**t, "maps": predict_maps(net, field, cores=cores), "labels": f.labels,
                    "cells": f.cells})
    with cache.open("wb") as fh:
        pickle.dump(out, fh)
    return out


if __name__ == "__main__":
    main()
