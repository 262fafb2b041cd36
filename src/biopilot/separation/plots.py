"""Offline HTML report of a separation: trajectories, outlet histogram, recovery/purity, dose."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from biopilot.separation.config import Chip, OperatingPoint
from biopilot.separation.flow import ChannelFlow, height_profile
from biopilot.separation.outcome import Outcome
from biopilot.separation.trajectories import ClosedFormPath, Trajectories

__all__ = ["trajectory_paths", "write_report"]

_SHOWN = 25  # trajectories drawn per population
_STEPS = 80


def trajectory_paths(
    traj: Trajectories, chip: Chip, flow_rate_ul_per_min: float, index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Paths ``(x_mm, y_um)`` of the particles ``index``, each of shape (len(index), steps).

    ``x`` integrates ``u = U g(y) h(z)`` along the closed-form ``y(t)``, so every path ends at
    the channel length (up to the quadrature error of the trapezoid rule).
    """
    parts = traj.particles
    t = traj.residence_time_s[index, None] * np.linspace(0.0, 1.0, _STEPS)[None, :]
    rate = traj.rate_per_s[index]
    sub = type(parts)(parts.population[index], parts.names, parts.radius_um[index],
                      parts.contrast[index], parts.y0_um[index], parts.z_um[index],
                      parts.drag_factor[index])
    path = ClosedFormPath(sub, chip, traj.wavenumber_per_m, np.sign(rate))
    y = path.at((t * np.abs(rate)[:, None]).T).T
    flow = ChannelFlow(chip.channel_width_um, chip.channel_height_um)
    area = chip.channel_width_um * chip.channel_height_um * 1e-12
    u_mean = flow_rate_ul_per_min * 1e-9 / 60.0 / area
    u = u_mean * height_profile(sub.z_um, chip.channel_height_um)[:, None]
    u = u * flow.velocity_factor(y)
    x = np.concatenate([np.zeros((len(index), 1)),
                        np.cumsum(0.5 * (u[:, 1:] + u[:, :-1]) * np.diff(t, axis=1), axis=1)],
                       axis=1)
    return x * 1e3, y


def write_report(
    path: str | Path,
    title: str,
    chip: Chip,
    point: OperatingPoint,
    traj: Trajectories,
    outcome: Outcome,
) -> Path:
    """Write a self-contained HTML report (Plotly inlined, no network needed) and return its path.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.12, subplot_titles=(
        "Trajectories (top view, a sample per population)", "Exit position across the width"))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    rng = np.random.default_rng(0)
    parts = traj.particles
    for i, name in enumerate(parts.names):
        color = palette[i % len(palette)]
        members = np.flatnonzero(parts.population == i)
        shown = rng.choice(members, size=min(_SHOWN, members.size), replace=False)
        x, y = trajectory_paths(traj, chip, point.flow_rate_ul_per_min, shown)
        for j in range(len(shown)):
            fig.add_trace(go.Scatter(x=x[j], y=y[j], mode="lines", line={"color": color,
                          "width": 1}, opacity=0.6, name=name, legendgroup=name,
                          showlegend=j == 0), row=1, col=1)
        fig.add_trace(go.Histogram(x=traj.y_end_um[members], name=name, legendgroup=name,
                      marker_color=color, opacity=0.6, showlegend=False,
                      xbins={"size": chip.channel_width_um / 75}), row=2, col=1)
    w2, b = chip.channel_width_um / 2.0, traj.center_half_width_um
    for yb in (w2 - b, w2 + b):
        fig.add_hline(y=yb, line_dash="dash", line_color="grey", row=1, col=1)
        fig.add_vline(x=yb, line_dash="dash", line_color="grey", row=2, col=1)
    fig.update_xaxes(title_text="x along the channel (mm)", row=1, col=1)
    fig.update_yaxes(title_text="y across the width (um)", row=1, col=1)
    fig.update_xaxes(title_text="y at the outlet (um); dashed: centre-outlet band", row=2, col=1)
    fig.update_yaxes(title_text="simulated particles", row=2, col=1)
    fig.update_layout(title=title, barmode="overlay", height=900)
    body = fig.to_html(include_plotlyjs=True, full_html=False)
    out = Path(path)
    out.write_text(_page(title, point, outcome, body), encoding="utf-8")
    return out


def _page(title: str, point: OperatingPoint, outcome: Outcome, figure: str) -> str:
    e = outcome.exposure
    rows = "".join(
        f"<tr><td>{html.escape(p.name)}</td><td>{'yes' if p.is_target else ''}</td>"
        f"<td>{p.to_target_outlet:.3f}</td><td>{p.residence_time_s_median:.3g}</td>"
        f"<td>{p.pressure_dose_pa2_s_median:.3g}</td></tr>"
        for p in outcome.populations
    )
    drive = (f"{point.voltage_v:.3g} V" if point.voltage_v is not None
             else f"{point.pressure_amplitude_pa:.3g} Pa")
    notes = "".join(f"<p><b>note:</b> {html.escape(n)}</p>" for n in outcome.notes)
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;border:1px solid #ccc}}
table{{border-collapse:collapse;margin:1em 0}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Operating point: {point.flow_rate_ul_per_min:.4g} uL/min, {point.frequency_hz / 1e6:.5g} MHz,
drive {drive}. Recovery <b>{outcome.recovery:.3f}</b>, purity <b>{outcome.purity:.3f}</b>.</p>
<p>Sonoporation exposure: pressure amplitude {e.pressure_amplitude_pa / 1e6:.3g} MPa,
energy density {e.energy_density_j_per_m3:.3g} J/m3, mechanical index
{e.mechanical_index:.3g}.</p>{notes}
<table><tr><th>population</th><th>target</th><th>to target outlet</th>
<th>residence time median (s)</th><th>pressure dose median (Pa2 s)</th></tr>{rows}</table>
{figure}</body></html>"""
