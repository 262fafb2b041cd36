"""One frame end to end: hologram -> phase -> cells -> features -> classes, with step timings."""

from __future__ import annotations

import functools
import os
import time
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from biopilot.imaging.agreement import hologram_agreement
from biopilot.imaging.autofocus import autofocus
from biopilot.imaging.cellnet import CellNet, Precision, load_default_cellnet
from biopilot.imaging.classify import CellClassifier, load_default_classifier
from biopilot.imaging.corenet import CoreNet, load_default_corenet
from biopilot.imaging.dualwave import refine_two_wavelengths
from biopilot.imaging.features import measure_cells
from biopilot.imaging.frame_result import FrameAnalysis
from biopilot.imaging.netcut import cut_field
from biopilot.imaging.phase import backpropagate
from biopilot.imaging.recon_input import check_hologram, check_optics, normalize_illumination
from biopilot.imaging.reconstruct import reconstruct
from biopilot.imaging.refine import fit_support, refine_phase
from biopilot.imaging.resample import ANALYSIS_PIXEL_UM, resample_map
from biopilot.imaging.segment import background_level, segment_cells
from biopilot.models.optics import KernelCache

__all__ = ["analyze_frame", "analyze_phase"]


def analyze_frame(
    hologram: NDArray[Any],
    *,
    wavelength_um: float,
    pixel_um: float,
    z: Literal["auto"] | float = "auto",
    n_medium: float = 1.335,
    classifier: CellClassifier | None = None,
    cache: KernelCache | None = None,
    device: str = "cpu",
    segment_options: dict[str, Any] | None = None,
    tilt_mrad: tuple[float, float] = (0.0, 0.0),
    method: Literal["net", "iterative"] = "net",
    cellnet: CellNet | None = None,
    refine: int = 0,
    precision: Precision = "auto",
    views: int = 1,
    cores: Literal["corenet", "cellnet"] = "corenet",
    merge: Literal["mergenet", "rule"] = "mergenet",
    second_hologram: NDArray[Any] | None = None,
    second_wavelength_um: float | None = None,
    analysis_pixel_um: float | None = ANALYSIS_PIXEL_UM,
) -> FrameAnalysis:
    """Analyse one in-line hologram: reconstruct, segment, measure and classify its cells.

    Two methods share the autofocus, measures and classifier. ``"net"`` (the default)
    back-propagates the hologram once and lets :class:`~biopilot.imaging.cellnet.CellNet`
    turn the field into phase, foreground and cell cores, which a marker watershed labels
    (:func:`~biopilot.imaging.segment_maps`): one FFT pair and one network pass. ``"iterative"``
    is the physics-only path: twin-image removal by iterative phase retrieval, unwrapping and
    a phase watershed (:func:`~biopilot.imaging.reconstruct`,
    :func:`~biopilot.imaging.segment_cells`); ~80 FFTs, weaker on dense frames, and no
    learned weights involved.

    Parameters
    ----------
    hologram : (H, W) array
        Raw hologram (sensor counts).
    wavelength_um, pixel_um : float
        Vacuum wavelength and pixel pitch in micrometres.
    z : "auto" or float
        Sample-to-sensor distance in mm, or "auto" to find it by autofocus.
    n_medium : float
        Refractive index of the medium.
    classifier : CellClassifier, optional
        Default: the weights shipped with the package.
    cache : KernelCache, optional
        Propagation-kernel cache shared across frames of the same optics.
    device : str
        Reconstruction device: ``"cpu"``, ``"torch"`` or ``"cuda"`` (where PyTorch has CUDA);
        with ``"cuda"`` the default classifier and the phase fit (``refine``) run there too (a
        given classifier keeps its own device).
    segment_options : dict, optional
        Keyword arguments of :func:`~biopilot.imaging.segment_maps` (``"net"``) or
        :func:`~biopilot.imaging.segment_cells` (``"iterative"``).
    tilt_mrad : (float, float)
        Calibrated illumination tilt (x, y) in the medium, mrad (0 for an on-axis source);
        see :func:`~biopilot.imaging.reconstruct`.
    method : {"net", "iterative"}
        Reconstruction and segmentation method (above).
    cellnet : CellNet, optional
        Network of the ``"net"`` method; default the weights shipped with the package
        (pass ``net.fused()`` of your own for speed).
    refine : int
        ``"net"`` method: L-BFGS iterations fitting the network's phase and the distance to
        the hologram itself (:func:`~biopilot.imaging.refine.refine_phase`, on the
        network's foreground grown by 2 px; skipped on a frame without cells; the distance
        stays where it was when the cells cover under 0.25 % of the frame). The network
        supplies the low frequencies and the whole turns of thick cells, the physics the
        detail. The cells stay the networks' cut and are measured on the fitted phase (until
        session 17 they were cut anew by the phase watershed, which lost F1, count and dry
        mass). ~0.9 s an iteration of a 4K frame with 2 cores, so 0 (the network's phase) is
        the default; ``benchmarks/RESULTS.md`` (sessions 9 and 17) has the figures. A
        refinement, not a rescue: it improves a phase that is nearly right and leaves a wrong
        one wrong (dense suspensions; session 17), so the frame's ``hologram_agreement`` is
        that of its start.
    precision : {"auto", "float32", "bfloat16"}
        ``"net"`` method: arithmetic of CellNet (see
        :func:`~biopilot.imaging.cellnet.predict_maps`: bfloat16 on CPUs with AMX or
        AVX512-BF16).
    views : {1, 2, 4, 8}
        ``"net"`` method: mirror images of the field CellNet's maps are averaged over
        (test-time augmentation); with CoreNet and MergeNet 4 took F1 at 80 % confluence
        from 0.91 to 0.93 on the benchmark, for 4x the networks' time (~+5 s a 4K frame on
        2 cores; RESULTS.md, session 14).
    cores : {"corenet", "cellnet"}
        ``"net"`` method: whose core map splits touching cells.
        ``"corenet"`` (default): CellNet's, corrected by the shipped
        :class:`~biopilot.imaging.corenet.CoreNet`; ``"cellnet"``: CellNet's alone (faster;
        RESULTS.md, session 12, has both).
    merge : {"mergenet", "rule"}
        ``"net"`` method with CoreNet's cores: which regions of the
        watershed are one cell. ``"mergenet"`` (default): the cut at ``h_core`` 0, then the
        pairs the shipped :class:`~biopilot.imaging.merge.MergeNet` reads as one cell are
        merged; ``"rule"``: the ``h_core`` rule of :func:`~biopilot.imaging.segment_maps`
        alone (RESULTS.md, session 14, has both).
    second_hologram : (H, W) array, optional
        ``"net"`` method with ``refine``: a hologram of the same field under a second LED
        (``second_wavelength_um``), fitted the same way, combined with the first and fitted
        jointly by :func:`~biopilot.imaging.dualwave.refine_two_wavelengths`: the whole turns
        of thick cells from the synthetic wavelength, and each wavelength's blind spatial
        frequencies from the other; the cells are the networks' cut. ~2.5x the fit's time;
        ``benchmarks/RESULTS.md`` (sessions 10 and 17) has the figures.
    second_wavelength_um : float, optional
        Vacuum wavelength of ``second_hologram``, um.
    analysis_pixel_um : float or None
        ``"net"`` method: a field from a sensor coarser than 1.5 um is
        resampled to this pitch (exactly: its spectrum zero-padded) before the networks and
        the cut, and the cells come back on the sensor's grid
        (:mod:`~biopilot.imaging.resample`). 1.3 um (default) raised F1 on such sensors'
        dense tuning frames by 0.01-0.08 and cut their count error, for ~1.7x the networks'
        time on a 1.67 um sensor; None: always the sensor's grid.

    Returns
    -------
    FrameAnalysis

    Raises
    ------
    ValueError
        For a bad hologram or optics, or an autofocus that finds nothing (from
        :func:`~biopilot.imaging.reconstruct`).
    """
    if not (z == "auto" or isinstance(z, int | float)):
        raise ValueError(f"z must be 'auto' or a distance in mm, got {z!r}")
    if method not in ("net", "iterative"):
        raise ValueError(f"method must be 'net' or 'iterative', got {method!r}")
    if refine < 0:
        raise ValueError(f"refine must be >= 0 iterations, got {refine}")
    if cores not in ("corenet", "cellnet"):
        raise ValueError(f"cores must be 'corenet' or 'cellnet', got {cores!r}")
    if merge not in ("mergenet", "rule"):
        raise ValueError(f"merge must be 'mergenet' or 'rule', got {merge!r}")
    if (second_hologram is None) != (second_wavelength_um is None):
        raise ValueError("a second hologram needs its wavelength, and a wavelength its hologram")
    if second_hologram is not None and (method != "net" or refine == 0):
        raise ValueError("a second wavelength is combined after the phase fit: use method "
                         "'net' with refine > 0 (30 iterations for a start)")
    clf = classifier or load_default_classifier("cuda" if device == "cuda" else "cpu")
    if method == "iterative":
        t0 = time.perf_counter()
        rec = reconstruct(
            hologram, wavelength_um=wavelength_um, pixel_um=pixel_um,
            z_mm=None if z == "auto" else float(z), n_medium=n_medium, cache=cache,
            device=device, tilt_mrad=tilt_mrad,
        )
        timings = {"reconstruct": time.perf_counter() - t0}
        timings.update({f"reconstruct.{k}": v for k, v in rec.timings_s.items() if k != "total"})
        result = analyze_phase(
            rec.phase_rad, wavelength_um=wavelength_um, pixel_um=pixel_um, z_mm=rec.z_mm,
            classifier=clf, segment_options=segment_options, timings=timings,
            background_rad=0.0,
        )
        return _checked_against(result, normalize_illumination(check_hologram(hologram))[0],
                                n_medium, tilt_mrad, cache)
    t0 = time.perf_counter()
    holo = check_hologram(hologram)
    check_optics(wavelength_um, pixel_um, n_medium)
    optics = {"wavelength_um": wavelength_um, "pixel_um": pixel_um, "n_medium": n_medium}
    rel = normalize_illumination(holo)[0]  # shared by the autofocus and the back-propagation
    z_mm = autofocus(holo, cache=cache, relative=rel, **optics) if z == "auto" else float(z)
    t1 = time.perf_counter()
    field_ = backpropagate(holo, z_mm, cache=cache, device=device, tilt_mrad=tilt_mrad,
                           relative=rel, **optics)
    t2 = time.perf_counter()
    dev = "cuda" if device == "cuda" else "cpu"
    net = cellnet or _default_cellnet(dev)
    fix = _default_corenet(dev) if cores == "corenet" else None
    learned = fix is not None and merge == "mergenet"  # MergeNet reads CoreNet's cores
    workers = {"workers": min(os.cpu_count() or 1, 4)}
    netcut = cut_field(net, field_, pixel_um=pixel_um, corenet=fix, merge=learned,
                       max_pixel_um=analysis_pixel_um, precision=precision, views=views,
                       segment_options=segment_options, **workers)
    maps, labels, phase = netcut.maps, netcut.labels, netcut.phase_rad
    t3 = t2 + netcut.timings_s["cellnet"]
    t4 = t5 = t3 + netcut.timings_s["segment"]
    # whose cores cut the cells, and what merged them
    extra: dict[str, Any] = {"cores": cores, "merge": "mergenet" if learned else "rule",
                             "analysis_pixel_um": round(netcut.pixel_um, 4)}
    start: tuple[NDArray[np.float32], float] | None = None  # what the fit starts from
    if refine > 0 and labels.max() > 0:  # no cell, nothing to measure (and no z to fit on)
        # The fit refines the phase and the distance; the cells stay the networks' cut. On 18
        # tuning frames (tune_refined_segmentation.py) it beat the phase watershed of the
        # fitted phase: mean F1 0.746 against 0.698 (two LEDs: 0.725), count error 4 %
        # against 16 %, stem and adherent cells' dry mass +0.1 / +0.4 % against -3.3 /
        # -3.5 %; the watershed kept a lead on adherent cells alone (F1 0.951 against 0.943).
        start = (phase, z_mm)
        foreground = (resample_map(maps.foreground, holo.shape) if netcut.resampled
                      else maps.foreground)
        support = fit_support(foreground)
        fit_z = bool(np.count_nonzero(labels) >= _MIN_COVER_TO_FIT_Z * labels.size)
        fit = refine_phase(holo, phase, support, z_mm, wavelength_um=wavelength_um,
                           pixel_um=pixel_um, n_medium=n_medium, n_iter=refine, relative=rel,
                           tilt_mrad=tilt_mrad, device=device, fit_z=fit_z)
        phase, z_mm = fit.phase_rad, fit.z_mm
        if second_hologram is not None and second_wavelength_um is not None:
            two = refine_two_wavelengths(
                holo, second_hologram, phase, support, z_mm, wavelength_a_um=wavelength_um,
                wavelength_b_um=second_wavelength_um, pixel_um=pixel_um, cellnet=net,
                n_medium=n_medium, n_iter=refine, relative_a=rel, tilt_mrad=tilt_mrad,
                cache=cache, device=device, precision=precision, fit_z=fit_z)
            phase, z_mm = two.phase_rad, two.z_mm
            extra["two_wavelengths"] = {
                "combined": two.combined, "turns_changed": two.turns_changed,
                "inconsistent_fraction": two.inconsistent_fraction}
        t5 = time.perf_counter()
    timings = {
        "reconstruct": t3 - t0 + t5 - t4, "reconstruct.autofocus": t1 - t0,
        "reconstruct.backpropagate": t2 - t1, "reconstruct.cellnet": t3 - t2,
        "reconstruct.refine": t5 - t4, "segment": t4 - t3,
    }
    # CellNet is trained to give the sample's phase, not its blurred image: nothing spreads
    # past its cells' edges, and a 2 px margin read its mass 3.2 points high on 16 tuning
    # frames (true cells: +3.8 % against +0.6 % with none; session 14). The fitted phase does
    # spread past the networks' outlines: with the margin, 10 tuning frames read -2.1 to
    # +1.6 % (none: -3.2 to +0.1 %; session 17).
    result = analyze_phase(
        phase, wavelength_um=wavelength_um, pixel_um=pixel_um, z_mm=z_mm,
        classifier=clf, labels=labels, timings=timings, background_rad=0.0,
        mass_margin_px=0 if refine == 0 else 2,
    )
    result.reconstruction.update(extra)
    return _checked_against(result, rel, n_medium, tilt_mrad, cache, start=start)


