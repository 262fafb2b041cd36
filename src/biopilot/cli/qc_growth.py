"""CLI: culture growth from holograms taken over time (`qc culture` simulates, `qc growth` fits)."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError

__all__ = ["culture", "growth"]

_SCENARIOS = ("suspension", "adherent", "stem_cell")


def culture(
    out: Path = typer.Option(..., "--out", help="Folder for holograms, sidecars and truth."),
    scenario: str = typer.Option("adherent", "--scenario", help=f"One of {', '.join(_SCENARIOS)}."),
    start: float = typer.Option(0.05, "--start", help="Confluence at t = 0 (0-0.8)."),
    doubling_h: float = typer.Option(30.0, "--doubling-h", help="Doubling time while sparse, h."),
    capacity: float = typer.Option(0.8, "--capacity", help="Confluence where growth stops."),
    hours: float = typer.Option(96.0, "--hours", help="Length of the time-lapse, h."),
    every_h: float = typer.Option(8.0, "--every-h", help="Hours between frames."),
    size: int = typer.Option(1024, "--size", min=64, help="Square frame side, px."),
    seed: int = typer.Option(0, "--seed", help="Seed of the frames."),
    start_utc: str = typer.Option(
        "2026-01-05T08:00:00+00:00", "--start-utc",
        help="Acquisition time of the first frame (ISO 8601 with zone), in the sidecars."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulate a growing culture: one hologram every few hours, dated in its sidecar."""
    from biopilot.twin.incubator import OpticalSetup, SceneSpec, write_frame
    from biopilot.twin.incubator_culture import culture_timelapse, timelapse_hours
    from biopilot.twin.incubator_io import parse_time

    if scenario not in _SCENARIOS:
        fail(f"--scenario must be one of {', '.join(_SCENARIOS)}, got {scenario!r}")
    try:
        t0 = parse_time(start_utc)
    except ValueError as err:
        fail(f"--start-utc {err}")
    rows = []
    try:
        optics = OpticalSetup(wavelength_nm=488.0, pixel_um=1.12, z_mm=1.5, shape_px=(size, size))
        scene = SceneSpec(scenario=scenario, confluence=start)
        frames = culture_timelapse(optics, scene, hours=hours, every_h=every_h,
                                   doubling_h=doubling_h, capacity=capacity, seed=seed)
        with progress(enabled=not as_json) as bar:
            task = bar.add_task("simulating", total=len(timelapse_hours(hours, every_h)))
            for t, frame in frames:
                when = t0 + timedelta(hours=t)
                path = write_frame(frame, out, acquired_utc=when)
                rows.append({"file": str(path), "time_h": t, "acquired_utc": when.isoformat(),
                             "confluence": frame.confluence, "n_cells": len(frame.cells)})
                bar.advance(task)
    except (ConfigError, ValueError, OSError) as err:
        fail(str(err))
    if as_json:
        print_json(rows)
    else:
        print_table(f"{len(rows)} frames in {out}", rows)


