"""Autofocus of in-line holograms of phase objects: find the sample-to-sensor distance z.

Two stages. (1) Coarse, from the hologram's spectrum alone: a weak object's hologram has
power ``|O(f)|^2 sin^2(pi lambda z f^2 + theta)``, so the radially averaged spectrum
oscillates in ``f^2`` with period ``1 / (lambda z)`` (the Fresnel zones); a Fourier projection
of that oscillation over the search range peaks at z (one FFT, no propagation). (2) Fine: the
edge-sparsity criterion, the Tamura coefficient of the gradient magnitude of the refocused
complex field (ToG), maximised by a bounded Brent search on full-resolution crops around the
coarse z. ToG works for phase objects, where amplitude sharpness metrics (variance, Laplacian
of the amplitude) fail because a phase object is nearly invisible in amplitude at focus.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import optimize
from scipy.signal import find_peaks

from biopilot.imaging.recon_input import check_hologram, check_optics, normalize_illumination
from biopilot.models.bands import in_bands
from biopilot.models.optics import KernelCache
from biopilot.models.refocus import Refocuser

__all__ = ["autofocus", "focus_score", "spectral_z"]

_ROI_PX = 768  # side of the full-resolution crop used by the fine search
_PAD_PX = 32  # reflect margin around the crop (limits wrap-around of border fringes)
# Relative range under which the focus curves count as flat, times sqrt(pixels): shot noise
# alone gives 1-1.6 % on 128 x 128 px (1.3-2.1 / sqrt(N)); frames with cells or debris
# 6-20 % (our simulator's, 384-512 px). 2.5 / sqrt(N) is 2 % at 128 px, 0.5 % at 512 px.
_FLAT_REL = 2.5
# Least prominence of a focus peak, relative, times sqrt(pixels): 0.75 / sqrt(N) is 0.1 % at
# 768 px. Shot-noise wiggles along z: up to 0.09 % on a 512 px frame with cells (0.2 % on
# pure noise at 768 px, a frame refused as flat). The sample's bump beside thick cells'
# caustics: 0.23-0.3 % (benchmark frame 003, each of 9 crops); frames 000-002 show no peak
# beyond the sample's.
_PEAK_REL = 0.75
#: How far (um) beyond the phase-only criterion's maximum the sample's peak may lie: that
#: maximum is 0-25 um short of the sample on our simulator's frames.
_AHEAD_UM = 60.0
#: How far (um) beyond the spectrum's estimate the sample's peak may lie too. Among dense
#: suspensions (thick round cells, 60 %), the phase-only maximum fell 70-100 um short of the
#: sample, dragged by the cells' caustics, while the spectrum's estimate stayed 7-13 um beyond
#: it (session 15, 48 frames of 1024 px apart from the benchmark).
_SPECTRAL_SLACK_UM = 30.0
_N_BINS = 2048  # bins of f^2 of the radially averaged spectrum (spectral_z)


def autofocus(
    hologram: NDArray[Any],
    *,
    wavelength_um: float,
    pixel_um: float,
    z_min_mm: float = 0.5,
    z_max_mm: float = 3.0,
    n_medium: float = 1.335,
    tol_um: float = 0.5,
    cache: KernelCache | None = None,
    relative: NDArray[np.float32] | None = None,
) -> float:
    """Sample-to-sensor distance (mm) that brings the phase objects of a hologram into focus.

    Parameters
    ----------
    hologram : (H, W) array
        Raw in-line hologram, at least 64 px per side for a useful search.
    wavelength_um, pixel_um : float
        Vacuum wavelength and pixel pitch in micrometres.
    z_min_mm, z_max_mm : float
        Search range in mm (0.5-3 mm for our incubator sensors).
    n_medium : float
        Refractive index of the gap between sample and sensor.
    tol_um : float
        Tolerance of the fine search in micrometres.
    cache : KernelCache, optional
        Kernel cache (the fine search's kernels are rarely reused; pass one to keep them).
    relative : (H, W) float32 array, optional
        The hologram divided by its illumination
        (:func:`~biopilot.imaging.recon_input.normalize_illumination`), when the caller has
        it already (the pipeline shares it with the back-propagation); the hologram is then
        taken as checked (:func:`~biopilot.imaging.recon_input.check_hologram`), not checked
        again.

    Returns
    -------
    float
        Distance in mm.

    Raises
    ------
    ValueError
        Bad hologram or optics, an empty or inverted range, or a search that finds nothing
        (no Fresnel fringes in the spectrum and a flat focus criterion: no objects).

    References
    ----------
    .. [1] Zhang, Y., Wang, H., Wu, Y., Tamamitsu, M. & Ozcan, A. (2017). Edge sparsity
       criterion for robust holographic autofocusing. Opt. Lett. 42, 3824-3827.
    .. [2] Langehanenberg, P., Kemper, B., Dirksen, D. & von Bally, G. (2008). Autofocusing
       in digital holographic phase contrast microscopy on pure phase objects for live cell
       imaging. Appl. Opt. 47, D176-D182.
    .. [3] Memmolo, P. et al. (2011). Automatic focusing in digital holography and its
       application to stretched holograms. Opt. Lett. 36, 1945-1947.

    Examples
    --------
    >>> import numpy as np
    >>> from biopilot.models.optics import propagate
    >>> rng = np.random.default_rng(1)
    >>> yy, xx = np.mgrid[:256, :256]
    >>> phi = np.zeros((256, 256))
    >>> for cy, cx in rng.uniform(40, 216, (8, 2)):
    ...     phi += 2.0 * np.clip(1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / 49.0, 0, None)
    >>> holo = np.abs(propagate(np.exp(1j * phi), 1.2, wavelength_um=0.53,
    ...                         pixel_um=1.12, n_medium=1.335)) ** 2
    >>> z = autofocus(holo, wavelength_um=0.53, pixel_um=1.12)
    >>> bool(abs(z - 1.2) < 0.01)
    True
    """
    holo = check_hologram(hologram) if relative is None else np.asarray(hologram)
    check_optics(wavelength_um, pixel_um, n_medium)
    if not (np.isfinite(z_min_mm) and np.isfinite(z_max_mm) and 0 < z_min_mm < z_max_mm):
        raise ValueError(f"need 0 < z_min_mm < z_max_mm, got {z_min_mm}, {z_max_mm}")
    if tol_um <= 0:
        raise ValueError(f"tol_um must be > 0, got {tol_um}")
    rel = normalize_illumination(holo)[0] if relative is None else relative
    if rel.shape != holo.shape:
        raise ValueError(f"relative intensity {rel.shape} differs from the hologram {holo.shape}")
    amp = np.sqrt(rel)
    z0 = spectral_z(
        rel,
        wavelength_um=wavelength_um,
        pixel_um=pixel_um,
        n_medium=n_medium,
        z_min_mm=z_min_mm,
        z_max_mm=z_max_mm,
    )
    roi = _busiest_crop(amp, _ROI_PX)
    # A crop gets a reflected margin; a whole frame is taken as periodic, like the FFT.
    pad = _PAD_PX if roi.shape != amp.shape else 0
    refocus = Refocuser(roi, wavelength_um=wavelength_um, pixel_um=pixel_um, n_medium=n_medium,
                        pad_px=pad, fast_shape=pad > 0, cache=cache)

    seen: dict[float, tuple[float, float]] = {}

    def scores(z: float) -> tuple[float, float]:
        key = round(float(z), 9)  # the fine scan repeats three planes of the window's
        if key not in seen:
            seen[key] = _focus_scores(refocus(-z))
        return seen[key]

    def scan(grid: NDArray[np.float64], fine: bool = True) -> tuple[int, int]:
        """(index of the best plane, criterion used), or ValueError if both curves are flat."""
        curves = np.array([scores(z) for z in grid])  # (n, 2): complex field, phase only
        flat = _FLAT_REL / np.sqrt(roi.size)  # noise fluctuations fall as 1 / sqrt(N)
        if np.all(np.ptp(curves, axis=0) <= flat * np.abs(curves.mean(axis=0))):
            raise ValueError(
                "focus search found nothing: the focus criterion is flat over "
                f"{grid[0]:.3f}-{grid[-1]:.3f} mm (no objects in the hologram?)"
            )
        # Cells are positive lenses (n_cell > n_medium): thick round cells focus light towards
        # the sensor, where the complex-field criterion finds their caustic (its highest peak
        # when they are many), and the phase-only criterion, blind to those hot spots, peaks
        # 0-25 um short of the sample. Both spurious peaks lie on the sensor side: the sample
        # is the farthest clear peak of the complex-field curve, found in the window around
        # a first estimate (``fine``) and at most _AHEAD_UM beyond the phase-only maximum
        # (or _SPECTRAL_SLACK_UM beyond the spectrum's estimate, if that reaches farther).
        reach = grid[np.argmax(curves[:, 1])] + _AHEAD_UM * 1e-3
        if z0 is not None:
            reach = max(reach, z0 + _SPECTRAL_SLACK_UM * 1e-3)
        ahead = grid <= reach
        far = _farthest_peak(curves[:, 0], _PEAK_REL / np.sqrt(roi.size), ahead)
        if fine and far is not None:
            return far, 0
        # No interior peak: of the curves' maxima, the farthest off the window's edges.
        best = np.argmax(curves, axis=0)
        inside = (best > 0) & (best < grid.size - 1)
        far_z = np.where(inside, grid[best], -np.inf) if inside.any() else grid[best]
        which = int(np.argmax(far_z))
        return int(best[which]), which

    def window(z_c: float) -> NDArray[np.float64]:
        half = max(0.1, 0.05 * z_c)
        lo, hi = max(z_min_mm, z_c - half), min(z_max_mm, z_c + half)
        return np.linspace(lo, hi, max(5, int(np.ceil((hi - lo) / 0.015)) + 1))  # 15 um steps

    def coarse_z() -> float:  # scan of the whole range, 61 planes
        coarse = np.linspace(z_min_mm, z_max_mm, 61)
        return float(coarse[scan(coarse, fine=False)[0]])

    grid = window(z0 if z0 is not None else coarse_z())
    try:
        i, which = scan(grid)
    except ValueError:
        if z0 is None:
            raise
        grid = window(coarse_z())  # the spectrum misled us (dense frames): search it all
        i, which = scan(grid)
    # The sample's peak can be a small bump on the slope of the caustics' peak: a finer scan
    # between the neighbouring planes first, then Brent within one fine step.
    step = grid[1] - grid[0]
    fine = np.linspace(max(grid[0], grid[i] - step), min(grid[-1], grid[i] + step), 7)
    j = int(np.argmax([scores(z)[which] for z in fine]))
    res = optimize.minimize_scalar(
        lambda z: -scores(z)[which],
        bounds=(fine[max(j - 1, 0)], fine[min(j + 1, fine.size - 1)]),
        method="bounded",
        options={"xatol": tol_um * 1e-3},
    )
    return float(res.x)


def focus_score(field: Any, *, phase_only: bool = False) -> float:
    """Edge-sparsity focus criterion of a complex field: Tamura coefficient of ``|grad U|``.

    ``sqrt(std(G) / mean(G))`` with ``G`` the magnitude of the finite-difference gradient of
    the complex field (of ``U / |U|`` when ``phase_only``); larger is sharper (Zhang et al.
    2017, Opt. Lett. 42:3824). The phase-only variant ignores the bright caustics that thick
    cells, acting as ball lenses, form between the sample and the sensor.
    """
    return _focus_scores(field)[1 if phase_only else 0]


def _focus_scores(field: Any) -> tuple[float, float]:
    """:func:`focus_score` of the field and of its phase only, in one compiled pass."""
    u = np.asarray(field)
    if u.ndim != 2 or min(u.shape) < 2:
        raise ValueError(f"field must be 2-D, at least 2 x 2, got shape {u.shape}")
    m = _PAD_PX // 2 if min(u.shape) > 4 * _PAD_PX else 0
    if m:
        u = u[m:-m, m:-m]
    re = np.ascontiguousarray(u.real, np.float32)
    im = np.ascontiguousarray(u.imag, np.float32)
    s = np.sum(in_bands(lambda lo, hi: _gradient_sums(re, im, lo, hi), u.shape[0] - 1), axis=0)
    n = (u.shape[0] - 1) * (u.shape[1] - 1)
    out = []
    for total, squares in ((s[0], s[1]), (s[2], s[3])):
        mean = total / n
        std = math.sqrt(max(squares / n - mean * mean, 0.0))
        out.append(math.sqrt(std / mean) if mean > 0 else 0.0)
    return out[0], out[1]


# fastmath lets LLVM vectorise the square roots and reorder the sums: 3x faster, the sums
# equal to 1e-10 relative (the fields are finite: checked where the hologram comes in).
@numba.njit(cache=True, nogil=True, fastmath=True)
def _gradient_sums(
    re: NDArray[np.float32], im: NDArray[np.float32], lo: int, hi: int
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """Sums of ``G`` and ``G^2`` for the field and for ``U / |U|`` (float64 accumulators),
    over the gradients of rows ``lo:hi`` (at most the second last).

    One pass without temporaries: 5x numpy's version on an autofocus crop, which the ~30
    planes of a focus scan call twice each (written by hand: no library computes it).
    """
    nx = re.shape[1]
    s1 = s2 = p1 = p2 = 0.0
    for y in range(lo, min(hi, re.shape[0] - 1)):
        for x in range(nx - 1):
            a_r, a_i = re[y, x], im[y, x]
            b_r, b_i = re[y + 1, x], im[y + 1, x]
            c_r, c_i = re[y, x + 1], im[y, x + 1]
            g = math.sqrt((b_r - a_r) ** 2 + (b_i - a_i) ** 2 + (c_r - a_r) ** 2
                          + (c_i - a_i) ** 2)
            s1 += g
            s2 += g * g
            na = max(math.sqrt(a_r * a_r + a_i * a_i), 1e-6)
            nb = max(math.sqrt(b_r * b_r + b_i * b_i), 1e-6)
            nc = max(math.sqrt(c_r * c_r + c_i * c_i), 1e-6)
            g = math.sqrt((b_r / nb - a_r / na) ** 2 + (b_i / nb - a_i / na) ** 2
                          + (c_r / nc - a_r / na) ** 2 + (c_i / nc - a_i / na) ** 2)
            p1 += g
            p2 += g * g
    return s1, s2, p1, p2


def spectral_z(
    relative_intensity: NDArray[np.floating],
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = 1.335,
    z_min_mm: float = 0.5,
    z_max_mm: float = 3.0,
    min_contrast: float = 4.0,
) -> float | None:
    """Distance (mm) read from the Fresnel-zone oscillation of the hologram spectrum, or None.

    The radially averaged power spectrum of ``I - 1``, divided by its smooth envelope, is
    projected on ``exp(-2 i pi lambda_m z f^2)`` for z over the range; the peak gives z
    (lambda_m = lambda / n). Returns None when the peak is under ``min_contrast`` times the
    median projection (no fringes: empty frame or objects too weak). Accuracy: 1-3 % of z.
    """
    h = np.asarray(relative_intensity, dtype=np.float32)
    spec = _mkl_rspectrum(h - h.mean())
    n_bins = _N_BINS
    u_max = (0.5 / pixel_um) ** 2  # f^2 at Nyquist
    scale = n_bins / u_max
    fy2 = (np.fft.fftfreq(h.shape[0], pixel_um) ** 2 * scale).astype(np.float32)
    fx2 = (np.fft.rfftfreq(h.shape[1], pixel_um) ** 2 * scale).astype(np.float32)
    parts = in_bands(lambda lo, hi: _radial_power(spec, fy2, fx2, n_bins, lo, hi), h.shape[0])
    total, count = np.sum(parts, axis=0)
    ok = count > 0
    radial = np.where(ok, total / np.maximum(count, 1), 0.0)
    kernel = np.exp(-0.5 * (np.arange(-60, 61) / 20.0) ** 2)
    env = np.convolve(radial, kernel, "same") / np.maximum(np.convolve(ok, kernel, "same"), 1e-9)
    osc = np.where(ok & (np.arange(n_bins) > 8), radial / np.maximum(env, 1e-30) - 1.0, 0.0)
    # The projection on exp(-2 i pi lambda_m z u) over uniform u bins is a DFT: zero-pad to
    # sample z every ~1 um.
    lam_m = wavelength_um / n_medium
    du = u_max / n_bins
    n_fft = 1 << int(np.ceil(np.log2(1.0 / (lam_m * du * 1.0))))
    spectrum = np.abs(np.fft.rfft(osc, n=n_fft))
    zs_um = np.arange(spectrum.size) / (n_fft * lam_m * du)
    sel = (zs_um >= z_min_mm * 1e3) & (zs_um <= z_max_mm * 1e3)
    if not sel.any():
        return None
    proj, zs_um = spectrum[sel], zs_um[sel]
    best = int(np.argmax(proj))
    if proj[best] < min_contrast * float(np.median(proj)):
        return None
    return float(zs_um[best] * 1e-3)


@numba.njit(cache=True, nogil=True)
def _radial_power(
    spec: NDArray[np.complex64], fy2: NDArray[np.float32], fx2: NDArray[np.float32],
    n_bins: int, lo: int, hi: int,
) -> NDArray[np.float64]:  # pragma: no cover - compiled; covered through spectral_z
    """Power and frequency count per bin of ``f^2`` (``fy2 + fx2``, in bins) of rows
    ``lo:hi`` of an rfft2 spectrum, as a (2, n_bins) array; frequencies past the last bin
    are left out. One pass: NumPy's bincount needed the bin of each of the 5 M frequencies
    of a 4K frame as an array first (3x slower)."""
    out = np.zeros((2, n_bins))
    for y in range(lo, hi):
        for x in range(spec.shape[1]):
            b = int(fy2[y] + fx2[x])
            if b < n_bins:
                v = spec[y, x]
                out[0, b] += v.real * v.real + v.imag * v.imag
                out[1, b] += 1.0
    return out


def _mkl_rspectrum(h: NDArray[np.float32]) -> NDArray[np.complex64]:
    """``rfft2(h)`` through torch's MKL FFT (2x scipy's pocketfft on a 4K frame, 2 cores)."""
    import torch

    return torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(h))).numpy()


def _farthest_peak(
    curve: NDArray[np.float64], min_rel: float, allowed: NDArray[np.bool_]
) -> int | None:
    """Index of the last interior local maximum (of those ``allowed``) with a prominence of
    at least ``min_rel`` times the curve's mean, or None."""
    c = np.asarray(curve, dtype=np.float64)
    peaks, _ = find_peaks(c, prominence=min_rel * abs(float(c.mean())))
    peaks = peaks[allowed[peaks]]
    return int(peaks[-1]) if peaks.size else None


def _busiest_crop(img: NDArray[np.float32], side: int) -> NDArray[np.float32]:
    """The ``side`` x ``side`` crop (of 9 candidates) with the most hologram contrast."""
    ny, nx = img.shape
    if ny <= side and nx <= side:
        return img
    sy, sx = min(side, ny), min(side, nx)
    best, crop = -1.0, img[:sy, :sx]
    for y in np.linspace(0, ny - sy, 3).astype(int):
        for x in np.linspace(0, nx - sx, 3).astype(int):
            c = img[y : y + sy, x : x + sx]
            v = float(c[::4, ::4].var())
            if v > best:
                best, crop = v, c
    return crop
