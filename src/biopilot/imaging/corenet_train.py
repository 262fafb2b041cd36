"""Train CoreNet on the shipped CellNet's answers to the twin's holograms, reproducibly."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from biopilot.imaging.cellnet import CellNet
from biopilot.imaging.cellnet_data import core_target, random_setup
from biopilot.imaging.cellnet_io import fold_view
from biopilot.imaging.corenet import CORE, CoreNet
from biopilot.imaging.phase import backpropagate
from biopilot.twin.incubator import simulate_frame

__all__ = ["CoreNetData", "CoreNetTraining", "corenet_data", "train_corenet"]

#: Share of training frames redrawn as adherent or stem cells at 50-80 % confluence: the
#: touching cells CoreNet is for (the remaining frames keep random_setup's whole range).
_DENSE_SHARE = 0.7
_MEDIUM_WEIGHT = 0.2  # weight of medium pixels in the loss against 1.2 for cell pixels
_Z_ERROR_UM = 2.0  # an autofocus-sized error, as CellNet's training frames


@dataclass
class CoreNetData:
    """Folded training frames: CellNet's input ``x`` and answer ``y``, the folded truth ``t``.

    ``x`` and ``y`` are (n, 12, h, w) float16; ``t`` is (n, 8, h, w) float16: the foreground
    (channels 0-3) and core target (4-7) of each 2 x 2 block.
    """

    x: NDArray[np.float16]
    y: NDArray[np.float16]
    t: NDArray[np.float16]

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass
class CoreNetTraining:
    """How a CoreNet was trained and how it scored on held-out frames."""

    seed: int
    n_frames: int
    size: int
    steps: int
    batch: int
    patch: int
    widths: tuple[int, ...]
    lr: float
    seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Plain-data summary saved beside the weights."""
        return {"seed": self.seed, "n_frames": self.n_frames, "size": self.size,
                "steps": self.steps, "batch": self.batch, "patch": self.patch,
                "widths": list(self.widths), "lr": self.lr,
                "seconds": round(self.seconds, 1), "validation": self.validation}


def corenet_data(
    cellnet: CellNet, seed: int, n: int, *, size: int = 384, start: int = 0,
    progress: Callable[[int], None] | None = None,
) -> CoreNetData:
    """Frames ``start .. start + n - 1`` of set ``seed``, with ``cellnet``'s answers (float32)."""
    if size % cellnet.multiple:
        raise ValueError(f"size must be a multiple of {cellnet.multiple}, got {size}")
    unfold = nn.PixelUnshuffle(2)
    gain = 1.0 if cellnet.gain_folded else float(cellnet.phase_gain)
    xs, ys, ts = [], [], []
    cellnet.eval()
    for k, i in enumerate(range(start, start + n)):
        rng = np.random.default_rng([seed, 104729, i])
        optics, scene = random_setup(rng, size)
        if rng.uniform() < _DENSE_SHARE:
            scene = scene.model_copy(update={
                "scenario": str(rng.choice(["adherent", "stem_cell"])),
                "confluence": float(rng.uniform(0.5, 0.8))})
        frame = simulate_frame(optics, scene, rng=rng)
        z = frame.z_mm + rng.normal(0.0, _Z_ERROR_UM) * 1e-3
        u = backpropagate(frame.hologram, z, wavelength_um=optics.wavelength_um,
                          pixel_um=optics.pixel_um, n_medium=optics.n_medium)
        x = torch.from_numpy(fold_view(u, u.shape)).permute(2, 0, 1)[None].contiguous()
        with torch.inference_mode():
            y = cellnet.body(x)
            y[:, :4] *= gain
        truth = np.stack([frame.labels > 0, core_target(frame.labels)]).astype(np.float32)
        xs.append(x[0].numpy().astype(np.float16))
        ys.append(y[0].numpy().astype(np.float16))
        ts.append(unfold(torch.from_numpy(truth)[None])[0].numpy().astype(np.float16))
        if progress is not None:
            progress(k + 1)
    return CoreNetData(np.stack(xs), np.stack(ys), np.stack(ts))


