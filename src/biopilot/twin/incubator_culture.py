"""A growing culture in the imaging incubator: one hologram every few hours, with its truth.

The culture covers the vessel logistically (Verhulst): its confluence starts at the scene's,
grows at ``ln 2 / doubling_h`` while the surface is free and levels off at ``capacity``
(contact inhibition). At fixed cell size the cell density follows the same curve, so the
doubling time of the counts is ``doubling_h`` while the culture is sparse. Each time point
images a new field of view (a multi-position scan: the sensor moves, or the cells do), so
counts scatter between frames as they would.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from biopilot.models.optics import KernelCache
from biopilot.twin.hologram import OpticalSetup
from biopilot.twin.incubator import SceneSpec, SimulatedFrame, simulate_frame

__all__ = ["culture_confluence", "culture_timelapse", "timelapse_hours"]

#: Highest confluence the twin renders (SceneSpec's bound).
MAX_CONFLUENCE = 0.8


def culture_confluence(
    t_h: float, start: float, doubling_h: float, capacity: float = MAX_CONFLUENCE
) -> float:
    """Confluence at ``t_h`` hours of a culture seeded at ``start`` (logistic growth).

    Examples
    --------
    >>> round(culture_confluence(24.0, 0.05, 24.0, 0.8), 4)
    0.0941
    """
    rate = math.log(2.0) / doubling_h
    return capacity / (1.0 + (capacity / start - 1.0) * math.exp(-rate * t_h))


def timelapse_hours(hours: float, every_h: float) -> list[float]:
    """The hours of a time-lapse: ``0, every_h, ...`` up to ``hours`` included.

    Examples
    --------
    >>> timelapse_hours(24.0, 8.0)
    [0.0, 8.0, 16.0, 24.0]
    """
    return [k * every_h for k in range(math.floor(hours / every_h + 1e-9) + 1)]


def culture_timelapse(
    optics: OpticalSetup,
    scene: SceneSpec,
    *,
    hours: float = 96.0,
    every_h: float = 8.0,
    doubling_h: float = 30.0,
    capacity: float = MAX_CONFLUENCE,
    seed: int = 0,
    name: str = "culture",
) -> Iterator[tuple[float, SimulatedFrame]]:
    """Frames of a culture growing from ``scene.confluence``, at ``0, every_h, ... <= hours``.

    Parameters
    ----------
    optics : OpticalSetup
        The sensor (the same at every time point).
    scene : SceneSpec
        The culture at ``t = 0``; only its confluence changes with time.
    hours, every_h : float
        Length of the time-lapse and time between frames, h.
    doubling_h : float
        Population doubling time while the culture is sparse, h (CHO ~20 h, MSC 30-50 h).
    capacity : float
        Confluence at which growth stops, at most 0.8 (the twin's bound).
    seed : int
        Frame ``k`` depends only on ``(seed, k)``.
    name : str
        Frames are named ``<name>_t<hours>h``.

    Yields
    ------
    (float, SimulatedFrame)
        Time in hours and the frame; the true confluence is the frame's own.

    Raises
    ------
    ValueError
        If a time, the doubling time or the capacity is out of range, or the scene starts
        empty or above the capacity.
    """
    if not (every_h > 0 and hours >= 0 and doubling_h > 0):
        raise ValueError(
            f"every_h and doubling_h must be > 0 and hours >= 0, got {every_h}, {doubling_h}, "
            f"{hours}")
    if not 0.0 < capacity <= MAX_CONFLUENCE:
        raise ValueError(f"capacity must be in (0, {MAX_CONFLUENCE}], got {capacity}")
    if not 0.0 < scene.confluence < capacity:
        raise ValueError(
            f"the culture must start between 0 and the capacity {capacity}, got confluence "
            f"{scene.confluence}")
    cache = KernelCache(max_entries=1)
    for k, t in enumerate(timelapse_hours(hours, every_h)):
        now = scene.model_copy(update={
            "confluence": culture_confluence(t, scene.confluence, doubling_h, capacity)})
        frame = simulate_frame(optics, now, rng=np.random.default_rng([seed, 4241, k]),
                               name=f"{name}_t{t:05.1f}h", cache=cache)
        yield t, frame
