"""Phase refinement: fit a phase map (and the focus distance) to the hologram it came from.

:func:`refine_phase` starts from an estimate of the sample's phase (CellNet's), on a support
(where cells may be; the medium elsewhere), and minimises the misfit between the measured
sensor amplitude and the amplitude the estimate would produce there, by L-BFGS over the phase
of every support pixel and the sample-to-sensor distance. The estimate brings what one
hologram cannot give (the phase's low frequencies, weakly coded in an in-line hologram, and
the whole turns of phase of thick cells); the fit brings what a network cannot, agreement with
the physics of this very frame, pixel by pixel.

Why not :func:`~biopilot.imaging.phase.retrieve_phase` from the same start: error reduction
is a gradient step of fixed length on the same misfit with the amplitude free; here the
sample is a pure phase object inside the support (the twin's cells absorb little or nothing),
the phase is the unknown itself (so the result stays unwrapped against the start instead of
being wrapped and unwrapped again), the distance is fitted too (the autofocus leaves 1-3 um)
and a quasi-Newton step converges several times faster per propagation. L-BFGS is torch's
(``torch.optim.LBFGS``, strong Wolfe line search); only the misfit and its exact gradient (two
FFT pairs an evaluation) are written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy import ndimage as ndi

from biopilot.imaging import refine_kernels as rk
from biopilot.imaging.recon_input import check_hologram, check_optics, normalize_illumination
from biopilot.models.optics import fft_shape

__all__ = ["PhaseFit", "fit_support", "refine_phase"]

#: Largest change of the distance the fit may make, um (the autofocus is within ~5 um).
_MAX_DZ_UM = 10.0
#: The fit's support: the network's foreground grown by this much, px (session 9: 4 px gave
#: 0.077 against 0.081 rad on one benchmark frame and 0.141 against 0.133 on another).
_SUPPORT_GROWTH_PX = 2


def fit_support(foreground: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Pixels whose phase :func:`refine_phase` fits: CellNet's foreground (>= 0.5) grown 2 px."""
    return np.asarray(ndi.binary_dilation(np.asarray(foreground) >= 0.5,
                                          iterations=_SUPPORT_GROWTH_PX))


@dataclass(frozen=True)
class PhaseFit:
    """Result of :func:`refine_phase`.

    Attributes
    ----------
    phase_rad : (H, W) float32 ndarray
        Refined phase in radians, 0 outside the support.
    z_mm : float
        Sample-to-sensor distance after the fit (the one given when ``fit_z`` is False).
    misfit_start, misfit : float
        RMS difference between measured and modelled sensor amplitude (relative to the
        illumination, so ~0.01 is the shot noise of a well exposed sensor), before and after,
        over all the holograms fitted.
    evaluations : int
        Misfit evaluations (each two FFT pairs of the frame).
    """

    phase_rad: NDArray[np.float32]
    z_mm: float
    misfit_start: float
    misfit: float
    evaluations: int


