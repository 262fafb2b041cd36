"""CLI: culture growth from holograms taken over time (`qc culture` simulates, `qc growth` fits)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
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
    as_json: bool = JSON_OPTION,
) -> None:
    """Simulate a growing culture: one hologram every few hours (files named by their hour)."""
    from biopilot.twin.incubator import OpticalSetup, SceneSpec, write_frame
    from biopilot.twin.incubator_culture import culture_timelapse, timelapse_hours

    if scenario not in _SCENARIOS:
        fail(f"--scenario must be one of {', '.join(_SCENARIOS)}, got {scenario!r}")
    rows = []
    try:
        optics = OpticalSetup(wavelength_nm=488.0, pixel_um=1.12, z_mm=1.5, shape_px=(size, size))
        scene = SceneSpec(scenario=scenario, confluence=start)
        frames = culture_timelapse(optics, scene, hours=hours, every_h=every_h,
                                   doubling_h=doubling_h, capacity=capacity, seed=seed)
        with progress(enabled=not as_json) as bar:
            task = bar.add_task("simulating", total=len(timelapse_hours(hours, every_h)))
            for t, frame in frames:
                path = write_frame(frame, out)
                rows.append({"file": str(path), "time_h": t, "confluence": frame.confluence,
                             "n_cells": len(frame.cells)})
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

    The frames of the report are taken in order; give their hours with --every-h or --times.
    """
    from biopilot.quality.growth import fit_growth

    frames = _read_report(report)
    t = _times(len(frames), every_h, times)
    density = [f.get("viable_cells_per_cm2") for f in frames]
    confluence = [f.get("confluence") for f in frames]
    dens, conf = _numbers(density), _numbers(confluence)
    try:
        if capacity is None:
            dens_fit = fit_growth(t, dens)
            conf_fit = fit_growth(t, conf, max_capacity=1.0)
        else:  # the cells keep their size: the density levels off with the confluence
            conf_fit = fit_growth(t, conf, capacity=capacity)  # first: checks conf > 0
            per_cover = float(np.nanmedian(np.asarray(dens) / np.asarray(conf)))
            dens_fit = fit_growth(t, dens, capacity=capacity * per_cover)
    except ValueError as err:
        fail(f"{report}: {err}")
    lo, hi = dens_fit.doubling_ci95_h
    summary = {
        "frames": len(frames), "doubling_h": dens_fit.doubling_h, "doubling_ci95_h": [lo, hi],
        "plateau_confluence": conf_fit.capacity, "passage_confluence": passage,
        "hours_to_passage": conf_fit.time_to(passage),
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
    when = conf_fit.time_to(passage)
    typer.echo(
        f"doubling time {dens_fit.doubling_h:.1f} h (95 % CI {lo:.1f}-{hi:.1f} h); "
        + (f"{passage:.0%} confluence at {when:.0f} h"
           if math.isfinite(when) else f"{passage:.0%} confluence not reached on this curve "
           f"(plateau {conf_fit.capacity:.0%})")
        + ("" if capacity is not None else
           "; the plateau was fitted: before the curve bends give the line's with --capacity")
    )


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


def _times(n: int, every_h: float | None, times: str | None) -> list[float]:
    """Hours of the ``n`` frames from --every-h or --times."""
    if (every_h is None) == (times is None):
        fail("give the frames' hours with --every-h or with --times (one of them)")
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


def _numbers(values: list[Any]) -> list[float]:
    """Floats (a missing value is NaN, which the fit names)."""
    return [float(v) if isinstance(v, int | float) else math.nan for v in values]


def _plot(path: Path, t: list[float], density: list[Any], confluence: list[Any],
          dens_fit: Any, conf_fit: Any) -> None:
    """Two panels: viable density (log axis) and confluence, points and fitted curves."""
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
