"""MergeNet: a learned decision, per pair of touching regions, whether they are one cell.

CoreNet's cores split a few per cent too many cells on finely sampled dense frames and a
fixed rule (``h_core``: merge two regions whose lower core peak rises little above their
saddle) cannot tell a dividing cell's waist from two pressed cells. Here the segmentation is
cut finely (``h_core`` 0) and a small network reads each contact as a whole: both regions'
sizes against the frame's typical cell, how far their core peaks rise above the saddle and
along the border, the phase and foreground along the border, and whether their union is
shaped like one cell (filling its moment ellipse) or like two. Pairs are merged greedily in
rounds, the most certain first, each region at most once a round, and the tables updated;
the features are recomputed for the merged regions, as in learned agglomeration of
over-segmentations (Nunez-Iglesias et al. 2013). Trained by ``biopilot qc train-merge`` on
simulated frames segmented by the shipped CellNet and CoreNet, including the states its own
merging reaches (Ross, Gordon & Bagnell 2011's DAgger).

References
----------
.. [1] Nunez-Iglesias, J., Kennedy, R., Parag, T., Shi, J. & Chklovskii, D. B. (2013).
   Machine learning of hierarchical clustering to segment 2D and 3D images. PLoS ONE 8(8),
   e71715.
.. [2] Ross, S., Gordon, G. & Bagnell, D. (2011). A reduction of imitation learning and
   structured prediction to no-regret online learning. AISTATS, PMLR 15, 627-635.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from biopilot.imaging import merge_tables as mt
from biopilot.imaging.netfile import read_net_file, ready_net, shipped_weights, write_net_file

__all__ = [
    "FEATURES",
    "MergeNet",
    "default_mergenet_path",
    "load_default_mergenet",
    "load_mergenet",
    "merge_cells",
    "pair_features",
    "save_mergenet",
]

FORMAT_VERSION = 1
_WEIGHTS = "mergenet.pt"
#: What MergeNet reads of each contact (regions a and b; areas in um^2, core in 0-1, phase rad).
FEATURES = (
    "pixel_um", "log_area_min", "log_area_max", "log_union_over_median_area",
    "log_median_area", "contact_over_sqrt_area_min", "core_peak_min", "core_peak_max",
    "saddle", "core_along_border", "core_peak_min_over_saddle", "foreground_along_border",
    "phase_along_border", "phase_peak_min_over_border", "border_over_union_phase",
    "union_fill", "union_eccentricity", "fill_min", "fill_max", "union_fill_gain",
)
#: Merge a pair when MergeNet gives it at least this probability (tuning frames, session 14).
DEFAULT_THRESHOLD = 0.3
_ROUNDS = 4  # the tuning frames converge in 3 (the same F1 to 4 digits with 4, 8 or 12)


class MergeNet(nn.Module):
    """A small MLP on the standardised :data:`FEATURES` of a contact; logit of "one cell"."""

    metadata_: dict[str, Any]  # how the weights were made (set by load_mergenet)
    mean: torch.Tensor  # the features' standardisation (buffers, saved with the weights)
    scale: torch.Tensor

    def __init__(self, widths: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.metadata_ = {}
        self.widths = tuple(widths)
        layers: list[nn.Module] = []
        n_in = len(FEATURES)
        for w in self.widths:
            layers += [nn.Linear(n_in, w), nn.ReLU()]
            n_in = w
        self.body = nn.Sequential(*layers, nn.Linear(n_in, 1))
        self.register_buffer("mean", torch.zeros(len(FEATURES)))
        self.register_buffer("scale", torch.ones(len(FEATURES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N,) of the features (N, len(FEATURES))."""
        return self.body((x - self.mean) / self.scale)[:, 0]

    def probability(self, features: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probability that each contact is inside one cell (on the network's device)."""
        with torch.inference_mode():
            x = torch.from_numpy(features).to(self.mean.device)
            return torch.sigmoid(self(x)).cpu().numpy()


def pair_features(t: mt.Tables, pixel_um: float) -> NDArray[np.float32]:
    """The :data:`FEATURES` of every contact of ``t``, one row each."""
    reg, c = t.region, t.contact
    ra, rb = reg[t.a], reg[t.b]
    union = ra + rb
    area_a, area_b = ra[:, mt.AREA], rb[:, mt.AREA]
    amin, amax = np.minimum(area_a, area_b), np.maximum(area_a, area_b)
    med = float(np.median(reg[1:, mt.AREA])) if t.n else 1.0
    px2 = pixel_um**2
    count = c[:, mt.COUNT]
    pk_min = np.minimum(ra[:, mt.CORE_PEAK], rb[:, mt.CORE_PEAK])
    border_phase = c[:, mt.PHASE_MEAN_SUM] / count
    fill_a, fill_b = _fill(ra)[0], _fill(rb)[0]
    ufill, uecc = _fill(union)
    fmin = np.minimum(fill_a, fill_b)
    union_phase = union[:, mt.PHASE_SUM] / union[:, mt.AREA]
    x = np.column_stack([
        np.full(count.size, pixel_um), np.log(amin * px2), np.log(amax * px2),
        np.log(union[:, mt.AREA] / med), np.full(count.size, np.log(med * px2)),
        count / np.sqrt(amin), pk_min, np.maximum(ra[:, mt.CORE_PEAK], rb[:, mt.CORE_PEAK]),
        c[:, mt.SADDLE], c[:, mt.CORE_SUM] / count, pk_min - c[:, mt.SADDLE],
        c[:, mt.FG_SUM] / count, border_phase,
        np.minimum(ra[:, mt.PHASE_PEAK], rb[:, mt.PHASE_PEAK]) - border_phase,
        border_phase / np.maximum(union_phase, 1e-3), ufill, uecc, fmin,
        np.maximum(fill_a, fill_b), ufill - fmin,
    ])
    return x.astype(np.float32)


def _fill(r: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Area over the area of the moment ellipse (1 for an ellipse), and its eccentricity."""
    area = np.maximum(r[:, mt.AREA], 1.0)
    my, mx = r[:, mt.SY] / area, r[:, mt.SX] / area
    # + 1/12: a pixel's own second moment, so that a one-pixel region is not degenerate
    cyy = r[:, mt.SYY] / area - my * my + 1 / 12
    cxx = r[:, mt.SXX] / area - mx * mx + 1 / 12
    cxy = r[:, mt.SXY] / area - mx * my
    det = np.maximum(cyy * cxx - cxy * cxy, 1e-6)
    half = 0.5 * (cyy + cxx)
    big = half + np.sqrt(np.maximum(half * half - det, 0.0))
    small = np.maximum(2 * half - big, 1e-6)
    return area / (4 * np.pi * np.sqrt(det)), np.sqrt(np.maximum(1 - small / big, 0.0))


def merge_cells(
    labels: NDArray[np.integer], foreground: NDArray[np.floating], core: NDArray[np.floating],
    phase: NDArray[np.floating], *, pixel_um: float, net: MergeNet | None = None,
    threshold: float = DEFAULT_THRESHOLD, rounds: int = _ROUNDS,
) -> NDArray[np.int32]:
    """Merge the regions of ``labels`` (cut with ``h_core=0``) that MergeNet reads as one cell.

    Parameters
    ----------
    labels : (H, W) int array
        Regions 1..N, numbered consecutively (:func:`~biopilot.imaging.segment_maps`).
    foreground, core, phase : (H, W) arrays
        CellNet's maps (:func:`~biopilot.imaging.cellnet.predict_maps`), core with CoreNet.
    pixel_um : float
        Pixel pitch in the object plane, um.
    net : MergeNet, optional
        Default: the shipped weights (read once per process; a tiny MLP, run on the CPU).
    threshold : float
        Probability above which a pair is merged (in (0, 1)).
    rounds : int
        Most rounds of merging (each region merges at most once a round).

    Returns
    -------
    labels : (H, W) ndarray of int32
        The merged regions, numbered 1..M in the order of their lowest input label.

    Raises
    ------
    ValueError
        If a map's shape differs from the labels', a map holds NaN or infinite values inside
        the regions, or the threshold is outside (0, 1).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    lab = np.asarray(labels)
    for name, m in (("foreground", foreground), ("core", core), ("phase", phase)):
        if np.shape(m) != lab.shape:
            raise ValueError(f"{name} map has shape {np.shape(m)}, the labels {lab.shape}")
    n = int(lab.max()) if lab.size else 0
    if n < 2:
        return lab.astype(np.int32, copy=False)
    model = net or _shipped()
    t = mt.tables(lab, core, foreground, phase, n)
    final = np.arange(n + 1)
    for _ in range(rounds):
        if t.a.size == 0:
            break
        x = pair_features(t, pixel_um)
        if not np.isfinite(x).all():  # a NaN would compare as "not below" and merge all
            raise ValueError("the maps hold NaN or infinite values inside the regions")
        p = model.probability(x)
        into = _pick(np.argsort(-p), t.a, t.b, p, threshold, t.n)
        keep = into == np.arange(t.n + 1)
        if keep.all():
            break
        rank = np.cumsum(keep) - 1
        into = rank[into]
        t = mt.merge_tables(t, into, int(rank[-1]))
        final = into[final]
    return final.astype(np.int32)[lab]


@numba.njit(cache=True)
def _pick(
    order: NDArray[np.int64], a: NDArray[np.int64], b: NDArray[np.int64],
    p: NDArray[np.float32], threshold: float, n: int,
) -> NDArray[np.int64]:  # pragma: no cover - compiled; covered through merge_cells
    """Each region's target this round: pairs above ``threshold``, likeliest first, each
    region in one merge at most (``b`` goes into ``a < b``)."""
    into = np.arange(n + 1)
    used = np.zeros(n + 1, np.bool_)
    for k in order:
        if p[k] < threshold:
            break
        if used[a[k]] or used[b[k]]:
            continue
        used[a[k]] = used[b[k]] = True
        into[b[k]] = a[k]
    return into


def save_mergenet(net: MergeNet, path: str | Path,
                  metadata: dict[str, Any] | None = None) -> Path:
    """Write weights, widths and metadata to ``path`` (and a ``.json`` beside it)."""
    return write_net_file(net, path, kind="mergenet", format_version=FORMAT_VERSION,
                          widths=net.widths, metadata=metadata)


def load_mergenet(path: str | Path, *, device: str = "cpu") -> MergeNet:
    """Read a file :func:`save_mergenet` wrote (tensors only, no network access)."""
    widths, state, metadata = read_net_file(path, kind="mergenet", name="MergeNet",
                                            format_version=FORMAT_VERSION,
                                            retrain="biopilot qc train-merge")
    return ready_net(MergeNet(widths), state, metadata, device)


def default_mergenet_path() -> Path:
    """Path of the weights shipped inside the package."""
    return shipped_weights(_WEIGHTS)


def load_default_mergenet(device: str = "cpu") -> MergeNet:
    """The shipped MergeNet (``imaging/weights/mergenet.pt``), loaded offline."""
    return load_mergenet(default_mergenet_path(), device=device)


@functools.cache
def _shipped() -> MergeNet:
    """The shipped MergeNet on the CPU, read once per process (``merge_cells``'s default)."""
    return load_default_mergenet()