def refine_phase(
    hologram: NDArray[Any],
    phase_rad: NDArray[np.floating],
    support: NDArray[np.bool_],
    z_mm: float,
    *,
    wavelength_um: float,
    pixel_um: float,
    n_medium: float = 1.335,
    n_iter: int = 30,
    fit_z: bool = True,
    relative: NDArray[np.float32] | None = None,
    tilt_mrad: tuple[float, float] = (0.0, 0.0),
    prior: float = 0.01,
    device: str = "cpu",
    more: Sequence[tuple[NDArray[Any], float]] = (),
) -> PhaseFit:
    """Fit ``phase_rad`` on ``support`` (and ``z_mm``) to the hologram's sensor amplitude.

    The model: the sample transmits ``exp(i phi)`` (phi from ``phase_rad`` inside
    ``support``, 0 outside), propagated by the angular spectrum over ``z`` in the medium
    on an FFT-friendly grid just over the sensor's; its amplitude is compared with
    ``sqrt(I / illumination)`` on the sensor's pixels (saturated ones left out), plus
    ``prior / 2`` times the squared change of phase. L-BFGS takes ``n_iter`` iterations at
    most (two evaluations each at most); ``z`` stays within 10 um of ``z_mm``.

    Parameters
    ----------
    hologram : (H, W) array
        Raw hologram (sensor counts).
    phase_rad : (H, W) array
        Starting phase in radians, unwrapped (the background at 0), in the sample's own
        coordinates (as :func:`~biopilot.imaging.phase.backpropagate` gives them).
    support : (H, W) bool array
        Pixels whose phase is fitted; the medium (phase 0) elsewhere.
    z_mm : float
        Sample-to-sensor distance to start from, mm.
    wavelength_um, pixel_um, n_medium :
        Optics, as for :func:`~biopilot.imaging.phase.retrieve_phase`.
    n_iter : int
        Largest number of L-BFGS iterations (>= 1); each takes one or a few evaluations.
    fit_z : bool
        Fit the distance too.
    relative : (H, W) array, optional
        The hologram divided by its illumination, when the caller has it already.
    tilt_mrad : (float, float)
        Calibrated illumination tilt (x, y) in the medium, mrad: the model shifts the
        hologram by ``z tan(tilt)`` as the tilt does (see
        :func:`~biopilot.imaging.recon_input.tilt_shift`).
    prior : float
        Weight of the start against the data, >= 0. The data pin most of the phase; where a
        single in-line hologram says little (spatial frequencies where the phase contrast
        ``sin(pi lambda z f^2 / n)`` vanishes) the start holds. 0.01 was best of 0-0.1 on a
        dense benchmark frame (0.148 -> 0.133 rad after 30 iterations; 0.1 over-constrains).
    device : {"cpu", "torch", "cuda"}
        ``"cpu"``: compiled passes around MKL's FFTs (the reference); ``"torch"``: the same
        steps as torch operations on the CPU; ``"cuda"``: those on a GPU.
    more : sequence of (hologram, wavelength_um)
        Holograms of the same sample under other LEDs (same sensor, distance and tilt),
        fitted jointly: the optical path is shared, so the phase there is ``phase_rad``
        times ``wavelength_um / theirs`` (dispersion neglected). Each wavelength blinds the
        phase at other spatial frequencies, so together they pin what one leaves loose;
        each adds one hologram's cost to an evaluation. The start must be right in whole
        turns at every wavelength (see :mod:`~biopilot.imaging.dualwave`).

    Returns
    -------
    PhaseFit

    Raises
    ------
    ValueError
        Bad hologram or optics, arrays of another shape, a non-finite start, ``z_mm`` not
        positive, ``n_iter`` < 1, a negative ``prior`` or a tilt that is not two finite
        angles within +-100 mrad.

    References
    ----------
    .. [1] Fienup, J. R. (1982). Phase retrieval algorithms: a comparison. Appl. Opt. 21,
       2758-2769 (error reduction as a gradient method, sec. 3).
    .. [2] Byrd, R. H., Lu, P., Nocedal, J. & Zhu, C. (1995). A limited memory algorithm for
       bound constrained optimization. SIAM J. Sci. Comput. 16, 1190-1208.

    Examples
    --------
    >>> import numpy as np
    >>> from biopilot.models.optics import propagate
    >>> yy, xx = np.mgrid[:96, :96]
    >>> true = 2.0 * np.clip(1 - ((yy - 48) ** 2 + (xx - 44) ** 2) / 100.0, 0, None)
    >>> holo = np.abs(propagate(np.exp(1j * true), 0.8, wavelength_um=0.53, pixel_um=1.12,
    ...                         n_medium=1.335, fast_shape=False)) ** 2
    >>> fit = refine_phase(holo, 0.8 * true, true > 0, 0.8, wavelength_um=0.53, pixel_um=1.12,
    ...                    fit_z=False, relative=holo)
    >>> bool(np.abs(fit.phase_rad - true).max() < 0.05)
    True
    """
    holo = check_hologram(hologram)
    check_optics(wavelength_um, pixel_um, n_medium)
    phi0 = np.asarray(phase_rad, np.float32)
    sup = np.asarray(support, bool)
    if phi0.shape != holo.shape or sup.shape != holo.shape:
        raise ValueError(f"phase {phi0.shape} and support {sup.shape} must have the hologram's "
                         f"shape {holo.shape}")
    if not np.isfinite(phi0[sup]).all():
        raise ValueError("the starting phase has NaN or infinite values on the support")
    if not (math.isfinite(z_mm) and z_mm > 0):
        raise ValueError(f"z_mm must be a positive distance in mm, got {z_mm}")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    if device not in ("cpu", "torch", "cuda"):
        raise ValueError(f"device must be 'cpu', 'torch' or 'cuda', got {device!r}")
    if not (math.isfinite(prior) and prior >= 0):
        raise ValueError(f"prior must be a finite weight >= 0, got {prior}")
    tilt = np.asarray(tilt_mrad, float)
    if tilt.shape != (2,) or not (np.isfinite(tilt).all() and np.abs(tilt).max() <= 100):
        raise ValueError(f"tilt_mrad must be two finite angles within +-100 mrad, got {tilt_mrad}")
    rel = normalize_illumination(holo)[0] if relative is None else np.asarray(relative)
    tan = np.tan(tilt[::-1] * 1e-3)  # (y, x)
    shift = (float(z_mm * 1e3 * tan[0] / pixel_um), float(z_mm * 1e3 * tan[1] / pixel_um))
    optics = (wavelength_um, pixel_um, n_medium)
    parts = [(_Model(rel, holo >= holo.max(), sup, phi0, z_mm, optics, prior, shift, device), 1.0)]
    for other, wl in more:
        h = check_hologram(other)
        check_optics(wl, pixel_um, n_medium)
        if h.shape != holo.shape:
            raise ValueError(f"a hologram at {wl * 1e3:.0f} nm is {h.shape}, the first "
                             f"{holo.shape}: the same sensor and field are needed")
        r = wavelength_um / wl
        parts.append((_Model(normalize_illumination(h)[0], h >= h.max(), sup, phi0 * r, z_mm,
                             (wl, pixel_um, n_medium), prior, shift, device), r))
    fit = _Fit(parts, fit_z)
    phi, dz_um, n_eval = fit.run(n_iter)
    return PhaseFit(
        phase_rad=phi[: holo.shape[0], : holo.shape[1]].copy(), z_mm=z_mm + dz_um * 1e-3,
        misfit_start=fit.misfit_start, misfit=fit.misfit(), evaluations=n_eval,
    )


