"""CLI: train the imaging networks on the twin's frames, reproducibly from a seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import (
    JSON_OPTION,
    check_device,
    fail,
    print_json,
    print_table,
    progress,
)

# The options every training command shares.
SEED_OPTION = typer.Option(0, "--seed", help="Seed of data, initialisation and batches.")
OUT_OPTION = typer.Option(None, "--out", help="Weights file (default: shipped).")


def train(
    seed: int = SEED_OPTION,
    out: Path | None = OUT_OPTION,
    frames: int = typer.Option(60, "--frames", min=3, help="Frames of degraded true phase."),
    net_frames: int = typer.Option(
        60, "--net-frames", min=0, help="Frames through CellNet (the default pipeline's phase)."
    ),
    iterative_frames: int = typer.Option(
        60, "--iterative-frames", min=0, help="Frames through iterative phase retrieval."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train the cell classifier on simulated frames, reproducibly (1 thread, seeded)."""
    from biopilot.imaging.train import train_classifier

    with progress(enabled=not as_json) as bar:
        task = bar.add_task("simulating training frames",
                            total=frames + net_frames + iterative_frames)
        clf = train_classifier(
            seed, n_frames=frames, n_net_frames=net_frames,
            n_iterative_frames=iterative_frames, out=out,
            on_frame=lambda _i: bar.advance(task),
        )
    meta = clf.metadata_
    if as_json:
        print_json(meta)
    else:
        acc = meta["held_out_accuracy"]
        print_table(
            "cell classifier",
            [
                {
                    "seed": seed,
                    "train_cells": meta["data"]["train_cells"],
                    "live/dead": acc["alive"],
                    "differentiation": acc["differentiated"],
                }
            ],
        )


