"""The HTML report is self-contained and shows the tornado, Sobol and Monte Carlo panels."""

from __future__ import annotations

from pathlib import Path

from economics_helpers import build

from biopilot.economics import estimate, monte_carlo, sobol_indices, tornado, write_html

UNCERTAIN = {
    "yields.titer_g_per_l": {"dist": "triangular", "low": 2.0, "mode": 3.0, "high": 4.0},
    "failure_rate": {"dist": "uniform", "low": 0.0, "high": 0.1},
}


def test_report_is_offline_html_with_the_three_panels(tmp_path: Path) -> None:
    model = build(uncertain=UNCERTAIN)
    out = write_html(
        tmp_path / "cost.html",
        estimate(model),
        monte_carlo(model, 500, seed=1),
        sobol_indices(model, 64, seed=1),
        tornado(model),
    )
    html = out.read_text(encoding="utf-8")
    # plotly.js inlined (a few MB), no script fetched from a CDN: works offline
    assert "<script src=" not in html and len(html) > 1_000_000
    for text in ("Tornado", "Sobol indices of per_gram", "Monte Carlo, 500 draws"):
        assert text in html
    assert "yields.titer_g_per_l" in html