class _Model:
    """Sensor-amplitude misfit of a pure phase object on a support, its gradient and its fit.

    Tensors on an FFT-friendly grid, transformed by torch's FFTs (MKL on the CPU) in place;
    the element-wise steps are the fused passes of :mod:`~biopilot.imaging.refine_kernels` on
    the CPU and the same steps in torch elsewhere (:class:`_TorchSteps`).
    """

    def __init__(
        self, rel: NDArray[Any], saturated: NDArray[np.bool_], support: NDArray[np.bool_],
        phi0: NDArray[np.float32], z_mm: float, optics: tuple[float, float, float],
        prior: float, shift_px: tuple[float, float], device: str,
    ) -> None:
        wavelength_um, pixel_um, n_medium = optics
        dev = torch.device("cpu" if device == "torch" else device)
        self.steps: Any = _NumbaSteps() if device == "cpu" else _TorchSteps()
        grid = fft_shape(rel.shape)
        fy = np.fft.fftfreq(grid[0], pixel_um)[:, None]
        fx = np.fft.fftfreq(grid[1], pixel_um)[None, :]
        k = n_medium / wavelength_um
        kk = k * k - fx * fx - fy * fy
        passes = kk > 0  # evanescent waves carry nothing to the sensor
        # axial phase per um of distance, relative to the plane wave (the medium stays 1)
        kz = np.where(passes, 2 * np.pi * (np.sqrt(np.maximum(kk, 0.0)) - k), 0.0)
        # a tilted illumination shifts the hologram by (sy, sx) px: a linear spectral phase
        ramp = (np.fft.fftfreq(grid[0])[:, None] * shift_px[0]
                + np.fft.fftfreq(grid[1])[None, :] * shift_px[1])
        ok = ~saturated if np.count_nonzero(saturated) > 1 else np.ones_like(saturated)

        def put(a: NDArray[Any]) -> torch.Tensor:  # float32 on the grid, at the top left
            out = np.zeros(grid, np.float32)
            out[: a.shape[0], : a.shape[1]] = a
            return torch.from_numpy(out).to(dev)

        self.passes, self.kz, self.shift = put(passes), put(kz), put(-2 * np.pi * ramp)
        self.amp = put(np.sqrt(np.clip(rel, 0.0, None)))
        self.weight = put(ok)  # sensor pixels, saturated ones out
        self.n_data = float(self.weight.sum())
        self.mask = put(support)
        self.phi0 = put(np.where(support, phi0, 0.0))
        self.dphi = torch.zeros_like(self.phi0)  # the fitted change of phase (0 off support)
        self.z_um, self.dz, self.prior = z_mm * 1e3, 0.0, prior
        self.t, self.kernel, self.filtered, self.u = (
            torch.empty(grid, dtype=torch.complex64, device=dev) for _ in range(4))
        self.grad = torch.empty_like(self.phi0)

    def _evaluate(self, grad: bool) -> tuple[float, torch.Tensor | None, float]:
        """Half the sum of squared misfits (+ the prior); gradients in phase and distance."""
        st = self.steps
        st.transmission(self.phi0 + self.dphi, self.t)
        spec = torch.fft.fft2(self.t)
        st.filter_spectrum(spec, self.kz, self.shift, self.passes, self.z_um + self.dz,
                           self.kernel, self.filtered)
        u = torch.fft.ifft2(self.filtered, out=self.u)
        loss = st.residual(u, self.amp, self.weight) + self.prior_term()
        if not grad:
            return loss, None, 0.0
        rs = torch.fft.fft2(u, out=u)
        g_z = -st.adjoint_filter(rs, self.filtered, self.kernel, self.kz) / rs.numel()
        g = torch.fft.ifft2(rs, out=rs)  # adjoint propagation
        st.phase_gradient(self.t, g, self.mask, self.dphi, self.prior, self.grad)
        return loss, self.grad, g_z

    def prior_term(self) -> float:
        """``prior / 2`` times the squared change of phase."""
        return 0.5 * self.prior * float(self.dphi.square().sum()) if self.prior else 0.0

    def z_curvature(self) -> float:
        """Gauss-Newton curvature of the misfit in the distance, per pixel (after an evaluation)."""
        return 0.5 * float((self.filtered.abs() * self.kz).square().sum()) / self.phi0.numel()


