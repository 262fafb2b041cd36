"""CLI: Batch MSPC models and alarms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from biopilot.cli._common import JSON_OPTION, fail, print_json, print_table, progress
from biopilot.config import ConfigError
from biopilot.monitor.alarms import AlarmEngine
from biopilot.monitor.mspc import BatchEvolutionModel, load
from biopilot.monitor.mspc_features import PROBE_CHECKS, PROBE_STANDARDS, required_tags
from biopilot.monitor.mspc_io import ONLINE_TAGS, read_batches
from biopilot.monitor.online_mspc import MSPC_TAGS, alarm_rules
from biopilot.store import Historian, StoreError

app = typer.Typer(help="Batch MSPC models and alarms.", no_args_is_help=True)


@app.command()
def train(
    db: Path = typer.Option(..., "--from", help="Historian database with the good batches."),
    out: Path = typer.Option(..., "--out", help="Model file to write (JSON)."),
    batches: str = typer.Option(
        "", help="Comma-separated batch ids or codes (default: complete batches without faults)."
    ),
    components: int = typer.Option(3, help="Principal components."),
    calibration_share: float = typer.Option(
        0.3, help="Share of the good batches held out to calibrate the alarm limits (0: none)."
    ),
    period_min: float = typer.Option(10.0, help="Maturity bin width, minutes."),
    features: str = typer.Option(
        "auto", help="Probe cross-checks: auto (those every batch has the tags of: online vs "
        "at-line pH, O2 balance), none, or comma-separated names.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a batch-evolution MSPC model on good batches of the historian.

    By default the model also monitors the probe cross-checks (online minus at-line pH,
    the oxygen balance) that the batches' tags allow, as a second block with its own T2.
    """
    with _errors(), Historian(_db(db)) as hist:
        chosen: list[int | str] = [b.strip() for b in batches.split(",") if b.strip()]
        if not chosen:
            chosen = [
                b.id
                for b in hist.list_batches()
                if b.status == "complete" and not hist.read_events(b.id, kinds=["fault"])
            ]
        wanted = _features(features)
        tags = tuple(dict.fromkeys([*ONLINE_TAGS, *required_tags(wanted)]))
        with progress(not as_json) as bar:
            task = bar.add_task("reading batches", total=len(chosen))
            data = []
            for item in chosen:
                data.extend(read_batches(hist, [item], tags))
                bar.advance(task)
        frames = [frame for _, frame in data]
        checks = _available(wanted, frames, strict=features not in ("auto", "none"))
        n_cal = max(0, min(round(calibration_share * len(frames)), len(frames) - 3))
        fit_on, cal_on = frames[: len(frames) - n_cal], frames[len(frames) - n_cal :]
        model = BatchEvolutionModel(
            n_components=components, period_min=period_min, features=checks
        ).fit(fit_on)
        if cal_on:
            model.calibrate(cal_on)
        codes = [info.code for info, _ in data]
        meta = {
            "database": str(db),
            "batches": codes[: len(fit_on)],
            "calibration_batches": codes[len(fit_on) :],
        }
        model.save(out, meta)
    summary = {
        "model": str(out),
        "batches": meta["batches"],
        "calibration_batches": meta["calibration_batches"],
        "alarm_limits": model.alarm_limits_,
        "features": list(checks),
        "n_components": components,
        "explained_variance_ratio": model.pca_.explained_variance_ratio_.tolist(),
        "t2_lim99": model.t2_limits_[0.99],
        "spe_lim99": model.spe_limits_[0.99],
    }
    if as_json:
        print_json(summary)
    else:
        shown = ("model", "n_components", "features", "t2_lim99", "spe_lim99")
        print_table("MSPC model", [{k: summary[k] for k in shown}])


