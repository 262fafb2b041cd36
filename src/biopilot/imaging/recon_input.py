"""Hologram input checks and illumination normalisation, shared by autofocus and phase retrieval."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage as ndi

__all__ = [
    "MIN_SIDE_PX",
    "check_hologram",
    "check_optics",
    "normalize_illumination",
    "reference_phase",
    "tilt_shift",
    "to_device",
]

#: Smallest frame side accepted (a hologram needs room for a few fringes).
MIN_SIDE_PX = 16
#: Fraction of pixels at the maximum value above which a frame is called saturated (bright
#: fringes of thick cells clip a few %: handled as lower bounds by the phase retrieval).
SATURATED_FRACTION = 0.5


def check_hologram(hologram: Any, name: str = "hologram") -> NDArray[np.float32]:
    """Validate an in-line hologram and return it as float32.

    Raises
    ------
    ValueError
        If it is not 2-D, has a side under 16 px, is complex, has NaN/inf or negative
        values, is flat (empty, dark or fully saturated), or has more than half of its pixels
        at the maximum value (saturated).
    """
    arr = np.asarray(hologram)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image (rows, columns), got shape {arr.shape}")
    if min(arr.shape) < MIN_SIDE_PX:
        raise ValueError(f"{name} must be at least {MIN_SIDE_PX} px per side, got {arr.shape}")
    if np.iscomplexobj(arr) or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold real intensities, got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = float(out.min()), float(out.max())
    if lo < 0:
        raise ValueError(f"{name} has negative intensities (min {lo:g}); give raw counts")
    if hi == lo:
        raise ValueError(f"{name} is flat (every pixel is {hi:g}): empty, dark or saturated frame")
    at_max = float(np.count_nonzero(out == hi)) / out.size
    if at_max > SATURATED_FRACTION:
        raise ValueError(
            f"{name} is saturated: {100 * at_max:.1f} % of pixels at the maximum value {hi:g}"
        )
    return out


def check_optics(wavelength_um: float, pixel_um: float, n_medium: float) -> None:
    """Raise ValueError unless the optical parameters are in plausible, physical ranges."""
    if not (np.isfinite(wavelength_um) and 0.2 <= wavelength_um <= 2.0):
        raise ValueError(f"wavelength_um must be 0.2-2.0 um, got {wavelength_um}")
    if not (np.isfinite(pixel_um) and 0.1 <= pixel_um <= 20.0):
        raise ValueError(f"pixel_um must be 0.1-20 um, got {pixel_um}")
    if not (np.isfinite(n_medium) and 1.0 <= n_medium <= 2.0):
        raise ValueError(f"n_medium must be 1.0-2.0, got {n_medium}")


def normalize_illumination(
    hologram: NDArray[np.floating], *, scale_px: float = 64.0
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Divide a hologram by its smooth illumination; return (relative intensity, illumination).

    The illumination is a Gaussian low-pass (sigma ``scale_px``) computed on an 8x binned copy
    and upsampled: a phase object conserves energy, so fringes average out on scales well
    above a cell and its rings, leaving the LED's profile (Lens-free imaging practice, e.g.
    Greenbaum et al. 2012, Nat. Methods 9:889).
    """
    import torch  # the package's dependency already; imported where first needed
    from torch.nn import functional as F

    h = np.ascontiguousarray(hologram, dtype=np.float32)
    b = max(1, min(8, min(h.shape) // 16))
    ny, nx = (h.shape[0] // b) * b, (h.shape[1] // b) * b
    t = torch.from_numpy(h)
    small = F.avg_pool2d(t[None, None, :ny, :nx], b)[0, 0].numpy()  # b x b means
    small = ndi.gaussian_filter(small, scale_px / b, mode="reflect")
    # Linear interpolation between the bins' centres, clamped at the borders; torch's
    # (two threads) is 2x the separable NumPy version it replaces on a 4K frame.
    illum = F.interpolate(torch.from_numpy(small)[None, None], size=h.shape, mode="bilinear",
                          align_corners=False)[0, 0]
    illum = illum.clamp_min_(1e-6 * max(float(illum.max()), 1e-30))
    return (t / illum).numpy(), illum.numpy()


def reference_phase(z_mm: float, wavelength_um: float, n_medium: float) -> complex:
    """``exp(+i k z)``: undoes the plane-wave phase a back-propagation puts on the background.

    The sensor records no phase, so back-propagating its amplitude leaves the background at
    ``exp(-i 2 pi n z / lambda)``; multiplying by this factor sets it to 1 (phase 0).
    """
    return complex(np.exp(2j * np.pi * n_medium * z_mm * 1e3 / wavelength_um))


def tilt_shift(
    field: NDArray[np.complexfloating],
    tilt_mrad: tuple[float, float],
    z_mm: float,
    pixel_um: float,
) -> NDArray[np.complex64]:
    """Move a sample-plane field back by the lateral shift an illumination tilt gave it.

    A plane wave tilted by ``theta`` (in the medium) makes the in-line hologram of the
    untilted one, shifted by ``z tan(theta)`` along the tilt (Goodman 2005, sec. 4.2: a
    linear phase at the sample is a shift after propagation; the change of the effective
    distance is ``~1.5 theta^2 z``, 0.02 um at 3 mrad and 2.7 mm). The shift cannot be seen
    in one hologram's intensity, so the tilt is calibration metadata, like the wavelength.
    The field is shifted by ``-z tan(theta)`` with a Fourier (sub-pixel, periodic) shift.

    Parameters
    ----------
    field : (H, W) complex array
        Field reconstructed without the tilt.
    tilt_mrad : (float, float)
        Illumination tilt (x along columns, y along rows) in the medium, in mrad.
    z_mm, pixel_um : float
        Sample-to-sensor distance (mm) and pixel pitch (um).

    Returns
    -------
    (H, W) ndarray of complex64
        The field in the sample's own coordinates (``field`` itself for no tilt).
    """
    tx, ty = (float(v) for v in tilt_mrad)
    if not (np.isfinite(tx) and np.isfinite(ty) and abs(tx) <= 100 and abs(ty) <= 100):
        raise ValueError(f"tilt_mrad must be two finite angles within +-100 mrad, got {tilt_mrad}")
    f = np.asarray(field)
    if tx == 0.0 and ty == 0.0:
        return f.astype(np.complex64, copy=False)
    sx = z_mm * 1e3 * np.tan(tx * 1e-3) / pixel_um  # px along columns
    sy = z_mm * 1e3 * np.tan(ty * 1e-3) / pixel_um
    # The ramp is separable: the outer product of two 1-D ramps, not a 2-D exponential.
    ry = np.exp(2j * np.pi * sy * np.fft.fftfreq(f.shape[0])).astype(np.complex64)
    rx = np.exp(2j * np.pi * sx * np.fft.fftfreq(f.shape[1])).astype(np.complex64)
    spec = sfft.fft2(f.astype(np.complex64, copy=False), workers=-1)
    spec *= ry[:, None]
    spec *= rx[None, :]
    return sfft.ifft2(spec, overwrite_x=True, workers=-1).astype(np.complex64, copy=False)


def to_device(arr: NDArray[Any], device: str) -> Any:
    """``arr`` itself for ``device="cpu"`` (NumPy reference), else a torch tensor on ``device``.

    ``"torch"`` runs the same code with torch on the CPU; ``"cuda"``/``"cuda:N"`` on a GPU.
    """
    if device == "cpu":
        return arr
    import torch  # optional path, imported only when asked for

    dev = "cpu" if device == "torch" else device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but torch finds no CUDA device")
    return torch.as_tensor(np.ascontiguousarray(arr), device=dev)