def train_corenet(
    data: CoreNetData,
    *,
    seed: int = 0,
    steps: int = 8000,
    batch: int = 16,
    patch: int = 128,
    widths: tuple[int, ...] = (16, 32, 48),
    lr: float = 2e-3,
    val: CoreNetData | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[CoreNet, CoreNetTraining]:
    """Train a CoreNet on ``data`` (see :func:`corenet_data`), seeded, on the CPU.

    Each step takes ``batch`` random crops of ``patch`` px (full resolution), each flipped
    and turned as the step's draw says (the optics are isotropic; flips and turns are done
    unfolded so the 2 x 2 blocks follow), AdamW with a one-cycle learning rate, and a
    binary cross-entropy of the corrected core logits against the core target, cell pixels
    weighted 6x the medium. ``val`` is scored at the end (:func:`evaluate_corenet`).
    """
    half, multiple = patch // 2, 2 ** (len(widths) - 1)
    if patch % 2 or half % multiple or half > min(data.x.shape[-2:]):
        raise ValueError(f"patch must be even, at most the frame side, with patch/2 a "
                         f"multiple of {multiple}; got {patch}")
    torch.manual_seed(seed)
    net = CoreNet(widths)  # initialised under the seed
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    x, y, t = (torch.from_numpy(a) for a in (data.x, data.y, data.t))
    t0 = time.perf_counter()
    net.train()
    for step in range(steps):
        xb, yb, tb = _crops((x, y, t), batch, half, gen)
        logit = yb[:, CORE] + net(xb, yb)
        weight = _MEDIUM_WEIGHT + tb[:, :4]
        loss = (weight * F.binary_cross_entropy_with_logits(
            logit, tb[:, 4:], reduction="none")).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(step + 1, loss.item())
    net.eval()
    info = CoreNetTraining(seed=seed, n_frames=len(data), size=int(data.x.shape[-1]) * 2,
                           steps=steps, batch=batch, patch=patch, widths=net.widths, lr=lr,
                           seconds=time.perf_counter() - t0)
    if val is not None:
        info.validation = evaluate_corenet(net, val)
    return net, info


def evaluate_corenet(net: CoreNet, data: CoreNetData) -> dict[str, float]:
    """Mean absolute error of the core map on cell pixels, CellNet's alone and corrected."""
    before, after, n = 0.0, 0.0, 0
    with torch.inference_mode():
        for i in range(len(data)):
            x, y, t = (torch.from_numpy(a[i : i + 1].astype(np.float32))
                       for a in (data.x, data.y, data.t))
            cells = t[:, :4] > 0.5
            core = y[:, CORE]
            before += float((torch.sigmoid(core) - t[:, 4:]).abs()[cells].sum())
            after += float((torch.sigmoid(core + net(x, y)) - t[:, 4:]).abs()[cells].sum())
            n += int(cells.sum())
    return {"core_mae_cellnet": before / max(n, 1), "core_mae_corrected": after / max(n, 1)}


def _crops(
    arrays: tuple[torch.Tensor, ...], batch: int, half: int, gen: torch.Generator
) -> tuple[torch.Tensor, ...]:
    """The same random folded crops of each array, flipped and turned (as float32)."""
    n, _, h, w = arrays[0].shape
    idx = torch.randint(n, (batch,), generator=gen).tolist()
    ys = torch.randint(h - half + 1, (batch,), generator=gen).tolist()
    xs = torch.randint(w - half + 1, (batch,), generator=gen).tolist()
    flip = bool(torch.randint(2, (1,), generator=gen))
    turns = int(torch.randint(4, (1,), generator=gen))
    shuffle, unshuffle = nn.PixelShuffle(2), nn.PixelUnshuffle(2)
    out = []
    for a in arrays:
        crop = torch.stack([a[i, :, r : r + half, c : c + half] for i, r, c in
                            zip(idx, ys, xs, strict=True)]).float()
        full = shuffle(crop)  # flips and turns at full resolution, then folded again
        full = full.flip(-1) if flip else full
        full = torch.rot90(full, turns, (-2, -1)) if turns else full
        out.append(unshuffle(full))
    return tuple(out)
