"""What `qc analyze` prints: a table of the frames, then warnings on figures not to trust."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import print_table

#: The per-frame table: (header, report key, format); fractions shown in per cent.
_COLUMNS = (
    ("file", "file", "name"),
    ("cells", "n_cells", "{:,d}"),
    ("viable %", "viability", "pct"),
    ("confluent %", "confluence", "pct"),
    ("diff. %", "differentiated_fraction", "pct"),
    ("viable cells/cm2", "viable_cells_per_cm2", "{:,.0f}"),
    ("z mm", "z_mm", "{:.3f}"),
    ("agreement", "hologram_agreement", "{:.2f}"),
)


def print_frames(results: list[dict[str, Any]]) -> None:
    """The frames as a table that fits a terminal: short headers, per cent, thousands."""
    rows = [{head: _cell(r.get(key), how) for head, key, how in _COLUMNS} for r in results]
    print_table("QC per frame", rows)


def _cell(value: Any, how: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if how == "name":
        return Path(str(value)).name
    if how == "pct":
        return f"{100.0 * value:.1f}"
    return how.format(value)


def spec_default(name: str) -> float:
    """A release specification's default limit: what release would judge a frame by."""
    from biopilot.quality import Spec

    return float(Spec.model_fields[name].default)


def warn_unreliable(results: list[dict[str, Any]]) -> None:
    """One line on stderr per frame that release would send to review, and why."""
    clumps = spec_default("max_clustered_fraction")
    agree = spec_default("min_hologram_agreement")
    for r in results:
        share = r.get("clustered_fraction") or 0.0
        if share > clumps:
            _warn(r, f"{share:.0%} of the cell area is in clumps too large to be single cells: "
                     "count and classes unreliable (dilute and re-image)")
        explained = r.get("hologram_agreement")
        if explained is not None and explained == explained and explained < agree:
            fitted = r.get("fit_agreement")  # --refine: the fit explains what it was fitted to
            note = "" if fitted is None else (
                f"; the phase fitted to it reproduces {fitted:.2f}, which a fit reaches "
                "whether or not it started right")
            _warn(r, f"the phase reproduces only {explained:.2f} of the hologram's fringes "
                     f"(< {agree:.2f}): the reconstruction is not the sample, so neither are "
                     f"its cells (check the optics metadata; dilute a dense sample){note}")
        two = r.get("two_wavelengths") or {"combined": True}
        if not two["combined"]:
            _warn(r, f"the two wavelengths disagree on {two['inconsistent_fraction']:.1%} of "
                     "the thin cell pixels: the first fit's whole turns were kept (thick cells "
                     "may be a turn off)")


def _warn(row: dict[str, Any], text: str) -> None:
    typer.echo(f"warning: {row['file']}: {text}", err=True)
