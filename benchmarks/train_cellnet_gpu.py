"""Train CellNet on a GPU within a time budget and save it (the device run behind the weights).

Simulates the training frames in all CPU cores, times 200 steps of a probe, then trains for as many
steps as fit ``--budget-s`` (rounded to 100) and writes the weights with their metadata.
The same network comes from ``biopilot qc train-net --seed S --frames F --steps N --batch B
--device cuda`` with the printed figures.

    python benchmarks/train_cellnet_gpu.py --out DIR [--seed 0] [--frames 1600] [--budget-s 210]
        [--dense-suspension 0.3] [--init shipped] [--widths 16,32,64,96] [--lr 2e-3]

Session 11 found the shipped network at its capacity (no gain from 4,000 more CPU steps; no
overfitting): a wider one (``--widths 24,48,96,144``) is the experiment for a GPU run, if its
CPU frame time can stay near the 3 s budget (CellNet is ~0.95 of 2.15 s now).

After a new CellNet, retrain what reads its answers, on a CPU, in this order: copy
``cellnet.pt`` and ``cellnet.json`` into ``src/biopilot/imaging/weights/``, then run
``biopilot qc train-cores --seed 0`` (CoreNet, ~21 min), ``biopilot qc train-merge --seed 0``
(MergeNet, ~7 min) and ``biopilot qc train --seed 0`` (the cell classifier, minutes), then
``benchmarks/tune_mergenet.py`` and ``benchmarks/bench_imaging_qc.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

import torch

from biopilot.imaging.cellnet import load_cellnet, load_default_cellnet, save_cellnet
from biopilot.imaging.cellnet_data import make_training_data
from biopilot.imaging.cellnet_train import train_cellnet


def main() -> None:
    """Simulate, probe, train, save; print one JSON line per stage."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=1600)
    ap.add_argument("--val", type=int, default=48)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--budget-s", type=float, default=210.0)
    ap.add_argument("--max-steps", type=int, default=40000)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dense-suspension", type=float, default=0.0,
                    help="share of frames redrawn as 40-80 %% confluent suspensions")
    ap.add_argument("--init", default=None, help="fine-tune these weights ('shipped')")
    ap.add_argument("--widths", default="16,32,64,96", help="channels per U-Net level")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    args = ap.parse_args()
    widths = tuple(int(w) for w in args.widths.split(","))
    start = None
    if args.init is not None:
        start = load_default_cellnet() if args.init == "shipped" else load_cellnet(args.init)
    torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    workers = os.cpu_count() or 1
    data = (
        make_training_data(args.seed, args.frames, workers=workers,
                           dense_suspension=args.dense_suspension),
        make_training_data(args.seed, args.val, workers=workers, start=args.frames,
                           dense_suspension=args.dense_suspension),
    )
    print(json.dumps({"stage": "data", "s": round(time.perf_counter() - t0, 1)}), flush=True)
    # Time steps 100-300 of a probe run through its progress calls: the run's own total also
    # holds cuDNN's warm-up and the validation, which once made the probe 7x too slow.
    marks: dict[int, float] = {}
    # The probe trains a copy: ``init`` is trained in place, and the run must start from the
    # given weights for its recorded command to make the same network.
    train_cellnet(args.seed, steps=300, batch=args.batch, device=args.device,
                  data=(data[0], data[1]), init=copy.deepcopy(start), widths=widths, lr=args.lr,
                  progress=lambda s, _loss: marks.__setitem__(s, time.perf_counter()))
    per_step = (marks[300] - marks[100]) / 200
    steps = max(100, int(min(args.max_steps, args.budget_s / per_step) // 100 * 100))
    print(json.dumps({"stage": "probe", "s_per_step": per_step, "steps": steps}), flush=True)
    net, info = train_cellnet(
        args.seed, steps=steps, batch=args.batch, device=args.device, data=data, init=start,
        widths=widths, lr=args.lr,
        dense_suspension=args.dense_suspension,  # (the data has it; recorded in the metadata)
        progress=lambda s, loss: print(json.dumps({"step": s, **loss}), flush=True)
        if s % 1000 == 0 else None,
    )
    meta = info.metadata() | {"n_frames": args.frames, "command": (
        f"biopilot qc train-net --seed {args.seed} --frames {args.frames} --steps {steps} "
        f"--batch {args.batch} --lr {args.lr} --widths {args.widths} --device {args.device}"
        + (f" --dense-suspension {args.dense_suspension}" if args.dense_suspension else "")
        + (f" --init {args.init}" if args.init else ""))}
    path = save_cellnet(net, os.path.join(args.out, "cellnet.pt"), meta)
    print(json.dumps({"stage": "trained", "weights": str(path), **meta}), flush=True)


if __name__ == "__main__":
    main()
