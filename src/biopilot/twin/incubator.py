"""The imaging incubator of the twin: simulated lens-free holograms of cell cultures with truth.

A frame is simulated in four steps: cells are laid out to a target confluence
(:mod:`~biopilot.twin.incubator_layout`), rasterised into the sample-plane phase and label
mask (:mod:`~biopilot.twin.incubator_render`), the transmission ``a exp(i phi)`` is
propagated to the sensor with :func:`biopilot.models.optics.propagate` and recorded with
uneven illumination, shot and read noise and quantisation (:mod:`~biopilot.twin.hologram`).
The frame carries its ground truth: unwrapped phase, labels, a per-cell table and the true z.

Public API: :class:`OpticalSetup`, :class:`SceneSpec`, :class:`SimulatedFrame`,
:func:`simulate_frame`, :func:`at_wavelength`, :func:`benchmark_set`, :func:`write_frame`,
:func:`read_hologram`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import Field

from biopilot.config import StrictModel
from biopilot.models.optics import KernelCache
from biopilot.twin.cells import STATES
from biopilot.twin.hologram import OpticalSetup, expose, illumination_field, sensor_intensity
from biopilot.twin.incubator_io import acquisition_time, read_hologram, write_frame
from biopilot.twin.incubator_layout import layout_cells, layout_debris
from biopilot.twin.incubator_render import render_cells
from biopilot.twin.incubator_truth import cell_table

__all__ = [
    "OpticalSetup",
    "SceneSpec",
    "SimulatedFrame",
    "acquisition_time",
    "at_wavelength",
    "benchmark_set",
    "cell_table",
    "read_hologram",
    "simulate_frame",
    "write_frame",
]


_Tilt = Annotated[float, Field(ge=-20.0, le=20.0)]  # illumination tilt per axis, mrad
_MIN_VISIBLE = 0.35  # cells showing less of their footprint are dropped (buried slivers)


class SceneSpec(StrictModel):
    """What is in the well and how the sensor records it (the nuisances the truth knows).

    State fractions are by count: ``1 - viability`` of the cells are dead; of the live
    ones ``dividing_fraction`` divide; of the rest, ``spread_fraction`` are spread
    (``adherent``; the others stay round) or ``differentiated_fraction`` are differentiated
    (``stem_cell``; the others are undifferentiated, in colonies of about ``colony_cells``).

    Attributes
    ----------
    scenario : {"suspension", "adherent", "stem_cell"}
        Suspension culture (round, dead, dividing cells), adherent culture (spread and round
        cells too) or stem-cell culture (undifferentiated colonies, differentiated cells).
    confluence : float
        Fraction of the surface covered by cells, 0-0.8.
    thick_fraction : float
        Fraction of live round cells drawn large and dense (phase > 2 pi at any wavelength).
    overlap : {"press", "stack"}
        Neighbours that overlap press into each other (a monolayer; each pixel carries its
        own cell's phase) or stack (phases add); either way a pixel has one label.
    debris_per_mm2 : float
        Mean number of debris particles per mm^2 (on the background only).
    debris_absorption_per_rad, cell_absorption_per_rad : float
        Weak absorption: amplitude ``exp(-kappa * phase)`` over debris / cells.
    illumination_nonuniformity : float
        Peak-to-peak variation of the smooth illumination, relative to its mean, 0-0.5.
    tilt_mrad : (float, float)
        Illumination tilt (x, y) in the medium, mrad (the hologram shifts by ``z tan``).
    z_offset_um : float
        True distance minus the nominal ``OpticalSetup.z_mm``, um.
    exposure, full_well_e, read_noise_e, shot_noise :
        Sensor: mean background as a fraction of full well, full well (e-), read noise
        (e- rms), photon shot noise on/off (see :func:`~biopilot.twin.hologram.expose`).
    """

    scenario: Literal["suspension", "adherent", "stem_cell"] = "suspension"
    confluence: float = Field(default=0.2, ge=0.0, le=0.8)
    viability: float = Field(default=0.9, ge=0.0, le=1.0)
    dividing_fraction: float = Field(default=0.04, ge=0.0, le=0.5)
    spread_fraction: float = Field(default=0.85, ge=0.0, le=1.0)
    differentiated_fraction: float = Field(default=0.3, ge=0.0, le=1.0)
    thick_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    colony_cells: int = Field(default=60, ge=5, le=2000)
    overlap: Literal["press", "stack"] = "press"
    debris_per_mm2: float = Field(default=30.0, ge=0.0, le=2000.0)
    debris_absorption_per_rad: float = Field(default=0.3, ge=0.0, le=2.0)
    cell_absorption_per_rad: float = Field(default=0.0, ge=0.0, le=0.2)
    illumination_nonuniformity: float = Field(default=0.15, ge=0.0, le=0.5)
    tilt_mrad: tuple[_Tilt, _Tilt] = (0.0, 0.0)
    z_offset_um: float = Field(default=0.0, ge=-250.0, le=250.0)
    exposure: float = Field(default=0.3, gt=0.0, le=1.0)
    full_well_e: float = Field(default=6000.0, ge=500.0, le=1e6)
    read_noise_e: float = Field(default=2.5, ge=0.0, le=100.0)
    shot_noise: bool = True

    def state_probabilities(self) -> NDArray[np.float64]:
        """Probability of each state of :data:`~biopilot.twin.cells.STATES` per cell."""
        live = self.viability * (1.0 - self.dividing_fraction)
        p = np.zeros(len(STATES))
        p[2], p[3] = 1.0 - self.viability, self.viability * self.dividing_fraction
        if self.scenario == "suspension":
            p[0] = live
        elif self.scenario == "adherent":
            p[1], p[0] = live * self.spread_fraction, live * (1.0 - self.spread_fraction)
        else:
            p[4] = live * self.differentiated_fraction
            p[5] = live * (1.0 - self.differentiated_fraction)
        return p


@dataclass
class SimulatedFrame:
    """One simulated hologram and its ground truth.

    Attributes
    ----------
    hologram : (H, W) uint16
        Sensor counts (``optics.bit_depth`` bits).
    optics : OpticalSetup
        The optics as the instrument knows them (``z_mm`` nominal).
    phase_rad : (H, W) float32
        True unwrapped sample-plane phase in radians (0 in the medium).
    amplitude : (H, W) float32
        Sample-plane amplitude (1 where nothing absorbs).
    labels : (H, W) int32
        Cell labels, 0 = background (debris is background).
    cells : pandas.DataFrame
        One row per label, see :func:`cell_table`.
    z_mm : float
        True sample-to-sensor distance in mm.
    scene : SceneSpec
        The scene that was simulated.
    debris_mask : (H, W) bool
        Pixels covered by debris.
    name : str
        File stem used by :func:`write_frame`.
    """

    hologram: NDArray[np.uint16]
    optics: OpticalSetup
    phase_rad: NDArray[np.float32]
    amplitude: NDArray[np.float32]
    labels: NDArray[np.int32]
    cells: pd.DataFrame
    z_mm: float
    scene: SceneSpec
    debris_mask: NDArray[np.bool_]
    name: str = "frame"

    @property
    def transmission(self) -> NDArray[np.complex64]:
        """Sample-plane complex transmission ``amplitude * exp(i phase_rad)``."""
        return _transmission(self.amplitude, self.phase_rad)

    @property
    def confluence(self) -> float:
        """Fraction of the frame covered by cells."""
        return float(np.count_nonzero(self.labels) / self.labels.size)


def simulate_frame(
    optics: OpticalSetup,
    scene: SceneSpec,
    *,
    rng: np.random.Generator | int,
    name: str = "frame",
    cache: KernelCache | None = None,
) -> SimulatedFrame:
    """Simulate one in-line hologram of a culture, with its ground truth.

    Parameters
    ----------
    optics : OpticalSetup
        Wavelength, pixel pitch, nominal ``z_mm`` (required), medium index, sensor shape
        and bit depth.
    scene : SceneSpec
        Cells, debris, illumination and noise.
    rng : numpy.random.Generator or int
        Random source or seed; the same seed gives the same frame.
    name : str
        Stem for :func:`write_frame`.
    cache : biopilot.models.optics.KernelCache, optional
        Reuse propagation kernels across frames of the same geometry.

    Returns
    -------
    SimulatedFrame
        Hologram (uint16 counts) and truth; true z is ``optics.z_mm + scene.z_offset_um``.

    Raises
    ------
    ValueError
        If ``optics.z_mm`` is None.

    Examples
    --------
    >>> optics = OpticalSetup(wavelength_nm=530, pixel_um=1.12, z_mm=1.0, shape_px=(256, 256))
    >>> f = simulate_frame(optics, SceneSpec(confluence=0.3), rng=0)
    >>> f.hologram.dtype.name, abs(f.confluence - 0.3) < 0.03, len(f.cells) == int(f.labels.max())
    ('uint16', True, True)

    References
    ----------
    .. [1] Greenbaum, A. et al. (2012). Imaging without lenses: achievements and remaining
       challenges of wide-field on-chip microscopy. Nat. Methods 9, 889-895.
    .. [2] Park, Y., Depeursinge, C. & Popescu, G. (2018). Quantitative phase imaging in
       biomedicine. Nat. Photonics 12, 578-589.
    """
    if optics.z_mm is None:
        raise ValueError("optics.z_mm is required to simulate a frame (the nominal distance)")
    r_layout, r_debris, r_illum, r_noise = np.random.default_rng(rng).spawn(4)
    shape, pixel = optics.shape_px, optics.pixel_um
    z_true = float(np.clip(optics.z_mm + scene.z_offset_um * 1e-3, 0.05, 10.0))
    cells = layout_cells(
        scene.state_probabilities(), scene.confluence, shape, pixel, r_layout,
        n_medium=optics.n_medium, thick_fraction=scene.thick_fraction,
        differentiated=scene.scenario == "stem_cell", colony_cells=scene.colony_cells,
        min_visible=_MIN_VISIBLE,
    )
    phase, labels = render_cells(cells, shape, pixel_um=pixel, wavelength_um=optics.wavelength_um,
                                 overlap=scene.overlap)
    debris = layout_debris(scene.debris_per_mm2, shape, pixel, r_debris, n_medium=optics.n_medium)
    d_phase, d_labels = render_cells(debris, shape, pixel_um=pixel,
                                     wavelength_um=optics.wavelength_um)
    debris_mask = (d_labels > 0) & (labels == 0)
    phase = np.where(debris_mask, d_phase, phase)
    absorb = np.where(debris_mask, scene.debris_absorption_per_rad, scene.cell_absorption_per_rad)
    amplitude = np.exp(-absorb * phase).astype(np.float32)
    table, labels = cell_table(cells, labels, phase, optics)
    counts = _record(_transmission(amplitude, phase), optics, scene, z_true, (r_illum, r_noise),
                     cache)
    return SimulatedFrame(
        hologram=counts, optics=optics, phase_rad=phase, amplitude=amplitude, labels=labels,
        cells=table, z_mm=z_true, scene=scene, debris_mask=debris_mask, name=name,
    )


def at_wavelength(
    frame: SimulatedFrame,
    wavelength_nm: float,
    *,
    rng: np.random.Generator | int | Sequence[int],
    cache: KernelCache | None = None,
) -> SimulatedFrame:
    """The same sample recorded again under a second LED of the sensor (another wavelength).

    Same cells, distance and tilt; the optical path of every pixel is kept, so the phase
    scales by ``lambda_1 / lambda_2`` (the dispersion of cells and medium between two LEDs,
    a few per cent of the path difference, is neglected); absorption per radian is kept; the
    illumination field and the sensor noise are drawn anew. Multi-wavelength lens-free
    sensors take such frames to remove the whole-turn ambiguity of thick cells [1]_.

    Parameters
    ----------
    frame : SimulatedFrame
        A frame from :func:`simulate_frame`.
    wavelength_nm : float
        The second vacuum wavelength, 405-650 nm.
    rng : numpy.random.Generator, int or sequence of int
        Random source (or seed) of the new illumination and noise.
    cache : biopilot.models.optics.KernelCache, optional
        Propagation-kernel cache.

    Returns
    -------
    SimulatedFrame
        Its hologram, optics and phase at ``wavelength_nm``; labels, cells and z as ``frame``
        (the cell table's ``max_phase_rad`` rescaled).

    Examples
    --------
    >>> optics = OpticalSetup(wavelength_nm=405, pixel_um=1.12, z_mm=1.0, shape_px=(64, 64))
    >>> f = simulate_frame(optics, SceneSpec(confluence=0.3), rng=0)
    >>> g = at_wavelength(f, 650, rng=1)
    >>> bool(np.allclose(g.phase_rad * 650, f.phase_rad * 405, rtol=1e-5))
    True

    References
    ----------
    .. [1] Gass, J., Dakoff, A. & Kim, M. K. (2003). Phase imaging without 2 pi ambiguity by
       multiwavelength digital holography. Opt. Lett. 28, 1141-1143.
    """
    optics = OpticalSetup(**{**frame.optics.model_dump(), "wavelength_nm": wavelength_nm})
    scale = frame.optics.wavelength_nm / optics.wavelength_nm
    phase = (frame.phase_rad * scale).astype(np.float32)
    amplitude = (frame.amplitude**scale).astype(np.float32)  # exp(-a phi) with phi rescaled
    counts = _record(_transmission(amplitude, phase), optics, frame.scene, frame.z_mm,
                     tuple(np.random.default_rng(rng).spawn(2)), cache)
    cells = frame.cells.assign(max_phase_rad=frame.cells["max_phase_rad"] * scale)
    return SimulatedFrame(
        hologram=counts, optics=optics, phase_rad=phase, amplitude=amplitude,
        labels=frame.labels, cells=cells, z_mm=frame.z_mm, scene=frame.scene,
        debris_mask=frame.debris_mask, name=f"{frame.name}_{wavelength_nm:.0f}nm",
    )


def _transmission(
    amplitude: NDArray[np.float32], phase: NDArray[np.float32]
) -> NDArray[np.complex64]:
    """``amplitude * exp(i phase)`` in complex64, without a complex128 temporary."""
    out = np.empty(phase.shape, np.complex64)
    out.real = amplitude * np.cos(phase)
    out.imag = amplitude * np.sin(phase)
    return out


def _record(
    transmission: NDArray[np.complex64], optics: OpticalSetup, scene: SceneSpec, z_mm: float,
    rngs: tuple[np.random.Generator, ...], cache: KernelCache | None,
) -> NDArray[np.uint16]:
    """The sensor's counts of a transmission: propagation, the LED's field, noise (rngs: both)."""
    intensity = sensor_intensity(transmission, optics, z_mm=z_mm, tilt_mrad=scene.tilt_mrad,
                                 cache=cache)
    intensity *= illumination_field(transmission.shape, scene.illumination_nonuniformity, rngs[0])
    return expose(intensity, optics, rng=rngs[1], exposure=scene.exposure,
                  full_well_e=scene.full_well_e, read_noise_e=scene.read_noise_e,
                  shot_noise=scene.shot_noise)


def benchmark_set(
    seed: int = 0, n: int = 12, size: tuple[int, int] = (2748, 3840)
) -> Iterator[SimulatedFrame]:
    """The seeded benchmark set, generated lazily (a 4K frame holds ~160 MB with its truth).

    Frame ``i`` cycles through scenarios (suspension, adherent, stem cell), confluence
    (0, 0.4, 0.8, 0.2, 0.6), wavelength (405, 488, 532, 650 nm), pixel pitch (1.12, 1.4,
    1.67 um) and bit depth (12, 10); z is uniform in 0.5-3 mm with the nominal value
    rounded to 0.1 mm (so autofocus has up to 50 um to find); thick cells, debris, uneven
    illumination, and a tilt on every fourth frame. Frame ``i`` depends only on
    ``(seed, i)``, so ``n`` extends the set without changing its first frames.

    Parameters
    ----------
    seed : int
        Seed of the set.
    n : int
        Number of frames.
    size : (int, int)
        Sensor (rows, columns).

    Yields
    ------
    SimulatedFrame
        Named ``bench_<seed>_<i>``.

    Examples
    --------
    >>> frames = list(benchmark_set(seed=1, n=2, size=(128, 128)))
    >>> [f.scene.scenario for f in frames], frames[1].scene.confluence
    (['suspension', 'adherent'], 0.4)
    """
    cache = KernelCache(max_entries=2)
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        z = float(rng.uniform(0.5, 3.0))
        nominal = float(np.clip(round(z, 1), 0.5, 3.0))
        optics = OpticalSetup(
            wavelength_nm=(405.0, 488.0, 532.0, 650.0)[i % 4],
            pixel_um=(1.12, 1.4, 1.67)[(i // 3) % 3],
            z_mm=nominal, shape_px=size, bit_depth=(12, 10)[(i // 2) % 2],
        )
        tilt = tuple(rng.uniform(-3.0, 3.0, 2)) if i % 4 == 3 else (0.0, 0.0)
        scene = SceneSpec(
            scenario=("suspension", "adherent", "stem_cell")[i % 3],
            confluence=(0.0, 0.4, 0.8, 0.2, 0.6)[i % 5],
            viability=float(rng.uniform(0.6, 0.98)),
            differentiated_fraction=float(rng.uniform(0.1, 0.6)),
            thick_fraction=0.2,
            debris_per_mm2=float(rng.uniform(10.0, 100.0)),
            illumination_nonuniformity=float(rng.uniform(0.05, 0.3)),
            tilt_mrad=(float(tilt[0]), float(tilt[1])),
            z_offset_um=(z - nominal) * 1e3,
        )
        yield simulate_frame(optics, scene, rng=rng, name=f"bench_{seed}_{i:03d}", cache=cache)
