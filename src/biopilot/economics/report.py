"""Offline HTML report of a cost estimate: tornado plot, Sobol indices and Monte Carlo histogram."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .cost import CostEstimate
from .uncertainty import MonteCarloResult, SobolResult, TornadoBar

__all__ = ["tornado_figure", "write_html"]


def tornado_figure(bars: list[TornadoBar], nominal: float, label: str) -> go.Figure:
    """A tornado plot: one horizontal bar per input, widest on top, centred on ``nominal``."""
    bars = bars[::-1]  # plotly draws the first category at the bottom
    names = [b.name for b in bars]
    fig = go.Figure()
    for which, colour in (("low", "#4c78a8"), ("high", "#e45756")):
        values = [getattr(b, f"output_{which}") - nominal for b in bars]
        fig.add_bar(
            y=names,
            x=values,
            base=nominal,
            orientation="h",
            name=f"input at its {which} quantile",
            marker_color=colour,
        )
    fig.update_layout(barmode="overlay", title=f"Tornado: {label}", xaxis_title=label)
    return fig


def write_html(
    path: str | Path,
    estimate: CostEstimate,
    mc: MonteCarloResult | None,
    sobol: SobolResult | None,
    bars: list[TornadoBar],
) -> Path:
    """Write a self-contained HTML report (plotly.js inlined, works offline); return its path."""
    metric = mc.primary if mc else "per_batch"
    nominal = getattr(estimate, metric)
    label = f"{metric.replace('_', ' ')} ({estimate.currency})"
    fig = make_subplots(
        rows=3,
        cols=1,
        subplot_titles=(
            f"Tornado ({label}, inputs at P5 / P95)",
            f"Sobol indices of {metric}",
            f"Monte Carlo, {mc.draws if mc else 0} draws",
        ),
        vertical_spacing=0.08,
    )
    for trace in tornado_figure(bars, nominal, label).data:
        fig.add_trace(trace, row=1, col=1)
    if sobol is not None:
        fig.add_bar(y=sobol.names[::-1], x=sobol.st[::-1], orientation="h", name="ST", row=2, col=1)
        fig.add_bar(y=sobol.names[::-1], x=sobol.s1[::-1], orientation="h", name="S1", row=2, col=1)
    if mc is not None:
        fig.add_histogram(x=mc.samples, nbinsx=60, name=metric, row=3, col=1)
        for q, v in (("P5", mc.metrics[metric].p5), ("P50", mc.metrics[metric].p50),
                     ("P95", mc.metrics[metric].p95)):  # fmt: skip
            fig.add_vline(x=v, line_dash="dash", annotation_text=q, row=3, col=1)
    n_rows = max(len(bars), len(sobol.names) if sobol else 0)
    fig.update_layout(
        title=f"Cost of goods: {estimate.name}",
        barmode="overlay",
        height=900 + 30 * n_rows,
    )
    out = Path(path)
    fig.write_html(out, include_plotlyjs=True, full_html=True)
    return out
