"""Synthesise in-line Raman spectra of a CHO culture from its concentrations.

A spectrum is the sum of pure-component spectra scaled *linearly* by concentration, a water
and media background, a fluorescence baseline that drifts over the batch, an optional
laser-power drift, and detector noise (shot noise ~ sqrt(signal), plus read noise). The pure
spectra are precomputed once, so a batch of spectra costs one matrix product plus the noise.

Intensities are in detector counts (photoelectrons, gain 1) of one 15-min acquisition of a
785-nm immersion probe. Their magnitudes are set so that a PLS model on 15-min spectra reaches
a glucose RMSEP of a few tenths of a g/L, as reported for in-line Raman of CHO fed-batch
cultures (Abu-Absi et al. 2011 Biotechnol. Bioeng. 108:1215; Berry et al. 2015 Biotechnol.
Prog. 31:566; Santos et al. 2018 Biotechnol. Prog. 34:659): neither noise-free nor hopeless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["CONCENTRATION_KEYS", "BatchEffects", "RamanSynthesizer", "default_wavenumbers_cm1"]

#: Concentrations a spectrum is synthesised from, with their units in the names.
CONCENTRATION_KEYS: tuple[str, ...] = (
    "glucose_g_per_l",
    "lactate_g_per_l",
    "glutamine_mmol_per_l",
    "ammonium_mmol_per_l",
    "titer_g_per_l",
    "vcd_cells_per_ml",
)

# A band is (centre cm-1, FWHM cm-1, peak height relative to the component's strongest band).
_Band = tuple[float, float, float]

# Pure-component band tables of the aqueous species, at their literature positions.
# fmt: off
_BANDS: dict[str, tuple[_Band, ...]] = {
    # Aqueous D-glucose: 1125 C-O-H bend / C-O stretch, 1060 C-O stretch, 911 C-O-H
    # deformation, 520 skeletal C-C-O, 1365/1460 CH2 wag/scissor (Mathlouthi & Vinh Luu 1980
    # Carbohydr. Res. 81:203, Table I; used by Abu-Absi et al. 2011 and Berry et al. 2015).
    "glucose_g_per_l": (
        (1125.0, 22.0, 1.00), (1060.0, 25.0, 0.70), (911.0, 20.0, 0.55),
        (520.0, 25.0, 0.80), (1365.0, 30.0, 0.45), (1460.0, 30.0, 0.35),
    ),
    # Aqueous lactate: 856 C-COO- stretch (strongest), 930 C-C, 1042 C-CH3, 1090 C-O,
    # 1418 COO- symmetric stretch, 1450 CH3 deformation (Cassanas et al. 1991 J. Raman
    # Spectrosc. 22:409, Table 2).
    "lactate_g_per_l": (
        (856.0, 18.0, 1.00), (930.0, 20.0, 0.30), (1042.0, 20.0, 0.55),
        (1090.0, 22.0, 0.35), (1418.0, 25.0, 0.50), (1450.0, 25.0, 0.45),
    ),
    # Aqueous L-glutamine: 1410 COO- symmetric stretch, 1130 NH3+ rock, 890 C-C stretch,
    # 1330 CH2 wag, 1050 C-N stretch, 1680 side-chain amide C=O (Zhu et al. 2011
    # Spectrochim. Acta A 78:1187, aqueous amino-acid table).
    "glutamine_mmol_per_l": (
        (1410.0, 25.0, 1.00), (1130.0, 22.0, 0.50), (890.0, 20.0, 0.70),
        (1330.0, 25.0, 0.60), (1050.0, 22.0, 0.40), (1680.0, 30.0, 0.50),
    ),
    # Aqueous NH4+: weak, broad nu4 bend ~1450 and nu2 bend ~1680 (Wagner & Hornig 1950
    # J. Chem. Phys. 18:296; broadened in water).
    "ammonium_mmol_per_l": ((1450.0, 60.0, 1.00), (1680.0, 60.0, 0.60)),
    # IgG / mAb: amide I 1655, CH2/CH3 1450, amide III 1240, Phe ring breathing 1003 (sharp),
    # Trp/CH 1340, Tyr Fermi doublet 850/830, Trp 760, S-S stretch 510 (Rygula et al. 2013
    # J. Raman Spectrosc. 44:1061, Table 1; Movasaghi et al. 2007 Appl. Spectrosc. Rev. 42:493).
    "titer_g_per_l": (
        (1655.0, 40.0, 1.00), (1450.0, 30.0, 0.90), (1240.0, 50.0, 0.60),
        (1003.0, 8.0, 0.70), (1340.0, 30.0, 0.50), (850.0, 15.0, 0.30),
        (830.0, 15.0, 0.25), (760.0, 15.0, 0.30), (510.0, 25.0, 0.30),
    ),
    # Whole cells: broad lipid/protein/nucleic bands -- 785 O-P-O + cytosine/uracil, 1003 Phe,
    # 1090 PO2- symmetric stretch, 1301 lipid CH2 twist, 1340 A/G, 1450 CH2, 1580 A/G ring,
    # 1655 amide I + lipid C=C (Notingher 2007 Sensors 7:1343; Movasaghi et al. 2007).
    "vcd_cells_per_ml": (
        (785.0, 25.0, 0.55), (1003.0, 10.0, 0.45), (1090.0, 30.0, 0.35),
        (1301.0, 35.0, 0.40), (1340.0, 35.0, 0.45), (1450.0, 40.0, 1.00),
        (1580.0, 30.0, 0.30), (1655.0, 50.0, 0.85),
    ),
}
# fmt: on

# Counts at the strongest band per unit of the key's concentration. Per mass, the organic
# species scatter alike; per mmol, glutamine (146 g/mol) and NH4+ (18 g/mol) are weak, as in
# the poorer Raman models reported for them (Berry et al. 2015; Santos et al. 2018). Cells:
# ~350 pg dry mass per CHO cell, so 1e6 cells/mL is ~0.35 g/L of broad biomass bands.
# Checked with PLS (Savitzky-Golay 1st derivative, 10-14 latent variables) trained on 7
# synthetic 14-day batches of 15-min spectra, tested on 3 others: RMSEP glucose 0.36 g/L,
# lactate 0.31 g/L, glutamine 0.4-0.65 mM, NH4+ 1-2 mM (poor, as in practice), titer
# 0.5 g/L, VCD 1.7e6 cells/mL.
_COUNTS_PER_UNIT: dict[str, float] = {
    "glucose_g_per_l": 120.0,
    "lactate_g_per_l": 170.0,
    "glutamine_mmol_per_l": 14.0,
    "ammonium_mmol_per_l": 1.5,
    "titer_g_per_l": 90.0,
    "vcd_cells_per_ml": 30.0e-6,
}

# Water: broad H-O-H bend at 1640 and the librational wing rising below ~800 (Carey &
# Korenowski 1998 J. Chem. Phys. 108:2669). Heights in counts.
_WATER: tuple[_Band, ...] = ((1640.0, 100.0, 3000.0), (450.0, 350.0, 2500.0))

# Basal medium: HPO4 2- 990 and H2PO4- 1077/877 (Preston & Adams 1979 J. Phys. Chem.
# 83:814), HCO3- 1017 (Rudolph et al. 2008 Dalton Trans. 900), amino-acid mix Phe 1003 and
# Tyr 850 (Zhu et al. 2011), poloxamer 188 C-O-C 845/1280 (polyether bands). Counts.
# fmt: off
_MEDIA: tuple[_Band, ...] = (
    (990.0, 12.0, 180.0), (1077.0, 15.0, 90.0), (877.0, 15.0, 70.0), (1017.0, 12.0, 220.0),
    (1003.0, 8.0, 60.0), (850.0, 15.0, 40.0), (845.0, 25.0, 50.0), (1280.0, 30.0, 40.0),
)
# fmt: on

# Lorentzian fraction of the pseudo-Voigt line shape: liquids are mostly Lorentzian.
_ETA = 0.6


@dataclass(frozen=True)
class BatchEffects:
    """What differs from batch to batch besides the concentrations.

    Attributes
    ----------
    media_scale : float
        Media background relative to nominal (media lot).
    growth : float
        Relative rise of the fluorescence level over the batch.
    time_constant_h : float
        Time constant of that rise, hours since inoculation.
    shape, shape_drift : tuple of float
        Legendre coefficients (order 0-2) of the fluorescence shape at t = 0 and their
        change as the fluorescence rises.
    laser_period_h, laser_phase : float
        Period (hours) and phase (radians) of the laser-power drift.
    """

    media_scale: float
    growth: float
    time_constant_h: float
    shape: tuple[float, float, float]
    shape_drift: tuple[float, float, float]
    laser_period_h: float
    laser_phase: float


def default_wavenumbers_cm1() -> np.ndarray:
    """Return the default Raman shift axis: 400-1800 cm-1 in 2 cm-1 steps (701 points).

    Process Raman analysers resolve ~4 cm-1, so 2 cm-1 sampling meets Nyquist and puts 4+
    points across the narrowest band modelled (Phe 1003, FWHM 8 cm-1) while halving memory
    and PLS cost against a 1 cm-1 axis (a 100-batch campaign is 134,400 spectra).
    """
    return np.arange(400.0, 1800.0 + 1.0, 2.0)


class RamanSynthesizer:
    """Synthesise in-line Raman spectra (counts) of a CHO culture from its concentrations.

    Parameters
    ----------
    wavenumbers_cm1 : ndarray, optional
        Raman shift axis in cm-1, 1-D, finite, strictly increasing. Default
        :func:`default_wavenumbers_cm1`.
    noise : bool
        Add detector noise (shot noise ~ sqrt(counts) and read noise). Default True.
    read_noise_counts : float
        Read-noise standard deviation per channel, counts.
    fluorescence_counts : float
        Mean fluorescence level at the start of a batch, counts (0 disables fluorescence).
    fluorescence_growth : float
        Mean relative rise of the fluorescence over the batch (debris, product, media
        browning); each batch draws its own rise, time constant and shape.
    baseline_jitter : float
        Relative spectrum-to-spectrum fluctuation of the fluorescence level (bubbles,
        stirring).
    laser_power_drift : float
        Amplitude of the relative laser-power drift, a slow sinusoid of random period and
        phase per batch; it scales the whole spectrum. 0 disables it.
    media_variability : float
        Relative standard deviation of the media background from batch to batch (media lot).
    exposure_scale : float
        Multiplies every signal (a longer exposure); the shot-noise SNR grows as its sqrt.
    """

    def __init__(
        self,
        wavenumbers_cm1: np.ndarray | None = None,
        *,
        noise: bool = True,
        read_noise_counts: float = 15.0,
        fluorescence_counts: float = 25_000.0,
        fluorescence_growth: float = 0.6,
        baseline_jitter: float = 0.003,
        laser_power_drift: float = 0.01,
        media_variability: float = 0.02,
        exposure_scale: float = 1.0,
    ) -> None:
        axis = default_wavenumbers_cm1() if wavenumbers_cm1 is None else wavenumbers_cm1
        axis = np.asarray(axis, dtype=np.float64)
        if axis.ndim != 1 or axis.size < 2:
            raise ValueError(f"wavenumbers_cm1 must be 1-D with >= 2 points, got {axis.shape}")
        if not np.all(np.isfinite(axis)) or np.any(np.diff(axis) <= 0):
            raise ValueError("wavenumbers_cm1 must be finite and strictly increasing")
        for name, value in (
            ("read_noise_counts", read_noise_counts),
            ("fluorescence_counts", fluorescence_counts),
            ("fluorescence_growth", fluorescence_growth),
            ("baseline_jitter", baseline_jitter),
            ("laser_power_drift", laser_power_drift),
            ("media_variability", media_variability),
        ):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if not (np.isfinite(exposure_scale) and exposure_scale > 0):
            raise ValueError(f"exposure_scale must be finite and > 0, got {exposure_scale!r}")
        if laser_power_drift >= 0.5:
            raise ValueError(f"laser_power_drift must be < 0.5, got {laser_power_drift!r}")
        self.wavenumbers_cm1: np.ndarray = axis
        self.noise = noise
        self.read_noise_counts = float(read_noise_counts)
        self.fluorescence_counts = float(fluorescence_counts)
        self.fluorescence_growth = float(fluorescence_growth)
        self.baseline_jitter = float(baseline_jitter)
        self.laser_power_drift = float(laser_power_drift)
        self.media_variability = float(media_variability)
        self.exposure_scale = float(exposure_scale)
        # Precomputed once: pure spectra (rows in CONCENTRATION_KEYS order), backgrounds and
        # the Legendre basis of the fluorescence shape (Lieber & Mahadevan-Jansen 2003 Appl.
        # Spectrosc. 57:1363 model fluorescence as a low-order polynomial).
        self._pure = np.stack(
            [
                _COUNTS_PER_UNIT[k] * exposure_scale * _band_sum(axis, _BANDS[k])
                for k in CONCENTRATION_KEYS
            ]
        )
        self._water = exposure_scale * _band_sum(axis, _WATER)
        self._media = exposure_scale * _band_sum(axis, _MEDIA)
        x = 2.0 * (axis - axis[0]) / (axis[-1] - axis[0]) - 1.0
        self._legendre = np.stack([np.ones_like(x), x, 0.5 * (3.0 * x**2 - 1.0)])

    def pure_components(self) -> dict[str, np.ndarray]:
        """Return the pure spectrum of each species at unit concentration, counts per unit.

        Returns
        -------
        dict of str to ndarray
            One float64 array of ``len(wavenumbers_cm1)`` per key of ``CONCENTRATION_KEYS``
            (e.g. counts per g/L of glucose, counts per cell/mL for VCD), at nominal laser
            power and without background, fluorescence or noise.
        """
        return {k: self._pure[i].copy() for i, k in enumerate(CONCENTRATION_KEYS)}

    def background(self) -> np.ndarray:
        """Return the nominal water + media background, counts (no fluorescence, no noise)."""
        return self._water + self._media

    def draw_batch_effects(self, rng: np.random.Generator) -> BatchEffects:
        """Draw one batch's media lot, fluorescence rise and shape, and laser-drift phase."""
        return BatchEffects(
            media_scale=1.0 + self.media_variability * float(rng.standard_normal()),
            growth=self.fluorescence_growth * float(rng.uniform(0.5, 1.5)),
            time_constant_h=float(rng.uniform(100.0, 340.0)),
            shape=(1.0, float(rng.uniform(-0.35, 0.05)), float(rng.uniform(-0.05, 0.15))),
            shape_drift=(0.0, float(rng.uniform(-0.10, 0.10)), float(rng.uniform(-0.05, 0.05))),
            laser_period_h=float(rng.uniform(24.0, 96.0)),
            laser_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        )

    def spectra(
        self,
        t_h: np.ndarray,
        concentrations: Mapping[str, np.ndarray],
        rng: np.random.Generator,
        *,
        batch: BatchEffects | None = None,
    ) -> np.ndarray:
        """Synthesise spectra of one batch, one per time point.

        Parameters
        ----------
        t_h : ndarray
            Batch time of each spectrum, hours since inoculation, 1-D and finite. The
            fluorescence rise and the laser drift follow it (so a batch can be synthesised
            in pieces).
        concentrations : mapping of str to ndarray
            One 1-D array of ``len(t_h)`` per key of ``CONCENTRATION_KEYS``, in the units of
            its name; extra keys are ignored. Tiny negative values (ODE round-off, >= -1e-6)
            are taken as 0.
        rng : numpy.random.Generator
            Draws this batch's effects (unless ``batch`` is given), then the per-spectrum
            fluorescence jitter and the noise; the same state gives the same spectra, bit
            for bit.
        batch : BatchEffects, optional
            This batch's media lot, fluorescence rise and laser drift, from
            :meth:`draw_batch_effects`. Pass the same one to every call when a batch is
            synthesised piece by piece (a live twin); by default each call draws its own.

        Returns
        -------
        ndarray of float32, shape (len(t_h), len(wavenumbers_cm1))
            Spectra in counts.

        Raises
        ------
        ValueError
            If a key is missing (the message names it), an array has the wrong length or
            shape, or holds NaN, inf or a negative value.
        """
        t = np.asarray(t_h, dtype=np.float64)
        if t.ndim != 1 or not np.all(np.isfinite(t)):
            raise ValueError(f"t_h must be 1-D and finite, got shape {t.shape}")
        conc = self._concentration_matrix(concentrations, t.size)
        n, m = t.size, self.wavenumbers_cm1.size
        fx = self.draw_batch_effects(rng) if batch is None else batch
        jitter = 1.0 + self.baseline_jitter * rng.standard_normal(n)
        rise = 1.0 - np.exp(-np.maximum(t, 0.0) / fx.time_constant_h)
        # One matrix product: [concentrations | background | fluorescence] @ [pure spectra;
        # water + media; Legendre shape], each row scaled by its laser power.
        n_c = conc.shape[1]
        design = np.zeros((n, n_c + 4))
        design[:, :n_c] = conc
        design[:, n_c] = 1.0
        if self.fluorescence_counts > 0:
            level = self.fluorescence_counts * (1.0 + fx.growth * rise) * jitter
            coeffs = np.asarray(fx.shape) + rise[:, None] * np.asarray(fx.shape_drift)
            design[:, n_c + 1 :] = level[:, None] * coeffs
        if self.laser_power_drift > 0:
            angle = 2.0 * np.pi * t / fx.laser_period_h + fx.laser_phase
            design *= (1.0 + self.laser_power_drift * np.sin(angle))[:, None]
        background = self._water + fx.media_scale * self._media
        basis = np.vstack([self._pure, background[None, :], self._legendre])
        out = (design @ basis).astype(np.float32)
        if self.noise:  # Gaussian approximation of Poisson shot noise plus read noise
            noise = rng.standard_normal((n, m), dtype=np.float32)
            sigma = np.maximum(out, np.float32(0.0))
            sigma += np.float32(self.read_noise_counts**2)
            np.sqrt(sigma, out=sigma)
            noise *= sigma
            out += noise
        return out

    def _concentration_matrix(self, concentrations: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Stack the concentrations into an (n, n_species) float64 matrix, validated."""
        missing = [k for k in CONCENTRATION_KEYS if k not in concentrations]
        if missing:
            raise ValueError(f"concentrations lack {', '.join(missing)}")
        cols = []
        for k in CONCENTRATION_KEYS:
            c = np.asarray(concentrations[k], dtype=np.float64)
            if c.shape != (n,):
                raise ValueError(f"{k} has shape {c.shape}, expected ({n},) like t_h")
            if not np.all(np.isfinite(c)):
                raise ValueError(f"{k} holds NaN or inf")
            if np.any(c < -1e-6):
                raise ValueError(f"{k} holds a negative value ({c.min():g})")
            cols.append(np.maximum(c, 0.0))
        return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def _band_sum(axis: np.ndarray, bands: tuple[_Band, ...]) -> np.ndarray:
    """Sum of pseudo-Voigt bands of given centre, FWHM and peak height on ``axis``."""
    out = np.zeros_like(axis)
    for centre, fwhm, height in bands:
        u = (axis - centre) / (0.5 * fwhm)
        lorentz = 1.0 / (1.0 + u**2)
        gauss = np.exp(-np.log(2.0) * u**2)
        out += height * (_ETA * lorentz + (1.0 - _ETA) * gauss)
    return out
