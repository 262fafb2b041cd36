"""Literature acoustic properties of cells, beads and suspending media, each with its source.

Values are population means with a spread (one standard deviation) where the spread matters
for separation. Where a number is recalled from the cited work rather than copied from its
table, the comment says so: check the source before relying on the last digit. The spreads
of density and compressibility (cell-to-cell variation) are our estimates, not literature
values; purity predictions are sensitive to the compressibility spread (a small difference
``1 - kappa_p / kappa_m`` sets ``Phi``), so measure it for a real design.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MEDIA", "PARTICLES", "MediumProperties", "ParticleProperties"]


@dataclass(frozen=True)
class MediumProperties:
    """Acoustic and viscous properties of a suspending liquid (SI units)."""

    density_kg_per_m3: float
    speed_of_sound_m_per_s: float
    viscosity_pa_s: float
    source: str

    @property
    def compressibility_per_pa(self) -> float:
        """Adiabatic compressibility ``1 / (rho c^2)``, 1/Pa."""
        return 1.0 / (self.density_kg_per_m3 * self.speed_of_sound_m_per_s**2)


@dataclass(frozen=True)
class ParticleProperties:
    """Size (volume-equivalent diameter), density and compressibility of a particle type."""

    diameter_um: float
    diameter_sd_um: float
    density_kg_per_m3: float
    density_sd_kg_per_m3: float
    compressibility_per_pa: float
    compressibility_sd_per_pa: float
    source: str


MEDIA: dict[str, MediumProperties] = {
    # Bruus 2012, Lab Chip 12:1014, Table 1 (water at 25 C: 997 kg/m3, 1497 m/s, 448 1/TPa,
    # 0.890 mPa s).
    "water": MediumProperties(997.0, 1497.0, 0.890e-3, "Bruus 2012 Lab Chip 12:1014, Table 1"),
    # Isotonic phosphate-buffered saline near 25 C: slightly denser and faster than water.
    # Representative values (recalled; e.g. Augustsson et al. 2016 Nat. Commun. 7:11556 use
    # saline of this kind), not copied from a table.
    "pbs": MediumProperties(1005.0, 1507.0, 0.95e-3, "isotonic saline ~25 C (approx., recalled)"),
    # Human blood plasma at 37 C: Duck 1990, Physical Properties of Tissue, ch. 4 (speed of
    # sound ~1549 m/s, density ~1025 kg/m3; recalled) and plasma viscosity ~1.2 mPa s
    # (normal range 1.1-1.3 mPa s at 37 C).
    "plasma": MediumProperties(1025.0, 1549.0, 1.2e-3, "Duck 1990 (approx., recalled)"),
}

PARTICLES: dict[str, ParticleProperties] = {
    # Polystyrene: Bruus 2012 Lab Chip 12:1014, Table 1 (1050 kg/m3, 249 1/TPa). Diameter is a
    # bead catalogue size; set your own.
    "polystyrene": ParticleProperties(
        5.0, 0.1, 1050.0, 0.0, 249e-12, 0.0, "Bruus 2012 Lab Chip 12:1014, Table 1"
    ),
    # Red blood cell: volume-equivalent diameter from MCV ~90 fL; density ~1.10 g/mL and
    # compressibility ~3.3-3.5e-10 1/Pa (Toubal et al. 1999; Cushing et al. 2017 Anal. Chem.
    # 89:8917) - approx., recalled.
    "rbc": ParticleProperties(
        5.6, 0.4, 1099.0, 10.0, 3.41e-10, 0.10e-10, "Cushing 2017 / Toubal 1999 (approx.)"
    ),
    # Lymphocyte: diameter ~7 um; density ~1.065-1.075 g/mL (density-gradient separation below
    # Ficoll's 1.077); compressibility ~4.0e-10 1/Pa (Cushing 2017 range, recalled).
    "lymphocyte": ParticleProperties(
        7.2, 0.8, 1070.0, 5.0, 4.0e-10, 0.15e-10, "Cushing 2017 (approx., recalled)"
    ),
    # White blood cells of erythrocyte-lysed blood (granulocytes ~9-10 um, lymphocytes ~7 um,
    # monocytes ~10-12 um, mixed): diameter 9.0 +- 1.4 um is our estimate of the mixture, not
    # a number from Augustsson et al. 2012; acoustic properties as lymphocytes (approx.).
    "wbc": ParticleProperties(
        9.0, 1.4, 1075.0, 10.0, 4.0e-10, 0.15e-10, "haematology sizes / Cushing 2017 (approx.)"
    ),
    # MCF-7 breast cancer cells: density 1068 kg/m3 and compressibility 4.22e-10 1/Pa from
    # Hartono et al. 2011 Lab Chip 11:4072; diameter ~18 um (approx.).
    "mcf7": ParticleProperties(
        18.0, 2.5, 1068.0, 10.0, 4.22e-10, 0.15e-10, "Hartono 2011 Lab Chip 11:4072"
    ),
    # DU145 prostate cancer cells (paraformaldehyde-fixed, as in Augustsson et al. 2012 Anal.
    # Chem. 84:7954): diameter ~17 +- 2.5 um is our estimate for cultured prostate cancer
    # cell lines (not verified against that paper's size data); density like MCF-7 (Hartono
    # 2011) and compressibility in the Cushing 2017 range of cancer cells (approx.).
    "du145": ParticleProperties(
        17.0, 2.5, 1068.0, 10.0, 4.0e-10, 0.15e-10, "Hartono 2011 / Cushing 2017 (approx.)"
    ),
    # Platelets: volume-equivalent diameter ~2.5 um (MPV 7-10 fL); density ~1.04-1.06 g/mL;
    # compressibility near other blood cells (approx.).
    "platelet": ParticleProperties(
        2.5, 0.5, 1058.0, 5.0, 4.1e-10, 0.15e-10, "haematology reference ranges (approx.)"
    ),
    # Apoptotic / dead cells: shrunk (Yang & Soh 2012 Anal. Chem. 84:10756 sort viable MCF-7
    # from smaller nonviable cells); leaky membranes bring density and compressibility closer
    # to the medium (approx.).
    "dead_cell": ParticleProperties(
        11.0, 2.5, 1050.0, 10.0, 4.3e-10, 0.15e-10, "Yang & Soh 2012 (approx.)"
    ),
    # Cell debris and fragments: small and weakly contrasted (approx.).
    "debris": ParticleProperties(3.0, 1.5, 1040.0, 10.0, 4.3e-10, 0.15e-10, "approx."),
}
