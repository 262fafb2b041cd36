"""How a CoreNet scores: F1 and count error on 24 tuning frames, against CellNet's own cores.

The frames are apart from the benchmark (seed 0) and from CoreNet's training frames: 24 of
768 px, seed 97 (streams 900-917 over three scenarios at 80 / 60 / 30 % confluence, and
900 + 50-55 at 80 %), random optics, the autofocus's error drawn (2 um). The shipped CellNet
runs once per frame and its folded input and answer are kept in ``--cache`` (a pickle), so
each CoreNet file is scored in seconds. For each weights file given (default: the shipped
CoreNet) and for CellNet's cores alone, it prints the mean F1 at IoU 0.5 and the mean absolute
count error per scenario and confluence at the default cut, then the 16 adherent and
stem-cell frames and all 24 for each cut of the grid (``core_threshold`` / ``h_core``).
Sessions 12-13 chose and compared CoreNets with it (RESULTS.md)::

    python benchmarks/tune_corenet.py [WEIGHTS.pt ...] [--cache /tmp/biopilot-tune-corenet.pkl]
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
from biopilot.imaging import load_default_cellnet, segment_maps
from biopilot.imaging.cellnet_io import fold_view
from biopilot.imaging.corenet import CORE, default_corenet_path, load_corenet
from biopilot.imaging.metrics import score_segmentation

SCENARIOS = ("stem_cell", "adherent", "suspension")
CUTS = ((0.4, 0.05), (0.4, 0.0), (0.4, 0.1), (0.4, 0.15), (0.3, 0.05), (0.5, 0.05))


def main() -> None:
    """Build or read the frames, score each CoreNet, print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="*", type=Path, help="CoreNet files (default: shipped)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/biopilot-tune-corenet.pkl"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    frames = _frames(args.cache)
    fold_out = torch.nn.PixelShuffle(2)
    results: dict[str, list[list[tuple[float, float]]]] = {}
    for weights in [None, *(args.weights or [default_corenet_path()])]:
        net = None if weights is None else load_corenet(weights).float()
        name = "CellNet's cores" if weights is None else str(weights.name)
        rows = results.setdefault(name, [])
        for fr in frames:
            x, y = torch.from_numpy(fr["x"])[None], torch.from_numpy(fr["y"])[None]
            with torch.inference_mode():
                if net is not None:
                    y = y.clone()
                    y[:, CORE] += net(x.contiguous(memory_format=torch.channels_last), y)
                maps = torch.sigmoid(fold_out(y))[0].numpy()
            cuts = CUTS[:1] if net is None else CUTS
            scores = [score_segmentation(fr["labels"], segment_maps(
                maps[1], maps[2], pixel_um=fr["px"], core_threshold=c, h_core=h))
                for c, h in cuts]
            rows.append([(s.f1, abs(s.count_error)) for s in scores])
    groups = [(sc, cf) for sc in SCENARIOS for cf in (0.8, 0.6, 0.3)]
    table = []
    for sc, cf in groups:
        idx = [i for i, fr in enumerate(frames) if fr["sc"] == sc and fr["cf"] == cf]
        row: dict[str, Any] = {"frames": f"{sc} {cf:.0%} ({len(idx)})"}
        for name, rows in results.items():
            f1, err = np.mean([rows[i][0] for i in idx], axis=0)
            row[name] = f"{f1:.3f} / {err:.1%}"
        table.append(row)
    print_table(table)
    dense = [i for i, fr in enumerate(frames) if fr["sc"] != "suspension"]
    grid = []
    for name, rows in results.items():
        for k, (c, h) in enumerate(CUTS[: len(rows[0])]):
            grid.append({"cores": name, "core": c, "h": h,
                         "adherent + stem (16)": _mean(rows, dense, k),
                         "all (24)": _mean(rows, range(len(frames)), k)})
    print_table(grid)


def _mean(rows: list[list[tuple[float, float]]], idx: Any, k: int) -> str:
    f1, err = np.mean([rows[i][k] for i in idx], axis=0)
    return f"{f1:.4f} / {err:.1%}"


def _frames(cache: Path) -> list[dict[str, Any]]:
    """The 24 tuning frames with CellNet's folded input and answer (built once, then read)."""
    if cache.exists():
        with cache.open("rb") as fh:
            return list(pickle.load(fh))
    net = load_default_cellnet().fused()
    out = []
    for t in tuning_fields():
        u = t["field"]
        x = torch.from_numpy(fold_view(u, u.shape)).permute(2, 0, 1)[None].contiguous()
        with torch.inference_mode():
            y = net.body(x)  # the fused network's phase carries its gain, as CoreNet reads it
        out.append({"sc": t["sc"], "cf": t["cf"], "px": t["px"],
                    "x": x[0].numpy(), "y": y[0].numpy(), "labels": t["frame"].labels})
    with cache.open("wb") as fh:
        pickle.dump(out, fh)
    return out


if __name__ == "__main__":
    main()
