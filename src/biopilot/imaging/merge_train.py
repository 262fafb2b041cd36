"""Train MergeNet on the twin's frames as the shipped CellNet and CoreNet segment them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional as F

from biopilot.imaging import merge_tables as mt
from biopilot.imaging.cellnet import CellNet, predict_maps
from biopilot.imaging.cellnet_data import random_setup
from biopilot.imaging.corenet import CoreNet
from biopilot.imaging.merge import DEFAULT_THRESHOLD, MergeNet, merge_cells, pair_features
from biopilot.imaging.metrics import score_segmentation
from biopilot.imaging.phase import backpropagate
from biopilot.imaging.recon_input import normalize_illumination
from biopilot.imaging.segment import segment_maps
from biopilot.twin.incubator import simulate_frame

__all__ = ["MergeFrame", "MergeTraining", "merge_frames", "train_mergenet"]

_SCENARIOS = ("stem_cell", "adherent", "suspension")
# Confluence of the training frames: weighted to the dense frames where cells touch.
_CONFLUENCE = (0.3, 0.5, 0.6, 0.7, 0.8, 0.8)
_Z_ERROR_UM = 2.0  # an autofocus-sized error, as CellNet's and CoreNet's training frames
_STREAM = 7919  # tags this set's random streams


@dataclass
class MergeFrame:
    """One simulated frame: the default path's maps, its fine cut and the true labels."""

    foreground: NDArray[np.float32]
    core: NDArray[np.float32]
    phase: NDArray[np.float32]
    labels: NDArray[np.int32]  # segment_maps at h_core 0
    truth: NDArray[np.int32]
    pixel_um: float
    scenario: str
    confluence: float


@dataclass
class MergeTraining:
    """How a MergeNet was trained and how it scored on held-out frames."""

    seed: int
    n_frames: int
    size: int
    epochs: int
    dagger: int
    seconds: float = 0.0
    validation: dict[str, float] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Plain-data summary saved beside the weights."""
        return {"seed": self.seed, "n_frames": self.n_frames, "size": self.size,
                "epochs": self.epochs, "dagger": self.dagger,
                "seconds": round(self.seconds, 1), "validation": self.validation}


def merge_frames(
    cellnet: CellNet, corenet: CoreNet, seed: int, n: int, *, size: int = 768,
    progress: Callable[[int], None] | None = None,
) -> list[MergeFrame]:
    """Frames 0..n-1 of set ``seed``: scenarios in turn (every fourth drawn), dense-weighted."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, _STREAM, i])  # apart from the benchmark's streams
        optics, scene = random_setup(rng, size)
        scenario = _SCENARIOS[i % 3] if i % 4 else str(scene.scenario)
        confluence = float(rng.choice(_CONFLUENCE))
        scene = scene.model_copy(update={"scenario": scenario, "confluence": confluence})
        frame = simulate_frame(optics, scene, rng=rng)
        z = frame.z_mm + rng.normal(0.0, _Z_ERROR_UM * 1e-3)
        holo = frame.hologram.astype(np.float32)
        u = backpropagate(holo, z, relative=normalize_illumination(holo)[0],
                          wavelength_um=optics.wavelength_um, pixel_um=optics.pixel_um,
                          n_medium=optics.n_medium)
        maps = predict_maps(cellnet, u, cores=corenet)
        labels = segment_maps(maps.foreground, maps.core, pixel_um=optics.pixel_um, h_core=0.0)
        out.append(MergeFrame(maps.foreground, maps.core, maps.phase_rad, labels,
                              frame.labels.astype(np.int32), optics.pixel_um, scenario,
                              confluence))
        if progress is not None:
            progress(i)
    return out


def _examples(fr: MergeFrame, net: MergeNet | None, threshold: float,
              rounds: int) -> tuple[list[NDArray[np.float32]], list[NDArray[np.float32]]]:
    """Features and targets of the contacts of the fine cut, then of the states ``net``'s
    merging reaches (DAgger); a pair is one cell when both regions lie mostly (> 50 %) in
    the same true cell."""
    lab, n = fr.labels, int(fr.labels.max())
    xs, ys = [], []
    for r in range(rounds if net is not None else 1):
        if n < 2:
            break
        t = mt.tables(lab, fr.core, fr.foreground, fr.phase, n)
        if t.a.size == 0:
            break
        owner = _owner(lab, n, fr.truth)
        x = pair_features(t, fr.pixel_um)
        xs.append(x)
        ys.append(((owner[t.a] == owner[t.b]) & (owner[t.a] > 0)).astype(np.float32))
        if net is None or r == rounds - 1:
            break
        merged = merge_cells(lab, fr.foreground, fr.core, fr.phase, pixel_um=fr.pixel_um,
                             net=net, threshold=threshold, rounds=1)
        if int(merged.max()) == n:
            break
        lab, n = merged, int(merged.max())
    return xs, ys


