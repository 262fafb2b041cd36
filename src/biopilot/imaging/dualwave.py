"""Two wavelengths: thick cells' whole turns from the synthetic wavelength, one path from both.

One in-line hologram fixes the phase of a cell only modulo 2 pi where its rim rises by more
than pi from one pixel to the next: a whole turn added there changes nothing the sensor sees,
so a phase fitted to the hologram keeps the turns of its start (CellNet's). A second hologram of
the same sample under another LED removes the ambiguity: the two phases of the same optical path
differ by ``2 pi OPD / Lambda`` with the synthetic wavelength ``Lambda = l_s l_l / (l_l - l_s)``,
longer than twice the shorter wavelength for any pair within 405-650 nm, so the start's error of
one turn there cannot hide in it [1]_. :func:`combine_wavelengths` takes that turn pixel by
pixel, where the two fits agree closely enough, then averages the two optical paths weighted by
their expected variance (the error of a fitted phase is similar in radians at both wavelengths,
so the path's grows with the wavelength). :func:`refine_two_wavelengths` fits the second
hologram as the first (back-propagation, CellNet, :func:`~biopilot.imaging.refine.refine_phase`)
at the distance found on the first, combines the two, and fits the result to both holograms
at once.

Where the pair disagrees on the thin parts of the cells (where no turn can be missing), the
pixels' turns cannot be trusted: :func:`combine_wavelengths` returns the first wavelength's
phase unchanged and says so (the joint fit still runs). On 12 tuning frames (1024 px, seed 97,
apart from the benchmark) that was every 80 %-confluent stem-cell pair (1.1-4.8 % of the thin
pixels off by more than a quarter turn) and a suspension whose network phase had failed (45 %),
against at most 0.001 % on the others.

References
----------
.. [1] Gass, J., Dakoff, A. & Kim, M. K. (2003). Phase imaging without 2 pi ambiguity by
   multiwavelength digital holography. Opt. Lett. 28, 1141-1143.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from biopilot.imaging.cellnet import CellNet, Precision, predict_maps
from biopilot.imaging.phase import backpropagate
from biopilot.imaging.recon_input import check_hologram, normalize_illumination
from biopilot.imaging.refine import fit_support, refine_phase
from biopilot.models.optics import KernelCache

__all__ = ["TwoWavelengthPhase", "combine_wavelengths", "refine_two_wavelengths"]

#: A pixel's turn is taken from the synthetic wavelength only within this much of a whole turn.
_TURN_TOLERANCE = 0.25
#: Thin pixels (phase under this at the shorter wavelength, rad) where the pair is checked.
_THIN_RAD = 2.0
#: A corrected phase below this (rad, shorter wavelength) is no cell, which delays light.
_LOWEST_RAD = -1.0
#: The joint fit's support is the first fit's grown by this much, px: two wavelengths pin the
#: faint edges (dead cells' blebs) one leaves to the start. On 6 tuning frames (1024 px, seed
#: 97, apart from the benchmark) 2 px took the phase RMSE on cells from 0.026-0.124 to
#: 0.020-0.108 rad, every frame better; 4 px made one frame worse (0.124 -> 0.274).
_JOINT_GROWTH_PX = 2


@dataclass(frozen=True)
class TwoWavelengthPhase:
    """Result of :func:`combine_wavelengths`.

    Attributes
    ----------
    phase_rad : (H, W) float32 ndarray
        Phase at the first wavelength (``wavelength_a_um``), from the combined optical path.
    combined : bool
        False when the pair disagreed (``inconsistent_fraction`` over the limit) and
        ``phase_rad`` is the first wavelength's phase unchanged.
    turns_changed : int
        Pixels whose whole turn the second wavelength changed.
    inconsistent_fraction : float
        Share of the thin support pixels where the two phases' synthetic turn is off a whole
        number by more than a quarter.
    z_mm : float
        Sample-to-sensor distance of the joint fit (:func:`refine_two_wavelengths`; NaN from
        :func:`combine_wavelengths`).
    """

    phase_rad: NDArray[np.float32]
    combined: bool
    turns_changed: int
    inconsistent_fraction: float
    z_mm: float = float("nan")


def combine_wavelengths(
    phase_a: NDArray[np.floating],
    phase_b: NDArray[np.floating],
    support: NDArray[np.bool_],
    *,
    wavelength_a_um: float,
    wavelength_b_um: float,
    max_inconsistent: float = 0.005,
) -> TwoWavelengthPhase:
    """One phase map from two of the same sample at two wavelengths.

    Parameters
    ----------
    phase_a, phase_b : (H, W) arrays
        Unwrapped phases in radians (each possibly a whole turn off in places), fitted at
        ``wavelength_a_um`` and ``wavelength_b_um``.
    support : (H, W) bool array
        Pixels where both phases were fitted (elsewhere ``phase_a`` is kept).
    wavelength_a_um, wavelength_b_um : float
        Vacuum wavelengths, at least 20 nm apart, the longer under twice the shorter.
    max_inconsistent : float
        Largest ``inconsistent_fraction`` at which the pair is combined (0.005 separated the
        tuning frames' good pairs, 0.00 %, from their bad ones, 1.1-4.8 %).

    Returns
    -------
    TwoWavelengthPhase

    Raises
    ------
    ValueError
        For shapes that differ or wavelengths too close or too far apart.

    Examples
    --------
    >>> opd = np.full((8, 8), 0.8)  # um: 1.98 turns at 405 nm, 1.23 at 650 nm
    >>> a = 2 * np.pi * opd / 0.405 - 2 * np.pi  # the first fit one turn low
    >>> b = 2 * np.pi * opd / 0.650
    >>> r = combine_wavelengths(a, b, np.ones((8, 8), bool), wavelength_a_um=0.405,
    ...                         wavelength_b_um=0.650)
    >>> bool(np.allclose(r.phase_rad, 2 * np.pi * opd / 0.405, atol=1e-4)), r.turns_changed
    (True, 64)
    """
    pa = np.asarray(phase_a, np.float64)
    pb = np.asarray(phase_b, np.float64)
    sup = np.asarray(support, bool)
    if not pa.shape == pb.shape == sup.shape:
        raise ValueError(f"phase shapes {pa.shape}, {pb.shape} and support {sup.shape} differ")
    short, long_ = sorted((wavelength_a_um, wavelength_b_um))
    if long_ - short < 0.02 or long_ >= 2.0 * short:
        raise ValueError(
            f"wavelengths {wavelength_a_um * 1e3:.0f} and {wavelength_b_um * 1e3:.0f} nm: two "
            "wavelengths need to be at least 20 nm apart and the longer under twice the shorter"
        )
    a_short = wavelength_a_um <= wavelength_b_um
    ps, pl = (pa, pb) if a_short else (pb, pa)
    synthetic = short * long_ / (long_ - short)
    # The path modulo the synthetic wavelength, lifted to the multiple nearest the shorter
    # wavelength's own path (whose turn errors, one short wavelength, are under half of it).
    path_mod = _wrap(ps - pl) * synthetic / (2 * np.pi)
    path = path_mod + np.round((ps * short / (2 * np.pi) - path_mod) / synthetic) * synthetic
    turns = path / short - ps / (2 * np.pi)
    whole = np.round(turns)
    off = np.abs(turns - whole)
    thin = sup & (np.abs(ps) < _THIN_RAD)
    inconsistent = float(np.mean(off[thin] > _TURN_TOLERANCE)) if thin.any() else 0.0
    if inconsistent > max_inconsistent:
        return TwoWavelengthPhase(np.asarray(phase_a, np.float32), False, 0, inconsistent)
    change = sup & (whole != 0) & (off < _TURN_TOLERANCE)
    change &= ps + 2 * np.pi * whole > _LOWEST_RAD
    path_s = (ps + 2 * np.pi * np.where(change, whole, 0.0)) * short / (2 * np.pi)
    path_l = (pl + 2 * np.pi * np.round(path_s / long_ - pl / (2 * np.pi))) * long_ / (2 * np.pi)
    w_s = long_**2 / (short**2 + long_**2)  # inverse variance: path error ~ wavelength
    path_all = w_s * path_s + (1.0 - w_s) * path_l
    out = np.where(sup, 2 * np.pi * path_all / wavelength_a_um, pa).astype(np.float32)
    return TwoWavelengthPhase(out, True, int(change.sum()), inconsistent)


def refine_two_wavelengths(
    hologram_a: NDArray[Any],
    hologram_b: NDArray[Any],
    phase_a: NDArray[np.floating],
    support_a: NDArray[np.bool_],
    z_mm: float,
    *,
    wavelength_a_um: float,
    wavelength_b_um: float,
    pixel_um: float,
    cellnet: CellNet,
    n_medium: float = 1.335,
    n_iter: int = 30,
    joint_iter: int = 10,
    relative_a: NDArray[np.float32] | None = None,
    tilt_mrad: tuple[float, float] = (0.0, 0.0),
    cache: KernelCache | None = None,
    device: str = "cpu",
    precision: Precision = "auto",
    fit_z: bool = True,
) -> TwoWavelengthPhase:
    """Fit a second hologram of the same sample, take the turns from the pair, fit both at once.

    1. The second hologram (at ``wavelength_b_um``) is back-propagated over ``z_mm`` (the
       first fit's distance), CellNet gives its phase and foreground, and
       :func:`~biopilot.imaging.refine.refine_phase` fits them to it as for the first.
    2. :func:`combine_wavelengths` takes the whole turns from the pair and averages the two
       optical paths (or keeps the first phase where the pair disagrees).
    3. That phase and the distance are fitted to both holograms at once (``refine_phase``
       with ``more``): each wavelength pins the spatial frequencies the other is blind to.
       On the 12 tuning frames the three steps took the phase RMSE on cells from 0.033-1.146
       rad (one wavelength, 30 iterations) to 0.017-0.052 where the pair agreed, and from
       0.098-0.152 to 0.061-0.131 on the 80 %-confluent stem cells, whose turns stay as
       the first fit left them.

    Parameters
    ----------
    hologram_a, hologram_b : (H, W) arrays
        Raw holograms at the first and second wavelength, same sensor and field.
    phase_a : (H, W) array
        The first wavelength's refined phase, rad.
    support_a : (H, W) bool array
        Pixels the first fit covered (the joint fit's support, grown by 2 px).
    z_mm : float
        Sample-to-sensor distance from the first fit.
    wavelength_a_um, wavelength_b_um, pixel_um, n_medium :
        Optics.
    cellnet : CellNet
        The network that started the first fit.
    n_iter : int
        L-BFGS iterations of the second wavelength's own fit.
    joint_iter : int
        L-BFGS iterations of the joint fit (each evaluation costs both holograms; 10 and 40
        ended at the same phase on the tuning frames).
    relative_a : (H, W) array, optional
        ``hologram_a`` divided by its illumination, when the caller has it.
    tilt_mrad, device :
        As for :func:`~biopilot.imaging.refine.refine_phase`.
    cache, precision :
        As for :func:`~biopilot.imaging.phase.backpropagate` and
        :func:`~biopilot.imaging.cellnet.predict_maps`.
    fit_z : bool
        Fit the distance along with the phase (False: ``z_mm`` is kept).

    Returns
    -------
    TwoWavelengthPhase
        With the jointly fitted phase and distance.

    Raises
    ------
    ValueError
        For a bad hologram, one whose shape differs from the first's, or wavelengths
        :func:`combine_wavelengths` refuses.
    """
    holo = check_hologram(hologram_b)
    if holo.shape != np.shape(phase_a):
        raise ValueError(
            f"the second hologram is {holo.shape[1]}x{holo.shape[0]} px, the first "
            f"{np.shape(phase_a)[1]}x{np.shape(phase_a)[0]}: same sensor and field needed"
        )
    optics = {"wavelength_um": wavelength_b_um, "pixel_um": pixel_um, "n_medium": n_medium}
    rel = normalize_illumination(holo)[0]
    field_ = backpropagate(holo, z_mm, cache=cache, device=device, tilt_mrad=tilt_mrad,
                           relative=rel, **optics)
    maps = predict_maps(cellnet, field_, precision=precision)
    support_b = fit_support(maps.foreground)
    fit_b = refine_phase(holo, maps.phase_rad, support_b, z_mm, wavelength_um=wavelength_b_um,
                         pixel_um=pixel_um, n_medium=n_medium, n_iter=n_iter, relative=rel,
                         tilt_mrad=tilt_mrad, device=device, fit_z=fit_z)
    pair = combine_wavelengths(phase_a, fit_b.phase_rad, support_a & support_b,
                               wavelength_a_um=wavelength_a_um, wavelength_b_um=wavelength_b_um)
    grown = ndi.binary_dilation(support_a, iterations=_JOINT_GROWTH_PX)
    joint = refine_phase(hologram_a, pair.phase_rad, grown, z_mm,
                         wavelength_um=wavelength_a_um, pixel_um=pixel_um, n_medium=n_medium,
                         n_iter=joint_iter, relative=relative_a, tilt_mrad=tilt_mrad,
                         device=device, more=[(holo, wavelength_b_um)], fit_z=fit_z)
    return replace(pair, phase_rad=joint.phase_rad, z_mm=joint.z_mm)


def _wrap(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angles to [-pi, pi)."""
    return np.asarray((x + np.pi) % (2 * np.pi) - np.pi)
