"""One real field propagated to many distances (focus scans), on :mod:`models.optics` kernels."""

from __future__ import annotations

import numpy as np

from biopilot.models.optics import (
    KernelCache,
    PadMode,
    _axial_frequency,
    _check_optics,
    _kernel,
    _kernel_key,
    _mkl_inverse,
    _mkl_spectrum,
    _pad,
    fft_shape,
)

__all__ = ["Refocuser"]


class Refocuser:
    """A real field's spectrum kept to propagate it to many distances (a focus scan).

    ``Refocuser(amp, ...)(z_mm)`` equals ``propagate(amp, z_mm, ...)`` (same padding and
    grid) but transforms the field once, not once per distance, and reuses the
    z-independent part of the kernels (an explicit cache: it lives with the scan).

    Parameters
    ----------
    field : (ny, nx) real ndarray
        Real field (an amplitude), as for :func:`propagate`.
    wavelength_um, pixel_um, n_medium, pad_px, pad_mode, fast_shape
        As for :func:`propagate`.
    cache : KernelCache, optional
        Where to keep and reuse the kernels (shared with :func:`propagate`'s real path).
    """

    def __init__(
        self,
        field: np.ndarray,
        *,
        wavelength_um: float,
        pixel_um: float,
        n_medium: float = 1.0,
        pad_px: int = 0,
        pad_mode: PadMode = "reflect",
        fast_shape: bool = True,
        cache: KernelCache | None = None,
    ) -> None:
        u = np.asarray(field)
        if u.ndim != 2 or 0 in u.shape or np.iscomplexobj(u) or not np.isfinite(u).all():
            raise ValueError(f"field must be a finite real 2-D array, got {u.dtype} {u.shape}")
        if pad_px < 0:
            raise ValueError(f"pad_px must be >= 0, got {pad_px}")
        _check_optics(wavelength_um, pixel_um, n_medium)
        self.shape = u.shape
        self.pad_px = pad_px
        self.optics = (wavelength_um, pixel_um, n_medium)
        self.cache = cache
        self.grid = fft_shape(u.shape, pad_px) if fast_shape else (
            u.shape[0] + 2 * pad_px, u.shape[1] + 2 * pad_px)
        self._axial = _axial_frequency(self.grid, wavelength_um, pixel_um, n_medium)
        padded = _pad(u.astype(np.float32), self.grid, pad_px, pad_mode, None)
        self.spectrum = _mkl_spectrum(padded)  # MKL's FFTs, as propagate's NumPy path

    def __call__(self, z_mm: float) -> np.ndarray:
        """The field propagated by ``z_mm`` (complex64, the input's shape)."""
        if not np.isfinite(z_mm):
            raise ValueError(f"z_mm must be finite, got {z_mm}")
        lam, px, n = self.optics
        key = _kernel_key(self.grid, z_mm, lam, px, n, False, True, "numpy")
        h = self.cache.get(key) if self.cache is not None else None
        if h is None:  # the layout of propagate's NumPy kernels: full plane, complex64
            h = _kernel(self._axial, z_mm)  # transfer_function's, without its set-up
            if self.cache is not None:
                self.cache.put(key, h)
        out = _mkl_inverse(self.spectrum, h)
        p, (ny, nx) = self.pad_px, self.shape
        return out[p : p + ny, p : p + nx]
