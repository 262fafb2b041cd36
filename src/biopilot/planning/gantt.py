"""Gantt chart of a schedule: one row per suite, one bar per procedure, as offline Plotly HTML."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import plotly.graph_objects as go

from biopilot.planning.schedule import Schedule

__all__ = ["gantt_figure", "write_gantt"]

MAX_BARS = 20_000  # beyond this a browser struggles; the earliest bars are drawn


def gantt_figure(schedule: Schedule, max_bars: int = MAX_BARS) -> go.Figure:
    """A Plotly figure of the in-suite procedures, coloured by product, hover naming the batch.

    Off-suite procedures (incubation, expansion) are drawn on an ``off-suite`` row per product.
    """
    rows: dict[str, list[tuple[str, float, float, str]]] = {}
    for b in schedule.batches:
        for s in b.steps:
            row = s.suite or f"off-suite {b.product}"
            bar = (row, s.start_h, s.end_h - s.start_h, f"{b.id} {s.procedure}")
            rows.setdefault(b.product, []).append(bar)
    fig = go.Figure()
    drawn = 0
    for product, bars in rows.items():
        bars = sorted(bars, key=lambda x: x[1])[: max(0, max_bars - drawn)]
        drawn += len(bars)
        fig.add_trace(
            go.Bar(
                name=product,
                orientation="h",
                y=[r for r, _, _, _ in bars],
                base=[_ms(schedule, t) for _, t, _, _ in bars],
                x=[d * 3_600_000 for _, _, d, _ in bars],
                text=[t for _, _, _, t in bars],
                hovertemplate="%{text}<br>%{base|%Y-%m-%d %H:%M} for %{customdata:.1f} h",
                customdata=[d for _, _, d, _ in bars],
                textposition="none",
            )
        )
    fig.update_layout(
        title=f"{schedule.site}: {schedule.objective} {schedule.objective_value} "
        f"({schedule.status})",
        barmode="overlay",
        xaxis={"type": "date", "title": "time (UTC)"},
        yaxis={"title": "suite", "categoryorder": "category descending"},
        height=max(400, 30 * len({r for bars in rows.values() for r, _, _, _ in bars})),
    )
    return fig


def write_gantt(schedule: Schedule, path: str | Path, max_bars: int = MAX_BARS) -> Path:
    """Write the Gantt chart to ``path`` as self-contained HTML (Plotly embedded, offline)."""
    p = Path(path)
    gantt_figure(schedule, max_bars).write_html(p, include_plotlyjs=True, full_html=True)
    return p


def _ms(schedule: Schedule, hours: float) -> str:
    """ISO time of ``hours`` after the schedule's origin (Plotly date axes read it)."""
    return (schedule.origin + timedelta(hours=hours)).isoformat()
