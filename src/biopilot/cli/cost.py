"""CLI: Cost of goods with uncertainty."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError, parse_model
from biopilot.economics import (
    COMPONENTS,
    apply_measured,
    apply_schedule,
    check_published,
    estimate,
    load_process,
    monte_carlo,
    read_yields,
    sobol_indices,
    summarise,
    tornado,
    write_html,
)

if TYPE_CHECKING:
    from biopilot.planning.schedule import Schedule

app = typer.Typer(help="Cost of goods with uncertainty.", no_args_is_help=True)


@app.command("estimate")
def estimate_cmd(
    process: Path = typer.Argument(..., help="Process cost model (YAML)."),
    from_batch: str | None = typer.Option(
        None, "--from-batch", help="Take titer and volume measured for this batch id/code."
    ),
    db: Path | None = typer.Option(None, "--db", help="Historian database (with --from-batch)."),
    schedule: Path | None = typer.Option(
        None, "--schedule", help="Schedule JSON from `biopilot plan solve --json`."
    ),
    product: str | None = typer.Option(
        None, "--product", help="Product of the schedule to cost (with --schedule)."
    ),
    mc: int = typer.Option(10_000, "--mc", min=0, help="Monte Carlo draws (0: nominal only)."),
    sobol_n: int = typer.Option(
        1024, "--sobol-n", min=0, help="Sobol base sample N, a power of 2 (0: skip Sobol)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed, for reproducible runs."),
    top: int = typer.Option(5, "--top", min=1, help="How many Sobol indices to print."),
    html: Path | None = typer.Option(None, "--html", help="Write a tornado/Sobol report here."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Cost per batch, per gram and per dose, with P5/P50/P95 and the top Sobol indices."""
    if (from_batch is None) != (db is None):
        fail("--from-batch and --db go together")
    if (schedule is None) != (product is None):
        fail("--schedule and --product go together")
    try:
        model = load_process(process)
        planned = None
        if schedule is not None and product is not None:
            planned = summarise(_load_schedule(schedule), product)
            model = apply_schedule(model, planned)
        measured = None
        if from_batch is not None and db is not None:
            measured = read_yields(db, from_batch)
            model = apply_measured(model, measured)
    except ConfigError as err:
        fail(str(err))
    est = estimate(model)
    uncertain = bool(model.uncertain)
    mc_res = sob = None
    with progress(enabled=not json_out) as bar:
        task = bar.add_task("uncertainty", total=3)
        if mc and uncertain:
            mc_res = monte_carlo(model, mc, seed=seed)
        bar.advance(task)
        if sobol_n and uncertain:
            sob = sobol_indices(model, sobol_n, seed=seed)
        bar.advance(task)
        bars = tornado(model)
        bar.advance(task)
    # Measured yields or a real schedule make a new case: the published figure no longer applies.
    own_case = measured is None and planned is None
    pub = check_published(model, est) if model.published and own_case else None
    if html is not None:
        write_html(html, est, mc_res, sob, bars)
    if json_out:
        print_json(
            {
                "estimate": est.as_dict(),
                "measured": asdict(measured) if measured else None,
                "schedule": asdict(planned) if planned else None,
                "monte_carlo": mc_res.as_dict() if mc_res else None,
                "sobol": sob.as_dict() if sob else None,
                "tornado": [{**asdict(b), "swing": b.swing} for b in bars],
                "published": pub.as_dict() if pub else None,
                "html": html,
            }
        )
        return
    _print_estimate(est, mc_res)
    if measured is not None:
        typer.echo(
            f"yields measured in batch {measured.batch}: titer {measured.titer_g_per_l:.4g} g/L, "
            f"volume {measured.harvest_volume_l:.4g} L"
        )
    if planned is not None:
        typer.echo(
            f"from the schedule ({planned.product}): {planned.batches_per_year:.4g} batches/year, "
            f"occupancy {planned.occupancy_fraction:.1%}, failure rate {planned.failure_rate:.1%}"
        )
    if not uncertain:
        typer.echo("no inputs under 'uncertain:': nominal figures only")
    if sob is not None:
        print_table(
            f"Top Sobol indices of {sob.metric} (N={sob.base_samples}, {sob.evaluations} runs)",
            sob.top(top),
        )
    if pub is not None:
        typer.echo(
            f"published {pub.metric} {pub.published:,.0f} ({pub.cite}) beside ours "
            f"{pub.ours:,.0f} {pub.currency}: deviation {100 * pub.deviation:+.1f} %"
        )
    if html is not None:
        typer.echo(f"report written to {html}")


@app.command("published")
def published_cmd(
    processes: list[Path] = typer.Argument(..., help="Process files with a 'published' block."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Each published case beside our nominal figure, with the deviation."""
    rows = []
    for path in processes:
        try:
            rows.append({**check_published(load_process(path)).as_dict(), "file": path.stem})
        except (ConfigError, ValueError) as err:
            fail(f"{path}: {err}")
    if json_out:
        print_json(rows)
        return
    print_table("Published cases", [{**_pub_row(r), "case": r["file"]} for r in rows])


def _load_schedule(path: Path) -> Schedule:
    """A planner schedule from JSON (the object itself, or under a ``schedule`` key)."""
    from biopilot.planning.schedule import Schedule

    if not path.is_file():
        raise ConfigError(f"--schedule {path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"--schedule {path}: not JSON ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("schedule"), dict):
        data = data["schedule"]
    return parse_model(Schedule, data, source=str(path))


def _print_estimate(est: Any, mc_res: Any) -> None:
    total = est.per_batch
    rows = [
        {
            "component": c,
            "per good batch": getattr(est, c),
            "share %": 100 * getattr(est, c) / total,
        }
        for c in COMPONENTS
    ]
    rows.append({"component": "total", "per good batch": total, "share %": 100.0})
    print_table(f"{est.name}: cost of one good batch ({est.currency})", rows)
    out = []
    for metric in ("per_batch", "per_gram", "per_dose", "per_patient"):
        nominal = getattr(est, metric)
        if nominal is None:
            continue
        row: dict[str, Any] = {"metric": metric, "nominal": nominal}
        if mc_res is not None and metric in mc_res.metrics:
            p = mc_res.metrics[metric]
            row.update(P5=p.p5, P50=p.p50, P95=p.p95)
        out.append(row)
    draws = f", Monte Carlo {mc_res.draws} draws" if mc_res else ""
    print_table(f"Cost ({est.currency}{draws})", out, ["metric", "nominal", "P5", "P50", "P95"])


def _pub_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "case": r["case"],
        "metric": r["metric"],
        "published": r["published"],
        "ours": r["ours"],
        "deviation %": 100 * r["deviation"],
        "currency": r["currency"],
        "source": r["cite"],
    }
