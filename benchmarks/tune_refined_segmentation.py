"""Which cells to take from a refined phase: F1 on frames apart from the benchmark and training.

Simulates 18 frames of 768 px (seed 97; the benchmark uses seed 0, CellNet's training its own
seeds) over the three scenarios at 30, 60 and 80 % confluence with random optics, runs
``analyze_frame(refine=30)`` (the phase fit, :func:`~biopilot.imaging.refine_phase`, from a
distance 2 um off on average), then scores at IoU 0.5 the cells it returns, the networks' cut
(CoreNet and MergeNet since session 17), against the phase watershed (``segment_cells``) of
the same fitted phase, for a few of its settings. Dry mass is measured on the fitted phase
with the pipeline's 2 px margin either way.

Session 9 (mean F1 / count error; stem cells, adherent, suspension, all): maps 0.698 / 0.885 /
0.346, 0.643 (count 21 %); phase watershed, defaults 0.727 / 0.935 / 0.322, 0.661 (34 %);
markers smoothed 1.5 um 0.765 / 0.945 / 0.346, 0.686 (18 %); and with cells of 35 um2 at least
(as ``segment_maps``) 0.767 / 0.947 / 0.352, **0.689** (17 %), which ``analyze_frame(refine=N)``
uses. Stem cells at 80 % stay close (maps 0.632, phase 0.620, two frames); dense suspensions
fail either way (the network's phase of their thick cells is a whole turn off).

Session 10, ``--second-wavelength`` (mean F1 / count error; stem cells, adherent, suspension,
all): maps 0.698 / 0.885 / 0.346, 0.643 (21 %); phase watershed, defaults 0.870 / 0.962 / 0.329,
0.721 (22 %); markers smoothed 1.25 um 0.866 / 0.961 / 0.346, **0.7245** (19 %), which the
two-LED path uses; the one-LED setting (1.5 um, 35 um2) 0.847 / 0.959 / 0.360, 0.722 (17 %);
cells of 35 um2 at least 0.868 / 0.965 / 0.338, 0.7235 (16 %). Dense suspensions still fail
(CellNet's phase of them is no start). Dry mass of the matched cells (stem cells, adherent):
maps -1.7 / -2.9 %, markers 1.25 um -3.4 / -4.7 %, without the edge trim -1.5 / -1.8 % but F1
0.828 / 0.926; growing the cells 4 or 6 px instead of 2 for the mass changes it by < 0.03 %.

Sessions 9 and 10 compared CellNet's maps with the ``h_core`` rule (no CoreNet, no MergeNet:
"maps" above), and the phase watershed won; the pipeline cut refined frames by it until
session 17. Session 17: see ``benchmarks/RESULTS.md``.

With ``--second-wavelength`` the refined phase is that of two LEDs
(:func:`~biopilot.imaging.dualwave.refine_two_wavelengths`, the second at the far end of 405-650
nm from the frame's own wavelength, as ``bench_imaging_qc.py`` draws it).

    python benchmarks/tune_refined_segmentation.py [--second-wavelength]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from _util import print_table
from biopilot.imaging import analyze_frame, load_default_classifier, segment_cells
from biopilot.imaging.cellnet_data import random_setup
from biopilot.imaging.features import measure_cells
from biopilot.imaging.metrics import match_labels, score_segmentation
from biopilot.twin.incubator import SimulatedFrame, at_wavelength, simulate_frame

SCENARIOS = ("stem_cell", "adherent", "suspension")
CONFLUENCE = (0.8, 0.6, 0.3)
VARIANTS = {
    "phase watershed, defaults": {},
    "phase watershed, marker 1.25 um (two LEDs until session 17)": {"marker_smooth_um": 1.25},
    "phase watershed, marker 1.5 um, 35 um2 (one LED until session 17)":
        {"marker_smooth_um": 1.5, "min_area_um2": 35.0},
}


def main() -> None:
    """Simulate and analyse once per frame, score each segmentation, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--second-wavelength", action="store_true",
                    help="refine with a second LED at the far end of 405-650 nm")
    args = ap.parse_args()
    torch.set_num_threads(2)
    clf = load_default_classifier()
    rows = []
    for i in range(18):
        rng = np.random.default_rng([97, 900 + i])
        optics, scene = random_setup(rng, 768)
        scene = scene.model_copy(update={"scenario": SCENARIOS[i % 3],
                                         "confluence": CONFLUENCE[(i // 3) % 3]})
        f = simulate_frame(optics, scene, rng=rng)
        o = {"wavelength_um": optics.wavelength_um, "pixel_um": optics.pixel_um,
             "n_medium": optics.n_medium}
        z = f.z_mm + rng.normal(0.0, 2e-3)  # an autofocus-sized error
        second = {}
        if args.second_wavelength:
            nm = optics.wavelength_nm
            far = 650.0 if 650.0 - nm > nm - 405.0 else 405.0
            other = at_wavelength(f, far, rng=np.random.default_rng([97, 900 + i, 2]))
            second = {"second_hologram": other.hologram, "second_wavelength_um": far * 1e-3}
        res = analyze_frame(f.hologram, z=z, refine=30, classifier=clf, **o, **second)
        row = {"scenario": scene.scenario, "confluence": scene.confluence}
        s = score_segmentation(f.labels, res.labels)
        row["networks' cut F1"], row["networks' cut count"] = s.f1, s.count_error
        row["networks' cut mass"] = _mass_bias(f, res.labels, res.phase_rad)
        for name, kw in VARIANTS.items():
            lab = segment_cells(res.phase_rad, pixel_um=optics.pixel_um, **kw)
            s = score_segmentation(f.labels, lab)
            row[f"{name} F1"], row[f"{name} count"] = s.f1, s.count_error
            row[f"{name} mass"] = _mass_bias(f, lab, res.phase_rad)
        rows.append(row)
        print(row, flush=True)
    print_table(rows)
    keys = [k for k in rows[0] if k.endswith(("F1", "count", "mass"))]
    summary = []
    for sc in SCENARIOS:
        sel = [r for r in rows if r["scenario"] == sc]
        summary.append({"scenario": sc, **{k: float(np.mean([r[k] for r in sel])) for k in keys}})
    summary.append({"scenario": "all", **{k: float(np.mean([r[k] for r in rows])) for k in keys}})
    print()
    print_table(summary)


def _mass_bias(f: SimulatedFrame, labels: np.ndarray, phase: np.ndarray) -> float:
    """Dry mass of the matched cells (``measure_cells``, as the pipeline) against the truth's."""
    t, p, _ = match_labels(f.labels, labels)
    if len(t) == 0:
        return float("nan")
    got = measure_cells(phase, labels, pixel_um=f.optics.pixel_um,
                        wavelength_um=f.optics.wavelength_um,
                        background_rad=0.0).set_index("label").loc[p, "dry_mass_pg"].sum()
    want = f.cells.set_index("label").loc[t, "dry_mass_pg"].sum()
    return float(got / want - 1.0)


if __name__ == "__main__":
    main()