def train_net(
    seed: int = SEED_OPTION,
    out: Path | None = OUT_OPTION,
    frames: int = typer.Option(1200, "--frames", min=2, help="Simulated training frames."),
    val: int = typer.Option(48, "--val", min=1, help="Held-out frames scored at the end."),
    size: int = typer.Option(512, "--size", min=32, help="Side of each frame, px."),
    steps: int = typer.Option(8000, "--steps", min=100, help="Optimiser steps."),
    batch: int = typer.Option(16, "--batch", min=1, help="Patches per step."),
    patch: int = typer.Option(256, "--patch", min=16, help="Patch side, px (multiple of 16)."),
    lr: float = typer.Option(2e-3, "--lr", min=1e-6, help="Peak learning rate (one cycle)."),
    device: str = typer.Option("cpu", "--device", help="'cpu' or 'cuda'."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes simulating frames."),
    widths: str = typer.Option("16,32,64,96", "--widths", help="Channels per U-Net level."),
    dense_suspension: float = typer.Option(
        0.0, "--dense-suspension", min=0.0, max=1.0,
        help="Share of training frames redrawn as 40-80 % confluent suspensions.",
    ),
    init: str | None = typer.Option(
        None, "--init", help="Fine-tune from these weights ('shipped' for the package's)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train CellNet (hologram -> phase, cells) on simulated frames, reproducibly from a seed.

    The shipped weights were made with this command on a GPU (``--device cuda``, minutes);
    on a 2-core CPU the default takes ~1.5 hours (~0.7 s a step of 16 patches of 256 px).
    """
    from biopilot.imaging.cellnet import default_cellnet_path, save_cellnet
    from biopilot.imaging.cellnet_train import train_cellnet

    check_device(device)
    level_widths = _level_widths(widths)
    start = None
    if init is not None:
        from biopilot.imaging.cellnet import load_cellnet, load_default_cellnet

        try:
            start = load_default_cellnet() if init == "shipped" else load_cellnet(init)
        except (OSError, ValueError) as err:
            fail(f"--init {init}: {err}")
    with progress(enabled=not as_json) as bar:
        task = bar.add_task("training CellNet", total=steps)
        try:
            net, info = train_cellnet(
                seed, n_frames=frames, n_val=val, size=size, steps=steps, batch=batch,
                patch=patch, lr=lr, device=device, workers=workers, widths=level_widths,
                dense_suspension=dense_suspension, init=start,
                progress=lambda step, _loss: bar.update(task, completed=step),
            )
        except ValueError as err:
            fail(str(err))
    path = save_cellnet(net, out or default_cellnet_path(), info.metadata())
    _report("CellNet (held-out frames)", seed, path, info.validation, as_json)


def train_cores(
    seed: int = SEED_OPTION,
    out: Path | None = OUT_OPTION,
    frames: int = typer.Option(480, "--frames", min=2, help="Simulated training frames."),
    val: int = typer.Option(24, "--val", min=1, help="Held-out frames scored at the end."),
    size: int = typer.Option(384, "--size", min=64, help="Side of each frame, px."),
    steps: int = typer.Option(10000, "--steps", min=10, help="Optimiser steps."),
    batch: int = typer.Option(16, "--batch", min=1, help="Patches per step."),
    patch: int = typer.Option(128, "--patch", min=8, help="Patch side, px (multiple of 8)."),
    widths: str = typer.Option("16,32,48", "--widths", help="Channels per U-Net level."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train CoreNet (CellNet's cores, corrected) on the shipped CellNet's answers, from a seed.

    The shipped weights were made with the defaults on a 2-core CPU (4 min simulating, 17
    training). Retrain it after retraining CellNet: it corrects that network's answers.
    """
    import torch

    from biopilot.imaging.cellnet import load_default_cellnet
    from biopilot.imaging.corenet import default_corenet_path, save_corenet
    from biopilot.imaging.corenet_train import corenet_data, train_corenet

    level_widths = _level_widths(widths)
    torch.set_num_threads(min(torch.get_num_threads(), 2))  # the shipped run's arithmetic
    cellnet = load_default_cellnet().fused()
    with progress(enabled=not as_json) as bar:
        try:
            task = bar.add_task("CellNet on training frames", total=frames + val)
            step = lambda _k: bar.advance(task)  # noqa: E731
            data = corenet_data(cellnet, seed, frames, size=size, progress=step)
            held = corenet_data(cellnet, seed + 10000, val, size=size, progress=step)
            task = bar.add_task("training CoreNet", total=steps)
            net, info = train_corenet(
                data, seed=seed, steps=steps, batch=batch, patch=patch, widths=level_widths,
                val=held, progress=lambda k, _loss: bar.update(task, completed=k),
            )
        except ValueError as err:
            fail(str(err))
    command = (f"biopilot qc train-cores --seed {seed} --frames {frames} --val {val} --size "
               f"{size} --steps {steps} --batch {batch} --patch {patch} --widths {widths}")
    path = save_corenet(net, out or default_corenet_path(), {"command": command,
                                                             **info.metadata()})
    _report("CoreNet (held-out frames, cell pixels)", seed, path, info.validation, as_json)


def train_merge(
    seed: int = SEED_OPTION,
    out: Path | None = OUT_OPTION,
    frames: int = typer.Option(200, "--frames", min=2, help="Simulated training frames."),
    val: int = typer.Option(24, "--val", min=1, help="Held-out frames scored at the end."),
    size: int = typer.Option(768, "--size", min=64, help="Side of each frame, px."),
    epochs: int = typer.Option(4, "--epochs", min=1, help="Passes over the contacts per fit."),
    dagger: int = typer.Option(
        2, "--dagger", min=0, help="Refits on the states MergeNet's own merging reaches."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train MergeNet (which touching regions are one cell) on the shipped CellNet and CoreNet.

    The shipped weights were made with the defaults on a 2-core CPU in ~7 minutes.
    Retrain it after retraining CellNet or CoreNet: it reads their maps.
    """
    import torch

    from biopilot.imaging.cellnet import load_default_cellnet
    from biopilot.imaging.corenet import load_default_corenet
    from biopilot.imaging.merge import default_mergenet_path, save_mergenet
    from biopilot.imaging.merge_train import merge_frames, train_mergenet

    torch.set_num_threads(min(torch.get_num_threads(), 2))  # the shipped run's arithmetic
    cellnet, corenet = load_default_cellnet().fused(), load_default_corenet()
    with progress(enabled=not as_json) as bar:
        try:
            task = bar.add_task("CellNet and CoreNet on training frames", total=frames + val)
            step = lambda _k: bar.advance(task)  # noqa: E731
            data = merge_frames(cellnet, corenet, seed, frames, size=size, progress=step)
            held = merge_frames(cellnet, corenet, seed + 10000, val, size=size, progress=step)
            task = bar.add_task("training MergeNet", total=dagger + 1)
            net, info = train_mergenet(data, seed=seed, epochs=epochs, dagger=dagger, val=held,
                                       progress=lambda _s: bar.advance(task))
        except ValueError as err:
            fail(str(err))
    command = (f"biopilot qc train-merge --seed {seed} --frames {frames} --val {val} "
               f"--size {size} --epochs {epochs} --dagger {dagger}")
    path = save_mergenet(net, out or default_mergenet_path(), {"command": command,
                                                               **info.metadata()})
    _report("MergeNet (held-out frames: F1 at IoU 0.5, count error)", seed, path,
            info.validation, as_json)


def _report(title: str, seed: int, path: Path, validation: dict[str, Any],
            as_json: bool) -> None:
    """One row: the seed, where the weights went and how they scored on held-out frames."""
    row = {"seed": seed, "weights": str(path), **validation}
    if as_json:
        print_json(row)
    else:
        print_table(title, [row])


def _level_widths(text: str) -> tuple[int, ...]:
    """``--widths``: channels per U-Net level, as integers separated by commas."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        fail(f"--widths must be integers separated by commas, got {text!r}")