def _checked_against(
    result: FrameAnalysis, relative: NDArray[np.float32], n_medium: float,
    tilt_mrad: tuple[float, float], cache: KernelCache | None,
    start: tuple[NDArray[np.float32], float] | None = None,
) -> FrameAnalysis:
    """``result`` with its hologram agreement (timed as ``timings_s["check"]``).

    A phase fitted to the hologram (``refine``) explains it by construction, so it is scored
    on the network's phase and distance the fit started from (``start``); the fitted phase's
    own score goes to ``reconstruction["fit_agreement"]``. The fit cannot rescue a wrong
    start: on six dense suspensions (five tuning frames and benchmark frame 006) 30
    iterations took the score from -0.99-0.13 to 0.80-0.91 while the phase error, focus and
    F1 stayed as bad or got worse (benchmarks/RESULTS.md, session 17).
    """
    t0 = time.perf_counter()
    score = functools.partial(
        hologram_agreement, relative=relative, wavelength_um=result.wavelength_um,
        pixel_um=result.pixel_um, n_medium=n_medium, tilt_mrad=tilt_mrad, cache=cache)
    result.hologram_agreement = score(result.phase_rad, z_mm=result.z_mm)
    if start is not None:
        result.reconstruction["fit_agreement"] = result.hologram_agreement
        result.hologram_agreement = score(start[0], z_mm=start[1])
    result.timings_s["check"] = time.perf_counter() - t0
    result.timings_s["total"] = result.timings_s.get("total", 0.0) + result.timings_s["check"]
    return result