def growth(
    report: Path = typer.Argument(..., help="JSON report of 'biopilot qc analyze --json'."),
    every_h: float | None = typer.Option(None, "--every-h", help="Hours between the frames."),
    times: str | None = typer.Option(None, "--times", help="Hour of each frame, comma list."),
    capacity: float | None = typer.Option(
        None, "--capacity", min=0.0, max=1.0, help="Known plateau confluence of this line in "
        "this vessel (0-1); predicts the passage time far better before the curve bends."),
    passage: float = typer.Option(0.7, "--passage", min=0.0, max=1.0,
                                  help="Confluence at which to passage."),
    plot: Path | None = typer.Option(None, "--plot", help="Write an HTML plot of the fits."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit culture growth to analysed frames: doubling time (95 % CI) and hours to passage.

    Each frame's time is its acquisition time (``acquired_utc`` in its sidecar, which
    ``qc analyze`` copies into the report); --every-h or --times give them instead, to the
    frames in the report's order.
    """
    from biopilot.quality.growth import fit_growth

    frames = _read_report(report)
    t = _times(frames, every_h, times)
    frames, t, left_out = _explained(frames, t)
    density = [f.get("viable_cells_per_cm2") for f in frames]
    confluence = [f.get("confluence") for f in frames]
    dens, conf = _numbers(density), _numbers(confluence)
    try:
        # The density's own logistic: cells shrink or spread as the vessel fills, so the
        # confluence's plateau does not fix the density's. (An exponential chosen by AICc
        # where the bend is in the noise was 20-25 % slow on bench_growth.py: not used.)
        dens_fit = fit_growth(t, dens)
        conf_fit = (fit_growth(t, conf, max_capacity=1.0) if capacity is None
                    else fit_growth(t, conf, capacity=capacity))
    except ValueError as err:
        fail(f"{report}: {err}")
    lo, hi = dens_fit.doubling_ci95_h
    when = conf_fit.time_to(passage)
    summary = {
        "frames": len(frames), "left_out": left_out,
        "doubling_h": dens_fit.doubling_h, "doubling_ci95_h": [lo, hi],
        "plateau_confluence": conf_fit.capacity, "passage_confluence": passage,
        "hours_to_passage": when,
        "density_fit": dens_fit.as_dict(), "confluence_fit": conf_fit.as_dict(),
    }
    if plot is not None:
        _plot(plot, t, density, confluence, dens_fit, conf_fit)
        summary["plot"] = str(plot)
    if as_json:
        print_json(summary)
        return
    rows = [{"time_h": h, "viable_cells_per_cm2": d, "fitted": float(dens_fit.predict(h)),
             "confluence": c, "fitted confluence": float(conf_fit.predict(h))}
            for h, d, c in zip(t, density, confluence, strict=True)]
    print_table(f"Growth of {report.name}", rows)
    typer.echo(
        f"doubling time {dens_fit.doubling_h:.1f} h (95 % CI {lo:.1f}-{hi:.1f} h); "
        + (f"{passage:.0%} confluence at {when:.0f} h"
           if math.isfinite(when) else f"{passage:.0%} confluence not reached on this curve "
           f"(plateau {conf_fit.capacity:.0%})")
        + ("" if capacity is not None else
           "; the plateau was fitted: before the curve bends give the line's with --capacity")
    )


def _explained(
    frames: list[dict[str, Any]], t: list[float]
) -> tuple[list[dict[str, Any]], list[float], list[str]]:
    """Leave out, with a warning, frames whose phase does not explain their hologram.

    Such a frame's counts are not the sample's (``min_hologram_agreement`` of the release
    specification, see :mod:`biopilot.imaging.agreement`); one wild point would bend the fit.
    """
    from biopilot.cli.qc_report import spec_default

    limit = spec_default("min_hologram_agreement")
    kept, hours, left_out = [], [], []
    for k, (f, h) in enumerate(zip(frames, t, strict=True)):
        score = f.get("hologram_agreement")
        if isinstance(score, int | float) and score < limit:
            name = f.get("file", f"frame {k}")
            left_out.append(name)
            typer.echo(f"warning: {name} left out: its phase reproduces {score:.2f} of its "
                       f"hologram (< {limit:.2f}), so its counts are not the sample's", err=True)
        else:
            kept.append(f)
            hours.append(h)
    if not kept:
        fail("no frame's phase explains its hologram: nothing to fit")
    return kept, hours, left_out


def _read_report(report: Path) -> list[dict[str, Any]]:
    """The frames of an analysis report, with a clear error for a bad file."""
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        fail(f"{report}: cannot read the report: {err}")
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list) or not all(isinstance(f, dict) for f in frames):
        fail(f"{report}: not a 'biopilot qc analyze --json' report (no list of frames)")
    return frames


def _times(frames: list[dict[str, Any]], every_h: float | None, times: str | None) -> list[float]:
    """Hours of the frames: from --every-h, --times, or their acquisition times."""
    n = len(frames)
    if every_h is not None and times is not None:
        fail("give the frames' hours with --every-h or with --times, not both")
    if every_h is None and times is None:
        return _acquired_hours(frames)
    if every_h is not None:
        if not every_h > 0:
            fail(f"--every-h must be > 0, got {every_h}")
        return [k * every_h for k in range(n)]
    try:
        hours = [float(v) for v in str(times).split(",")]
    except ValueError:
        fail(f"--times must be numbers separated by commas, got {times!r}")
    if len(hours) != n:
        fail(f"--times gives {len(hours)} hours for {n} frames in the report")
    return hours


def _acquired_hours(frames: list[dict[str, Any]]) -> list[float]:
    """Hours since the first frame, from each frame's ``acquired_utc``."""
    from biopilot.twin.incubator_io import parse_time

    stamps = []
    for k, f in enumerate(frames):
        if f.get("acquired_utc") is None:
            fail(f"frame {k} ({f.get('file', '?')}) has no acquisition time (acquired_utc in "
                 "its sidecar): give the frames' hours with --every-h or --times")
        try:
            stamps.append(parse_time(f["acquired_utc"]))
        except ValueError as err:
            fail(f"frame {k} ({f.get('file', '?')}): acquired_utc {err}")
    first = min(stamps)
    return [(w - first).total_seconds() / 3600.0 for w in stamps]


def _numbers(values: list[Any]) -> list[float]:
    """Floats (a missing value is NaN, which the fit names)."""
    return [float(v) if isinstance(v, int | float) else math.nan for v in values]


def _plot(path: Path, t: list[float], density: list[Any], confluence: list[Any],
          dens_fit: Any, conf_fit: Any) -> None:
    """Two panels: viable density (log axis) and confluence, points and fitted curves."""
    import numpy as np
    from plotly.subplots import make_subplots

    grid = np.linspace(0.0, max(t) * 1.5, 200)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"viable cells/cm2 (doubling {dens_fit.doubling_h:.1f} h)", "confluence"))
    fig.add_scatter(x=t, y=density, mode="markers", name="imaged density", row=1, col=1)
    fig.add_scatter(x=grid, y=dens_fit.predict(grid), name="fit", row=1, col=1)
    fig.add_scatter(x=t, y=confluence, mode="markers", name="imaged confluence", row=1, col=2)
    fig.add_scatter(x=grid, y=conf_fit.predict(grid), name="fit (extrapolated)", row=1, col=2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="hours")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)  # self-contained: no network to draw it
