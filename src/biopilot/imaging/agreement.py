"""Does a phase map explain its hologram? The share of the recorded fringes it reproduces.

A reconstruction can be wrong in ways its own output does not show: a network shown a
sample unlike its training frames (the shipped CellNet on dense suspensions of thick cells
gives smooth, plausible and wrong phase), a distance off, a forgotten tilt. The
hologram itself is the referee: propagate the phase object ``exp(i phi)`` to the sensor
(:func:`biopilot.models.optics.propagate`, the same light as the twin) and compare its
amplitude ``|P_z exp(i phi)|`` with the recorded one, ``sqrt`` of the hologram divided by its
illumination. The agreement is one minus the misfit's energy over the fringes' energy
(``|a - 1|^2``, what a blank field leaves unexplained), like a coefficient of determination:
1 for a perfect fit, 0 for no better than no cells, negative for worse.

On 24 frames apart from the benchmark (seed 97, 768 px, session 11) the true phase scored
0.98-1.00, CellNet's 0.63-0.94 wherever its cells were usable (F1 0.50-0.96) and -0.87 to
-0.54 on the six dense suspensions where it fails (F1 below 0.1).

A necessary check, not a sufficient one: ``exp(i phi)`` cannot see whole turns, so a phase
whole turns off on thick cells scores as well as the right one. Iterative retrieval, fitted
to the hologram itself, scored 0.18-0.85 on the six dense suspensions with its unwrapped phase
3.6-6.9 rad off and F1 near 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from biopilot.imaging.recon_input import tilt_shift
from biopilot.models.optics import KernelCache, propagate

__all__ = ["hologram_agreement"]

#: Tiles compared on a large frame: up to 3 x 3 of this side, each propagated with this margin
#: around it (the fringes of a cell's fine detail spread by z tan(theta), ~450 px for 1 um at
#: 2.7 mm; 256 px keeps the benchmark frames' true phase within 0.011-0.015 of the whole
#: field's score), so a 4K frame costs ~0.1 s instead of ~0.4 s, its kernel made once.
_TILE_PX, _TILE_MARGIN_PX = 384, 256
#: Border left out where a small frame is compared whole: fringes from outside reach in.
_MARGIN_PX = 32


def hologram_agreement(
    phase_rad: NDArray[np.floating],
    relative: NDArray[np.floating],
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = 1.335,
    tilt_mrad: tuple[float, float] = (0.0, 0.0),
    cache: KernelCache | None = None,
) -> float:
    """Share of the hologram's fringe energy that the phase map reproduces (1 is all).

    Parameters
    ----------
    phase_rad : (H, W) array
        Phase of the sample in radians (0 in the medium), in the sample's own coordinates.
    relative : (H, W) array
        The hologram divided by its illumination
        (:func:`~biopilot.imaging.recon_input.normalize_illumination`), 1 in the medium.
    z_mm : float
        Sample-to-sensor distance the phase was reconstructed at, mm.
    wavelength_um, pixel_um, n_medium : float
        Optics of the frame.
    tilt_mrad : (float, float)
        Calibrated illumination tilt, as given to the reconstruction.
    cache : KernelCache, optional
        Propagation kernels (the reconstruction's, for the same optics).

    Returns
    -------
    float
        ``1 - sum (|P_z exp(i phi)| - a)^2 / sum (a - 1)^2``, ``a = sqrt(relative)``, over
        up to 3 x 3 tiles of 384 px spread over the frame (each propagated with a 128 px
        margin), or over a small frame less a 32 px border; NaN for a field with no fringes
        to explain.

    Raises
    ------
    ValueError
        If the two maps differ in shape or the phase is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from biopilot.models.optics import propagate
    >>> yy, xx = np.mgrid[:128, :128]
    >>> phase = 2.0 * np.exp(-((yy - 64) ** 2 + (xx - 64) ** 2) / 40.0)
    >>> o = {"wavelength_um": 0.53, "pixel_um": 1.12, "n_medium": 1.335}
    >>> rel = np.abs(propagate(np.exp(1j * phase), 0.5, **o)) ** 2
    >>> round(hologram_agreement(phase, rel, 0.5, **o), 3)
    1.0
    >>> hologram_agreement(0.0 * phase, rel, 0.5, **o)
    0.0
    """
    phi = np.asarray(phase_rad, np.float32)
    rel = np.asarray(relative, np.float32)
    if phi.shape != rel.shape or phi.ndim != 2:
        raise ValueError(f"phase {phi.shape} and hologram {rel.shape} must be one 2-D shape")
    if not np.isfinite(phi).all():
        raise ValueError("the phase map has NaN or infinite values")
    fringes = misfit = 0.0
    cache = cache if cache is not None else KernelCache()
    for outer, inner in _tiles(phi.shape):
        sample = np.empty(phi[outer].shape, np.complex64)  # exp(i phi), in single precision
        sample.real, sample.imag = np.cos(phi[outer]), np.sin(phi[outer])
        if any(tilt_mrad):
            sample = tilt_shift(sample, (-tilt_mrad[0], -tilt_mrad[1]), z_mm, pixel_um)
        model = np.abs(propagate(sample, z_mm, wavelength_um=wavelength_um, pixel_um=pixel_um,
                                 n_medium=n_medium, cache=cache))[inner]
        measured = np.sqrt(np.maximum(rel[outer][inner], 0.0))
        fringes += float(np.sum((measured - 1.0) ** 2, dtype=np.float64))
        misfit += float(np.sum((model - measured) ** 2, dtype=np.float64))
    return 1.0 - misfit / fringes if fringes > 0.0 else float("nan")


def _tiles(shape: tuple[int, ...]) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """(propagated window, compared part of it) pairs: a grid of tiles, or the whole frame."""
    t, m = _TILE_PX, _TILE_MARGIN_PX
    if min(shape) < t + 2 * m:
        b = _MARGIN_PX if min(shape) > 4 * _MARGIN_PX else 0
        whole = (slice(None), slice(None))
        return [(whole, (slice(b, shape[0] - b), slice(b, shape[1] - b)))]
    starts = []
    for n in shape:  # up to 3 tiles per axis, evenly spread, their margins inside the frame
        k = min(3, (n - 2 * m) // t)
        span = n - 2 * m - t
        spread = [m + round(j * span / (k - 1)) for j in range(k)] if k > 1 else [m + span // 2]
        starts.append(spread)
    inner = (slice(m, m + t), slice(m, m + t))
    return [((slice(r - m, r + t + m), slice(c - m, c + t + m)), inner)
            for r in starts[0] for c in starts[1]]
