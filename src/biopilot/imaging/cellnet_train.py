"""Train CellNet on the twin's holograms: reproducible from a seed, on CPU or CUDA."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional as F

from biopilot.imaging.cellnet import CellNet
from biopilot.imaging.cellnet_data import CellNetData, make_training_data

__all__ = ["CellNetTraining", "calibrate_phase_gain", "evaluate_cellnet", "train_cellnet"]

#: Weight of cell pixels in the phase loss (cells are what is measured; the medium is most).
_CELL_WEIGHT = 4.0


@dataclass
class CellNetTraining:
    """How a network was trained and how it scored on held-out frames."""

    seed: int
    n_frames: int
    size: int
    steps: int
    batch: int
    patch: int
    device: str
    widths: tuple[int, ...] = (16, 32, 64, 96)
    dense_suspension: float = 0.0
    fine_tuned: bool = False
    lr: float = 2e-3
    seconds: float = 0.0
    phase_gain: float = 1.0
    history: list[dict[str, float]] = field(default_factory=list)
    validation: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Plain-data summary saved beside the weights."""
        return {
            "seed": self.seed, "n_frames": self.n_frames, "size": self.size,
            "steps": self.steps, "batch": self.batch, "patch": self.patch,
            "device": self.device, "seconds": round(self.seconds, 1),
            "widths": list(self.widths), "dense_suspension": self.dense_suspension,
            "fine_tuned": self.fine_tuned, "lr": self.lr,
            "validation": self.validation, "phase_gain": self.phase_gain,
        }


