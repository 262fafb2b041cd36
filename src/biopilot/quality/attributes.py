"""Cell quality attributes per frame and per batch: density, viability, confluence, identity."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from biopilot.imaging.frame_result import FrameAnalysis

__all__ = ["CLUSTER_AREA_UM2", "QCAttributes", "batch_attributes", "frame_attributes"]

_NAN = float("nan")
#: A segmented object larger than this is a cluster, not a cell: the largest cells of the
#: issue's range (differentiated, flat, elongated) reach ~3,600 um2 in the twin; an object of
#: 5,000 um2 (80 um across) is a clump of touching cells the segmentation did not split.
CLUSTER_AREA_UM2 = 5000.0


@dataclass(frozen=True)
class QCAttributes:
    """Quality attributes of one frame or of a batch (several frames pooled).

    Attributes
    ----------
    n_frames, n_cells, n_live : int
        Frames, cells seen and live cells.
    field_area_mm2 : float
        Imaged area in square millimetres.
    viable_cells_per_cm2 : float
        Live cells per square centimetre of the well bottom.
    viable_cells_per_ml : float
        Live cells per millilitre, when the imaged volume is known (NaN otherwise).
    viability : float
        Live cells over all cells, 0-1.
    confluence : float
        Fraction of the imaged area covered by cells, 0-1 (area-weighted over frames).
    differentiated_fraction : float
        Differentiated cells over live cells, 0-1.
    dry_mass_pg_mean, dry_mass_pg_median, dry_mass_pg_p10, dry_mass_pg_p90 : float
        Dry-mass distribution of live cells, picograms.
    dry_mass_cv : float
        Coefficient of variation of the live cells' dry mass.
    clustered_fraction : float
        Fraction of the segmented area in objects larger than :data:`CLUSTER_AREA_UM2`:
        clumps the segmentation could not split (a dense suspension, say), whose counts and
        classes cannot be trusted. NaN where not known (records from before session 4).
    hologram_agreement : float
        Share of the hologram's fringes the reconstructed phase reproduces
        (:func:`~biopilot.imaging.agreement.hologram_agreement`); for a batch, its worst
        frame's. NaN where not known (an analysis from a phase map, older records).
    """

    n_frames: int
    n_cells: int
    n_live: int
    field_area_mm2: float
    viable_cells_per_cm2: float
    viable_cells_per_ml: float
    viability: float
    confluence: float
    differentiated_fraction: float
    dry_mass_pg_mean: float
    dry_mass_pg_median: float
    dry_mass_pg_p10: float
    dry_mass_pg_p90: float
    dry_mass_cv: float
    clustered_fraction: float = _NAN
    hologram_agreement: float = _NAN

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None)."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QCAttributes:
        """Inverse of :meth:`as_dict` (None becomes NaN; unknown keys are ignored)."""
        names = {f.name: f.type for f in fields(cls)}
        kw: dict[str, Any] = {k: (_NAN if data.get(k) is None else data[k]) for k in names}
        for k in ("n_frames", "n_cells", "n_live"):
            kw[k] = int(data.get(k) or 0)
        return cls(**kw)


def frame_attributes(
    analysis: FrameAnalysis, *, volume_ml: float | None = None, exclude_border: bool = False
) -> QCAttributes:
    """Quality attributes of one analysed frame.

    Parameters
    ----------
    analysis : FrameAnalysis
        Result of :func:`biopilot.imaging.analyze_frame` (or ``analyze_phase``).
    volume_ml : float, optional
        Volume of suspension above the imaged area, in millilitres (depth times area);
        gives ``viable_cells_per_ml``.
    exclude_border : bool
        Leave out cells cut by the frame edge (for the dry-mass distribution).

    Returns
    -------
    QCAttributes
    """
    cells = analysis.cells
    return _attributes(
        cells,
        n_frames=1,
        field_area_mm2=analysis.field_area_mm2,
        covered_mm2=analysis.confluence * analysis.field_area_mm2,
        volume_ml=volume_ml,
        exclude_border=exclude_border,
        hologram_agreement=analysis.hologram_agreement,
    )


def batch_attributes(
    frames: Sequence[QCAttributes], *, volume_ml: float | None = None
) -> QCAttributes:
    """Pool the attributes of several frames of one batch into batch attributes.

    Counts and areas add up; fractions are recomputed from the pooled counts (so a frame
    with many cells weighs more); the dry-mass distribution is the cell-weighted mean of the
    frame statistics (medians and percentiles of pooled cells are approximated so).

    Parameters
    ----------
    frames : sequence of QCAttributes
        Per-frame attributes (e.g. read back from the store's QC records).
    volume_ml : float, optional
        Total imaged volume in millilitres; by default the frames' own per-mL values are
        pooled where every frame has one.

    Returns
    -------
    QCAttributes

    Raises
    ------
    ValueError
        If ``frames`` is empty.
    """
    if not frames:
        raise ValueError("no frame attributes to pool")
    n_cells = sum(f.n_cells for f in frames)
    n_live = sum(f.n_live for f in frames)
    area = sum(f.field_area_mm2 for f in frames)
    covered = sum(f.confluence * f.field_area_mm2 for f in frames if not math.isnan(f.confluence))
    n_diff = sum(
        f.differentiated_fraction * f.n_live
        for f in frames
        if not math.isnan(f.differentiated_fraction)
    )
    if volume_ml is not None:
        per_ml = n_live / volume_ml
    else:
        vols = [
            f.n_live / f.viable_cells_per_ml
            for f in frames
            if not math.isnan(f.viable_cells_per_ml) and f.viable_cells_per_ml > 0
        ]
        per_ml = n_live / sum(vols) if len(vols) == len(frames) else _NAN
    live_w = np.array([f.n_live for f in frames], float)

    def wmean(name: str) -> float:
        v = np.array([getattr(f, name) for f in frames], float)
        ok = ~np.isnan(v) & (live_w > 0)
        return float(np.average(v[ok], weights=live_w[ok])) if ok.any() else _NAN

    return QCAttributes(
        n_frames=sum(f.n_frames for f in frames),
        n_cells=n_cells,
        n_live=n_live,
        field_area_mm2=area,
        viable_cells_per_cm2=n_live / (area * 1e-2) if area else _NAN,
        viable_cells_per_ml=per_ml,
        viability=n_live / n_cells if n_cells else _NAN,
        confluence=covered / area if area else _NAN,
        differentiated_fraction=n_diff / n_live if n_live else _NAN,
        dry_mass_pg_mean=wmean("dry_mass_pg_mean"),
        dry_mass_pg_median=wmean("dry_mass_pg_median"),
        dry_mass_pg_p10=wmean("dry_mass_pg_p10"),
        dry_mass_pg_p90=wmean("dry_mass_pg_p90"),
        dry_mass_cv=wmean("dry_mass_cv"),
        clustered_fraction=_pooled_clusters(frames, covered),
        hologram_agreement=_worst_agreement(frames),
    )


def _pooled_clusters(frames: Sequence[QCAttributes], covered_mm2: float) -> float:
    """Area-weighted clustered fraction over frames (NaN if any frame lacks it)."""
    parts = [f.clustered_fraction * f.confluence * f.field_area_mm2 for f in frames]
    if not parts or any(math.isnan(v) for v in parts):
        return _NAN
    return sum(parts) / covered_mm2 if covered_mm2 > 0 else 0.0


def _worst_agreement(frames: Sequence[QCAttributes]) -> float:
    """The lowest hologram agreement of the frames that have one (NaN if none has)."""
    known = [f.hologram_agreement for f in frames if not math.isnan(f.hologram_agreement)]
    return min(known) if known else _NAN


def _attributes(
    cells: pd.DataFrame,
    *,
    n_frames: int,
    field_area_mm2: float,
    covered_mm2: float,
    volume_ml: float | None,
    exclude_border: bool,
    hologram_agreement: float = _NAN,
) -> QCAttributes:
    alive = cells["alive"].to_numpy(bool)
    n_cells, n_live = len(cells), int(alive.sum())
    live = cells[alive]
    diff = live["differentiated"].to_numpy(bool) if "differentiated" in live else np.zeros(0)
    if exclude_border and "touches_border" in live:
        live = live[~live["touches_border"].to_numpy(bool)]
    mass = live["dry_mass_pg"].to_numpy(float)
    if mass.size:
        p10, med, p90 = np.percentile(mass, [10, 50, 90])
        mean = float(mass.mean())
        cv = float(mass.std() / mean) if mean > 0 else _NAN
    else:
        p10 = med = p90 = mean = cv = _NAN
    if volume_ml is not None and not volume_ml > 0:
        raise ValueError(f"volume_ml must be > 0, got {volume_ml}")
    area = cells["area_um2"].to_numpy(float) if "area_um2" in cells else np.zeros(0)
    clustered = float(area[area > CLUSTER_AREA_UM2].sum() / area.sum()) if area.sum() else 0.0
    return QCAttributes(
        n_frames=n_frames,
        n_cells=n_cells,
        n_live=n_live,
        field_area_mm2=field_area_mm2,
        viable_cells_per_cm2=n_live / (field_area_mm2 * 1e-2) if field_area_mm2 else _NAN,
        viable_cells_per_ml=n_live / volume_ml if volume_ml else _NAN,
        viability=n_live / n_cells if n_cells else _NAN,
        confluence=covered_mm2 / field_area_mm2 if field_area_mm2 else _NAN,
        differentiated_fraction=float(diff.mean()) if diff.size else _NAN,
        dry_mass_pg_mean=mean,
        dry_mass_pg_median=float(med),
        dry_mass_pg_p10=float(p10),
        dry_mass_pg_p90=float(p90),
        dry_mass_cv=cv,
        clustered_fraction=clustered,
        hologram_agreement=hologram_agreement,
    )
