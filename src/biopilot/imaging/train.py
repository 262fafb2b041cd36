"""Reproducible training of the cell classifier on simulated frames from the twin's incubator."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray
from scipy import ndimage as ndi

import biopilot
from biopilot.imaging.cellnet import CellNet, load_default_cellnet, predict_maps
from biopilot.imaging.classify import CellClassifier, CellSamples, default_weights_path
from biopilot.imaging.features import measure_cells
from biopilot.imaging.metrics import match_labels
from biopilot.imaging.phase import backpropagate
from biopilot.imaging.reconstruct import reconstruct
from biopilot.imaging.segment import segment_cells, segment_maps
from biopilot.twin.incubator import OpticalSetup, SceneSpec, SimulatedFrame, simulate_frame

__all__ = ["Degradation", "TrainingSet", "labelled_cells", "simulated_cells", "train_classifier"]

_SCENARIOS = ("suspension", "adherent", "stem_cell")
PhaseSource = Literal["true", "net", "iterative"]
_STREAM = {"true": (), "net": (1,), "iterative": (2,)}  # each source's own random streams
#: Seeds of held-out frames are offset by this from the training seed.
HELD_OUT_OFFSET = 10_000


@dataclass(frozen=True)
class Degradation:
    """Reconstruction error mimicked on the true phase: blur (px) and white noise (rad)."""

    blur_px: tuple[float, float] = (0.3, 1.0)
    noise_rad: tuple[float, float] = (0.02, 0.08)

    def apply(self, phase: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
        """The phase blurred and noised with draws from the ranges."""
        blurred = ndi.gaussian_filter(phase, rng.uniform(*self.blur_px))
        noise = rng.uniform(*self.noise_rad) * rng.standard_normal(phase.shape)
        return (blurred + noise).astype(np.float32)


@dataclass(frozen=True)
class TrainingSet:
    """Samples and their truth (``alive``, ``differentiated``; NA outside stem-cell scenes)."""

    samples: CellSamples
    truth: pd.DataFrame


def labelled_cells(
    frame: SimulatedFrame,
    phase_rad: NDArray[np.float32],
    classifier: CellClassifier,
    labels: NDArray[np.integer] | None = None,
) -> TrainingSet:
    """Segment ``phase_rad`` as in production and label the cells that match the truth.

    Only cells matched one-to-one to a true cell (IoU >= 0.5) are kept, so the classifier
    learns on the crops it will see at inference. ``differentiated`` is NA for dead cells
    and outside stem-cell scenes. ``labels``: the cells found already (CellNet's path);
    default :func:`~biopilot.imaging.segment_cells` of the phase.
    """
    pixel = frame.optics.pixel_um
    if labels is None:
        labels = segment_cells(phase_rad, pixel_um=pixel)
    table = measure_cells(
        phase_rad,
        labels,
        pixel_um=pixel,
        wavelength_um=frame.optics.wavelength_um,
        background_rad=0.0,
    )
    true_ids, pred_ids, _ = match_labels(frame.labels, labels)
    table = table.set_index("label").loc[pred_ids].reset_index()
    truth = frame.cells.set_index("label").loc[true_ids]
    samples = classifier.samples(phase_rad, labels, table, pixel_um=pixel)
    alive = truth["alive"].to_numpy(bool)
    # Identity is a property of live cells (a dead cell's lineage is not visible in its
    # shrunken body; the simulator draws it at random): dead cells teach the other head only.
    diff = pd.array(truth["differentiated"].to_numpy(), dtype="boolean")
    diff[~alive] = pd.NA
    y = pd.DataFrame({"alive": alive, "differentiated": diff})
    return TrainingSet(samples, y)


def simulated_cells(
    seed: int,
    n_frames: int,
    classifier: CellClassifier,
    *,
    size: tuple[int, int] = (320, 320),
    degradation: Degradation | None = None,
    on_frame: Callable[[int], None] | None = None,
    phase: PhaseSource = "true",
    cellnet: CellNet | None = None,
) -> TrainingSet:
    """Labelled cells of ``n_frames`` simulated frames; frame ``i`` depends on ``(seed, i)``.

    Frames cycle through the three scenarios with viability 0.4-0.95, differentiated
    fraction 0.2-0.7, wavelength 405-650 nm and pixel pitch 1.12-1.67 um.

    ``phase="true"``: the simulator's phase, blurred and noised (``degradation``), at
    confluence 0.1-0.6, segmented by :func:`~biopilot.imaging.segment_cells`. The two other
    sources reconstruct the hologram from z 0.5-3 mm (off by an autofocus-sized error, 2 um
    rms) at confluence 0.1-0.8, as a pipeline method does, each from its own random streams
    (``(seed, i, 1)`` and ``(seed, i, 2)``): ``"net"``, CellNet's phase and cells
    (``cellnet``, default the shipped one, in float32 for results alike on every CPU);
    ``"iterative"``, iterative phase retrieval (:func:`~biopilot.imaging.reconstruct`)
    segmented by :func:`~biopilot.imaging.segment_cells`.
    """
    if phase not in _STREAM:
        raise ValueError(f"phase must be one of {sorted(_STREAM)}, got {phase!r}")
    deg = degradation or Degradation()
    net = (cellnet or load_default_cellnet().fused()) if phase == "net" else None
    true = phase == "true"
    parts = []
    for i in range(n_frames):
        rng = np.random.default_rng([seed, i, *_STREAM[phase]])
        optics = OpticalSetup(
            wavelength_nm=float(rng.choice([405.0, 488.0, 532.0, 650.0])),
            pixel_um=float(rng.choice([1.12, 1.4, 1.67])),
            z_mm=1.0 if true else float(rng.uniform(0.5, 3.0)),
            shape_px=size,
        )
        scene = SceneSpec(
            scenario=_SCENARIOS[i % 3],
            confluence=float(rng.uniform(0.1, 0.6 if true else 0.8)),
            viability=float(rng.uniform(0.4, 0.95)),
            differentiated_fraction=float(rng.uniform(0.2, 0.7)),
            thick_fraction=0.2,
            debris_per_mm2=float(rng.uniform(10.0, 100.0)),
        )
        frame = simulate_frame(optics, scene, rng=rng)
        if true:
            parts.append(labelled_cells(frame, deg.apply(frame.phase_rad, rng), classifier))
        else:
            parts.append(_reconstructed_cells(frame, net, classifier, rng))  # net None: iterative
        if on_frame is not None:
            on_frame(i)
    return _joined(parts)


def _reconstructed_cells(
    frame: SimulatedFrame, net: CellNet | None, classifier: CellClassifier,
    rng: np.random.Generator,
) -> TrainingSet:
    """The labelled cells of one frame as a pipeline method finds them: CellNet's (``net``)
    or, without one, iterative retrieval's."""
    o = frame.optics
    z = frame.z_mm + rng.normal(0.0, 2e-3)  # the benchmark's autofocus: 0.04-2.7 um off
    if net is None:
        rec = reconstruct(frame.hologram, wavelength_um=o.wavelength_um, pixel_um=o.pixel_um,
                          z_mm=z)
        return labelled_cells(frame, rec.phase_rad, classifier)
    field = backpropagate(frame.hologram, z, wavelength_um=o.wavelength_um, pixel_um=o.pixel_um)
    maps = predict_maps(net, field, precision="float32")
    labels = segment_maps(maps.foreground, maps.core, pixel_um=o.pixel_um)
    return labelled_cells(frame, maps.phase_rad, classifier, labels=labels)


def train_classifier(
    seed: int = 0,
    *,
    n_frames: int = 60,
    n_net_frames: int = 60,
    n_iterative_frames: int = 60,
    n_eval_frames: int = 15,
    out: str | Path | None = None,
    on_frame: Callable[[int], None] | None = None,
    **params: Any,
) -> CellClassifier:
    """Train the cell classifier on simulated frames, deterministically, and save it.

    Torch runs on one thread with deterministic algorithms, the simulator and batches are
    seeded from ``seed``, so the same seed gives the same weights. The cells come from the
    three phase sources of :func:`simulated_cells`: the degraded true phase (as a user's own
    phase maps), CellNet's phase and cells (the default pipeline) and iterative retrieval's
    (``method="iterative"``). On held-out frames the mix beat a classifier trained on the
    true phase alone on every source (RESULTS.md, session 7). Held-out accuracy is measured
    on ``n_eval_frames`` frames of each source simulated from ``seed + 10000``.

    Parameters
    ----------
    seed : int
        Seed of data, initialisation and batch order.
    n_frames, n_net_frames, n_iterative_frames, n_eval_frames : int
        Training frames of the true phase, of CellNet's and of iterative retrieval's;
        held-out frames of each (320 x 320 px each).
    out : path, optional
        Where to save; default: the weights shipped in the package.
    on_frame : callable, optional
        Called once per simulated training frame (progress bars).
    **params
        Hyper-parameters of :class:`~biopilot.imaging.classify.CellClassifier`.

    Returns
    -------
    CellClassifier
        Fitted, with ``metadata_`` (seed, data, held-out accuracy, versions) saved beside it.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    held_seed = seed + HELD_OUT_OFFSET
    try:
        clf = CellClassifier(seed=seed, **params)
        net = load_default_cellnet().fused()
        sources: tuple[tuple[PhaseSource, int], ...] = (
            ("true", n_frames), ("net", n_net_frames), ("iterative", n_iterative_frames))
        sets = {
            src: (simulated_cells(seed, n, clf, on_frame=on_frame, phase=src, cellnet=net),
                  simulated_cells(held_seed, n_eval_frames, clf, phase=src, cellnet=net))
            for src, n in sources if n > 0
        }
        train = _joined([t for t, _ in sets.values()])
        held = _joined([h for _, h in sets.values()])
        clf.fit(train.samples, train.truth)
        acc = clf.accuracy(held.samples, held.truth)
        by_source = {src: clf.accuracy(h.samples, h.truth) for src, (_, h) in sets.items()}
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    metadata = {
        "seed": seed,
        "data": {
            "source": "biopilot.twin.incubator.simulate_frame: true phase blurred and noised, "
            "CellNet's phase and cells from the back-propagated hologram, and iterative "
            "phase retrieval's",
            "train_frames": {"true": n_frames, "net": n_net_frames,
                             "iterative": n_iterative_frames},
            "train_cells": len(train.samples),
            "held_out_frames": {src: n_eval_frames for src in sets},
            "held_out_cells": len(held.samples),
            "held_out_seed": held_seed,
            "frame_px": [320, 320],
            "cellnet": {k: getattr(net, "metadata_", {}).get(k) for k in ("command", "phase_gain")}
            if "net" in sets else None,  # only a classifier that learned from it depends on it
        },
        "held_out_accuracy": {"alive": acc["alive"], "differentiated": acc["differentiated"]},
        "held_out_accuracy_by_phase": by_source,
        "params": clf.get_params(),
        "final_loss": clf.history_[-1] if clf.history_ else None,
        "versions": {
            "biopilot": biopilot.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "command": f"biopilot qc train --seed {seed} --frames {n_frames} "
        f"--net-frames {n_net_frames} --iterative-frames {n_iterative_frames}",
    }
    path = Path(out) if out is not None else default_weights_path()
    clf.save(path, metadata)
    text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    path.with_suffix(".json").write_text(text, encoding="utf-8")
    return clf


def _joined(parts: list[TrainingSet]) -> TrainingSet:
    """One training set of several, in order."""
    return TrainingSet(
        CellSamples.concat([p.samples for p in parts]),
        pd.concat([p.truth for p in parts], ignore_index=True),
    )