def _owner(lab: NDArray[np.int32], n: int, truth: NDArray[np.int32]) -> NDArray[np.int64]:
    """Each region's true cell where more than half of it lies in one, else -1."""
    inside = lab > 0
    m = int(truth.max()) + 1
    key = lab[inside].astype(np.int64) * m + truth[inside]
    pairs, count = np.unique(key, return_counts=True)
    region, cell = pairs // m, pairs % m
    size = np.bincount(lab[inside], minlength=n + 1)
    owner = np.full(n + 1, -1, np.int64)
    best = (cell > 0) & (2 * count > size[region])  # at most one cell per region holds > 50 %
    owner[region[best]] = cell[best]
    return owner


def train_mergenet(
    frames: list[MergeFrame], *, seed: int = 0, epochs: int = 4, dagger: int = 2,
    val: list[MergeFrame] | None = None, threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[str], None] | None = None,
) -> tuple[MergeNet, MergeTraining]:
    """Fit MergeNet on the contacts of ``frames``, then ``dagger`` times more on the states
    its own merging reaches; score F1 at IoU 0.5 on ``val`` against the ``h_core`` rule."""
    if not frames:
        raise ValueError("no training frames")
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    net = MergeNet()
    data = [_examples(fr, None, threshold, 1) for fr in frames]
    if not any(xs for xs, _ in data):
        raise ValueError("no two regions touch in the training frames: give more frames")
    x = np.concatenate([a for xs, _ in data for a in xs])
    net.mean.copy_(torch.from_numpy(x.mean(0)))
    net.scale.copy_(torch.from_numpy(np.maximum(x.std(0), 1e-6)))
    for k in range(dagger + 1):
        if k > 0:
            more = [_examples(fr, net, threshold, 4) for fr in frames]
            data += [(xs[1:], ys[1:]) for xs, ys in more]  # round 0 is in data already
        _fit(net, data, epochs, seed + k)
        if progress is not None:
            progress(f"fit {k + 1} of {dagger + 1}")
    info = MergeTraining(seed, len(frames), frames[0].labels.shape[0], epochs, dagger,
                         seconds=time.perf_counter() - t0)
    if val:
        info.validation = _validate(net, val, threshold)
    return net.eval(), info


def _fit(net: MergeNet, data: list[tuple[list[NDArray[np.float32]], list[NDArray[np.float32]]]],
         epochs: int, seed: int) -> None:
    """Adam on the binary cross-entropy, batches of 4,096 contacts."""
    x = torch.from_numpy(np.concatenate([a for xs, _ in data for a in xs]))
    y = torch.from_numpy(np.concatenate([b for _, ys in data for b in ys]))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.body.parameters(), lr=1e-3)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(4096):
            loss = F.binary_cross_entropy_with_logits(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()


def _validate(net: MergeNet, frames: list[MergeFrame], threshold: float) -> dict[str, float]:
    """Mean F1 and absolute count error: the ``h_core`` 0.05 rule against MergeNet."""
    rule, learned = [], []
    for fr in frames:
        cut = segment_maps(fr.foreground, fr.core, pixel_um=fr.pixel_um)
        merged = merge_cells(fr.labels, fr.foreground, fr.core, fr.phase, pixel_um=fr.pixel_um,
                             net=net, threshold=threshold)
        rule.append(score_segmentation(fr.truth, cut))
        learned.append(score_segmentation(fr.truth, merged))
    return {
        "f1_rule": round(float(np.mean([s.f1 for s in rule])), 4),
        "f1_merge": round(float(np.mean([s.f1 for s in learned])), 4),
        "count_error_rule": round(float(np.mean([s.count_error for s in rule])), 4),
        "count_error_merge": round(float(np.mean([s.count_error for s in learned])), 4),
    }
