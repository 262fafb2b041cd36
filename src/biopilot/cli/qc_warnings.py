"""Warnings `qc analyze` prints under its table: frames whose figures should not be trusted."""

from __future__ import annotations

from typing import Any

import typer


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
            _warn(r, f"the phase reproduces only {explained:.2f} of the hologram's fringes "
                     f"(< {agree:.2f}): the reconstruction is not the sample, so neither are "
                     "its cells (check the optics metadata; dilute a dense sample)")
        two = r.get("two_wavelengths") or {"combined": True}
        if not two["combined"]:
            _warn(r, f"the two wavelengths disagree on {two['inconsistent_fraction']:.1%} of "
                     "the thin cell pixels: the first fit's whole turns were kept (thick cells "
                     "may be a turn off)")


def _warn(row: dict[str, Any], text: str) -> None:
    typer.echo(f"warning: {row['file']}: {text}", err=True)