class _Fit:
    """L-BFGS (torch) over one phase map and the distance, shared by one or more models.

    Model ``i``'s change of phase is ``r_i`` times the unknown (the ratio of the first
    wavelength to its own): one optical path seen at several wavelengths.
    """

    def __init__(self, parts: list[tuple[_Model, float]], fit_z: bool) -> None:
        self.parts, self.fit_z = parts, fit_z
        self.n_data = sum(m.n_data for m, _ in parts)
        self.misfit_start = math.nan  # set by run, from its first evaluation

    def _evaluate(self) -> tuple[float, torch.Tensor, float]:
        """Summed loss, gradient in the first model's phase, gradient in the distance."""
        loss, g_phi, g_z = 0.0, None, 0.0
        for m, r in self.parts:
            lk, gk, gzk = m._evaluate(grad=True)
            assert gk is not None
            # the first model's ratio is 1: its own buffer takes the others' (rewritten next time)
            g_phi = gk if g_phi is None else g_phi.add_(gk, alpha=r)
            loss, g_z = loss + lk, g_z + gzk
        assert g_phi is not None
        return loss, g_phi, g_z

    def misfit(self) -> float:
        """RMS amplitude misfit on all the sensors' pixels, now."""
        loss = sum(m._evaluate(grad=False)[0] - m.prior_term() for m, _ in self.parts)
        return math.sqrt(max(2.0 * loss, 0.0) / self.n_data)

    def run(self, n_iter: int) -> tuple[NDArray[np.float32], float, int]:
        """Fit; (the first model's phase, dz um, evaluations).

        The unknowns are scaled to unit Gauss-Newton curvature (a phase pixel's is ~1/2 of
        a unitary propagation; the distance's is half the energy of ``du/dz``), then all by
        the first gradient's L1 norm, so that torch's first trial step is the Newton step.
        """
        first = self.parts[0][0]
        loss, g_phi, g_z = self._evaluate()  # at the start
        prior = sum(m.prior_term() for m, _ in self.parts)
        self.misfit_start = math.sqrt(max(2.0 * (loss - prior), 0.0) / self.n_data)
        c_z = sum(m.z_curvature() for m, _ in self.parts)
        s_phi = math.sqrt(sum(r * r * (0.5 + m.prior) for m, r in self.parts))
        s_z = math.sqrt(max(c_z, 1e-12)) if self.fit_z else 1.0
        k = 1.0 / max(float(g_phi.abs().sum()) / s_phi + abs(g_z) / s_z * self.fit_z, 1e-30)
        x = torch.zeros_like(first.phi0, requires_grad=True)
        xz = torch.zeros(1, device=first.phi0.device, requires_grad=True)
        n_eval = [0]

        def take() -> None:
            dz = float(xz.detach()) / (s_z * k) if self.fit_z else 0.0
            for m, r in self.parts:
                m.dphi = x.detach() * (r / (s_phi * k)) * m.mask
                m.dz = max(-_MAX_DZ_UM, min(_MAX_DZ_UM, dz))

        def closure() -> torch.Tensor:
            take()
            loss, gp, gz = self._evaluate()
            x.grad = gp * (1 / (s_phi * k))
            xz.grad = torch.full_like(xz, gz / (s_z * k) if self.fit_z else 0.0)
            n_eval[0] += 1
            return torch.tensor(loss)

        opt = torch.optim.LBFGS([x, xz], lr=1.0, max_iter=n_iter, max_eval=2 * n_iter,
                                tolerance_grad=0.0, tolerance_change=0.0, history_size=8,
                                line_search_fn="strong_wolfe")
        opt.step(closure)
        take()
        return (first.phi0 + first.dphi).cpu().numpy(), first.dz, n_eval[0]