@app.command()
def check(
    batch: str = typer.Argument(..., help="Batch id or code."),
    model_path: Path = typer.Option(..., "--model", help="Model file from `mspc train`."),
    db: Path = typer.Option(..., "--db", help="Historian database."),
    store: bool = typer.Option(False, help="Write the MSPC alarm transitions as events."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Score a batch: T2/SPE per time with 95/99 % limits, and the MSPC alarms found."""
    with _errors(), Historian(_db(db)) as hist:
        model = load(model_path)
        if not isinstance(model, BatchEvolutionModel):
            fail(f"{model_path} is not a batch-evolution model")
        tags = tuple(dict.fromkeys([*model.variables, *required_tags(model.features)]))
        ((info, frame),) = read_batches(hist, [batch], tags)
        mon = model.monitor(frame)
        engine = AlarmEngine(alarm_rules(model), hist if store else None, info.unit, info.id)
        transitions = []
        for when, tag, value in _alarm_inputs(model, mon, frame):
            transitions += engine.update(tag, when.to_pydatetime(), value)
        engine.flush()
    alarms = [
        {
            "time_utc": t.time_utc,
            "alarm": t.alarm,
            "transition": t.transition,
            "value": t.value,
            "limit": t.limit,
            "top_variable": str(model.diagnose(frame, t.time_utc).index[0])
            if t.transition == "raised" and t.alarm.startswith("mspc_")
            else None,
        }
        for t in transitions
    ]
    columns = ["time_utc", "maturity_h", "t2", "spe", "t2_lim95", "t2_lim99", "spe_lim95",
               "spe_lim99", "t2_checks", "t2_checks_lim95", "t2_checks_lim99"]
    points = mon.reset_index()[[c for c in columns if c in mon.columns or c == "time_utc"]]
    if as_json:
        print_json(
            {"batch": info.code, "points": points.to_dict(orient="records"), "alarms": alarms}
        )
        return
    print_table(f"MSPC of {info.code}: {len(points)} points", [_summary(points)])
    print_table("MSPC alarms", alarms or [{"alarm": "none"}])


@app.command()
def alarms(
    db: Path = typer.Option(..., "--db", help="Historian database."),
    batch: str = typer.Option("", help="Only this batch (id or code)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List the alarm and acknowledgement events stored in the historian."""
    with _errors(), Historian(_db(db)) as hist:
        infos = (
            [hist.batch(int(batch) if batch.isdigit() else batch)] if batch else hist.list_batches()
        )
        rows: list[dict[str, Any]] = []
        for info in infos:
            for e in hist.read_events(info.id, kinds=["alarm", "acknowledgement"]):
                rows.append(
                    {
                        "time_utc": e.time_utc,
                        "batch": info.code,
                        "unit": e.unit,
                        "kind": e.kind,
                        "severity": e.severity,
                        "alarm": e.payload.get("alarm"),
                        "transition": e.payload.get("transition"),
                        "message": e.message,
                    }
                )
    if as_json:
        print_json(rows)
    else:
        print_table("Alarms", rows or [{"alarm": "none"}])


def _alarm_inputs(
    model: BatchEvolutionModel, mon: pd.DataFrame, frame: pd.DataFrame
) -> list[tuple[pd.Timestamp, str, float]]:
    """What the alarm engine reads, in time order: each bin's statistics and the probe checks'
    probe and at-line samples (an at-line sample after that minute's probe reading)."""
    rows = [(when, 1, MSPC_TAGS[k], float(row[k]))
            for when, row in mon.iterrows() for k in model.alarm_limits_]  # fmt: skip
    for feature in getattr(model, "probe_limits_", {}):
        std = PROBE_STANDARDS[feature]
        for order, tag in ((0, std.probe), (2, std.reference)):
            if tag in frame.columns:
                col = frame[tag].dropna()
                rows += [(t, order, tag, float(v)) for t, v in col.items()]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(t, tag, v) for t, _, tag, v in rows]


def _features(text: str) -> tuple[str, ...]:
    """The probe cross-checks asked for: all (auto), none, or the names given (checked)."""
    if text == "auto":
        return PROBE_CHECKS
    if text == "none":
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    required_tags(names)  # ValueError naming an unknown one
    return names


def _available(wanted: tuple[str, ...], frames: list[Any], *, strict: bool) -> tuple[str, ...]:
    """The checks every batch has data for; with ``strict``, a missing one is an error."""
    from biopilot.monitor.mspc_features import FEATURES

    out = []
    for name in wanted:
        lacking = [t for t in FEATURES[name].tags if any(f[t].isna().all() for f in frames)]
        if not lacking:
            out.append(name)
        elif strict:
            raise ValueError(f"feature {name!r} needs {lacking} in every batch")
    return tuple(out)


def _db(path: Path) -> Path:
    if not path.is_file():
        fail(f"{path}: no such database")
    return path


def _summary(points: Any) -> dict[str, Any]:
    return {
        "t2 max": float(points["t2"].max()),
        "t2 lim99": float(points["t2_lim99"].iloc[0]),
        "spe max": float(points["spe"].max()),
        "spe lim99": float(points["spe_lim99"].iloc[0]),
        "% points beyond 99 %": 100.0
        * float(
            ((points["t2"] > points["t2_lim99"]) | (points["spe"] > points["spe_lim99"])).mean()
        ),
    }


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the expected errors into a clear message and exit code 2."""
    try:
        yield
    except (ConfigError, StoreError, ValueError, KeyError) as err:
        fail(str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err))
