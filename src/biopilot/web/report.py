"""The batch report: one self-contained HTML page of plots and tables, read from the historian."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from biopilot import __version__
from biopilot.monitor.online_mspc import MSPC_TAGS
from biopilot.monitor.online_types import ESTIMATE_SUFFIXES, KEY_STATES, soft_tag
from biopilot.store import Historian

__all__ = ["PANELS", "BatchData", "load_batch", "mspc_limits_of", "write_report"]

#: (panel title, tag, y-axis label, scale): one subplot per panel, one trace per batch.
PANELS: tuple[tuple[str, str, str, float], ...] = (
    ("Viable cell density", "vcd_cells_per_ml", "1e6 cells/mL", 1e-6),
    ("Viability", "viability_pct", "%", 1.0),
    ("Glucose", "glucose_g_per_l", "g/L", 1.0),
    ("Lactate", "lactate_g_per_l", "g/L", 1.0),
    ("Titer", "titer_g_per_l", "g/L", 1.0),
    ("Dissolved oxygen", "do_pct", "% air sat.", 1.0),
    ("pH", "ph", "pH", 1.0),
    ("Temperature", "temperature_c", "°C", 1.0),
)

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


@dataclass
class BatchData:
    """What the report shows of one batch, read once from the historian."""

    batch_id: int
    code: str
    unit: str
    start_utc: datetime
    status: str
    samples: pd.DataFrame  # wide: tz-aware UTC index, one column per tag
    spectra_times: np.ndarray | None = None
    wavenumbers_cm1: np.ndarray | None = None
    spectra: np.ndarray | None = None
    events: list[dict[str, object]] = field(default_factory=list)

    def days(self, index: pd.Index) -> np.ndarray:
        """Culture time in days since the batch start for a UTC index."""
        return np.asarray((index - pd.Timestamp(self.start_utc)).total_seconds()) / 86400.0


def load_batch(historian: Historian, batch_id: int) -> BatchData:
    """Read one batch's samples, spectra and events for the report."""
    info = historian.batch(batch_id)
    wide = historian.read_wide(batch_id)
    times, wn, arr = historian.read_spectra(batch_id)
    events = historian.read_events(batch_id)
    return BatchData(
        batch_id=info.id,
        code=info.code,
        unit=info.unit,
        start_utc=info.start_utc,
        status=info.status,
        samples=wide,
        spectra_times=np.asarray(times) if len(times) else None,
        wavenumbers_cm1=np.asarray(wn) if len(wn) else None,
        spectra=arr if len(times) else None,
        events=[asdict(e) for e in events],
    )


