"""The overlay image of an analysed frame: cells outlined by class on the phase map."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["overlay_png", "overlay_rgb"]


def overlay_rgb(analysis: Any) -> NDArray[np.uint8]:
    """RGB image of the phase with cell contours: green live, red dead, blue differentiated."""
    from skimage.segmentation import find_boundaries

    phase = analysis.phase_rad
    hi = float(np.percentile(phase, 99.5)) or 1.0
    grey = (np.clip(phase / hi, 0, 1) * 200).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    cells = analysis.cells
    colour = np.zeros((int(analysis.labels.max()) + 1, 3), np.uint8)
    lab = cells["label"].to_numpy()
    colour[lab] = (40, 220, 40)
    colour[lab[cells["differentiated"].to_numpy(bool)]] = (60, 140, 255)
    colour[lab[~cells["alive"].to_numpy(bool)]] = (255, 40, 40)
    edge = find_boundaries(analysis.labels, mode="inner")
    rgb[edge] = colour[analysis.labels[edge]]
    return rgb


def overlay_png(analysis: Any) -> bytes:
    """The overlay as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(overlay_rgb(analysis)).save(buf, format="PNG")
    return buf.getvalue()
