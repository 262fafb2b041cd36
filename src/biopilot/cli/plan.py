"""CLI: Schedule multi-product modular sites."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError, load_yaml
from biopilot.planning import (
    Schedule,
    Site,
    compile_site,
    parse_duration_h,
    simulate,
    solve_instance,
    write_gantt,
)

app = typer.Typer(help="Schedule multi-product modular sites.", no_args_is_help=True)

SITE_ARG = typer.Argument(..., help="Site model (YAML): suites, staff, products, demand.")
HORIZON_OPTION = typer.Option("28d", "--horizon", help="Planning horizon, e.g. 28d, 12h, 2w.")
OBJECTIVE_OPTION = typer.Option(
    "tardiness", "--objective", help="tardiness | makespan | throughput."
)
TIME_LIMIT_OPTION = typer.Option(30.0, "--time-limit", help="CP-SAT time limit, seconds.")
HARD_DUE_OPTION = typer.Option(False, "--hard-due", help="Due dates are deadlines.")
_OBJECTIVES = ("tardiness", "makespan", "throughput")


@app.command("solve")
def solve_cmd(
    site_path: Path = SITE_ARG,
    horizon: str = HORIZON_OPTION,
    objective: str = OBJECTIVE_OPTION,
    time_limit: float = TIME_LIMIT_OPTION,
    hard_due: bool = HARD_DUE_OPTION,
    gantt: Path | None = typer.Option(None, "--gantt", help="Write a Gantt chart (HTML)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Schedule the batches released within the horizon; print batches and suites."""
    _, sched = _solve(site_path, horizon, objective, time_limit, hard_due, as_json)
    if gantt is not None and sched.feasible:
        write_gantt(sched, gantt)
    if as_json:
        print_json(sched)
    else:
        _print_schedule(sched)
    if not sched.feasible:
        raise typer.Exit(1)


@app.command("simulate")
def simulate_cmd(
    site_path: Path = SITE_ARG,
    horizon: str = HORIZON_OPTION,
    runs: int = typer.Option(1000, "--runs", min=1, help="Monte Carlo runs."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    objective: str = OBJECTIVE_OPTION,
    time_limit: float = TIME_LIMIT_OPTION,
    failure_rate: float | None = typer.Option(
        None, "--failure-rate", min=0.0, max=0.99, help="Override every product's rate."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Schedule, then simulate durations and failures: vein-to-vein P50/P95, on-time rate."""
    site, sched = _solve(site_path, horizon, objective, time_limit, False, as_json)
    if not sched.feasible:
        _print_schedule(sched)
        fail(f"no schedule to simulate ({sched.status})", code=1)
    result = simulate(site, sched, runs=runs, seed=seed, failure_rate=failure_rate)
    if as_json:
        print_json({"schedule_status": sched.status, **result.model_dump()})
        return
    rows: list[dict[str, Any]] = [p.model_dump() for p in result.products]
    print_table(f"Monte Carlo, {result.runs} runs (seed {result.seed})", rows)
    typer.echo(
        f"on-time rate {_pct(result.on_time_rate)}; vein-to-vein P50 "
        f"{_num(result.vein_to_vein_p50_days)} d, P95 {_num(result.vein_to_vein_p95_days)} d; "
        f"failed batches per run {result.failures_per_run:.2f}"
    )


def _solve(
    site_path: Path, horizon: str, objective: str, time_limit: float, hard_due: bool, quiet: bool
) -> tuple[Site, Schedule]:
    """Load, compile and solve; configuration errors end the command with their message."""
    if objective not in _OBJECTIVES:
        fail(f"--objective must be one of {', '.join(_OBJECTIVES)} (got {objective!r})")
    try:
        horizon_h = parse_duration_h(horizon)
    except ValueError as err:
        fail(f"--horizon: {err}")
    try:
        site = load_yaml(site_path, Site)
    except ConfigError as err:
        fail(str(err))
    inst = compile_site(site, horizon_h)
    if not inst.batches:
        fail(f"no batch is released within {horizon} of {site.start.isoformat()}")
    with progress(enabled=not quiet) as bar:
        task = bar.add_task("scheduling", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        sched = solve_instance(
            inst,
            objective,  # type: ignore[arg-type]
            time_limit_s=time_limit,
            hard_due=hard_due,
            progress=tick,
        )
        bar.update(task, completed=1, total=1)
    return site, sched


def _print_schedule(s: Schedule) -> None:
    """Batches and suites as tables, then the solver's account."""
    rows: list[dict[str, Any]] = [
        {
            "batch": b.id,
            "product": b.product,
            "release_h": b.release_h,
            "end_h": b.end_h,
            "qc_release_h": b.qc_release_h,
            "due_h": b.due_h,
            "lateness_h": b.lateness_h,
            "suites": " ".join(dict.fromkeys(st.suite for st in b.steps if st.suite)),
        }
        for b in s.batches[:200]
    ]
    if rows:
        more = f" (first 200 of {len(s.batches)})" if len(s.batches) > 200 else ""
        print_table(f"Batches{more}", rows)
        print_table("Suites", [p.model_dump() for p in s.suites])
    for c in s.conflicts:
        typer.echo(c)
    if s.unscheduled:
        typer.echo(f"not scheduled: {', '.join(s.unscheduled)}")
    typer.echo(
        f"{s.status}: {s.objective} {_num(s.objective_value)}, bound {_num(s.best_bound)}, "
        f"gap {_pct(s.gap)}, {s.wall_time_s:.1f} s"
    )


def _num(x: float | None) -> str:
    """A number for humans, '-' when missing."""
    return "-" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    """A fraction as a percentage, '-' when missing."""
    return "-" if x is None else f"{100 * x:.1f} %"
