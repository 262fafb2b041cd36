"""The network path's cut: a field -> CellNet's maps -> cells, on the grid the networks cut best.

What :func:`~biopilot.imaging.analyze_frame` does between the back-propagation and the
measures on its ``"net"`` method: the maps (CellNet, CoreNet's cores), the watershed
(:func:`~biopilot.imaging.segment_maps`) and MergeNet's merge
(:func:`~biopilot.imaging.merge_cells`), on the field resampled to
:data:`~biopilot.imaging.resample.ANALYSIS_PIXEL_UM` where the sensor is coarser than
:data:`~biopilot.imaging.resample.RESAMPLE_ABOVE_UM`; the cells and the phase come back on
the sensor's grid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from biopilot.imaging.cellnet import CellMaps, CellNet, Precision, predict_maps
from biopilot.imaging.corenet import CoreNet
from biopilot.imaging.merge import merge_cells
from biopilot.imaging.resample import (
    analysis_shape,
    labels_to_shape,
    resample_field,
    resample_map,
)
from biopilot.imaging.segment import segment_maps

__all__ = ["NetCut", "cut_field"]


@dataclass(frozen=True)
class NetCut:
    """The cells of a field and the phase they are measured on, both on the sensor's grid.

    ``maps`` are the networks' maps on the grid of the cut (``pixel_um``); ``timings_s`` has
    ``"cellnet"`` (the resampling both ways included) and ``"segment"`` (watershed, merge).
    """

    maps: CellMaps
    labels: NDArray[np.int32]
    phase_rad: NDArray[np.float32]
    pixel_um: float
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def resampled(self) -> bool:
        """Whether the cut was made on a finer grid than the sensor's."""
        return self.maps.phase_rad.shape != self.phase_rad.shape


def cut_field(
    net: CellNet,
    field_: NDArray[np.complexfloating],
    *,
    pixel_um: float,
    corenet: CoreNet | None,
    merge: bool,
    max_pixel_um: float | None,
    precision: Precision = "auto",
    views: int = 1,
    segment_options: dict[str, Any] | None = None,
    workers: int = 1,
) -> NetCut:
    """Cut ``field_`` (sensor pitch ``pixel_um``) into cells with the networks.

    ``merge``: the watershed at ``h_core`` 0, then MergeNet (needs ``corenet``); otherwise the
    ``h_core`` rule. ``max_pixel_um``: a field from a coarse sensor is resampled to it first
    (:func:`~biopilot.imaging.resample.analysis_shape`; None: never). ``segment_options``
    go to :func:`~biopilot.imaging.segment_maps`.
    """
    t0 = time.perf_counter()
    grid = analysis_shape(field_.shape, pixel_um, max_pixel_um)
    pitch = pixel_um if grid is None else pixel_um * field_.shape[1] / grid[1]
    source = field_ if grid is None else resample_field(field_, grid)
    maps = predict_maps(net, source, precision=precision, views=views, cores=corenet)
    t1 = time.perf_counter()
    options: dict[str, Any] = {"h_core": 0.0} if merge else {}
    options.update(segment_options or {})
    labels = segment_maps(maps.foreground, maps.core, pixel_um=pitch, workers=workers, **options)
    if merge:
        labels = merge_cells(labels, maps.foreground, maps.core, maps.phase_rad, pixel_um=pitch)
    t2 = time.perf_counter()
    phase = maps.phase_rad
    if grid is not None:
        labels = labels_to_shape(labels, field_.shape)
        phase = resample_map(phase, field_.shape)
    t3 = time.perf_counter()
    return NetCut(maps, labels.astype(np.int32, copy=False), phase.astype(np.float32, copy=False),
                  pitch, {"cellnet": t1 - t0 + t3 - t2, "segment": t2 - t1})