def train_cellnet(
    seed: int = 0,
    *,
    n_frames: int = 1200,
    n_val: int = 48,
    size: int = 512,
    steps: int = 8000,
    batch: int = 16,
    patch: int = 256,
    lr: float = 2e-3,
    widths: tuple[int, ...] = (16, 32, 64, 96),
    device: str = "cpu",
    workers: int = 1,
    dense_suspension: float = 0.0,
    data: tuple[CellNetData, CellNetData] | None = None,
    init: CellNet | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> tuple[CellNet, CellNetTraining]:
    """Simulate a training set and fit a :class:`CellNet` to it.

    Parameters
    ----------
    seed : int
        Seeds the frames (:func:`~biopilot.imaging.cellnet_data.training_frame`), the
        initial weights and the batches: the same seed and device give the same network.
    n_frames, n_val : int
        Training and held-out frames (held-out frames follow the training ones).
    size : int
        Side of each simulated frame, px.
    steps, batch, patch : int
        Optimiser steps, patches per step and patch side (random crops, flips, rotations).
    lr : float
        Peak learning rate of the one-cycle schedule (AdamW).
    widths : tuple of int
        Channels per U-Net level.
    device : str
        ``"cpu"`` or ``"cuda"`` (bf16 autocast there); the data live on it.
    workers : int
        Processes simulating frames.
    dense_suspension : float
        Share of the training frames redrawn as suspensions at 40-80 % confluence (see
        :func:`~biopilot.imaging.cellnet_data.random_setup`); the held-out frames keep the
        plain draw, so validation figures stay comparable.
    data : (train, validation), optional
        Pre-made data (skips the simulation).
    init : CellNet, optional
        Network to start from (fine-tuning; ``widths`` is then ignored); trained in place.
    progress : callable, optional
        Called as ``progress(step, losses)`` every 100 steps.

    Returns
    -------
    (CellNet, CellNetTraining)
    """
    if patch % 16 or patch > size:
        raise ValueError(f"patch must be a multiple of 16 and <= size ({size}), got {patch}")
    t0 = time.perf_counter()
    if data is None:
        data = (
            make_training_data(seed, n_frames, size=size, workers=workers,
                               dense_suspension=dense_suspension),
            make_training_data(seed, n_val, size=size, workers=workers, start=n_frames),
        )
    train, val = data
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dev = torch.device(device)
    tensors = _to_device(train, dev)
    net = (init if init is not None else CellNet(widths)).to(dev)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    info = CellNetTraining(seed, len(train), train.x.shape[-1], steps, batch, patch, device,
                           widths=tuple(net.widths), dense_suspension=dense_suspension,
                           fine_tuned=init is not None, lr=lr)
    running: dict[str, float] = {}
    net.train()
    for step in range(1, steps + 1):
        x, target = _batch(tensors, batch, patch, gen)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            y = net(x.contiguous(memory_format=torch.channels_last)).float()
        losses = _losses(y, target)
        loss = losses["phase"] + losses["foreground"] + losses["core"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if step % 100 == 0:
            mean = {k: v / 100 for k, v in running.items()}
            info.history.append({"step": float(step), **mean})
            if progress is not None:
                progress(step, mean)
            running = {}
    net.eval()
    info.phase_gain = calibrate_phase_gain(net, val, device=device)
    info.validation = evaluate_cellnet(net, val, device=device)
    info.seconds = time.perf_counter() - t0
    net.metadata_ = info.metadata()
    return net, info


def calibrate_phase_gain(
    net: CellNet, data: CellNetData, *, device: str = "cpu"
) -> float:
    """Set ``net.phase_gain`` so that the phase summed over cells matches on held-out frames.

    An L1-trained regression shrinks uncertain cell phase towards the medium's 0: the
    network reads the dry mass of cells (phase summed over a cell) ~3 % low on frames apart
    from its training. The gain is the median over frames of true / predicted phase summed
    over the true cells (the median: frames the network cannot split, dense suspensions,
    would pull a pooled ratio). The validation frames of :func:`train_cellnet` are used,
    so the same command gives the same gain; it is saved with the weights.

    Returns
    -------
    float
        The gain now on the network (1.0 if no frame has cells).
    """
    net.phase_gain.fill_(1.0)
    ratios = []
    for i, y in _outputs(net, data, device):
        cells = data.foreground[i].astype(bool)
        pred = float(y[0][cells].sum())
        if cells.any() and pred > 0:
            ratios.append(float(data.phase[i][cells].astype(np.float64).sum()) / pred)
    gain = float(np.median(ratios)) if ratios else 1.0
    net.phase_gain.fill_(gain)
    return gain


def evaluate_cellnet(net: CellNet, data: CellNetData, *, device: str = "cpu") -> dict[str, float]:
    """Phase RMSE on cells (rad), foreground IoU and core MAE over whole held-out frames."""
    sq, n_cell, inter, union, core_err, n_px = 0.0, 0, 0, 0, 0.0, 0
    for i, y in _outputs(net, data, device):
        fg_true = data.foreground[i].astype(bool)
        fg = y[1] > 0.0
        sq += float(((y[0] - data.phase[i].astype(np.float32))[fg_true] ** 2).sum())
        n_cell += int(fg_true.sum())
        inter += int((fg & fg_true).sum())
        union += int((fg | fg_true).sum())
        core = 1.0 / (1.0 + np.exp(-y[2]))
        core_err += float(np.abs(core - data.core[i].astype(np.float32)).sum())
        n_px += fg_true.size
    return {
        "phase_rmse_cells_rad": math.sqrt(sq / max(n_cell, 1)),
        "foreground_iou": inter / max(union, 1),
        "core_mae": core_err / max(n_px, 1),
    }


def _outputs(
    net: CellNet, data: CellNetData, device: str
) -> Iterator[tuple[int, NDArray[np.float32]]]:
    """Each whole frame's raw (3, H, W) network output, frame by frame, without gradients."""
    dev = torch.device(device)
    with torch.no_grad():
        for i in range(len(data)):
            x = torch.from_numpy(data.x[i : i + 1].astype(np.float32)).to(dev)
            y = net(x.contiguous(memory_format=torch.channels_last))[0].float().cpu().numpy()
            yield i, y


def _to_device(data: CellNetData, dev: torch.device) -> dict[str, torch.Tensor]:
    """The arrays as tensors on ``dev`` (float16/uint8 kept: converted per batch)."""
    return {
        "x": torch.from_numpy(data.x).to(dev),
        "phase": torch.from_numpy(data.phase).to(dev),
        "foreground": torch.from_numpy(data.foreground).to(dev),
        "core": torch.from_numpy(data.core).to(dev),
    }


def _batch(
    t: dict[str, torch.Tensor], batch: int, patch: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops with a random flip and quarter turn (the optics are isotropic)."""
    n, _, h, w = t["x"].shape
    idx = torch.randint(n, (batch,), generator=gen).tolist()
    ys = torch.randint(h - patch + 1, (batch,), generator=gen).tolist()
    xs = torch.randint(w - patch + 1, (batch,), generator=gen).tolist()
    flip = int(torch.randint(2, (1,), generator=gen))
    turns = int(torch.randint(4, (1,), generator=gen))
    xb, tb = [], []
    for i, y0, x0 in zip(idx, ys, xs, strict=True):
        win = (slice(y0, y0 + patch), slice(x0, x0 + patch))
        xb.append(t["x"][i][:, win[0], win[1]])
        tb.append(torch.stack([t[k][i][win] for k in ("phase", "foreground", "core")]))
    x = torch.stack(xb).float()
    target = torch.stack(tb).float()
    if flip:
        x, target = x.flip(-1), target.flip(-1)
    if turns:
        x, target = torch.rot90(x, turns, (-2, -1)), torch.rot90(target, turns, (-2, -1))
    return x, target


def _losses(y: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weighted L1 on phase, BCE on foreground and on the core map."""
    phase, fg, core = target[:, 0], target[:, 1], target[:, 2]
    weight = 1.0 + (_CELL_WEIGHT - 1.0) * fg
    return {
        "phase": (weight * (y[:, 0] - phase).abs()).mean(),
        "foreground": F.binary_cross_entropy_with_logits(y[:, 1], fg),
        "core": F.binary_cross_entropy_with_logits(y[:, 2], core),
    }