#: Least share of the frame the cells must cover for the fit to move the distance. On 21
#: sparse tuning frames (seed 98, 1024 px) the fit moved z 1.9-7.5 um away from an autofocus
#: within 1 um on the 8 whose cells covered 0.19 % or less (1-11 cells), and kept it within
#: 0.9 um on the 13 covering 0.27 % or more (33 cells and up; session 17). Below it the phase
#: is still fitted, at the autofocus's distance.
_MIN_COVER_TO_FIT_Z = 0.0025


@functools.lru_cache(maxsize=2)
def _default_cellnet(device: str) -> CellNet:
    """The shipped network, read once per process and device, batch norm folded."""
    return load_default_cellnet(device).fused()


@functools.lru_cache(maxsize=2)
def _default_corenet(device: str) -> CoreNet:
    """The shipped CoreNet, read once per process and device."""
    return load_default_corenet(device)


def analyze_phase(
    phase_rad: NDArray[np.floating],
    *,
    wavelength_um: float,
    pixel_um: float,
    z_mm: float = float("nan"),
    classifier: CellClassifier | None = None,
    segment_options: dict[str, Any] | None = None,
    background_rad: float | None = None,
    timings: dict[str, float] | None = None,
    labels: NDArray[np.integer] | None = None,
    mass_margin_px: int = 2,
) -> FrameAnalysis:
    """Analyse a quantitative phase map: segment, measure and classify its cells.

    Parameters
    ----------
    phase_rad : (H, W) ndarray
        Unwrapped phase in radians.
    wavelength_um, pixel_um : float
        Vacuum wavelength and pixel pitch in micrometres.
    z_mm : float
        Distance the phase was reconstructed at (kept in the result).
    classifier : CellClassifier, optional
        Default: the weights shipped with the package.
    segment_options : dict, optional
        Keyword arguments of :func:`~biopilot.imaging.segment_cells`.
    background_rad : float, optional
        Phase of the medium; estimated from the map when not given.
    timings : dict, optional
        Earlier step timings to carry into the result.
    labels : (H, W) int array, optional
        Cell labels found already (then no segmentation is run here).
    mass_margin_px : int
        Pixels each cell is grown into the medium for its dry mass (see
        :func:`~biopilot.imaging.measure_cells`): 2 collects what the optics' blur spread
        past the edge of a measured phase.

    Returns
    -------
    FrameAnalysis
    """
    timings = dict(timings or {})
    t0 = time.perf_counter()
    phase = np.asarray(phase_rad, np.float32)
    if labels is None:
        opts = {"workers": min(os.cpu_count() or 1, 4), **(segment_options or {})}
        labels = segment_cells(phase, pixel_um=pixel_um, **opts)
        timings["segment"] = time.perf_counter() - t0
    elif labels.shape != phase.shape:
        raise ValueError(f"labels shape {labels.shape} differs from the phase {phase.shape}")
    lab: NDArray[np.int32] = np.asarray(labels, np.int32)
    t1 = time.perf_counter()
    bg = background_level(phase) if background_rad is None else background_rad
    cells = measure_cells(
        phase, lab, pixel_um=pixel_um, wavelength_um=wavelength_um, background_rad=bg,
        mass_margin_px=mass_margin_px,
    )
    t2 = time.perf_counter()
    clf = classifier if classifier is not None else load_default_classifier()
    samples = clf.samples(phase, lab, cells, pixel_um=pixel_um, background_rad=bg)
    proba = clf.predict_proba(samples)
    cells = cells.assign(
        p_alive=proba["p_alive"].to_numpy(),
        p_differentiated=proba["p_differentiated"].to_numpy(),
        alive=proba["p_alive"].to_numpy() >= 0.5,
        differentiated=proba["p_differentiated"].to_numpy() >= 0.5,
    )
    t3 = time.perf_counter()
    timings.update({"measure": t2 - t1, "classify": t3 - t2})
    timings["total"] = sum(v for k, v in timings.items() if "." not in k and k != "total")
    return FrameAnalysis(
        cells=cells,
        labels=lab,
        phase_rad=phase,
        pixel_um=pixel_um,
        wavelength_um=wavelength_um,
        z_mm=z_mm,
        timings_s=timings,
    )
