"""Sensor side of the imaging incubator: optics set-up, in-line hologram formation, noise.

The forward model of a lens-free in-line (Gabor) hologram under plane-wave illumination:
the sample-plane transmission ``t = a exp(i phi)`` is propagated to the sensor by ``z`` with
the angular spectrum method (written once, in :func:`biopilot.models.optics.propagate`),
the intensity ``|U|^2`` is multiplied by a smooth illumination field, converted to
electrons with shot and read noise, and quantised to the sensor's bit depth.

The field is treated as periodic over the frame (no padding): the simulator keeps cells off
the borders, so the sample plane is medium (``t = 1``) at every edge and the periodic
continuation is seamless; fringes of cells near one border wrap to the other, as fringes of
cells outside the field of view would.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from biopilot.config import StrictModel
from biopilot.models.optics import KernelCache, propagate

__all__ = ["OpticalSetup", "expose", "illumination_field", "sensor_intensity"]


_TiltMrad = Annotated[float, Field(ge=-20.0, le=20.0)]


class OpticalSetup(StrictModel):
    """Optics of a lens-free in-line holographic sensor (what the instrument knows).

    Attributes
    ----------
    wavelength_nm : float
        Vacuum wavelength of the illumination, 405-650 nm.
    pixel_um : float
        Sensor pixel pitch, 1.12-1.67 um.
    z_mm : float or None
        Nominal sample-to-sensor distance, 0.5-3 mm; None when unknown (autofocus finds it).
    n_medium : float
        Refractive index of the culture medium, which also fills the sample-to-sensor gap.
        1.335 for culture medium at 20-37 degC.
    shape_px : (int, int)
        Sensor (rows, columns), 16-8192 each; 2748 x 3840 is a 10.6 MP 4K sensor.
    bit_depth : int
        ADC bits: 8, 10, 12, 14 or 16.
    tilt_mrad : (float, float)
        Calibrated illumination tilt (x along columns, y along rows) in the medium, mrad,
        within +-20; (0, 0) when not calibrated. A tilt shifts the hologram by z tan(theta),
        which one hologram cannot reveal: the reconstruction shifts it back when it is known.
    """

    wavelength_nm: float = Field(ge=405.0, le=650.0)
    pixel_um: float = Field(ge=1.12, le=1.67)
    z_mm: float | None = Field(default=None, ge=0.5, le=3.0)
    n_medium: float = Field(default=1.335, ge=1.0, le=1.6)
    shape_px: tuple[int, int] = (2748, 3840)
    bit_depth: int = 12
    tilt_mrad: tuple[_TiltMrad, _TiltMrad] = (0.0, 0.0)

    @field_validator("shape_px")
    @classmethod
    def _check_shape(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not all(16 <= n <= 8192 for n in v):
            raise ValueError(f"each side must be 16-8192 px, got {v}")
        return v

    @field_validator("bit_depth")
    @classmethod
    def _check_bits(cls, v: int) -> int:
        if v not in (8, 10, 12, 14, 16):
            raise ValueError(f"bit_depth must be 8, 10, 12, 14 or 16, got {v}")
        return v

    @property
    def wavelength_um(self) -> float:
        """Vacuum wavelength in micrometres."""
        return self.wavelength_nm * 1e-3

    @property
    def field_um(self) -> tuple[float, float]:
        """Field of view (height, width) in micrometres."""
        return (self.shape_px[0] * self.pixel_um, self.shape_px[1] * self.pixel_um)

    @property
    def full_scale(self) -> int:
        """Largest ADC code, ``2**bit_depth - 1``."""
        return int(2**self.bit_depth - 1)


def sensor_intensity(
    transmission: NDArray[np.complexfloating],
    optics: OpticalSetup,
    *,
    z_mm: float | None = None,
    tilt_mrad: tuple[float, float] = (0.0, 0.0),
    cache: KernelCache | None = None,
) -> NDArray[np.float32]:
    """Noise-free in-line hologram ``|U_z|^2`` of a sample-plane transmission.

    Parameters
    ----------
    transmission : (H, W) complex ndarray
        Sample-plane transmission ``a exp(i phi)`` (1 in the medium), sampled at
        ``optics.pixel_um``.
    optics : OpticalSetup
        Wavelength, pixel pitch, medium index (the gap is filled with medium).
    z_mm : float, optional
        Sample-to-sensor distance in mm; defaults to ``optics.z_mm``.
    tilt_mrad : (float, float)
        Illumination tilt (x along columns, y along rows) in mrad, in the medium. Rounded to
        a whole number of fringes over the frame so the field stays periodic.
    cache : biopilot.models.optics.KernelCache, optional
        Kernel cache passed to :func:`~biopilot.models.optics.propagate`.

    Returns
    -------
    (H, W) ndarray of float32
        Intensity relative to the incident beam (1 where nothing scatters).

    Raises
    ------
    ValueError
        If the distance is missing or the transmission is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> optics = OpticalSetup(wavelength_nm=532, pixel_um=1.12, z_mm=1.0, shape_px=(64, 64))
    >>> flat = np.ones((64, 64), np.complex64)
    >>> bool(np.allclose(sensor_intensity(flat, optics), 1.0, atol=1e-4))
    True

    References
    ----------
    .. [1] Gabor, D. (1948). A new microscopic principle. Nature 161, 777-778.
    .. [2] Goodman, J. W. (2005). Introduction to Fourier Optics, 3rd ed., sec. 3.10.
    """
    z = optics.z_mm if z_mm is None else z_mm
    if z is None:
        raise ValueError("sensor_intensity needs z_mm (argument or optics.z_mm)")
    if transmission.ndim != 2:
        raise ValueError(f"transmission must be 2-D, got shape {transmission.shape}")
    field = transmission.astype(np.complex64, copy=False)
    if any(tilt_mrad):
        field = field * _tilt_ramp(field.shape, optics, tilt_mrad)
    u = propagate(
        field,
        z,
        wavelength_um=optics.wavelength_um,
        pixel_um=optics.pixel_um,
        n_medium=optics.n_medium,
        cache=cache,
    )
    return (u.real * u.real + u.imag * u.imag).astype(np.float32)


def illumination_field(
    shape: tuple[int, int], nonuniformity: float, rng: np.random.Generator
) -> NDArray[np.float32]:
    """Smooth, low-order illumination field of mean 1 (an LED through a pinhole, vignetting).

    A random quadratic polynomial in normalised coordinates plus an off-centre Gaussian
    fall-off, rescaled so that ``(max - min) / mean == nonuniformity``.

    Parameters
    ----------
    shape : (int, int)
        Frame (rows, columns).
    nonuniformity : float
        Peak-to-peak variation relative to the mean, 0-0.5 (0 gives a flat field).
    rng : numpy.random.Generator
        Random source.

    Returns
    -------
    (H, W) ndarray of float32
        Positive field, mean 1.

    Examples
    --------
    >>> f = illumination_field((64, 80), 0.2, np.random.default_rng(0))
    >>> round(float(f.mean()), 3), round(float(np.ptp(f)), 3)
    (1.0, 0.2)
    """
    if not 0.0 <= nonuniformity <= 0.5:
        raise ValueError(f"nonuniformity must be 0-0.5, got {nonuniformity}")
    if nonuniformity == 0.0:
        return np.ones(shape, np.float32)
    y = np.linspace(-1.0, 1.0, shape[0], dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, shape[1], dtype=np.float32)[None, :]
    c = rng.normal(0.0, 1.0, 5).astype(np.float32)
    cy, cx = rng.uniform(-0.4, 0.4, 2).astype(np.float32)
    inv = np.float32(1.0 / (2.0 * rng.uniform(0.8, 1.6) ** 2))
    gauss_y, gauss_x = np.exp(-inv * (y - cy) ** 2), np.exp(-inv * (x - cx) ** 2)
    f = (c[1] * y + 0.5 * c[3] * y * y) + (c[0] * x + 0.5 * c[2] * x * x)
    f += (0.5 * c[4] * y) * x
    f += (2.0 * gauss_y) * gauss_x
    f = (f - f.min()) / max(float(np.ptp(f)), 1e-12)  # 0..1
    return (1.0 + nonuniformity * (f - f.mean(dtype=np.float64))).astype(np.float32)


def expose(
    intensity: NDArray[np.floating],
    optics: OpticalSetup,
    *,
    rng: np.random.Generator,
    exposure: float = 0.3,
    full_well_e: float = 6000.0,
    read_noise_e: float = 2.5,
    shot_noise: bool = True,
) -> NDArray[np.uint16]:
    """Convert a relative intensity to sensor counts: shot noise, read noise, quantisation.

    Electrons ``N = I * exposure * full_well_e``; shot noise is Poisson (drawn as its normal
    approximation, exact in mean and variance, above 30 e-), read noise is normal; counts are
    ``round(N * full_scale / full_well_e)``, clipped to ``[0, 2**bit_depth - 1]`` (bright
    fringes over ``1 / exposure`` saturate).

    Parameters
    ----------
    intensity : (H, W) ndarray
        Relative intensity (1 = mean background), illumination included.
    optics : OpticalSetup
        Gives the bit depth.
    rng : numpy.random.Generator
        Random source.
    exposure : float
        Mean background as a fraction of full well (0-1).
    full_well_e : float
        Full-well capacity in electrons (about 4,000-10,000 e- for 1.1-1.7 um CMOS pixels;
        EMVA 1288 data sheets of such sensors).
    read_noise_e : float
        Read noise in electrons rms (1.5-3 e- for modern CMOS sensors).
    shot_noise : bool
        Add photon shot noise.

    Returns
    -------
    (H, W) ndarray of uint16
        ADC counts.

    Examples
    --------
    >>> optics = OpticalSetup(wavelength_nm=530, pixel_um=1.4, bit_depth=10, shape_px=(32, 32))
    >>> c = expose(np.ones((32, 32)), optics, rng=np.random.default_rng(0), shot_noise=False,
    ...            read_noise_e=0.0, exposure=0.5)
    >>> int(c[0, 0])
    512

    References
    ----------
    .. [1] EMVA Standard 1288, Release 4.0 (2021): the linear photon-transfer model of a
       camera (shot noise, read noise, quantisation).
    """
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    electrons = np.asarray(intensity, dtype=np.float32) * np.float32(exposure * full_well_e)
    variance = np.float32(read_noise_e**2) + (np.maximum(electrons, 0.0) if shot_noise else 0.0)
    if shot_noise or read_noise_e > 0:  # shot and read noise: independent, variances add
        electrons += np.sqrt(variance) * rng.standard_normal(electrons.shape, dtype=np.float32)
    counts = np.rint(electrons * np.float32(optics.full_scale / full_well_e))
    return np.clip(counts, 0, optics.full_scale).astype(np.uint16)


# --------------------------------------------------------------------------------- helpers


def _tilt_ramp(
    shape: tuple[int, ...], optics: OpticalSetup, tilt_mrad: tuple[float, float]
) -> NDArray[np.complex64]:
    """Plane-wave phase ramp for a tilt, with a whole number of cycles over the frame."""
    ny, nx = shape
    k_med = optics.n_medium / optics.wavelength_um  # cycles/um
    cyc_x = round(np.sin(tilt_mrad[0] * 1e-3) * k_med * nx * optics.pixel_um)
    cyc_y = round(np.sin(tilt_mrad[1] * 1e-3) * k_med * ny * optics.pixel_um)
    ramp_y = np.exp(2j * np.pi * cyc_y * np.arange(ny) / ny)[:, None]
    ramp_x = np.exp(2j * np.pi * cyc_x * np.arange(nx) / nx)[None, :]
    return (ramp_y * ramp_x).astype(np.complex64)
