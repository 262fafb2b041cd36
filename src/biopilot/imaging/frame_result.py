"""What the analysis of one frame returns: cells, labels, phase, timings, the hologram check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["FrameAnalysis"]


@dataclass
class FrameAnalysis:
    """What one frame contains: cells with features and classes, and how long each step took.

    Attributes
    ----------
    cells : pandas.DataFrame
        One row per cell: the columns of :func:`~biopilot.imaging.measure_cells` plus
        ``p_alive``, ``p_differentiated`` (probabilities) and ``alive``, ``differentiated``
        (booleans).
    labels : (H, W) int32
        Cell labels.
    phase_rad : (H, W) float32
        The phase map the cells were measured on.
    pixel_um, wavelength_um : float
        Optics of the frame.
    z_mm : float
        Sample-to-sensor distance used (NaN when the analysis started from a phase map).
    timings_s : dict
        Wall time per step in seconds (``reconstruct``, ``segment``, ``measure``,
        ``classify``, ``total``).
    reconstruction : dict
        How the phase and cells were made, where that varies: ``"cores"`` (``"corenet"`` or
        ``"cellnet"``: whose core map split the cells of the ``"net"`` path without
        ``refine``), ``"merge"`` (``"mergenet"`` or ``"rule"``: what merged its regions) and
        ``"analysis_pixel_um"`` (the pitch it was cut on: the sensor's, or finer for a coarse
        sensor); ``"two_wavelengths"`` (``combined``, ``turns_changed``,
        ``inconsistent_fraction`` of
        :class:`~biopilot.imaging.dualwave.TwoWavelengthPhase`) when a second hologram was
        given; ``"fit_agreement"`` (the fitted phase's hologram agreement) with ``refine``.
    hologram_agreement : float
        Share of the hologram's fringes the phase map reproduces
        (:func:`~biopilot.imaging.agreement.hologram_agreement`; 1 is all, 0 no better than
        an empty field); NaN when the analysis started from a phase map. With ``refine``,
        that of the network's phase the fit started from: the fitted phase explains the
        hologram by construction, whether it is right or not.
    """

    cells: pd.DataFrame
    labels: NDArray[np.int32]
    phase_rad: NDArray[np.float32]
    pixel_um: float
    wavelength_um: float
    z_mm: float = float("nan")
    timings_s: dict[str, float] = field(default_factory=dict)
    reconstruction: dict[str, Any] = field(default_factory=dict)
    hologram_agreement: float = float("nan")

    @property
    def n_cells(self) -> int:
        """Number of cells found."""
        return len(self.cells)

    @property
    def field_area_mm2(self) -> float:
        """Imaged area in square millimetres."""
        h, w = self.labels.shape
        return h * w * (self.pixel_um * 1e-3) ** 2

    @property
    def confluence(self) -> float:
        """Fraction of the field covered by cells."""
        return float(np.count_nonzero(self.labels) / self.labels.size)

    def summary(self) -> dict[str, Any]:
        """Count, viability, confluence, differentiation fraction and timings, as plain data."""
        alive = self.cells["alive"].to_numpy(bool) if self.n_cells else np.zeros(0, bool)
        diff = self.cells["differentiated"].to_numpy(bool)[alive] if self.n_cells else alive
        return {
            "n_cells": self.n_cells,
            "n_live": int(alive.sum()),
            "viability": float(alive.mean()) if alive.size else float("nan"),
            "confluence": self.confluence,
            "differentiated_fraction": float(diff.mean()) if diff.size else float("nan"),
            "field_area_mm2": self.field_area_mm2,
            "z_mm": self.z_mm,
            "hologram_agreement": self.hologram_agreement,
            "timings_s": dict(self.timings_s),
            **self.reconstruction,
        }
