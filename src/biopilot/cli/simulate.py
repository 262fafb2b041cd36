"""CLI: simulate a line of bioreactors with the digital twin into the historian."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError
from biopilot.store import Historian
from biopilot.store.twin_ingest import RecordedBatch, record_batch
from biopilot.twin import Recipe, default_recipe, load_recipe, parse_fault, simulate_batch
from biopilot.twin.batch import BatchResult
from biopilot.twin.bioreactor import DEFAULT_START_UTC
from biopilot.twin.recipe import with_harvest_day
from biopilot.twin.summary import key_figures

__all__ = ["LinePlan", "plan_line", "register", "run_line"]


@dataclass(frozen=True)
class LinePlan:
    """A validated simulation request: everything is checked before anything is written."""

    recipe: Recipe
    units: tuple[str, ...]
    seeds: tuple[int, ...]
    faults: dict[str, tuple[Any, ...]]
    start_utc: pd.Timestamp
    raman: bool


def plan_line(
    units: int,
    days: float | None,
    seed: int,
    faults: list[str],
    recipe_path: Path | None,
    start: str | None,
    raman: bool = True,
) -> LinePlan:
    """Validate a line simulation request; raise ConfigError naming the bad option."""
    if not 1 <= units <= 50:
        raise ConfigError(f"--units must be between 1 and 50, got {units}")
    recipe = load_recipe(recipe_path) if recipe_path else default_recipe()
    if days is not None:
        if not 1.0 <= days <= 60.0:
            raise ConfigError(f"--days must be between 1 and 60 days, got {days}")
        recipe = with_harvest_day(recipe, days)
    names = tuple(f"BR-{i + 1:02d}" for i in range(units))
    by_unit: dict[str, list[Any]] = {n: [] for n in names}
    for spec in faults:
        unit, _, fault = spec.rpartition("/")
        unit = unit or names[0]
        if unit not in by_unit:
            raise ConfigError(f"--fault {spec!r}: unknown unit {unit!r}; units are {list(names)}")
        parsed = parse_fault(fault)
        if parsed.onset_day >= recipe.harvest_day:
            raise ConfigError(
                f"--fault {spec!r}: onset day {parsed.onset_day:g} is after the harvest "
                f"(day {recipe.harvest_day:g})"
            )
        by_unit[unit].append(parsed)
    try:
        start_utc = pd.Timestamp(start) if start else pd.Timestamp(DEFAULT_START_UTC)
    except ValueError:
        msg = f"--start {start!r} is not an ISO date-time (e.g. 2026-01-05T08:00Z)"
        raise ConfigError(msg) from None
    if start_utc.tzinfo is None:
        start_utc = start_utc.tz_localize("UTC")
    return LinePlan(recipe, names, tuple(seed + i for i in range(units)),
                    {u: tuple(f) for u, f in by_unit.items()}, start_utc.tz_convert("UTC"), raman)


def run_line(
    plan: LinePlan, historian: Historian, *, show_progress: bool = True
) -> list[tuple[BatchResult, RecordedBatch]]:
    """Simulate every unit of ``plan`` and record it; refuse batch codes already stored."""
    codes = [f"{u}-S{s}" for u, s in zip(plan.units, plan.seeds, strict=True)]
    taken = {b.code for b in historian.list_batches()} & set(codes)
    if taken:
        raise ConfigError(
            f"batches {sorted(taken)} are already in this historian; choose another --seed or --db"
        )
    out = []
    with progress(show_progress) as bar:
        task = bar.add_task("simulating", total=2 * len(plan.units))
        for unit, seed in zip(plan.units, plan.seeds, strict=True):
            bar.update(task, description=f"simulating {unit}")
            result = simulate_batch(plan.recipe, seed=seed, unit=unit, start_utc=plan.start_utc,
                                    faults=plan.faults[unit], raman=plan.raman)
            bar.advance(task)
            bar.update(task, description=f"recording {unit}")
            out.append((result, record_batch(historian, result)))
            bar.advance(task)
    return out


def summary_rows(done: list[tuple[BatchResult, RecordedBatch]]) -> list[dict[str, Any]]:
    """One row of key figures per simulated batch."""
    rows = []
    for result, rec in done:
        k = key_figures(result.atline, result.start_utc)
        rows.append({
            "batch": rec.code,
            "faults": ", ".join(f"{f.kind}@{f.onset_day:g}" for f in result.faults) or "-",
            "VCD max 1e6/mL": k["peak_vcd_cells_per_ml"] / 1e6,
            "titer g/L": k["final_titer_g_per_l"],
            "viab. d10 %": k["viability_day10_pct"],
            "viab. end %": k["final_viability_pct"],
            "lac. max g/L": k["peak_lactate_g_per_l"],
            "lac. end g/L": k["final_lactate_g_per_l"],
        })
    return rows


def register(app: typer.Typer) -> None:
    """Add the simulate command to ``app``."""

    @app.command()
    def simulate(
        units: int = typer.Option(3, "--units", help="Number of bioreactors (BR-01, BR-02...)."),
        days: float = typer.Option(None, "--days", help="Harvest day (default: the recipe's)."),
        seed: int = typer.Option(7, "--seed", help="Seed of unit 1; unit i gets seed + i - 1."),
        db: Path = typer.Option(Path("line.db"), "--db", help="Historian (SQLite file or URL)."),
        fault: list[str] = typer.Option(
            [], "--fault", help="[UNIT/]NAME@DAY[:MAGNITUDE], e.g. BR-02/do_probe_drift@6."),
        recipe: Path = typer.Option(None, "--recipe", help="Recipe YAML (default: platform)."),
        start: str = typer.Option(None, "--start", help="Inoculation time, ISO UTC."),
        no_raman: bool = typer.Option(False, "--no-raman", help="Skip Raman spectra."),
        json_out: bool = JSON_OPTION,
    ) -> None:
        """Simulate a line of fed-batch bioreactors and store every sample in the historian."""
        try:
            plan = plan_line(units, days, seed, fault, recipe, start, raman=not no_raman)
            with Historian(db) as historian:
                done = run_line(plan, historian, show_progress=not json_out)
        except (ConfigError, ValueError) as err:
            fail(str(err))
        rows = summary_rows(done)
        if json_out:
            print_json({"db": str(db), "generated_utc": datetime.now().astimezone().isoformat(),
                        "batches": rows})
        else:
            print_table(f"Simulated batches in {db}", rows)
