"""Training data for CellNet: the twin's holograms, back-propagated, with their truth maps.

Each training frame is drawn at random over the whole operating range of the issue (405-650
nm, 1.12-1.67 um pixels, z 0.5-3 mm, all three culture scenarios, confluence 0-0.8, thick
cells, debris, uneven illumination, 10/12-bit sensors), simulated by
:func:`biopilot.twin.incubator.simulate_frame` and back-propagated by
:func:`biopilot.imaging.phase.backpropagate` at the true distance plus an autofocus-sized
error, exactly as the pipeline will feed the network.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from biopilot.imaging.cellnet import net_input
from biopilot.imaging.phase import backpropagate
from biopilot.twin.incubator import OpticalSetup, SceneSpec, simulate_frame

__all__ = ["CellNetData", "core_target", "make_training_data", "training_frame"]

#: Autofocus error the network must tolerate, um (our autofocus: median ~1 um, up to 5 um).
_Z_ERROR_UM = 3.0


@dataclass
class CellNetData:
    """Stacked training frames: inputs and the three targets, compact dtypes.

    Attributes
    ----------
    x : (N, 2, H, W) float16
        Network inputs (see :func:`~biopilot.imaging.cellnet.net_input`).
    phase : (N, H, W) float16
        True unwrapped phase, rad (debris included, 0 in the medium).
    foreground : (N, H, W) uint8
        1 on cells.
    core : (N, H, W) float16
        Normalised distance to each cell's border (:func:`core_target`).
    """

    x: NDArray[np.float16]
    phase: NDArray[np.float16]
    foreground: NDArray[np.uint8]
    core: NDArray[np.float16]

    def __len__(self) -> int:
        return int(self.x.shape[0])


def core_target(labels: NDArray[np.integer]) -> NDArray[np.float32]:
    """Each cell's distance to its border (medium or another cell) over the cell's largest."""
    lab = np.asarray(labels)
    inner = lab > 0
    for lo, hi in (
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
    ):
        seam = (lab[lo] != lab[hi]) & (lab[lo] > 0) & (lab[hi] > 0)
        inner[lo] &= ~seam  # both pixels of a border between two cells
        inner[hi] &= ~seam
    dist = ndi.distance_transform_edt(inner).astype(np.float32)
    n = int(lab.max())
    if n == 0:
        return dist
    peak = np.zeros(n + 1, np.float32)
    np.maximum.at(peak, lab.ravel(), dist.ravel())
    return np.where(lab > 0, dist / np.maximum(peak[lab], 1.0), 0.0).astype(np.float32)


def random_setup(
    rng: np.random.Generator, size: int, dense_suspension: float = 0.0
) -> tuple[OpticalSetup, SceneSpec]:
    """Optics and scene drawn over the operating range (z is the true distance).

    ``dense_suspension`` is the share of frames redrawn as suspensions at 40-80 %
    confluence (the shipped network's failure); 0 leaves the draws, and so a seeded
    training set, exactly as before.
    """
    optics = OpticalSetup(
        wavelength_nm=float(rng.uniform(405.0, 650.0)),
        pixel_um=float(rng.uniform(1.12, 1.67)),
        z_mm=float(rng.uniform(0.5, 3.0)),
        shape_px=(size, size),
        bit_depth=int(rng.choice([10, 12])),
    )
    scene = SceneSpec(
        scenario=str(rng.choice(["suspension", "adherent", "stem_cell"])),
        confluence=float(min(rng.uniform(0.0, 0.95), 0.8)),  # 16 % of frames at 0.8
        viability=float(rng.uniform(0.5, 0.98)),
        differentiated_fraction=float(rng.uniform(0.1, 0.7)),
        thick_fraction=float(rng.uniform(0.0, 0.4)),
        debris_per_mm2=float(rng.uniform(10.0, 100.0)),
        illumination_nonuniformity=float(rng.uniform(0.05, 0.3)),
    )
    if dense_suspension > 0 and rng.uniform() < dense_suspension:
        scene = scene.model_copy(update={
            "scenario": "suspension", "confluence": float(rng.uniform(0.4, 0.8))})
    return optics, scene


def training_frame(
    seed: int, index: int, size: int = 512, dense_suspension: float = 0.0
) -> tuple[NDArray[np.float16], NDArray[np.float16], NDArray[np.uint8], NDArray[np.float16]]:
    """Frame ``index`` of training set ``seed``: input, phase, foreground, core.

    Depends only on ``(seed, index)`` (and ``dense_suspension``, see :func:`random_setup`),
    so a set is the same for any number of workers.
    """
    rng = np.random.default_rng([seed, 7919, index])
    optics, scene = random_setup(rng, size, dense_suspension)
    frame = simulate_frame(optics, scene, rng=rng)
    z_est = frame.z_mm + rng.normal(0.0, _Z_ERROR_UM) * 1e-3
    field = backpropagate(
        frame.hologram, z_est, wavelength_um=optics.wavelength_um, pixel_um=optics.pixel_um,
        n_medium=optics.n_medium,
    )
    return (
        net_input(field).astype(np.float16),
        frame.phase_rad.astype(np.float16),
        (frame.labels > 0).astype(np.uint8),
        core_target(frame.labels).astype(np.float16),
    )


def make_training_data(
    seed: int, n: int, *, size: int = 512, workers: int = 1, start: int = 0,
    dense_suspension: float = 0.0,
) -> CellNetData:
    """Frames ``start .. start + n - 1`` of set ``seed``, simulated in ``workers`` processes."""
    idx = range(start, start + n)
    args = ([seed] * n, idx, [size] * n, [dense_suspension] * n)
    if workers > 1:
        # Fresh interpreters: a forked child inherits the locks of the parent's OpenMP, MKL
        # and numba threads and hangs once the parent has run torch (e.g. loading --init).
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            frames = list(pool.map(training_frame, *args, chunksize=4))
    else:
        frames = [training_frame(*a) for a in zip(*args, strict=True)]
    return CellNetData(*(np.stack(parts) for parts in zip(*frames, strict=True)))
