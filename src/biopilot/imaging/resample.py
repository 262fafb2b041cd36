"""Band-limited resampling between a sensor's pixel grid and the grid the networks cut on.

CellNet and CoreNet separate touching cells best on fields sampled near 1.3 um. On coarse
sensors (1.5-1.67 um pitch) the same cells span fewer pixels and the networks merge more of
them. A field sampled on the sensor is band-limited by its pixels, so resampling it in
Fourier space (zero-padding its spectrum) is exact: it adds pixels, not information, and puts
the cells at the scale the networks cut best. The cells found there come back to the sensor's
grid (labels by nearest pixel centre, phase by cropping its spectrum), where they are
measured and checked against the hologram as before.

``scipy.signal.resample`` does the same one axis at a time, in 2.7x the time on a 4K frame
(two full passes per axis, no worker threads): this module does both axes in one 2-D FFT pair.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.fft as sfft
from numpy.typing import NDArray

__all__ = [
    "ANALYSIS_PIXEL_UM",
    "RESAMPLE_ABOVE_UM",
    "analysis_shape",
    "labels_to_shape",
    "resample_field",
    "resample_map",
]

#: Fields from sensors coarser than :data:`RESAMPLE_ABOVE_UM` are cut on this pitch (um).
#: Chosen on the 24 tuning frames (seed 97, never the benchmark's; session 15): upsampling the
#: nine sampled at 1.40-1.66 um to 1.3 um raised the 16 adherent and stem-cell frames' mean
#: F1 from 0.894 to 0.908 and cut their mean count error from 3.6 to 1.9 %; 1.2, 1.25 and
#: 1.35 um did as well or worse, and resampling finer sensors (1.2-1.3 um) lost F1.
ANALYSIS_PIXEL_UM = 1.3
#: Sensors at most this coarse (um) are cut on their own grid. The gain is in the coarsest:
#: resampling only the five frames above 1.5 um kept it (F1 0.907, count error 2.1 %), while
#: on 1.40-1.47 um frames it was +-0.007 F1 for ~1.2x the networks' pixels.
RESAMPLE_ABOVE_UM = 1.5


def analysis_shape(
    shape: tuple[int, int], pixel_um: float, target_um: float | None
) -> tuple[int, int] | None:
    """The grid a field of ``shape`` at ``pixel_um`` is cut on, or None to keep its own.

    A sensor coarser than :data:`RESAMPLE_ABOVE_UM` (and than ``target_um``) is resampled:
    each side to the next FFT-friendly length at or above ``side * pixel_um / target_um``,
    so the analysis pitch is at most ``target_um`` (and within ~2 % of it).

    Raises
    ------
    ValueError
        If ``target_um`` is not a positive pitch (None, not 0, turns resampling off).
    """
    if target_um is not None and not (np.isfinite(target_um) and target_um > 0):
        raise ValueError(f"analysis pixel must be a positive pitch in um (or None), "
                         f"got {target_um}")
    if target_um is None or pixel_um <= max(RESAMPLE_ABOVE_UM, target_um * 1.02):
        return None
    rows, cols = (sfft.next_fast_len(int(np.ceil(n * pixel_um / target_um))) for n in shape)
    return rows, cols


def resample_field(
    field: NDArray[np.complexfloating], shape: tuple[int, int]
) -> NDArray[np.complex64]:
    """A complex field on ``shape``: its spectrum zero-padded (or cropped); levels kept."""
    return _resample(field, shape)


def resample_map(image: NDArray[np.floating], shape: tuple[int, int]) -> NDArray[np.float32]:
    """A real map (a phase, in rad) on ``shape``, the same way; float32."""
    return _resample(image, shape)


def _resample(image: NDArray[Any], shape: tuple[int, int]) -> NDArray[Any]:
    """``image`` on ``shape``: its spectrum zero-padded or cropped, levels kept.

    A real image comes back real (float32), a complex one complex64.
    """
    src = np.asarray(image)
    if src.ndim != 2 or min(src.shape) < 2:
        raise ValueError(f"resample needs a 2-D image, got shape {src.shape}")
    h, w = src.shape
    rows, cols = shape
    workers = os.cpu_count() or 1
    real = not np.iscomplexobj(src)
    spec = (sfft.rfft2(src.astype(np.float32), workers=workers) if real else
            sfft.fft2(src.astype(np.complex64), workers=workers))
    out = np.zeros((rows, cols // 2 + 1 if real else cols), np.complex64)
    for r_src, r_out in _bands(h, rows):
        if real:  # the half spectrum: the lowest columns only
            keep = min(w, cols) // 2 + 1
            out[r_out, :keep] = spec[r_src, :keep]
            continue
        for c_src, c_out in _bands(w, cols):
            out[r_out, c_out] = spec[r_src, c_src]
    gain = rows * cols / (h * w)
    if real:
        return (sfft.irfft2(out, s=(rows, cols), workers=workers) * gain).astype(np.float32)
    back = sfft.ifft2(out, workers=workers, overwrite_x=True)
    return (back * gain).astype(np.complex64)


def _bands(n: int, m: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Where the frequencies both lengths hold sit: (source, target) for >= 0 and < 0."""
    k = min(n, m)
    pos, neg = (k + 1) // 2, k // 2
    return (slice(0, pos), slice(0, pos)), (slice(n - neg, n), slice(m - neg, m))


def labels_to_shape(labels: NDArray[np.integer], shape: tuple[int, int]) -> NDArray[np.int32]:
    """A label image on another grid of the same field: each target pixel takes the label
    under its centre (cells too small to cover a centre vanish; labels are renumbered 1..n)."""
    h, w = labels.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.intp), w - 1)
    out = labels[rows][:, cols]
    present = np.bincount(out.ravel(), minlength=int(labels.max()) + 1) > 0  # not np.unique:
    present[0] = False  # sorting a 4K frame's labels costs ~0.6 s, counting them ~0.03 s
    lut = np.zeros(present.size, np.int32)
    lut[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return lut[out]
