"""Scalar light propagation (angular spectrum method), shared by the simulator and reconstruction.

One implementation of the physics: the transfer function is computed once, in float64 NumPy,
by :func:`transfer_function`; :func:`propagate` applies it with ``torch.fft`` (NumPy arrays:
on the CPU, through MKL, arrays shared; ``torch.Tensor`` in, tensor out, on the tensor's
device: CUDA when present). Kernels are cached in an explicit :class:`KernelCache` passed
by the caller.

Units: lengths in micrometres (``wavelength_um``, ``pixel_um``) except the propagation
distance ``z_mm`` in millimetres, as in the rest of biopilot. Positive ``z_mm`` propagates
along the light (sample -> sensor); negative ``z_mm`` back-propagates (sensor -> sample).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any, Literal, NamedTuple, TypeVar, overload

import numpy as np
import scipy.fft as sfft

from biopilot.models.kernels import fill_kernel

__all__ = ["KernelCache", "fft_shape", "propagate", "transfer_function"]

ArrayT = TypeVar("ArrayT")
PadMode = Literal["reflect", "edge", "constant"]


class KernelCache:
    """Least-recently-used cache of angular-spectrum transfer functions.

    Keys are ``(shape, z_mm, wavelength_um, pixel_um, n_medium, band_limit, half, device)``;
    values are the complex64 kernels (NumPy, or torch on a device). A 4K kernel is about
    40-85 MB, so the cache holds at most ``max_entries`` kernels.

    Parameters
    ----------
    max_entries : int
        Kernels kept; the least recently used one is dropped first.

    Examples
    --------
    >>> import numpy as np
    >>> cache = KernelCache(max_entries=4)
    >>> f = np.ones((64, 64), np.complex64)
    >>> g = propagate(f, 1.0, wavelength_um=0.5, pixel_um=1.12, cache=cache)
    >>> g = propagate(f, 1.0, wavelength_um=0.5, pixel_um=1.12, cache=cache)
    >>> (cache.hits, cache.misses, len(cache))
    (1, 1, 1)
    """

    def __init__(self, max_entries: int = 8) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._store: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._store)

    def get(self, key: tuple[Any, ...]) -> Any | None:
        """Return the kernel stored under ``key`` (marking it recently used), or None."""
        value = self._store.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._store.move_to_end(key)
        return value

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        """Store ``value`` under ``key``, dropping the least recently used kernel if full."""
        self._store[key] = value
        self._store.move_to_end(key)
        while len(self._store) > self.max_entries:
            self._store.popitem(last=False)

    def clear(self) -> None:
        """Drop every kernel."""
        self._store.clear()


def transfer_function(
    shape: tuple[int, int],
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = 1.0,
    band_limit: bool = False,
    half: bool = False,
) -> np.ndarray:
    """Angular-spectrum transfer function ``H(fx, fy)`` for a distance ``z_mm`` (complex64).

    ``H = exp(i 2 pi z sqrt((n/lambda)^2 - fx^2 - fy^2))`` on the unshifted FFT grid, zero for
    evanescent waves (``fx^2 + fy^2 > (n/lambda)^2``), so back-propagation never amplifies them
    (Goodman 2005, *Introduction to Fourier Optics*, 3rd ed., sec. 3.10).

    Parameters
    ----------
    shape : (int, int)
        Grid (rows, columns) the field is transformed on (after any padding).
    z_mm : float
        Propagation distance in mm; negative back-propagates.
    wavelength_um : float
        Vacuum wavelength in micrometres.
    pixel_um : float
        Sampling pitch in micrometres (square pixels).
    n_medium : float
        Refractive index of the medium between sample and sensor.
    band_limit : bool
        Also cut the frequencies whose kernel phase is under-sampled on this grid
        (band-limited angular spectrum, Matsushima & Shimobaba 2009, Opt. Express 17:19662,
        eq. 13). Use it for long distances on small grids; it removes wrap-around aliasing.
    half : bool
        Return only the ``rfft`` half-plane (columns ``0 .. nx//2``).

    Returns
    -------
    numpy.ndarray
        complex64, ``shape`` or ``(ny, nx//2 + 1)`` when ``half``.
    """
    _check_optics(wavelength_um, pixel_um, n_medium)
    axial = _axial_frequency((int(shape[0]), int(shape[1])), wavelength_um, pixel_um, n_medium)
    return _kernel(axial, z_mm, band_limit=band_limit, half=half)


def fft_shape(shape: tuple[int, int], pad_px: int = 0) -> tuple[int, int]:
    """FFT-friendly grid for a field of ``shape`` padded by ``pad_px`` on every side.

    Each side becomes ``scipy.fft.next_fast_len(n + 2 pad_px)`` (a 2748-row sensor, with the
    prime factor 229, becomes 2750 = 2 * 5^3 * 11).
    """
    return (
        sfft.next_fast_len(shape[0] + 2 * pad_px),
        sfft.next_fast_len(shape[1] + 2 * pad_px),
    )


@overload
def propagate(
    field: np.ndarray,
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = ...,
    cache: KernelCache | None = ...,
    pad_px: int = ...,
    pad_mode: PadMode = ...,
    fast_shape: bool = ...,
    band_limit: bool = ...,
) -> np.ndarray: ...
@overload
def propagate(
    field: ArrayT,
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = ...,
    cache: KernelCache | None = ...,
    pad_px: int = ...,
    pad_mode: PadMode = ...,
    fast_shape: bool = ...,
    band_limit: bool = ...,
) -> ArrayT: ...
def propagate(
    field: Any,
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = 1.0,
    cache: KernelCache | None = None,
    pad_px: int = 0,
    pad_mode: PadMode = "reflect",
    fast_shape: bool = True,
    band_limit: bool = False,
) -> Any:
    """Propagate a scalar field by ``z_mm`` with the angular spectrum method.

    A real tensor (an amplitude, e.g. the square root of a hologram) takes a faster path on
    its device: one real FFT and two inverse real FFTs, exact because the kernel is even in
    frequency (``H(-f) = H(f)``), so ``P(u) = irfft(Re H * rfft u) + i irfft(Im H * rfft u)``.
    NumPy arrays take one complex FFT pair through MKL, faster still on the CPU.

    Parameters
    ----------
    field : numpy.ndarray or torch.Tensor, shape (..., ny, nx)
        Complex (or real) field sampled at ``pixel_um``; leading axes are a batch.
        A ``torch.Tensor`` is propagated with ``torch.fft`` on its own device.
    z_mm : float
        Distance in mm; positive towards the sensor, negative back to the sample.
    wavelength_um : float
        Vacuum wavelength in micrometres (0.405-0.650 for our sensors).
    pixel_um : float
        Pixel pitch in micrometres.
    n_medium : float
        Refractive index of the medium crossed (1.0 air, 1.335 culture medium).
    cache : KernelCache, optional
        Where to keep and reuse transfer functions; without one, the kernel is recomputed.
    pad_px : int
        Margin added on each side before transforming (reduces wrap-around at the borders),
        cropped afterwards.
    pad_mode : {"reflect", "edge", "constant"}
        How the margin is filled (``constant`` is zero).
    fast_shape : bool
        Grow the padded grid to FFT-friendly sizes (:func:`fft_shape`).
    band_limit : bool
        Use the band-limited kernel (see :func:`transfer_function`).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        complex64 field, same shape (and device) as ``field``.

    Raises
    ------
    ValueError
        If ``field`` has fewer than 2 dimensions or is empty, contains NaN/inf, or the optical
        parameters are not positive finite numbers.

    References
    ----------
    .. [1] Goodman, J. W. (2005). Introduction to Fourier Optics, 3rd ed., sec. 3.10.
    .. [2] Matsushima, K. & Shimobaba, T. (2009). Band-limited angular spectrum method for
       numerical simulation of free-space propagation in far and near fields.
       Opt. Express 17, 19662-19673.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> u = np.exp(1j * rng.uniform(0, 0.5, (128, 128))).astype(np.complex64)
    >>> v = propagate(u, 1.5, wavelength_um=0.53, pixel_um=1.12, fast_shape=False)
    >>> w = propagate(v, -1.5, wavelength_um=0.53, pixel_um=1.12, fast_shape=False)
    >>> bool(np.allclose(np.sum(np.abs(v) ** 2), np.sum(np.abs(u) ** 2), rtol=1e-4))
    True
    """
    torch = _torch_if_tensor(field)
    shape = tuple(field.shape)
    if len(shape) < 2 or 0 in shape:
        raise ValueError(f"field must be a non-empty array of shape (..., ny, nx), got {shape}")
    if pad_px < 0:
        raise ValueError(f"pad_px must be >= 0, got {pad_px}")
    if not np.isfinite(z_mm):
        raise ValueError(f"z_mm must be finite, got {z_mm}")
    _check_optics(wavelength_um, pixel_um, n_medium)
    is_real = not (field.is_complex() if torch is not None else np.iscomplexobj(field))
    finite = bool(torch.isfinite(field).all()) if torch is not None else np.isfinite(field).all()
    if not finite:
        raise ValueError("field contains NaN or infinite values")

    ny, nx = shape[-2:]
    grid = fft_shape((ny, nx), pad_px) if fast_shape else (ny + 2 * pad_px, nx + 2 * pad_px)
    padded = _pad(field, grid, pad_px, pad_mode, torch)
    device = str(field.device) if torch is not None else "numpy"
    key = _kernel_key(grid, z_mm, wavelength_um, pixel_um, n_medium, band_limit, is_real, device)
    kernel = cache.get(key) if cache is not None else None
    if kernel is None:
        kernel = _make_kernel(
            grid, z_mm, wavelength_um, pixel_um, n_medium, band_limit, is_real, torch, field
        )
        if cache is not None:
            cache.put(key, kernel)
    out = _apply(padded, kernel, grid, is_real, torch)
    return out[..., pad_px : pad_px + ny, pad_px : pad_px + nx]


# --------------------------------------------------------------------------------- helpers


def _check_optics(wavelength_um: float, pixel_um: float, n_medium: float) -> None:
    for name, v in (
        ("wavelength_um", wavelength_um),
        ("pixel_um", pixel_um),
        ("n_medium", n_medium),
    ):
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v}")


class _Axial(NamedTuple):
    """The z-independent part of the kernels of one grid (rfft half-plane)."""

    shape: tuple[int, int]
    pixel_um: float
    lam_med: float  # wavelength in the medium, um
    k2: float  # (n / lambda)^2, (cycles/um)^2
    fy2: np.ndarray  # fy^2 of the rows, (cycles/um)^2
    fx2: np.ndarray  # fx^2 of the rfft columns


def _axial_frequency(
    shape: tuple[int, int], wavelength_um: float, pixel_um: float, n_medium: float
) -> _Axial:
    """What the axial frequencies of ``shape``'s rfft2 grid are made of (see :class:`_Axial`)."""
    ny, nx = shape
    fy = np.fft.fftfreq(ny, d=pixel_um)  # cycles/um
    fx = np.fft.rfftfreq(nx, d=pixel_um)
    k_med = n_medium / wavelength_um  # cycles/um in the medium
    return _Axial(shape, pixel_um, wavelength_um / n_medium, k_med * k_med, fy * fy, fx * fx)


def _kernel(axial: _Axial, z_mm: float, band_limit: bool = False, half: bool = False) -> np.ndarray:
    """:func:`transfer_function` from the grid's axial frequencies (kept by a focus scan)."""
    ny, nx = axial.shape
    z_um = float(z_mm) * 1e3
    h = fill_kernel(axial.k2, axial.fy2, axial.fx2, z_um, nx, half=half)  # 0: evanescent
    if band_limit and z_um != 0.0:
        # Matsushima & Shimobaba 2009, eq. 13: |f| < 1 / (lambda_med sqrt((2 df z)^2 + 1)).
        fy = np.fft.fftfreq(ny, d=axial.pixel_um)[:, None]
        fx = np.fft.fftfreq(nx, d=axial.pixel_um)[None, : h.shape[1]]
        lim_x = 1.0 / (axial.lam_med * np.hypot(2.0 * z_um / (nx * axial.pixel_um), 1.0))
        lim_y = 1.0 / (axial.lam_med * np.hypot(2.0 * z_um / (ny * axial.pixel_um), 1.0))
        h[~((np.abs(fx) < lim_x) & (np.abs(fy) < lim_y))] = 0.0
    return h


def _torch_if_tensor(x: Any) -> Any:
    """The torch module if ``x`` is a tensor (torch is never imported just to check)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    return None


def _pad(field: Any, grid: tuple[int, int], pad_px: int, mode: str, torch: Any) -> Any:
    """Pad the last two axes to ``grid`` (``pad_px`` before, the rest after)."""
    ny, nx = field.shape[-2:]
    if (ny, nx) == grid:
        return field
    if mode not in ("reflect", "edge", "constant"):
        raise ValueError(f"pad_mode must be 'reflect', 'edge' or 'constant', got {mode!r}")
    after_y, after_x = grid[0] - ny - pad_px, grid[1] - nx - pad_px
    if mode == "constant":
        if torch is not None:
            out = torch.zeros((*field.shape[:-2], *grid), dtype=field.dtype, device=field.device)
        else:
            out = np.zeros((*field.shape[:-2], *grid), dtype=field.dtype)
        out[..., pad_px : pad_px + ny, pad_px : pad_px + nx] = field
        return out
    # "symmetric" (edge sample repeated) works for margins of any width.
    np_mode: Literal["symmetric", "edge"] = "symmetric" if mode == "reflect" else "edge"
    if torch is not None:
        iy = np.pad(np.arange(ny), (pad_px, after_y), mode=np_mode)
        ix = np.pad(np.arange(nx), (pad_px, after_x), mode=np_mode)
        ty = torch.as_tensor(iy, device=field.device)
        tx = torch.as_tensor(ix, device=field.device)
        return field.index_select(-2, ty).index_select(-1, tx)
    # The same samples as the gather above, by slice copies: 5x faster on a 4K frame.
    widths = [(0, 0)] * (field.ndim - 2) + [(pad_px, after_y), (pad_px, after_x)]
    return np.pad(field, widths, mode=np_mode)


def _make_kernel(
    grid: tuple[int, int],
    z_mm: float,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float,
    band_limit: bool,
    half: bool,
    torch: Any,
    like: Any,
) -> Any:
    half = half and torch is not None  # NumPy arrays take the full-complex path (_mkl_filter)
    h = transfer_function(
        grid,
        z_mm,
        wavelength_um=wavelength_um,
        pixel_um=pixel_um,
        n_medium=n_medium,
        band_limit=band_limit,
        half=half,
    )
    if half:  # (Re H, Im H), applied separately to the half spectrum
        parts = np.stack([h.real, h.imag]).astype(np.float32)
        return torch.as_tensor(parts, device=like.device)
    return torch.as_tensor(h, device=like.device) if torch is not None else h


def _apply(u: Any, kernel: Any, grid: tuple[int, int], is_real: bool, torch: Any) -> Any:
    """Multiply the spectrum of ``u`` by ``kernel`` and transform back (complex64 out)."""
    if torch is not None:
        if is_real:
            spec = torch.fft.rfft2(u.to(torch.float32))
            re = torch.fft.irfft2(spec * kernel[0], s=grid)
            im = torch.fft.irfft2(spec * kernel[1], s=grid)
            return torch.complex(re, im)
        spec = torch.fft.fft2(u.to(torch.complex64))
        return torch.fft.ifft2(spec * kernel)
    return _mkl_filter(np.asarray(u, np.float32 if is_real else np.complex64), kernel)


def _mkl_filter(u: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``ifft2(fft2(u) * kernel)`` of a NumPy array, complex64, with torch's FFTs on the CPU.

    torch's CPU FFTs (Intel MKL) beat ``scipy.fft`` (pocketfft) with the same 2 cores:
    a full-complex filter of a 2750 x 3840 amplitude 0.23 s against 0.40 s for scipy's
    real-input path, and 4x on an 832 px autofocus crop (RESULTS.md). torch is a dependency
    already (CellNet); the arrays are shared, not copied.
    """
    return _mkl_inverse(_mkl_spectrum(u), kernel, overwrite=True)


def _mkl_spectrum(u: np.ndarray) -> Any:
    """``fft2(u)`` of a NumPy array as a complex64 CPU tensor (MKL; see :func:`_mkl_filter`)."""
    import torch

    return torch.fft.fft2(torch.from_numpy(np.ascontiguousarray(u)))


def _mkl_inverse(spec: Any, kernel: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """``ifft2(spec * kernel)`` as a NumPy array; ``spec`` is reused only if ``overwrite``."""
    import torch

    out = spec.mul_(torch.from_numpy(kernel)) if overwrite else spec * torch.from_numpy(kernel)
    return torch.fft.ifft2(out, out=out).numpy()


def _kernel_key(
    grid: tuple[int, int], z_mm: float, wavelength_um: float, pixel_um: float,
    n_medium: float, band_limit: bool, is_real: bool, device: str,
) -> tuple[Any, ...]:
    """The :class:`KernelCache` key of one kernel (shared with :class:`~.refocus.Refocuser`)."""
    return (grid, float(z_mm), float(wavelength_um), float(pixel_um), float(n_medium),
            band_limit, is_real, device)
