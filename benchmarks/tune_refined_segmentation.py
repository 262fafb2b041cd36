"""Which cells to take from a refined phase: F1 on frames apart from the benchmark and training.

Simulates 18 frames of 768 px (seed 97; the benchmark uses seed 0, CellNet's training its own
seeds) over the three scenarios at 30, 60 and 80 % confluence with random optics, runs the
shipped CellNet and the phase fit (:func:`~biopilot.imaging.refine_phase`, 30 iterations),
then scores at IoU 0.5: CellNet's maps (``segment_maps``, the default) against the phase
watershed (``segment_cells``) of the refined phase, for a few of its settings.

Session 9 (mean F1 / count error; stem cells, adherent, suspension, all): maps 0.698 / 0.885 /
0.346, 0.643 (count 21 %); phase watershed, defaults 0.727 / 0.935 / 0.322, 0.661 (34 %);
markers smoothed 1.5 um 0.765 / 0.945 / 0.346, 0.686 (18 %); and with cells of 35 um2 at least
(as ``segment_maps``) 0.767 / 0.947 / 0.352, **0.689** (17 %), which ``analyze_frame(refine=N)``
uses. Stem cells at 80 % stay close (maps 0.632, phase 0.620, two frames); dense suspensions
fail either way (the network's phase of their thick cells is a whole turn off).

    python benchmarks/tune_refined_segmentation.py
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

from _util import print_table
from biopilot.imaging import (
    backpropagate,
    load_default_cellnet,
    predict_maps,
    refine_phase,
    segment_cells,
    segment_maps,
)
from biopilot.imaging.cellnet_data import random_setup
from biopilot.imaging.metrics import score_segmentation
from biopilot.imaging.recon_input import normalize_illumination
from biopilot.twin.incubator import simulate_frame

SCENARIOS = ("stem_cell", "adherent", "suspension")
CONFLUENCE = (0.8, 0.6, 0.3)
VARIANTS = {
    "cells, defaults": {},
    "cells, h 0.05": {"h_rad": 0.05},
    "cells, marker 1.25 um": {"marker_smooth_um": 1.25},
    "cells, marker 1.5 um": {"marker_smooth_um": 1.5},
    "cells, marker 2 um": {"marker_smooth_um": 2.0},
    "cells, marker 1.5 um, 35 um2": {"marker_smooth_um": 1.5, "min_area_um2": 35.0},
}


def main() -> None:
    """Simulate, predict and refine once per frame, score each segmentation, print a table."""
    torch.set_num_threads(2)
    net = load_default_cellnet().fused()
    rows = []
    for i in range(18):
        rng = np.random.default_rng([97, 900 + i])
        optics, scene = random_setup(rng, 768)
        scene = scene.model_copy(update={"scenario": SCENARIOS[i % 3],
                                         "confluence": CONFLUENCE[(i // 3) % 3]})
        f = simulate_frame(optics, scene, rng=rng)
        o = {"wavelength_um": optics.wavelength_um, "pixel_um": optics.pixel_um,
             "n_medium": optics.n_medium}
        rel = normalize_illumination(f.hologram)[0]
        z = f.z_mm + rng.normal(0.0, 2e-3)  # an autofocus-sized error
        maps = predict_maps(net, backpropagate(f.hologram, z, relative=rel, **o))
        support = ndi.binary_dilation(maps.foreground >= 0.5, iterations=2)
        fit = refine_phase(f.hologram, maps.phase_rad, support, z, n_iter=30, relative=rel, **o)
        row = {"scenario": scene.scenario, "confluence": scene.confluence}
        lab = segment_maps(maps.foreground, maps.core, pixel_um=optics.pixel_um)
        s = score_segmentation(f.labels, lab)
        row["maps F1"], row["maps count"] = s.f1, s.count_error
        for name, kw in VARIANTS.items():
            s = score_segmentation(f.labels, segment_cells(fit.phase_rad, pixel_um=optics.pixel_um,
                                                           **kw))
            row[f"{name} F1"], row[f"{name} count"] = s.f1, s.count_error
        rows.append(row)
        print(row, flush=True)
    print_table(rows)
    keys = [k for k in rows[0] if k.endswith(("F1", "count"))]
    summary = []
    for sc in SCENARIOS:
        sel = [r for r in rows if r["scenario"] == sc]
        summary.append({"scenario": sc, **{k: float(np.mean([r[k] for r in sel])) for k in keys}})
    summary.append({"scenario": "all", **{k: float(np.mean([r[k] for r in rows])) for k in keys}})
    print()
    print_table(summary)


if __name__ == "__main__":
    main()