def write_report(
    historian: Historian,
    batch_ids: Sequence[int],
    path: str | Path,
    *,
    title: str = "biopilot batch report",
    summary: pd.DataFrame | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write a self-contained HTML report (plots work offline) for the given batches.

    Batches monitored online (:mod:`biopilot.monitor.online`) also get their state
    estimates with intervals over the soft-sensor values, and their MSPC charts: T2, SPE
    (and the probe checks' T2) per batch against the model's 95 %, 99 % and alarm limits.

    Parameters
    ----------
    historian : Historian
        Where the batches are stored.
    batch_ids : sequence of int
        The batches to show; each is one trace per panel.
    path : str or Path
        The HTML file to write; parent folders are created.
    title : str
        Page title.
    summary : DataFrame, optional
        A table shown at the top (e.g. per-batch key figures).
    extra_sections : sequence of (heading, html)
        Further sections appended by later stages (MSPC charts, QC results).

    Returns
    -------
    Path
        The written file.
    """
    if not batch_ids:
        raise ValueError("write_report needs at least one batch id")
    batches = [load_batch(historian, b) for b in batch_ids]
    body = [f"<h1>{html.escape(title)}</h1>", _meta_line(batches)]
    if summary is not None:
        body += ["<h2>Summary</h2>", summary.to_html(index=False, float_format=_fmt, border=0)]
    figures: list[tuple[str, str, go.Figure | None]] = [
        ("trends", "Trends", _trends_figure(batches))
    ]
    figures.append(("estimates", "Estimates (state estimator, 2 sd) and Raman soft sensors",
                    _estimates_figure(batches)))
    figures.append(("mspc", "Batch MSPC: T2 and SPE against their limits", _mspc_figure(batches)))
    raman = next((b for b in batches if b.spectra is not None), None)
    if raman is not None:
        figures.append(("raman", f"Raman spectra — {raman.code}", _raman_figure(raman)))
    first = True
    for anchor, heading, fig in figures:
        if fig is None:
            continue
        body.append(f"<h2 id='{anchor}'>{html.escape(heading)}</h2>")
        body.append(pio.to_html(fig, include_plotlyjs=first, full_html=False))
        first = False
    body.append("<h2>Events</h2>")
    body.append(_events_table(batches))
    for heading, section in extra_sections:
        body += [f"<h2>{html.escape(heading)}</h2>", section]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_PAGE.format(title=html.escape(title), body="\n".join(body)), encoding="utf-8")
    return out


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _meta_line(batches: Sequence[BatchData]) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    codes = ", ".join(html.escape(b.code) for b in batches)
    return f"<p class='meta'>Batches: {codes} · generated {now} by biopilot {__version__}</p>"


def _trends_figure(batches: Sequence[BatchData]) -> go.Figure | None:
    """One subplot per panel with data; at-line tags as markers, online tags as lines."""
    panels = [p for p in PANELS if any(p[1] in b.samples.columns for b in batches)]
    if not panels:
        return None
    rows = (len(panels) + 1) // 2
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.08, vertical_spacing=0.3 / rows)
    for k, (_title, tag, ylabel, scale) in enumerate(panels):
        r, c = k // 2 + 1, k % 2 + 1
        for i, b in enumerate(batches):
            if tag not in b.samples.columns:
                continue
            s = _thin(b.samples[tag].dropna())
            sparse = len(s) < 200
            fig.add_trace(
                go.Scattergl(
                    x=b.days(s.index), y=s.to_numpy() * scale, name=b.code,
                    legendgroup=str(b.batch_id), showlegend=k == 0,
                    mode="lines+markers" if sparse else "lines",
                    line={"color": _colour(i), "width": 1.2},
                ),
                row=r, col=c,
            )
        fig.update_yaxes(title_text=ylabel, row=r, col=c)
        fig.update_xaxes(title_text="day", row=r, col=c)
    fig.update_layout(height=260 * rows, template="plotly_white", margin={"t": 40, "b": 30})
    return fig


def _estimates_figure(batches: Sequence[BatchData]) -> go.Figure | None:
    """Per key state: each batch's estimate with its interval band, soft sensor and assays."""
    value, low, high = ESTIMATE_SUFFIXES
    states = [n for n in KEY_STATES if any(f"{n}{value}" in b.samples.columns for b in batches)]
    if not states:
        return None
    titles = {p[1]: (p[0], p[2], p[3]) for p in PANELS}
    fig = make_subplots(rows=len(states), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=[titles.get(n, (n,))[0] for n in states])
    for r, name in enumerate(states, start=1):
        _, ylabel, scale = titles.get(name, (name, name, 1.0))
        for i, b in enumerate(batches):
            cols, colour = b.samples.columns, _colour(i)
            if f"{name}{value}" not in cols:
                continue
            est = _thin(b.samples[[f"{name}{value}", f"{name}{low}", f"{name}{high}"]].dropna())
            x = b.days(est.index)
            band = np.concatenate([est.iloc[:, 2].to_numpy(), est.iloc[::-1, 1].to_numpy()])
            fig.add_trace(go.Scatter(
                x=np.concatenate([x, x[::-1]]), y=band * scale, fill="toself", mode="none",
                fillcolor=_rgba(colour, 0.15), hoverinfo="skip", showlegend=False,
                legendgroup=str(b.batch_id)), row=r, col=1)
            fig.add_trace(go.Scatter(
                x=x, y=est.iloc[:, 0].to_numpy() * scale, mode="lines", name=b.code,
                legendgroup=str(b.batch_id), showlegend=r == 1,
                line={"color": colour, "width": 1.5}), row=r, col=1)
            for tag, mode, size in ((soft_tag(name), "markers", 3), (name, "markers", 8)):
                if tag in cols and b.samples[tag].notna().any():
                    pts = _thin(b.samples[tag].dropna())
                    fig.add_trace(go.Scattergl(
                        x=b.days(pts.index), y=pts.to_numpy() * scale, mode=mode,
                        name=f"{b.code} {'Raman' if tag != name else 'at-line'}",
                        legendgroup=str(b.batch_id), showlegend=False,
                        marker={"color": colour, "size": size, "opacity": 0.5}), row=r, col=1)
        fig.update_yaxes(title_text=ylabel, row=r, col=1)
    fig.update_xaxes(title_text="day", row=len(states), col=1)
    fig.update_layout(height=240 * len(states), template="plotly_white", margin={"t": 40})
    return fig


def mspc_limits_of(b: BatchData) -> dict[str, dict[str, float]]:
    """Return the MSPC limits the online monitor recorded for a batch (statistic -> level).

    They are in the payload of the monitor's start-up event (``models.mspc.limits``); empty
    when the batch was not monitored online.
    """
    for e in b.events:
        payload = e.get("payload") or {}
        limits = (((payload.get("models") or {}).get("mspc") or {}).get("limits")
                  if isinstance(payload, dict) else None)
        if isinstance(limits, dict):
            return {str(k): {str(q): float(v) for q, v in d.items() if v is not None}
                    for k, d in limits.items() if isinstance(d, dict)}
    return {}


_LIMIT_STYLE = {"95": ("dash", "#ff7f0e"), "99": ("dot", "#d62728"), "alarm": ("solid", "#d62728")}


def _mspc_figure(batches: Sequence[BatchData]) -> go.Figure | None:
    """One row per monitored batch: T2, SPE (and probe checks' T2) with their limits."""
    shown = [b for b in batches if MSPC_TAGS["t2"] in b.samples.columns]
    if not shown:
        return None
    stats = [k for k in MSPC_TAGS if any(MSPC_TAGS[k] in b.samples.columns for b in shown)]
    names = {"t2": "Hotelling T2", "spe": "SPE", "t2_checks": "probe checks T2"}
    fig = make_subplots(rows=len(shown), cols=len(stats), horizontal_spacing=0.06,
                        vertical_spacing=0.25 / len(shown),
                        subplot_titles=[f"{b.code}: {names[k]}" for b in shown for k in stats])
    for r, b in enumerate(shown, start=1):
        limits = mspc_limits_of(b)
        for c, key in enumerate(stats, start=1):
            tag = MSPC_TAGS[key]
            if tag not in b.samples.columns:
                continue
            series = _thin(b.samples[tag].dropna())
            x = b.days(series.index)
            fig.add_trace(go.Scattergl(x=x, y=series.to_numpy(), mode="lines", showlegend=False,
                                       name=f"{b.code} {key}", line={"color": "#1f77b4"}),
                          row=r, col=c)
            for level, lim in limits.get(key, {}).items():
                dash, colour = _LIMIT_STYLE.get(level, ("dash", "#888"))
                label = f"{level} % limit" if level != "alarm" else "alarm limit"
                fig.add_trace(go.Scatter(
                    x=[x.min(), x.max()] if len(x) else [0, 1], y=[lim, lim], mode="lines",
                    name=label, legendgroup=label, showlegend=r == 1 and c == 1,
                    line={"dash": dash, "color": colour, "width": 1}), row=r, col=c)
            fig.update_yaxes(type="log", row=r, col=c)
            fig.update_xaxes(title_text="day", row=r, col=c)
    fig.update_layout(height=260 * len(shown), template="plotly_white", margin={"t": 40})
    return fig


def _colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[k : k + 2], 16) for k in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _thin(s: pd.Series, max_points: int = 1500) -> pd.Series:
    """Every k-th point of a long series, so a 14-day 1-min trend stays light in the page."""
    step = max(1, len(s) // max_points)
    return s.iloc[::step]


def _raman_figure(b: BatchData, n_lines: int = 15) -> go.Figure:
    """A waterfall: spectra at evenly spaced times, offset by culture day."""
    assert b.spectra is not None and b.wavenumbers_cm1 is not None and b.spectra_times is not None
    idx = np.unique(np.linspace(0, len(b.spectra) - 1, n_lines).round().astype(int))
    t_index = pd.DatetimeIndex(b.spectra_times)
    days = b.days(t_index)
    fig = go.Figure()
    for j in idx:
        fig.add_trace(go.Scatter3d(
            x=b.wavenumbers_cm1, y=np.full(b.wavenumbers_cm1.shape, days[j]), z=b.spectra[j],
            mode="lines", line={"width": 2}, name=f"day {days[j]:.1f}", showlegend=False,
        ))
    fig.update_layout(
        height=520, template="plotly_white", margin={"t": 10},
        scene={"xaxis_title": "Raman shift (cm⁻¹)", "yaxis_title": "day",
               "zaxis_title": "intensity (counts)"},
    )
    return fig


def _events_table(batches: Sequence[BatchData]) -> str:
    rows = []
    for b in batches:
        for e in b.events:
            rows.append({"unit": b.unit, "batch": b.code, **{k: e.get(k) for k in
                         ("time_utc", "kind", "severity", "message")}})
    if not rows:
        return "<p>No events.</p>"
    return pd.DataFrame(rows).to_html(index=False, border=0)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
th {{ background: #f4f6f8; }}
.meta {{ color: #666; }}
</style></head>
<body>
{body}
</body></html>
"""
