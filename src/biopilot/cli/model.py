"""CLI: Train and inspect soft-sensor models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from biopilot.cli._common import JSON_OPTION, fail, open_store, print_json, print_table, progress
from biopilot.config import ConfigError
from biopilot.monitor.campaign import (
    CalibrationSet,
    calibration_set_from_historian,
    calibration_sets,
    design_campaign,
    run_campaign,
)
from biopilot.monitor.modelio import ModelFileError, read_header, save_model
from biopilot.monitor.softsensor_bank import DEFAULT_COADD
from biopilot.monitor.softsensor_train import train_soft_sensor

app = typer.Typer(help="Train and inspect soft-sensor models.", no_args_is_help=True)
train_app = typer.Typer(help="Train a model.", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("softsensor")
def train_softsensor(
    db: str | None = typer.Option(
        None, "--from", help="Historian (path or URL): spectra paired with at-line assays."
    ),
    campaign: int = typer.Option(
        0, "--campaign", min=0, help="Calibrate on N designed twin batches instead of --from."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the campaign design and batches."),
    test: int = typer.Option(
        0, "--test", min=0, help="Held-out twin batches (another seed) to report RMSEP on."
    ),
    every: int = typer.Option(
        2, "--every", min=1, help="Twin campaign: keep every k-th 15-min spectrum."
    ),
    preprocessing: str = typer.Option("auto", help="auto (choose by CV) or detrend, sg1..."),
    max_components: int = typer.Option(15, "--max-components", min=1, help="Most PLS LVs."),
    coadd: bool = typer.Option(
        True,
        "--coadd/--single",
        help="Titer and VCD from the mean of the last 8 spectra (2 h), or all from one spectrum.",
    ),
    out: Path = typer.Option(Path("softsensor.bpmodel"), "--out", help="Model file to write."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Calibrate the Raman soft sensors (glucose, lactate, glutamine, ammonia, titer, VCD)."""
    if (db is None) == (campaign == 0):
        fail("give either --from DB or --campaign N")
    params: dict[str, Any] = {"preprocessing": preprocessing, "max_components": max_components}
    windows = DEFAULT_COADD if coadd else None
    sizes = sorted({1, *(windows or {}).values()})
    try:
        with progress(enabled=not as_json) as bar:
            if db is not None:
                task = bar.add_task("reading the historian", total=1)
                with open_store(db) as hist:
                    cal = {w: calibration_set_from_historian(hist, coadd=w) for w in sizes}
                source: dict[str, Any] = {"historian": str(db)}
                bar.advance(task)
            else:
                cal = _campaign(bar, campaign, seed, every, sizes, "calibration campaign")
                source = {"campaign": campaign, "seed": seed, "every": every}
            held = _campaign(bar, test, seed + 1, every, sizes, "test batches") if test else None
            task = bar.add_task(f"fitting on {len(cal[1])} spectra", total=1)
            model, meta = train_soft_sensor(cal, test=held, source=source, coadd=windows, **params)
            bar.advance(task)
    except (ValueError, ConfigError) as err:
        fail(str(err))
    save_model(model, out, meta)
    summary = {"model": str(out), **_summary(meta)}
    if as_json:
        print_json(summary)
    else:
        print_table(f"soft sensors -> {out}", summary["analytes"])


@app.command("show")
def show(
    path: Path = typer.Argument(..., help="Model file."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a model file's versions, training data and figures (without loading it)."""
    try:
        header = read_header(path)
    except ModelFileError as err:
        fail(str(err))
    if as_json:
        print_json(header)
        return
    meta = header.get("metadata", {})
    info = {k: header.get(k) for k in ("kind", "biopilot_version", "sklearn_version")}
    info["trained_utc"] = meta.get("trained_utc")
    info["batches"] = len(meta.get("batches", []))
    info["spectra"] = meta.get("n_spectra")
    axis = header.get("wavenumbers") or {}
    info["axis"] = f"{axis.get('first_cm1')}-{axis.get('last_cm1')} cm-1, {axis.get('n_points')}"
    print_table(str(path), [info])
    print_table("per analyte", _summary(meta)["analytes"])


def _campaign(
    bar: Any, n: int, seed: int, every: int, windows: list[int], what: str
) -> dict[int, CalibrationSet]:
    """Design and simulate ``n`` twin batches, with a progress bar; a set per co-add window."""
    runs = design_campaign(n, seed=seed)
    task = bar.add_task(f"{what} ({n} batches)", total=n)
    batches = run_campaign(runs, progress=lambda _: bar.advance(task))
    return calibration_sets(batches, windows, every=every, runs=runs)


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    """Per-analyte rows (CV and, when tested, test figures) and the batches used."""
    figures = meta.get("test", {}).get("figures", {})
    rows = []
    for analyte, cv in meta.get("cv", {}).items():
        test = figures.get(analyte, {})
        rows.append(
            {
                "analyte": analyte,
                "spectra": meta.get("coadd", {}).get(analyte, 1),
                "preprocessing": cv["preprocessing"],
                "lv": cv["n_components"],
                "rmsecv": cv["rmsecv"],
                "rmsep": test.get("rmsep"),
                "coverage": test.get("coverage"),
                "untrusted": test.get("untrusted"),
            }
        )
    return {
        "analytes": rows,
        "batches": [b.get("label") for b in meta.get("batches", [])],
        "test_batches": [b.get("label") for b in meta.get("test", {}).get("batches", [])],
    }