class _NumbaSteps:
    """The element-wise steps on CPU tensors: compiled passes over their NumPy views."""

    @staticmethod
    def transmission(phi: torch.Tensor, out: torch.Tensor) -> None:
        rk.transmission(phi.numpy(), out.numpy())

    @staticmethod
    def filter_spectrum(spec: torch.Tensor, kz: torch.Tensor, shift: torch.Tensor,
                        passes: torch.Tensor, z_um: float, kernel: torch.Tensor,
                        out: torch.Tensor) -> None:
        rk.filter_spectrum(spec.numpy(), kz.numpy(), shift.numpy(), passes.numpy(), z_um,
                           kernel.numpy(), out.numpy())

    @staticmethod
    def residual(u: torch.Tensor, amp: torch.Tensor, weight: torch.Tensor) -> float:
        return rk.residual(u.numpy(), amp.numpy(), weight.numpy())

    @staticmethod
    def adjoint_filter(rs: torch.Tensor, filtered: torch.Tensor, kernel: torch.Tensor,
                       kz: torch.Tensor) -> float:
        return rk.adjoint_filter(rs.numpy(), filtered.numpy(), kernel.numpy(), kz.numpy())

    @staticmethod
    def phase_gradient(t: torch.Tensor, g: torch.Tensor, mask: torch.Tensor,
                       dphi: torch.Tensor, prior: float, out: torch.Tensor) -> None:
        rk.phase_gradient(t.numpy(), g.numpy(), mask.numpy(), dphi.numpy(), prior, out.numpy())


class _TorchSteps:
    """The same steps as torch operations, on any device (a GPU's)."""

    @staticmethod
    def transmission(phi: torch.Tensor, out: torch.Tensor) -> None:
        torch.polar(torch.ones_like(phi), phi, out=out)

    @staticmethod
    def filter_spectrum(spec: torch.Tensor, kz: torch.Tensor, shift: torch.Tensor,
                        passes: torch.Tensor, z_um: float, kernel: torch.Tensor,
                        out: torch.Tensor) -> None:
        torch.polar(passes, kz * z_um + shift, out=kernel)
        torch.mul(spec, kernel, out=out)

    @staticmethod
    def residual(u: torch.Tensor, amp: torch.Tensor, weight: torch.Tensor) -> float:
        mag = u.abs().clamp_min_(1e-6)
        d = (mag - amp).mul_(weight)
        u.mul_(d / mag)
        return 0.5 * float(d.square().sum())

    @staticmethod
    def adjoint_filter(rs: torch.Tensor, filtered: torch.Tensor, kernel: torch.Tensor,
                       kz: torch.Tensor) -> float:
        total = float((rs.conj() * filtered).imag.mul_(kz).sum())
        rs.mul_(kernel.conj())
        return total

    @staticmethod
    def phase_gradient(t: torch.Tensor, g: torch.Tensor, mask: torch.Tensor,
                       dphi: torch.Tensor, prior: float, out: torch.Tensor) -> None:
        torch.mul((t.conj() * g).imag + prior * dphi, mask, out=out)
